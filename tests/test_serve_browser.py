"""The served console in a real browser: Debian's headless Chromium, driven by Selenium through
Debian's chromedriver. It opens the tokened URL, sees the four panes, presses `4` and `r` to
retry a dead job (the store shows it pending), and is refused without the token.

Without /usr/bin/chromium and /usr/bin/chromedriver these tests fail, never skip: `.ci/run`
installs them. QUEUECTL_BROWSER_SCREENSHOT=PATH saves the page (screenshots/browser.png)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time

import pytest

from clihelp import run_cli, seed, stored
from servehelp import start_serve, stop_serve, wait_for

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1400,900"]
pytestmark = pytest.mark.timeout(240)

# Keeps what the console sends the page (the terminal is drawn on a canvas, not in the DOM).
CAPTURE = """
window.__screen = "";
const Original = window.WebSocket;
window.WebSocket = function (url, protocols) {
  const ws = protocols === undefined ? new Original(url) : new Original(url, protocols);
  const decoder = new TextDecoder();
  ws.addEventListener("message", (event) => {
    const keep = (buffer) => { window.__screen += decoder.decode(buffer, {stream: true}); };
    if (typeof event.data === "string") { window.__screen += event.data; }
    else if (event.data instanceof ArrayBuffer) { keep(event.data); }
    else if (event.data && event.data.arrayBuffer) { event.data.arrayBuffer().then(keep); }
  });
  return ws;
};
window.WebSocket.prototype = Original.prototype;
Object.assign(window.WebSocket, Original);
"""
ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[@-_]")


@pytest.fixture
def browser():
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver "
                        "(.ci/run does)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="queuectl-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": CAPTURE})
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def screen(driver) -> str:
    """What the console has sent the page so far, without its escape sequences."""
    return ESCAPES.sub("", driver.execute_script("return window.__screen || '';"))


def press(driver, keys: str) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


@pytest.fixture
def dead_job(tmp_path):
    db = tmp_path / "q.db"
    [job_id] = seed(db, {"command": "exit 7", "id": "dead-one", "max_retries": 0})
    seed(db, {"command": "true", "id": "done-one"})
    code, _, err = run_cli("worker", "start", "--burst", "--count", "1", db=db)
    assert code == 0, err
    assert stored(db)[job_id].state.value == "dead"
    return db, job_id


def test_the_console_in_a_browser_retries_a_dead_job(browser, dead_job):
    db, job_id = dead_job
    served = start_serve(db)
    try:
        browser.get(served.url)
        assert browser.current_url == served.base + "/"  # the token left the address bar
        assert served.token not in browser.page_source
        wait_for(lambda: all(f"{n} {title}" in screen(browser) for n, title in
                             ((1, "Pending"), (2, "Running"), (3, "Completed"), (4, "Dead"))),
                 timeout=60, interval=0.2, what="the four panes")
        wait_for(lambda: job_id in screen(browser), timeout=30, interval=0.2,
                 what="the dead job in its pane")
        browser.find_element("css selector", "#terminal").click()
        time.sleep(0.5)  # the click's focus reaches the console before the keys
        press(browser, "4")
        wait_for(lambda: "4 Dead" in screen(browser), timeout=10, what="the Dead pane")
        press(browser, "r")
        wait_for(lambda: stored(db)[job_id].state.value == "pending", timeout=30,
                 interval=0.2, what="the retried job to be pending")
        wait_for(lambda: "pending again" in screen(browser), timeout=30, interval=0.2,
                 what="the console's notice")
        shot = os.environ.get("QUEUECTL_BROWSER_SCREENSHOT")
        if shot:
            time.sleep(1.5)  # let the notice fade in fully
            browser.save_screenshot(shot)
    finally:
        code, _, err = stop_serve(served)
    assert code == 0, err
    assert served.token not in err


def test_the_browser_is_refused_without_the_token(browser, dead_job):
    db, _ = dead_job
    served = start_serve(db)
    try:
        for url in (served.base + "/", served.base + "/?token=guess-" + "0" * 40,
                    served.base + "/metrics"):
            browser.get(url)
            text = browser.find_element("tag name", "body").text
            assert text.startswith("error: this queuectl server needs its token"), text
            assert "Traceback" not in browser.page_source
        time.sleep(1)
        assert screen(browser) == ""  # no console was started for it
        assert browser.get_cookies() == []
    finally:
        code, _, err = stop_serve(served)
    assert code == 0, err
    assert " GET /ws " not in err
