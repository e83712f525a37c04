"""The offline demo's dashboard, as `make run CONFIG=config/demo.yaml` starts it: the real CLI in a child process
on the demo config (its state in a temporary folder and any free port, so it runs beside a real daemon), which
must print the dashboard's address; the page, in headless Chromium, shows the demo's stories and sources."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import yaml
from selenium.webdriver.common.by import By

from tests.servers.browser import ARTIFACTS, chromium, screenshot
from tests.web.dashboard import then_new_page

ROOT = Path(__file__).resolve().parents[2]
ADDRESS = re.compile(r"newsradar dashboard: (http://127\.0\.0\.1:\d+/)")


def _demo_config(tmp_path: Path) -> Path:
    """config/demo.yaml with its file: URLs made absolute, its state under tmp_path and the dashboard on port 0."""
    data = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text(encoding="utf-8"))
    for source in data["sources"]:
        source["url"] = (ROOT / "config" / source["url"].removeprefix("file:")).resolve().as_uri()
    data["state_dir"] = str(tmp_path / "demo")
    data["web"] = {**data.get("web", {}), "listen": "127.0.0.1:0"}
    path = tmp_path / "demo.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_the_demo_prints_its_dashboard_address_and_shows_its_stories_and_sources(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("SLACK_BOT_TOKEN", "SLACK_WEBHOOK_URL",
                                                          "NEWSRADAR_OPS_WEBHOOK_URL", "NEWSRADAR_WEB_TOKEN")}
    child = subprocess.Popen([sys.executable, "-c", "from newsradar.cli import main; main()",
                              "--config", str(_demo_config(tmp_path)), "run"],
                             cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()
    assert child.stdout is not None
    reader = threading.Thread(target=lambda: [lines.put(line) for line in child.stdout or []], daemon=True)
    reader.start()
    try:
        address, seen = None, []
        deadline = time.monotonic() + 60
        while address is None and time.monotonic() < deadline:
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert child.poll() is None, "".join(seen)
                continue
            found = ADDRESS.search(seen[-1])
            address = found.group(1) if found else None
        assert address, "no dashboard address printed:\n" + "".join(seen)
        while time.monotonic() < deadline and httpx.get(address).text.count('<li class="story"') < 3:
            time.sleep(0.5)  # the first sweep (both sources: three stories) runs as the dashboard starts
        with chromium(width=1200, height=900) as driver:
            driver.get(address)
            headlines = [a.text for a in driver.find_elements(By.CSS_SELECTOR, "li.story a.headline")]
            assert any("특화단지" in h for h in headlines) and any("CIBF" in h for h in headlines), headlines
            assert not any("독서교실" in h for h in headlines)  # page furniture is no story
            assert driver.find_element(By.ID, "broken-count").text == "모든 소스 정상"
            screenshot(driver, ARTIFACTS / "demo-stories.png")
            then_new_page(driver, driver.find_element(By.LINK_TEXT, "소스").click)
            rows = {r.get_attribute("data-source"): r.text for r in driver.find_elements(By.CSS_SELECTOR, "tr.source")}
            assert list(rows) == ["demo-regional-feed", "demo-city-press"]
            assert "RSS 정상" in rows["demo-regional-feed"] and "HTML 정상" in rows["demo-city-press"], rows
            screenshot(driver, ARTIFACTS / "demo-sources.png")
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
    assert child.returncode == 0, "".join(seen)
