"""The hosting recipe really guards the app: deploy/nginx/neural-cleanse.conf in front of Streamlit.

The test runs Debian's nginx with the recipe's own file (only its ports and file paths swapped for
the test's), a self-signed certificate and an htpasswd made with ``openssl passwd -6``, in front
of ``streamlit run app.py`` on loopback. Without the login, pages, the upload endpoint and the
websocket get 401 from nginx (its ``WWW-Authenticate`` header), never Streamlit's answer; plain
HTTP redirects to HTTPS; an upload over the cap gets 413 before its body is read; with the login
the websocket upgrades and Chromium shows the dashboard through the proxy.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.browser import CHROMIUM, CHROMIUM_ARGS, free_port, healthy
from tests.helpers.paths import ROOT

RECIPE = ROOT / "deploy" / "nginx" / "neural-cleanse.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
USER, PASSWORD = "reviewer", "correct horse battery staple"
UPLOAD_CAP_MB = 100


def _need(tool: str, package: str) -> None:
    if Path(tool).exists() or shutil.which(tool):
        return
    message = f"{tool} is missing: install Debian's {package} (apt-get install -y {package})."
    pytest.fail(message) if os.environ.get("CI") else pytest.skip(message)


def _site_config(folder: Path, http_port: int, https_port: int, upstream_port: int) -> str:
    """The recipe with the test's ports and paths; every swapped piece must still be in it."""
    text = RECIPE.read_text()
    swaps = {
        "listen 80;": f"listen 127.0.0.1:{http_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{https_port} ssl;",
        "/etc/neural-cleanse/": f"{folder}/",
        "127.0.0.1:8501": f"127.0.0.1:{upstream_port}",
    }
    for old, new in swaps.items():
        assert old in text, f"the recipe no longer holds {old!r}: update this test with it"
        text = text.replace(old, new)
    return text


def _main_config(folder: Path) -> str:
    temp = "\n".join(
        f"    {kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers must read the test's 0700 folder
    return (
        f"{user}worker_processes 1;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\n"
        f"events {{}}\nhttp {{\n    access_log {folder}/access.log;\n{temp}\n    include {folder}/site.conf;\n}}\n"
    )


def _tls_files(folder: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            folder / "tls.key",
            "-out",
            folder / "tls.crt",
        ],
        check=True,
        capture_output=True,
    )
    digest = subprocess.run(
        ["openssl", "passwd", "-6", "-stdin"], input=PASSWORD, text=True, check=True, capture_output=True
    ).stdout.strip()
    (folder / "htpasswd").write_text(f"{USER}:{digest}\n")


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    _need(NGINX, "nginx")
    _need("openssl", "openssl")
    folder = tmp_path_factory.mktemp("proxy")
    _tls_files(folder)
    app_port, http_port, https_port = free_port(), free_port(), free_port()
    (folder / "site.conf").write_text(_site_config(folder, http_port, https_port, app_port))
    (folder / "nginx.conf").write_text(_main_config(folder))
    env = {**os.environ, "NC_DATA_DIR": str(folder / "nc_data"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("NC_PASSWORD", None)
    app = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "app.py",
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(app_port),
            "--server.headless",
            "true",
            "--server.fileWatcherType",
            "none",
            "--server.maxUploadSize",
            str(UPLOAD_CAP_MB),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    nginx = subprocess.Popen(
        [NGINX, "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        started = time.perf_counter()
        while not healthy(f"http://127.0.0.1:{app_port}"):
            assert app.poll() is None and nginx.poll() is None, nginx.stderr.read() if nginx.poll() is not None else ""
            assert time.perf_counter() - started < 90, "streamlit did not start"
            time.sleep(0.2)
        tls = ssl.create_default_context(cafile=str(folder / "tls.crt"))
        yield {
            "https": f"https://127.0.0.1:{https_port}",
            "http": f"http://127.0.0.1:{http_port}",
            "port": https_port,
            "tls": tls,
            "folder": folder,
        }
    finally:
        for process in (nginx, app):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def _request(
    proxy,
    path: str,
    method: str = "GET",
    auth: tuple[str, str] | None = None,
    headers: dict | None = None,
    body: bytes | None = None,
) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(proxy["https"] + path, data=body, method=method, headers=headers or {})
    if auth:
        request.add_header("Authorization", "Basic " + base64.b64encode(":".join(auth).encode()).decode())
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=proxy["tls"]), _NoRedirect())
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def _raw(proxy, request: str) -> str:
    """Send one raw HTTP/1.1 request over TLS and return the status line and headers."""
    with socket.create_connection(("127.0.0.1", proxy["port"]), timeout=10) as plain:
        with proxy["tls"].wrap_socket(plain, server_hostname="127.0.0.1") as conn:
            conn.sendall(request.encode())
            return conn.recv(4096).decode(errors="replace")


def _upgrade(proxy, auth: tuple[str, str] | None) -> str:
    host = f"127.0.0.1:{proxy['port']}"
    login = f"Authorization: Basic {base64.b64encode(':'.join(auth).encode()).decode()}\r\n" if auth else ""
    return _raw(
        proxy,
        f"GET /_stcore/stream HTTP/1.1\r\nHost: {host}\r\nOrigin: https://{host}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{login}\r\n",
    )


def test_plain_http_only_redirects_to_https(proxy):
    request = urllib.request.Request(proxy["http"] + "/")
    opener = urllib.request.build_opener(_NoRedirect())
    with pytest.raises(urllib.error.HTTPError) as redirect:
        opener.open(request, timeout=10)
    assert redirect.value.code == 301 and redirect.value.headers["Location"].startswith("https://")


@pytest.mark.parametrize(
    "path, method",
    [
        ("/", "GET"),
        ("/_stcore/health", "GET"),
        ("/Scan", "GET"),
        ("/static/js/index.js", "GET"),
        ("/_stcore/upload_file/session/file", "PUT"),
        ("/_stcore/upload_file/session/file", "POST"),
    ],
)
def test_without_the_login_nothing_reaches_streamlit(proxy, path, method):
    body = b"x" * 1024**2 if method in ("PUT", "POST") else None
    for auth in (None, (USER, "wrong password")):
        status, headers, _ = _request(proxy, path, method, auth=auth, body=body)
        assert status == 401 and headers.get("WWW-Authenticate", "").startswith("Basic"), (path, auth, status)


def test_without_the_login_the_websocket_is_refused(proxy):
    assert _upgrade(proxy, None).startswith("HTTP/1.1 401")
    assert _upgrade(proxy, (USER, "wrong password")).startswith("HTTP/1.1 401")


def test_with_the_login_the_app_answers_and_the_websocket_upgrades(proxy):
    status, _, body = _request(proxy, "/_stcore/health", auth=(USER, PASSWORD))
    assert (status, body) == (200, b"ok")
    assert _upgrade(proxy, (USER, PASSWORD)).startswith("HTTP/1.1 101")


def test_an_upload_over_the_cap_is_refused_before_its_body_is_read(proxy):
    login = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    answer = _raw(
        proxy,
        f"PUT /_stcore/upload_file/s/f HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Basic {login}\r\n"
        f"Content-Length: {(UPLOAD_CAP_MB + 1) * 1024**2}\r\n\r\n",
    )
    assert answer.startswith("HTTP/1.1 413")


@pytest.mark.browser
def test_chromium_through_the_proxy_needs_the_login_and_then_shows_the_dashboard(proxy):
    _need(str(CHROMIUM), "chromium")
    from playwright.sync_api import Error, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            stranger = browser.new_context(ignore_https_errors=True)
            with pytest.raises(Error, match="ERR_INVALID_AUTH_CREDENTIALS"):  # the 401 with no one to log in
                stranger.new_page().goto(proxy["https"] + "/")
            reviewer = browser.new_context(
                ignore_https_errors=True, http_credentials={"username": USER, "password": PASSWORD}
            )
            page = reviewer.new_page()
            assert page.goto(proxy["https"] + "/").status == 200
            # The title is drawn by the script over the websocket, so this proves it upgraded.
            page.get_by_role("heading", name="Neural Cleanse dashboard").wait_for(timeout=60_000)
        finally:
            browser.close()
