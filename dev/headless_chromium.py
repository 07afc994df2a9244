"""Drive Debian's headless Chromium over the DevTools protocol: open a page, watch its requests, screenshot it.

A small client of Chromium's own DevTools protocol (JSON messages over a loopback WebSocket), so
the browser test needs only the ``chromium`` package (``make browser-setup``) and the
``websocket-client`` wheel, no downloaded browser build. The browser gets a new empty profile, a
DevTools port chosen by Chromium itself on 127.0.0.1, and the flags that keep it from calling
home (no background networking, component updates, sync or QUIC); it is stopped also when a
test fails.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def find_chromium() -> str:
    """The Chromium executable on this machine, or an error that says how to install it."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError(
        "chromium is not installed: run `make browser-setup` (as root: apt-get install chromium)"
    )


class Chromium:
    """One headless Chromium with one page, as a context manager."""

    def __init__(
        self, *, width: int = 1280, height: int = 900, timeout: float = 60.0, executable: str | None = None
    ) -> None:
        self.width, self.height, self.timeout = width, height, timeout
        self.executable = executable or find_chromium()
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._proc: subprocess.Popen | None = None
        self._ws = None
        self._profile: Path | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> Chromium:
        import websocket  # websocket-client

        self._profile = Path(tempfile.mkdtemp(prefix="auditlake-chromium-"))
        log = open(self._profile / "chromium.log", "wb")  # noqa: SIM115 - closed with the process
        self._proc = subprocess.Popen(
            [
                self.executable,
                *FLAGS,
                f"--user-data-dir={self._profile / 'profile'}",
                f"--window-size={self.width},{self.height}",
                "about:blank",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        try:
            port = self._devtools_port()
            self._ws = websocket.create_connection(
                self._page_socket(port), timeout=self.timeout, suppress_origin=True
            )
            self.send("Page.enable")
            self.send("Network.enable")
            self.send("Runtime.enable")
            self.send(
                "Emulation.setDeviceMetricsOverride",
                width=self.width,
                height=self.height,
                deviceScaleFactor=1,
                mobile=False,
            )
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._ws is not None:
            try:
                self._ws.close()
            except Exception:  # noqa: BLE001 - the browser may be gone already
                pass
            self._ws = None
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
            self._proc = None
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None

    def _log_tail(self) -> str:
        try:
            return (self._profile / "chromium.log").read_text(errors="replace")[-2000:]  # type: ignore[operator]
        except OSError:
            return ""

    def _devtools_port(self) -> int:
        # Chromium writes the port it picked (port 0 = any free one) into the profile folder.
        marker = self._profile / "profile" / "DevToolsActivePort"  # type: ignore[operator]
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:  # type: ignore[union-attr]
                raise RuntimeError(f"chromium exited with {self._proc.returncode}: {self._log_tail()}")  # type: ignore[union-attr]
            if marker.exists():
                lines = marker.read_text().split()
                if lines:
                    return int(lines[0])
            time.sleep(0.1)
        raise RuntimeError(f"chromium opened no DevTools port in {self.timeout}s: {self._log_tail()}")

    def _page_socket(self, port: int) -> str:
        deadline = time.monotonic() + self.timeout
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=self.timeout) as resp:
                targets = json.load(resp)
            pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
            if pages:
                return pages[0]["webSocketDebuggerUrl"]
            if time.monotonic() > deadline:
                raise RuntimeError("chromium has no page to drive")
            time.sleep(0.1)

    # --- protocol ----------------------------------------------------------------------------
    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call one DevTools method and return its result; events that arrive meanwhile are kept."""
        self._next_id += 1
        msg_id = self._next_id
        self._ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))  # type: ignore[union-attr]
        while True:
            msg = self._receive()
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def _receive(self) -> dict[str, Any]:
        msg = json.loads(self._ws.recv())  # type: ignore[union-attr]
        if "method" in msg:
            self.events.append(msg)
        return msg

    def wait_event(self, method: str, *, after: int = 0) -> dict[str, Any]:
        """The first event ``method`` at or after index ``after`` of the events seen, waiting for it."""
        deadline = time.monotonic() + self.timeout
        while True:
            for event in self.events[after:]:
                if event["method"] == method:
                    return event
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} in {self.timeout}s")
            self._receive()

    # --- what a test needs -------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate to ``url`` and wait for its load event."""
        start = len(self.events)
        result = self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"cannot open {url}: {result['errorText']}")
        self.wait_event("Page.loadEventFired", after=start)

    def requests(self) -> list[str]:
        """URLs of every request the page made so far (the page itself included)."""
        return [
            e["params"]["request"]["url"] for e in self.events if e["method"] == "Network.requestWillBeSent"
        ]

    def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression evaluated in the page."""
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> Path:
        """A PNG of the whole page at the window's width."""
        metrics = self.send("Page.getLayoutMetrics")
        height = int(metrics["cssContentSize"]["height"])
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=max(height, self.height),
            deviceScaleFactor=1,
            mobile=False,
        )
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=self.width,
            height=self.height,
            deviceScaleFactor=1,
            mobile=False,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def pdf(self, path: Path) -> Path:
        """The page printed to PDF with its print styles (A4 landscape, backgrounds on)."""
        data = self.send("Page.printToPDF", printBackground=True, preferCSSPageSize=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path
