"""A page as a person sees it: headless Chromium (Debian's `chromium`, installed by `make test`) over the DevTools
protocol, collecting console errors and exceptions, answering DOM queries and taking a screenshot.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


class Page:
    """One tab of a fresh headless browser; `with Page() as page: page.open(url)`."""

    def __init__(self, width: int = 1280, height: int = 900):
        self.size = (width, height)
        self.messages: list[str] = []
        """Console errors, uncaught exceptions and failed loads, as text."""
        self._ids = itertools.count(1)

    def __enter__(self) -> "Page":
        from websockets.sync.client import connect

        binary = find_browser()
        if binary is None:
            raise RuntimeError("no chromium: `make test` installs Debian's package")
        self._profile = tempfile.TemporaryDirectory(prefix="asyncguard-browser-")
        self._process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--hide-scrollbars",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0",
             f"--user-data-dir={self._profile.name}", f"--window-size={self.size[0]},{self.size[1]}", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True,
            env={**os.environ, "TMPDIR": self._profile.name})  # its singleton socket goes with the profile
        port = self._devtools_port()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            target = next(t for t in json.load(response) if t["type"] == "page")
        self._connection = connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self._socket = self._connection.__enter__()
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        return self

    def _devtools_port(self) -> int:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self._process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            if found:
                return int(found.group(1))
            if not line and self._process.poll() is not None:
                break
        raise RuntimeError("chromium did not open its DevTools port")

    def __exit__(self, *exc_info) -> None:
        """Chromium's helpers (renderer, crash handler) outlive its main process for a moment and write into the
        profile: the whole session is stopped, and gone, before the profile is removed."""
        self._connection.__exit__(None, None, None)
        os.killpg(self._process.pid, signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        deadline = time.monotonic() + 5
        while _session_alive(self._process.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _session_alive(self._process.pid):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.stderr.close()
        self._profile.cleanup()

    def call(self, method: str, **params) -> dict:
        """Send one command and wait for its answer, noting the events that arrive meanwhile."""
        ident = next(self._ids)
        self._socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self._socket.recv(timeout=60))
            if message.get("id") == ident:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self._note(message)

    def _note(self, event: dict) -> None:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            self.messages.append("console: " + " ".join(str(a.get("value", a.get("description")))
                                                        for a in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            self.messages.append("exception: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
            self.messages.append(f"log: {params['entry'].get('text')} {params['entry'].get('url', '')}")

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.evaluate("document.readyState") == "complete":
                return
            time.sleep(0.1)
        raise RuntimeError(f"{url} did not finish loading")

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """The whole page, not just the window."""
        height = int(self.evaluate("document.documentElement.scrollHeight"))
        self.call("Emulation.setDeviceMetricsOverride", width=self.size[0], height=min(height, 16000),
                  deviceScaleFactor=1, mobile=False)
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.write_bytes(base64.b64decode(data))
        return path


def _session_alive(session: int) -> bool:
    """Whether any process of the session (process group) `session` is still running."""
    try:
        os.killpg(session, 0)
    except ProcessLookupError:
        return False
    return True
