"""The page tests' headless Chromium (tests/browser.py)."""

from tests.browser import browser  # noqa: F401 (the fixture)
