"""The live page in a real headless Chromium (Debian's chromium + chromium-driver, driven by
Selenium): it loads without console errors, shows the API's numbers, follows new orders,
draws its charts, and switches to another worker when its own worker is killed.

A screenshot of each scenario is written to the test's tmp dir and, when ORDERSTATS_ARTIFACTS
is set, to that directory too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.support import ORDERSTATS, Deployment, assert_matches_truth, http_json, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

CHROMIUM = os.environ.get("ORDERSTATS_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("ORDERSTATS_CHROMEDRIVER", "/usr/bin/chromedriver")
STORES = 40
BLUE, GREEN = (47, 111, 219), (26, 127, 55)  # page.css / page.js series colours

# The page's per-store numbers as the table holds them (data-value of each cell).
ROWS_JS = """
return Object.fromEntries([...document.querySelectorAll('#rows tr')].map(tr => [
  tr.dataset.store,
  Object.fromEntries([...tr.querySelectorAll('td[data-key]')]
    .filter(td => !['spark', 'trend'].includes(td.dataset.key))
    .map(td => [td.dataset.key, td.dataset.value]))]));
"""

# How many pixels of a chart's canvas have (about) the given colour.
PIXELS_JS = """
const [sel, r, g, b] = arguments;
const c = document.querySelector(sel + ' canvas');
if (!c || !c.width || !c.height) return 0;
const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
let n = 0;
for (let i = 0; i < d.length; i += 4)
  if (d[i + 3] > 200 && Math.abs(d[i] - r) < 40 && Math.abs(d[i + 1] - g) < 40
      && Math.abs(d[i + 2] - b) < 40) n++;
return n;
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium "
                    "chromium-driver (scripts/bootstrap does it when run as root)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,2400", "--lang=en-US", "--no-first-run",
                "--disable-extensions", "--disable-background-networking"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    driver.save_screenshot(str(path))
    artifacts = os.environ.get("ORDERSTATS_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(artifacts) / name)
    print(f"\nscreenshot: {path}" + (f" (and {artifacts}/{name})" if artifacts else ""))
    return path


def console_errors(driver: Any) -> list[dict]:
    return [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def page_state(driver: Any, expr: str) -> Any:
    """``expr`` evaluated with the page's ``state`` and ``cfg`` (window.orderstats) in scope."""
    return driver.execute_script(
        f"const o = window.orderstats; if (!o) return null; const {{state, cfg}} = o; "
        f"return ({expr});")


def attr(driver: Any, css: str, name: str) -> str | None:
    """An attribute of the first element matching ``css`` (None while there is none)."""
    found = driver.find_elements("css selector", css)
    return found[0].get_attribute(name) if found else None


def text_of(driver: Any, css: str) -> str | None:
    found = driver.find_elements("css selector", css)
    return found[0].text if found else None


def api_rows(url: str) -> dict[str, dict[str, str]]:
    """/api/stores in the page's terms: each number as JS would print it."""
    status, body = http_json(url + "/api/stores?limit=1000")
    assert status == 200 and body["complete"], body

    def js(v: Any) -> str:
        return "null" if v is None else str(v)

    return {s["store_id"]: {
        "cur_orders": js(s["current"]["orders"]), "cur_revenue": js(s["current"]["revenue"]),
        "cur_items": js(s["current"]["items"]), "tot_orders": js(s["totals"]["orders"]),
        "tot_revenue": js(s["totals"]["revenue"]), "tot_items": js(s["totals"]["items"]),
        "late": js(s["totals"]["late"])} for s in body["stores"]}


def page_orders(driver: Any) -> int:
    rows = driver.execute_script(ROWS_JS)
    return sum(int(r["tot_orders"]) for r in rows.values())


def start_generator(dep: Deployment, *args: str) -> subprocess.Popen:
    """Live orders in the background, bounded by --duration."""
    return subprocess.Popen([ORDERSTATS, "generate", "--stores", str(STORES), "--seed", "3",
                             *args], env=dep.env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def stop_generator(gen: subprocess.Popen) -> None:
    if gen.poll() is None:
        gen.terminate()
    gen.wait(30)


def test_page_shows_the_api_numbers_follows_new_orders_and_draws_charts(
        deployment: Deployment, browser: Any, tmp_path: Path):
    worker = deployment.worker(1)
    worker.wait_ready()
    truth = deployment.generate(tmp_path / "truth.json", "--count", "3000", "--span", "900",
                                "--rate", "0", "--stores", str(STORES), "--duplicates", "0.02",
                                "--invalid", "0.02", "--seed", "1")
    assert_matches_truth(worker.url, truth)

    # The page and its files: CSP on the page, right content types on the assets.
    with urllib.request.urlopen(worker.url + "/") as resp:
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert resp.headers["Content-Type"].startswith("text/html")
        assert b"/static/page.js" in resp.read()
    for path, ctype in (("/static/page.js", "text/javascript"), ("/static/page.css", "text/css"),
                        ("/static/vendor/uPlot.iife.min.js", "text/javascript"),
                        ("/static/vendor/uPlot.min.css", "text/css")):
        with urllib.request.urlopen(worker.url + path) as resp:
            assert resp.headers["Content-Type"].startswith(ctype), path
    assert http_json(worker.url + "/static/nope.js")[0] == 404

    started = time.monotonic()
    browser.get(worker.url + "/")
    wait_for(lambda: len(browser.execute_script(ROWS_JS)) == STORES, 30, interval=0.2,
             what="the table's rows")
    print(f"\npage: table filled {time.monotonic() - started:.1f} s after the page was asked for")

    # Its numbers are the API's (retried: a window may roll over between the two reads).
    def same_as_api() -> bool:
        return browser.execute_script(ROWS_JS) == api_rows(worker.url)

    wait_for(same_as_api, 15, interval=0.5, what="the page's table equal to /api/stores")
    row = browser.execute_script(ROWS_JS)["s-0000"]
    text = browser.find_element("css selector",
                                'tr[data-store="s-0000"] td[data-key="tot_revenue"]').text
    assert text == f"¥{int(row['tot_revenue']):,}"  # JPY: no decimals, grouped
    assert page_state(browser, "state.stats.top") >= 1
    assert page_state(browser, "state.stats.polls") == 0
    assert "streaming" in browser.find_element("id", "connection").text

    # The chosen store (the busiest, by default): figures and its line chart over the range.
    selected = page_state(browser, "state.selected")
    assert selected == "s-0000"
    status, one = http_json(f"{worker.url}/api/stores/{selected}")
    assert status == 200
    wait_for(lambda: attr(browser, '#detail-figures [data-key="tot_orders"]', "data-value")
             == str(one["totals"]["orders"]), 10, interval=0.2, what="the store's figures")
    wait_for(lambda: int(attr(browser, "#line", "data-points") or 0) > 0, 15, interval=0.2,
             what="the line chart's data")
    wait_for(lambda: browser.execute_script(PIXELS_JS, "#line", *BLUE) > 50, 10, interval=0.2,
             what="the orders line drawn")
    assert browser.execute_script(PIXELS_JS, "#line", *GREEN) > 50  # revenue line
    wait_for(lambda: browser.execute_script(
        "return document.querySelectorAll('#rows td.spark canvas').length") > 0, 20,
        interval=0.3, what="sparklines of the visible rows")

    # New orders arrive: the numbers move, the bars of the current window are drawn.
    before = page_orders(browser)
    gen = start_generator(deployment, "--rate", "40", "--duration", "30")
    try:
        wait_for(lambda: page_orders(browser) > before, 30, interval=0.3,
                 what="the page's totals to grow")
        first_move = page_orders(browser)
        wait_for(lambda: page_orders(browser) > first_move, 15, interval=0.3,
                 what="the page's totals to keep growing")
        wait_for(lambda: int(attr(browser, "#bar-orders", "data-bars") or 0) > 0, 15,
                 interval=0.3, what="bars of the current window")
        wait_for(lambda: browser.execute_script(PIXELS_JS, "#bar-orders", *BLUE) > 200, 10,
                 interval=0.3, what="orders bars drawn")
        wait_for(lambda: browser.execute_script(PIXELS_JS, "#bar-revenue", *GREEN) > 200, 10,
                 interval=0.3, what="revenue bars drawn")
        wait_for(lambda: attr(browser, "#freshness", "data-state") == "ok", 15, interval=0.3,
                 what="fresh data")
        # The cluster panel: the worker, its 8 partitions and the invalid events it saw.
        wait_for(lambda: text_of(browser, '#cluster-summary [data-key="invalid"] b')
                 == f"{truth['invalid']:,}", 10, interval=0.3, what="invalid count in the panel")
        assert len(browser.find_elements("css selector", "#partitions tbody tr")) == 8
        time.sleep(1.5)  # let the charts settle for the picture
        shot = screenshot(browser, tmp_path, "page-live.png")
        assert shot.stat().st_size > 10_000
        errors = console_errors(browser)
        assert not errors, errors

        # Sorting and search work on the same rows.
        browser.find_element("css selector", 'th[data-sort="store"]').click()
        ids = [tr.get_attribute("data-store")
               for tr in browser.find_elements("css selector", "#rows tr")]
        assert ids == sorted(ids)
        box = browser.find_element("id", "search")
        box.send_keys("s-0001")
        wait_for(lambda: [tr.get_attribute("data-store") for tr in browser.find_elements(
            "css selector", "#rows tr")] == ["s-0001"], 5, interval=0.2, what="search")
        box.send_keys("\n")  # Enter opens the store
        wait_for(lambda: page_state(browser, "state.store && state.store.store_id")
                 == "s-0001", 10, interval=0.2, what="the searched store opened")

        # The polling fallback shows the same and follows new orders too.
        browser.get(worker.url + "/?transport=poll")
        wait_for(lambda: len(browser.execute_script(ROWS_JS)) == STORES, 30, interval=0.2,
                 what="the table when polling")
        polled = page_orders(browser)
        wait_for(lambda: page_orders(browser) > polled, 20, interval=0.3,
                 what="the polled totals to grow")
        assert page_state(browser, "state.stats.polls") > 1
        assert "polling" in browser.find_element("id", "connection").text
        assert not console_errors(browser)
    finally:
        stop_generator(gen)


def test_page_switches_to_another_worker_when_its_worker_dies(
        deployment: Deployment, browser: Any, tmp_path: Path):
    first = deployment.worker(1, "127.0.0.1")
    second = deployment.worker(2, "127.0.0.2")
    first.wait_ready()
    second.wait_ready()

    def two_workers_own_everything() -> bool:
        status, cluster = http_json(first.url + "/api/cluster", timeout=3)
        return status == 200 and cluster["complete"] and len(
            {p["active"] for p in cluster["partitions"].values()}) == 2

    wait_for(two_workers_own_everything, 60, interval=0.3, what="partitions on two workers")
    gen = start_generator(deployment, "--rate", "40", "--duration", "90")
    try:
        browser.get(first.url + "/")
        wait_for(lambda: len(browser.execute_script(ROWS_JS)) > 0, 30, interval=0.2,
                 what="the table's rows")
        wait_for(lambda: len(browser.find_elements("css selector", "#workers tbody tr")) == 2,
                 20, interval=0.2, what="both workers in the cluster panel")
        first.kill()
        killed_at = time.monotonic()
        wait_for(lambda: browser.current_url.startswith(second.url + "/"), 30, interval=0.2,
                 what="the page to switch to the other worker")
        switched_s = time.monotonic() - killed_at
        notice = browser.find_element("id", "notice").text
        assert f"The worker at {first.url} stopped answering" in notice, notice
        assert second.url in notice
        # It keeps updating once the surviving worker took the partitions over.
        wait_for(lambda: page_state(browser, "state.top && state.top.complete"), 60,
                 interval=0.3, what="complete numbers on the other worker")
        orders = page_orders(browser)
        wait_for(lambda: page_orders(browser) > orders, 60, interval=0.5,
                 what="the page to keep updating after the switch")
        updating_s = time.monotonic() - killed_at
        print(f"\nfailover: page on the other worker {switched_s:.1f} s after kill -9, "
              f"updating again {updating_s:.1f} s after it")
        assert "streaming" in browser.find_element("id", "connection").text
        time.sleep(1.5)
        screenshot(browser, tmp_path, "page-after-failover.png")
    finally:
        stop_generator(gen)
