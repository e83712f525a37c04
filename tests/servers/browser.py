"""A real headless browser for tests: Debian's Chromium driven through its chromedriver by selenium.

``chromium(width, height)`` yields a WebDriver (headless, Korean locale, fixed window size) and quits it
afterwards; ``screenshot(driver, path)`` saves what it shows as a PNG. Both come from `make browser`
(deploy/browser/ensure.sh), which also installs the CJK fonts Korean text needs.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service


def _binary(*names: str) -> str:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    raise RuntimeError(f"none of {', '.join(names)} is installed; run `make browser` (deploy/browser/ensure.sh)")


@contextlib.contextmanager
def chromium(width: int = 1280, height: int = 2000) -> Iterator[webdriver.Chrome]:
    """A headless Chromium (lang ko-KR) of ``width`` x ``height`` CSS pixels, closed when the block ends."""
    options = webdriver.ChromeOptions()
    options.binary_location = _binary("chromium", "chromium-browser")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=ko-KR",
                f"--window-size={width},{height}", "--hide-scrollbars", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"intl.accept_languages": "ko-KR,ko"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=_binary("chromedriver")))
    try:
        driver.set_page_load_timeout(60)
        yield driver
    finally:
        driver.quit()


def screenshot(driver: webdriver.Chrome, path: str | Path) -> Path:
    """Save the current viewport as a PNG at ``path`` (folders made as needed); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(out)):
        raise RuntimeError(f"Chromium could not save a screenshot to {out}")
    return out
