"""The web client's JavaScript unit tests (tests/browser/js/: the IRC parser, the chat state,
the commands, the connection's registration and reconnection), run in headless Chromium from
a static file server over the repository, and in Node too when it is installed."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from selenium.webdriver.remote.webdriver import WebDriver

from tests.browser.browser import console_errors, wait_for

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = ROOT / "tests" / "browser" / "js"
#: fewer than this many tests reported means a module failed to load
MIN_TESTS = 80


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map: ClassVar[dict[str, str]] = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
    }

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def static_url() -> Iterator[str]:
    """The repository over HTTP on a free port (ES modules do not load from file://)."""
    handler = functools.partial(_QuietHandler, directory=str(ROOT))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_js_unit_tests_pass_in_chromium(driver: WebDriver, static_url: str) -> None:
    driver.get(f"{static_url}/tests/browser/js/index.html")
    results = wait_for(
        driver,
        lambda: driver.execute_script("return window.__results || null"),
        "the JavaScript tests to finish",
    )
    errors = console_errors(driver)
    failed = "\n\n".join(f"{f['name']}\n{f['error']}" for f in results["failed"])
    assert not results["failed"], f"JavaScript tests failed:\n{failed}"
    assert results["total"] >= MIN_TESTS, f"only {results['total']} tests ran"
    assert not errors, "console errors:\n" + "\n".join(errors)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_js_unit_tests_pass_in_node() -> None:
    done = subprocess.run(
        ["node", str(JS_TESTS / "run-node.mjs")], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
