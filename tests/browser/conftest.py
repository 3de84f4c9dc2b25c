"""Fixtures of the browser tests: one headless Chromium for all, one fastchat server (with
its web and TLS ports) per worker count, and a fresh page per test that must leave no
JavaScript error in the console."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from fastchat.server.runtime import process
from tests.browser import browser
from tests.browser.browser import WebChat

#: CHATHISTORY pages of 20 (the client asks for no more than ISUPPORT CHATHISTORY), so a few
#: dozen lines make several pages; the raw clients send those lines in one burst
SERVER_ARGS = ["--chathistory-max", "20", "--flood-burst", "200"]


@pytest.fixture(scope="session")
def driver() -> Iterator[WebDriver]:
    """One headless Chromium for every browser test (each page starts from clean storage)."""
    why = browser.missing()
    if why:
        pytest.skip(why)
    with browser.chromium() as d:
        yield d


@pytest.fixture(scope="module", params=[1, 4], ids=["1worker", "4workers"])
def web_server(request: pytest.FixtureRequest) -> Iterator[process.ServerProcess]:
    """A real fastchat server with a web port (the web client, WebSocket), the same over TLS
    (https://, wss://; self-signed) and a TLS port for IRC."""
    args = ["--web-port", "-1", "--web-tls-port", "-1", "--tls-port", "-1", *SERVER_ARGS]
    with process.running(args, workers=request.param) as srv:
        assert srv.web_port, "no web port in the server's output:\n" + srv.log_text()
        yield srv


@pytest.fixture
def page(driver: WebDriver, web_server: process.ServerProcess) -> Iterator[WebChat]:
    """The web client, freshly loaded from the server, with no saved session; afterwards the
    page is closed (the client quits) and the console must hold no error."""
    origin = f"http://{web_server.host}:{web_server.web_port}"
    chat = WebChat(driver, origin + "/")
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Storage.clearDataForOrigin", {"origin": origin, "storageTypes": "all"}
    )
    # no drawer animations to wait for
    driver.execute_cdp_cmd(  # type: ignore[attr-defined]
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-reduced-motion", "value": "reduce"}]},
    )
    chat.open()
    browser.console_errors(driver)  # what an earlier test left is its own business
    yield chat
    errors = browser.console_errors(driver)
    chat.leave()
    assert not errors, "JavaScript console errors:\n" + "\n".join(errors)
