"""The live page of a worker with a read token, in a real headless Chromium: the sign-in form,
then the page streaming (EventSource sends no header: the HttpOnly cookie carries the token),
and no script can read the token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_page import browser, console_errors, page_state, screenshot  # noqa: F401
from tests.http_call import call
from tests.support import Deployment, wait_for

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

READ = "e2e-read-0123456789abcdef"
STORES = 12


def test_sign_in_then_stream(deployment: Deployment, browser: Any, tmp_path: Path):  # noqa: F811
    deployment.generate(tmp_path / "t.json", "--count", "600", "--stores", str(STORES),
                        "--rate", "0", "--span", "600")
    w = deployment.worker(ORDERSTATS_API_READ_TOKEN=READ, ORDERSTATS_API_ADMIN_TOKEN=READ + "x")
    w.wait_ready()
    # Every order counted first: a store the worker has not seen yet answers 404, which the
    # browser logs as a console error.
    wait_for(lambda: call(w.url + "/api/stores?limit=1", headers={
        "Authorization": f"Bearer {READ}"}).json().get("count") == STORES, 60,
        what="every store counted")

    browser.get(w.url + "/?store=s-0001")
    field = browser.find_element("css selector", "input[name=token]")
    console_errors(browser)  # the form's own 401 is expected: flush it
    field.send_keys(READ)
    browser.find_element("css selector", "button[type=submit]").click()

    wait_for(lambda: page_state(browser, "state.stats.top > 0 && state.top !== null"), 60,
             what="the page's first streamed message")
    assert browser.current_url == w.url + "/?store=s-0001"  # back where it was asked for
    assert page_state(browser, "state.transport") == "stream"
    wait_for(lambda: len(browser.find_elements("css selector", "#rows tr")) == STORES, 30,
             what="every store in the table")
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly
    assert browser.get_cookie("orderstats_token")["httpOnly"] is True
    assert browser.get_cookie("orderstats_token")["sameSite"] == "Strict"
    assert not browser.find_element("css selector", "#notice").is_displayed()
    screenshot(browser, tmp_path, "page-auth.png")
    assert console_errors(browser) == []
