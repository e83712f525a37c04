"""Run the daemon over our local servers with its dashboard on a free port, and look at the pages as a browser does.

``serving(settings)`` polls every source ``sweeps`` times through the real pipeline (collect, extract, group,
notify), runs the source-health job, starts the dashboard inside that daemon and yields (daemon, base URL).
``inert_problems(driver)`` lists whatever on the loaded page could run or mislead: script elements, event
handler attributes, links to anything but http(s), frames, bidi overrides, an open alert dialog, console errors
(a Content-Security-Policy violation is one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from newsradar import settings as config
from newsradar.daemon import Daemon

FAST_HTTP = {"per_host_delay": 0, "total_timeout": 5, "read_timeout": 2, "connect_timeout": 2}
BIDI = ("\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069")


def web_settings(tmp_path: Path, sources: list[dict[str, Any]], **sections: Any) -> config.Settings:
    """Settings for one daemon with its dashboard on 127.0.0.1 (free port); ``sections`` add or override."""
    data: dict[str, Any] = {
        "state_dir": str(tmp_path / "state"),
        "http": dict(FAST_HTTP),
        "sources": [{"interval": 600, "jitter": 0, **s} for s in sources],
        "web": {"listen": "127.0.0.1:0"},
        "slack": {"default_channel": "#news", "min_interval": 0, "timeout": 2.0},
    }
    for name, value in sections.items():
        data[name] = {**data[name], **value} if isinstance(value, dict) and name in data else value
    return config.parse(data, "web-test")


@contextmanager
def serving(settings: config.Settings, sweeps: int = 1) -> Iterator[tuple[Daemon, str]]:
    """A daemon that has polled and processed everything, serving its dashboard; closed after the block."""
    daemon = Daemon(settings)
    try:
        assert daemon.collect is not None
        for _ in range(sweeps):
            for name in daemon.collect.collectors:
                daemon.collect.poll(name)
        daemon.drain()
        daemon.check_sources()
        address = daemon.start_dashboard()
        assert address, "the dashboard did not start"
        yield daemon, address
    finally:
        daemon.close()


_INERT = """
const problems = [];
for (const s of document.querySelectorAll('script, iframe, frame, object, embed, img, base, meta[http-equiv]'))
  problems.push('element <' + s.tagName.toLowerCase() + '>');
for (const e of document.querySelectorAll('*'))
  for (const a of e.attributes)
    if (a.name.startsWith('on') || a.name === 'style' || a.name === 'srcdoc') problems.push('attribute ' + a.name);
for (const a of document.querySelectorAll('a[href]'))
  if (!['http:', 'https:'].includes(a.protocol)) problems.push('link ' + a.getAttribute('href'));
for (const f of document.querySelectorAll('form[action]'))
  if (new URL(f.action).origin !== location.origin) problems.push('form to ' + f.action);
if (window.__pwned) problems.push('a script ran');
return problems;
"""


def inert_problems(driver: WebDriver) -> list[str]:
    """What on the current page could run, restyle, navigate away or reorder text (empty: nothing)."""
    problems: list[str] = []
    try:
        problems.append(f"an alert dialog is open: {driver.switch_to.alert.text!r}")
    except NoAlertPresentException:
        pass
    problems += driver.execute_script(_INERT)
    text = driver.find_element("tag name", "body").text
    problems += [f"bidi control U+{ord(c):04X} in the text" for c in BIDI if c in text]
    problems += [f"console: {e['message']}" for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return problems


def resources_outside(driver: WebDriver, address: str) -> list[str]:
    """Resources the page loaded from anywhere but the dashboard itself (a CDN would show here)."""
    names = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    return [n for n in names if not n.startswith(address)]


def then_new_page(driver: WebDriver, action: Callable[[], object]) -> None:
    """Do ``action`` (a submit or click that loads a page) and wait until the old page is gone, so what is read
    next comes from the new one (reading at once can catch the old page's elements as they go stale)."""
    old = driver.find_element(By.TAG_NAME, "html")
    action()
    WebDriverWait(driver, 30).until(expected_conditions.staleness_of(old))
