"""Headless Chromium for the page tests (the live dashboard, the demo's report): the ``browser`` fixture.

Chromium and its driver are Debian packages (`make setup` installs them); ``GCPIPE_CHROMIUM`` and
``GCPIPE_CHROMEDRIVER`` name others. Either missing fails the test with one sentence that says what to run.
Load it with ``-p tests.browser`` or import the fixture into a conftest.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from gcpipe.core.errors import GcpipeError

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def find_browser() -> tuple[str, str]:
    """Chromium and its WebDriver: $GCPIPE_CHROMIUM and $GCPIPE_CHROMEDRIVER, else on PATH."""
    found, missing = [], []
    for variable, name, package in (
        ("GCPIPE_CHROMIUM", "chromium", "chromium"),
        ("GCPIPE_CHROMEDRIVER", "chromedriver", "chromium-driver"),
    ):
        path = shutil.which(os.environ.get(variable) or name)
        found.append(path)
        if path is None:
            missing.append((os.environ.get(variable) or name, package))
    if missing:
        names = " and ".join(name for name, _ in missing)
        packages = " ".join(package for _, package in missing)
        raise GcpipeError(
            f"{names} not found (on PATH, or where GCPIPE_CHROMIUM / GCPIPE_CHROMEDRIVER point): run "
            f"`make setup` to install the Debian packages {packages}."
        )
    return found[0], found[1]


@pytest.fixture
def browser(tmp_path: Path):
    """A headless Chromium driven by selenium, its profile in the test's tmp dir."""
    try:
        chromium, chromedriver = find_browser()
    except GcpipeError as err:
        pytest.fail(str(err), pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size=1280,1500"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    yield driver
    driver.quit()


# What each Plotly chart on the page shows, as the browser rendered it: its title, axis titles (the SVG
# text Plotly drew), every text on it (ticks, annotations), its axes' ranges and its traces' y values.
CHARTS_JS = """
return [...document.querySelectorAll('.js-plotly-plot')].map(g => ({
  id: (g.closest('[id]') || {}).id || '',
  title: (g.querySelector('.gtitle') || {}).textContent || '',
  x_title: (g.querySelector('.g-xtitle') || {}).textContent || '',
  y_title: (g.querySelector('.g-ytitle') || {}).textContent || '',
  annotations: [...g.querySelectorAll('.annotation-text')].map(a => a.textContent),
  text: g.textContent,
  x_range: g._fullLayout.xaxis.range, y_range: g._fullLayout.yaxis.range,
  y: g.data.map(t => t.y),
}));
"""


def rendered_charts(driver) -> list[dict]:
    return driver.execute_script(CHARTS_JS)


def save_page(driver, path: Path) -> Path:
    """A screenshot of the whole page (the window made as tall as the page first)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, min(height + 100, 8000))
    driver.save_screenshot(str(path))
    return path
