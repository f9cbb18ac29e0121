"""Headless Chromium (or Chrome) for the dashboard's tests, driven over its DevTools protocol
(CDP): load a page, evaluate JavaScript in it, take a screenshot. The process runs under the
harness's Program (logs, a session of its own, kill at the end).

The browser is the first of BROWSER_NAMES found on PATH. When none is there, a test that needs
one fails in CI (CI set, as .ci/run has it) and is skipped elsewhere, each time with one sentence
saying how to install one."""

import base64
import itertools
import json
import os
import shutil
import urllib.request

import pytest
import websocket

from tools import harness

# The names Chromium and Chrome go by on Linux distributions and in Google's packages.
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome")
HOW_TO_INSTALL = ("no Chromium or Chrome on PATH (looked for " + ", ".join(BROWSER_NAMES)
                  + "): install one, on Debian `apt-get install chromium` (`make chromium` does "
                  "that as root), on Ubuntu `snap install chromium`, and the dashboard's browser "
                  "test runs")
# What works here as root, without a GPU, and without chromium calling home.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-port=0", "--window-size=1200,1000")
START_TIMEOUT_SEC = 30
CDP_TIMEOUT_SEC = 30


def find_browser(path=None):
    """The first of BROWSER_NAMES on PATH (or `path`); without one the calling test fails in CI
    and is skipped elsewhere, saying how to install one."""
    for name in BROWSER_NAMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    if os.environ.get("CI"):
        pytest.fail(HOW_TO_INSTALL, pytrace=False)
    pytest.skip(HOW_TO_INSTALL)


class Chromium(harness.Program):
    """chromium --headless showing `url`; its own profile in `folder`, its logs there too."""

    def __init__(self, url, folder):
        browser = find_browser()
        profile = folder / "chromium-profile"
        profile.mkdir()
        self._name_logs("chromium", [url], folder)
        self._launch([browser, *FLAGS, f"--user-data-dir={profile}", url])
        # Port 0: chromium picks a free port and writes it into the profile.
        port_file = profile / "DevToolsActivePort"
        harness.wait_until(lambda: self.alive_or_fail() and port_file.exists()
                           and port_file.read_text().strip(), START_TIMEOUT_SEC,
                           "chromium's DevTools port")
        port = port_file.read_text().split()[0]
        page = harness.wait_until(lambda: self.page_target(port, url), START_TIMEOUT_SEC,
                                  f"chromium's tab of {url}")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"],
                                              timeout=CDP_TIMEOUT_SEC, suppress_origin=True)
        self.ids = itertools.count(1)

    def alive_or_fail(self):
        if not self.running():
            raise AssertionError(f"chromium exited (code {self.returncode}): {self.tail()}")
        return True

    @staticmethod
    def page_target(port, url):
        """The page's DevTools target; None while chromium does not answer yet (on a busy
        machine its first answers can take longer than a request's timeout: asked again)."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list",
                                        timeout=5) as answer:
                targets = json.load(answer)
        except (OSError, ValueError):  # refused, timed out, or an answer cut short
            return None
        return next((t for t in targets if t["type"] == "page"
                     and t["url"].startswith(url.split("?")[0])), None)

    def call(self, method, **params):
        """One CDP command; its result (events arriving meanwhile are dropped)."""
        call_id = next(self.ids)
        self.ws.send(json.dumps({"id": call_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == call_id:
                if "error" in message:
                    raise AssertionError(f"chromium: {method} failed: {message['error']}")
                return message["result"]

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page (JSON-serialisable)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"the page threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", format="png")["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self):
        try:
            self.ws.close()
        finally:
            self.kill()
