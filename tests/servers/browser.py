"""A real headless browser for tests: Debian's Chromium driven through its chromedriver by selenium.

    from tests.servers.browser import ARTIFACTS, chromium, screenshot

    with chromium(width=1280, height=2000) as driver:   # a selenium WebDriver, headless, lang ko-KR
        driver.get(url)
        screenshot(driver, ARTIFACTS / "stories.png")   # kept as a test artifact

``make browser`` (deploy/browser/ensure.sh, run by ``make test``) installs chromium, chromium-driver and
fonts-noto-cjk from Debian when missing; selenium is pointed at those binaries, so it never downloads a
browser or a driver of its own. Screenshots go under $NEWSRADAR_TEST_ARTIFACTS (default
var/test-artifacts/ in the checkout), which outlives the test run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("NEWSRADAR_TEST_ARTIFACTS") or ROOT / "var" / "test-artifacts")
CHROMIUM = os.environ.get("NEWSRADAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = os.environ.get("NEWSRADAR_CHROMEDRIVER") or shutil.which("chromedriver") or "/usr/bin/chromedriver"


@contextmanager
def chromium(width: int = 1280, height: int = 2000) -> Iterator[WebDriver]:
    """A headless Chromium (Korean UI language, fixed window size) for the ``with`` block; always quit after."""
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not Path(binary).exists():
            raise RuntimeError(f"{binary} is missing: run `make browser` (installs Debian's {package})")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="newsradar-chromium-")
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                f"--window-size={width},{height}", "--lang=ko-KR", f"--user-data-dir={profile}",
                "--no-first-run", "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "ko-KR,ko"})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.set_page_load_timeout(30)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screenshot(driver: WebDriver, path: str | Path) -> Path:
    """Save the current page as a PNG at ``path`` (folders created); returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(target)):
        raise RuntimeError(f"the browser could not write a screenshot to {target}")
    return target
