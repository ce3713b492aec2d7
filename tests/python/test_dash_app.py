"""The example Dash app (examples/dash_app) in a real browser.

The app runs under `gunicorn -w 4` on 127.0.0.1 (a free port) against this
module's shoal daemon, on a small frame; headless Chromium, driven through
chromedriver by selenium, changes the dropdown and waits (with deadlines)
for the graph and the table to show the new region, comparing what they
show with the aggregates computed here from the same data set. In the
middle the loader replaces the frame with the next data set; the page must
follow, and no callback may fail (no 500 answer, no traceback in the
server's log, no error in the browser's console). A screenshot is saved as
build/dash_app.png.
"""

import math
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from conftest import wait_until

DAEMON_MEMORY = "512M"
ROOT = Path(__file__).resolve().parents[2]
APP_DIR = ROOT / "examples" / "dash_app"
ROWS = 20_000
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

sys.path.insert(0, str(APP_DIR))
import data  # noqa: E402  (the app's own module: what the page must show)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gunicorn_args():
    """gunicorn 23+ opens a control socket in $HOME unless told not to."""
    out = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--help"], capture_output=True, text=True, timeout=60
    ).stdout
    return ["--no-control-socket"] if "--no-control-socket" in out else []


class App:
    """The example app under gunicorn, and its loader."""

    def __init__(self, daemon, tmp):
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = tmp / "gunicorn.log"
        self.env = dict(
            os.environ,
            DASH_APP_BACKEND="shoal",
            SHOAL_SOCKET=daemon.path,
            DASH_APP_DATA=str(tmp / "data"),
        )
        self.proc = None

    def load(self, generation):
        subprocess.run(
            [sys.executable, "loader.py", "--rows", str(ROWS), "--once", "--generation", str(generation)],
            cwd=APP_DIR,
            env=self.env,
            check=True,
            timeout=120,
            capture_output=True,
        )

    def start(self, deadline=300):
        self.logfile = open(self.log, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *gunicorn_args(), "-w", "4",
             "-b", f"127.0.0.1:{self.port}", "--access-logfile", "-", "app:server"],
            cwd=APP_DIR,
            env=self.env,
            stdout=self.logfile,
            stderr=subprocess.STDOUT,
        )

        def up():
            assert self.proc.poll() is None, f"gunicorn exited:\n{self.log.read_text()}"
            try:
                with urllib.request.urlopen(self.url + "_dash-layout", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(up, timeout=deadline, interval=0.2, what="gunicorn to answer")
        # Every worker has booted (the app module imported) once 4 say so.
        wait_until(
            lambda: self.log.read_text().count("Booting worker") >= 4,
            timeout=deadline,
            what="4 gunicorn workers",
        )

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.logfile.close()

    def callback_failures(self):
        """Lines of the server's log that show a failed callback."""
        bad = []
        for line in self.log.read_text(errors="replace").splitlines():
            if "Traceback" in line or "Exception on" in line or "Error handling request" in line:
                bad.append(line)
            elif "/_dash-update-component" in line and '" 500 ' in line:
                bad.append(line)
        return bad


@pytest.fixture(scope="module")
def app(daemon, tmp_path_factory):
    a = App(daemon, tmp_path_factory.mktemp("dash_app"))
    a.load(0)
    a.start()
    yield a
    a.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # tests run as root in CI
        "--disable-gpu",
        "--window-size=1200,1100",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium')}",
    ):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(30)
    yield driver
    driver.quit()


def expected(generation, region):
    sel = data.select(data.make_frame(ROWS, generation), region)
    days, revenue = data.daily_revenue(sel)
    return days, revenue, data.top_products(sel)


def shown(browser):
    """(graph title, x, y, table rows) as the page shows them now."""
    graph = browser.execute_script(
        """const g = document.querySelector('#graph .js-plotly-plot');
        if (!g || !g.data || !g.data.length) return null;
        return {title: (g.layout.title || {}).text, x: g.data[0].x, y: g.data[0].y};"""
    )
    rows = browser.execute_script(
        """return Array.from(document.querySelectorAll('#table tbody tr'))
            .map(tr => Array.from(tr.querySelectorAll('td')).map(td => td.innerText.trim()))
            .filter(r => r.length);"""
    )
    return graph, rows


def matches(browser, generation, region):
    days, revenue, top = expected(generation, region)
    graph, rows = shown(browser)
    if graph is None or graph["title"] != f"Daily revenue: {region}":
        return False
    if list(graph["x"]) != days or len(graph["y"]) != len(revenue):
        return False
    if not all(math.isclose(a, b, rel_tol=1e-9, abs_tol=0.01) for a, b in zip(graph["y"], revenue)):
        return False
    want = [[str(r["product"]), str(r["qty"]), r["revenue"]] for r in top]
    if len(rows) != len(want):
        return False
    for got, (product, qty, rev) in zip(rows, want):
        if got[0] != product or got[1] != qty or not math.isclose(float(got[2]), rev, abs_tol=0.01):
            return False
    return True


def choose(browser, region):
    """Picks region in the dropdown as a user does: open it, click it."""
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "region").click()
    options = wait_until(
        lambda: [
            o for o in browser.find_elements(By.CSS_SELECTOR, "[role=option]")
            if o.text.strip() == region
        ],
        timeout=30,
        what=f"option {region} in the open dropdown",
    )
    options[0].click()


def version_shown(browser):
    from selenium.webdriver.common.by import By

    text = browser.find_element(By.ID, "version").text
    return int(text.rsplit(" ", 1)[-1]) if text.startswith("data version") else 0


def console_errors(browser):
    return [e for e in browser.get_log("browser") if e.get("level") == "SEVERE"]


def test_dropdown_graph_table_and_refresh(app, browser, daemon):
    store = daemon.connect()
    browser.get(app.url)
    wait_until(lambda: matches(browser, 0, "North"), timeout=120, interval=0.2,
               what="graph and table of North, data set 0")
    first_version = version_shown(browser)
    assert first_version == store.version(data.FRAME_NAME)

    choose(browser, "East")
    wait_until(lambda: matches(browser, 0, "East"), timeout=120, interval=0.2,
               what="graph and table of East, data set 0")
    # The Serverside output (the selected rows) reached the detail callback.
    sel = data.select(data.make_frame(ROWS, 0), "East")
    wait_until(
        lambda: browser.find_element("id", "detail").text.startswith(f"{len(sel):,} orders"),
        timeout=120, what="the detail line of East",
    )

    # A refresh in the middle, while the user keeps clicking.
    loader = subprocess.Popen(
        [sys.executable, "loader.py", "--rows", str(ROWS), "--once", "--generation", "1"],
        cwd=APP_DIR, env=app.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    choose(browser, "West")
    assert loader.wait(120) == 0, loader.stdout.read().decode(errors="replace")
    loader.stdout.close()
    new_version = store.version(data.FRAME_NAME)
    assert new_version > first_version
    wait_until(lambda: version_shown(browser) == new_version, timeout=120, interval=0.2,
               what="the page to see the new data version")
    wait_until(lambda: matches(browser, 1, "West"), timeout=120, interval=0.2,
               what="graph and table of West, data set 1")

    choose(browser, "Coast")
    wait_until(lambda: matches(browser, 1, "Coast"), timeout=120, interval=0.2,
               what="graph and table of Coast, data set 1")
    share = browser.find_element("id", "share").text
    assert share.startswith("Coast: ") and share.endswith("% of all revenue")

    os.makedirs(ROOT / "build", exist_ok=True)
    assert browser.save_screenshot(str(ROOT / "build" / "dash_app.png"))

    assert app.callback_failures() == []
    assert console_errors(browser) == []
    # Every callback answered 200 (the access log names each one).
    log = app.log.read_text(errors="replace")
    assert log.count("POST /_dash-update-component") >= 8
    store.close()

