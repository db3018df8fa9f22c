"""The security tests drive the same pages and store as tests/test_app_pages.py, with its fixtures."""
from test_app_pages import data_dir  # noqa: F401 (a fixture: each test's own data directory)
