"""The hosted app's upload limit: Streamlit refuses bigger uploads before any of our code runs."""

import tomllib

from tests.helpers.paths import ROOT


def test_uploads_are_capped_by_streamlit_config():
    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert 10 <= config["server"]["maxUploadSize"] <= 500  # MB: models and data sets, not archives of them
    assert config["browser"]["gatherUsageStats"] is False
