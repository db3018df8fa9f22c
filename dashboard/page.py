"""The first lines of every page: page config, the password gate, and reviewer mode.

Settings come from the environment or from ``.streamlit/secrets.toml``:

- ``NC_PASSWORD`` / ``password``: every page asks for it first (once per browser session).
- ``NC_REVIEWER_MODE=1`` / ``reviewer_mode = true``: stored runs are shown read-only; uploads,
  run buttons, delete and import are hidden.
- ``NC_RAY_ADDRESS`` / ``ray_address``: the scan page offers to run a scan's classes as Ray tasks
  there (``local:N`` for N workers on this machine, or a cluster's address, as ``scan --ray``
  takes it); unset, the option is hidden.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from dashboard.text import plain

AUTHENTICATED = "authenticated"
TRUE_WORDS = ("1", "true", "yes", "on")


def _secret(name: str):
    """A value from ``st.secrets``, or None when there is no secrets file or no such key."""
    try:
        return st.secrets.get(name)
    except Exception:  # no secrets.toml, or one that does not parse: treat as unset
        return None


def reviewer_mode() -> bool:
    """Whether stored runs are shown read-only (no uploads, runs, deletes or imports)."""
    if os.environ.get("NC_REVIEWER_MODE", "").strip().lower() in TRUE_WORDS:
        return True
    value = _secret("reviewer_mode")
    return str(value).strip().lower() in TRUE_WORDS if value is not None else False


def ray_address() -> str | None:
    """Where the operator lets scans run as Ray tasks (``NC_RAY_ADDRESS``), or None."""
    value = str(os.environ.get("NC_RAY_ADDRESS") or _secret("ray_address") or "").strip()
    return value or None


def _password() -> str | None:
    return os.environ.get("NC_PASSWORD") or _secret("password") or None


def require_password() -> None:
    """Show a password form and stop the page until the right password was given."""
    password = _password()
    if password is None or st.session_state.get(AUTHENTICATED):
        return
    st.title("Neural Cleanse dashboard")
    with st.form("login"):
        entered = st.text_input("Password", type="password", key="password_input")
        submitted = st.form_submit_button("Enter")
    if submitted:
        if hmac.compare_digest(entered.encode(), str(password).encode()):
            st.session_state[AUTHENTICATED] = True
            st.rerun()
        st.error("That password is not right.")
    st.stop()


NAVIGATION = (
    ("app.py", "Home", ":material/home:"),
    ("pages/1_Model_and_data.py", "Model and data", ":material/upload_file:"),
    ("pages/2_Reverse_engineer.py", "Reverse-engineer", ":material/search:"),
    ("pages/3_Scan_and_compare.py", "Scan and compare", ":material/biotech:"),
    ("pages/4_Runs.py", "Runs", ":material/folder_open:"),
    ("pages/5_Repair.py", "Repair", ":material/healing:"),
    ("pages/6_Audit.py", "Audit", ":material/fact_check:"),
)


def sidebar() -> None:
    """The pages, the current selection, and whether the app is read-only."""
    from dashboard.selection import current

    with st.sidebar:
        for path, label, icon in NAVIGATION:
            st.page_link(path, label=label, icon=icon)
        selection = current()
        st.divider()
        st.caption(
            f"Selected: **{plain(selection.model_label)}** on {plain(selection.data_label)}"
            if selection
            else "No model selected for new runs yet."
        )
        if reviewer_mode():
            st.caption("Reviewer mode: stored runs are shown read-only.")


def start_page(title: str, icon: str) -> None:
    """Page config, the password gate, then the sidebar; call first on every page."""
    st.set_page_config(page_title=f"{title} · Neural Cleanse", page_icon=icon, layout="wide")
    require_password()
    sidebar()


def runs_disabled_notice() -> None:
    """What the reverse and scan pages show in reviewer mode instead of their run buttons."""
    st.info("Runs are disabled in reviewer mode: stored runs can be viewed on the Runs page.")
    st.page_link("pages/4_Runs.py", label="Open the runs", icon=":material/folder_open:")
