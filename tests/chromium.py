"""Headless Chromium (Debian's package; .ci/run installs it) driven through its DevTools protocol, for the
explorer's tests: open a page as a file, send real input events (mouse, pen and touch strokes, clicks,
slider drags, keys), read the page's state, take screenshots. Standard library only: the protocol runs over
the pipe Chromium opens with --remote-debugging-pipe (it reads commands on fd 3 and writes replies
and events on fd 4, each message JSON ended by a NUL byte), so no port and no websocket.
"""
from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")   # Debian puts it in /usr/bin
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe"]
TIMEOUT = 120.0     # seconds for one reply: the faces page parses ~12 MB of JSON on a busy machine


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM} (Debian's chromium package; .ci/run installs it)")


class Page:
    """One tab of a headless Chromium, and the protocol calls the tests use."""

    def __init__(self, size: tuple[int, int]) -> None:
        self._profile = tempfile.TemporaryDirectory()                # a fresh profile every time
        to_browser, self._in = os.pipe()                             # we write commands, it reads fd 3
        self._out, from_browser = os.pipe()                          # it writes fd 4, we read
        def fds():                                                   # in the child: the pipes as fds 3 and 4
            a, b = os.dup(to_browser), os.dup(from_browser)          # (dup2 marks them inheritable)
            os.dup2(a, 3)
            os.dup2(b, 4)
        self._proc = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={self._profile.name}", "about:blank"],
                                      preexec_fn=fds, close_fds=False, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id, self.events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank", session=False)["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True, session=False)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable")
        self.call("Emulation.setDeviceMetricsOverride", width=size[0], height=size[1], deviceScaleFactor=1, mobile=False)

    # -- the protocol ------------------------------------------------------------------------------------------
    def call(self, method: str, session: bool = True, **params) -> dict:
        """Send one command and return its result; events that arrive meanwhile go to self.events."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params}
        if session:
            message["sessionId"] = self._session
        os.write(self._in, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._next(TIMEOUT)
            if reply.get("id") == self._id:
                assert "error" not in reply, f"{method}: {reply['error']}"
                return reply.get("result", {})
            self.events.append(reply)

    def _next(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            assert left > 0 and select.select([self._out], [], [], left)[0], "chromium did not answer"
            chunk = os.read(self._out, 1 << 20)
            assert chunk, "chromium closed the pipe"
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def _wait_event(self, method: str) -> dict:
        for i, event in enumerate(self.events):
            if event.get("method") == method:
                return self.events.pop(i)
        while True:
            event = self._next(TIMEOUT)
            if event.get("method") == method:
                return event
            self.events.append(event)

    def errors(self) -> list[str]:
        """Script exceptions and console errors seen so far (the CSP's refusals are console errors)."""
        found = [e["params"]["exceptionDetails"].get("exception", {}).get("description", str(e["params"]))
                 for e in self.events if e.get("method") == "Runtime.exceptionThrown"]
        found += [e["params"]["entry"]["text"] for e in self.events
                  if e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error"]
        found += [" ".join(str(a.get("value", a.get("description"))) for a in e["params"]["args"])
                  for e in self.events if e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
        return found

    # -- what the tests do -------------------------------------------------------------------------------------
    def open(self, page: Path) -> None:
        """Load the page from its file:// URL; fail on any script error."""
        self.call("Page.navigate", url=page.resolve().as_uri())
        self._wait_event("Page.loadEventFired")
        assert not self.errors(), self.errors()
        assert not self.evaluate("document.getElementById('error').textContent")

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression in the page (a promise is awaited)."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def state(self) -> dict:
        """explorer.js's explorerState() after the pending frames and timers have run."""
        self.evaluate("new Promise((done) => requestAnimationFrame(() => setTimeout(done, 0)))")
        return self.evaluate("explorerState()")

    def wait_for(self, expression: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while not self.evaluate(expression):
            assert time.monotonic() < deadline, f"waited {timeout} s for {expression}"
            time.sleep(0.05)

    def rect(self, selector: str, scroll: bool = True) -> dict:
        """{x, y, width, height} of an element in the viewport (scrolled into view first, if asked)."""
        return self.evaluate(f"(() => {{ const e = document.querySelector({json.dumps(selector)}); "
                             f"if ({json.dumps(scroll)}) e.scrollIntoView({{block: 'nearest'}}); "
                             "const r = e.getBoundingClientRect(); "
                             "return {x: r.x, y: r.y, width: r.width, height: r.height}; })()")

    def _mouse(self, kind: str, x: float, y: float, pointer: str = "mouse", down: bool = True) -> None:
        """One mouse (or pen) event; down: the left button (the pen's tip) is pressed during it."""
        self.call("Input.dispatchMouseEvent", type=kind, x=x, y=y, pointerType=pointer, buttons=int(down),
                  button="left" if down or kind == "mouseReleased" else "none", clickCount=int(kind != "mouseMoved"))

    def click(self, selector: str, at: tuple[float, float] = (0.5, 0.5)) -> None:
        """Press and release the left button at a fraction (across, down) of the element's box."""
        r = self.rect(selector)
        x, y = r["x"] + at[0] * r["width"], r["y"] + at[1] * r["height"]
        self._mouse("mouseMoved", x, y, down=False)
        self._mouse("mousePressed", x, y)
        self._mouse("mouseReleased", x, y, down=False)

    def stroke(self, selector: str, points: list[tuple[float, float]], pointer: str = "mouse") -> None:
        """One stroke through points given as fractions of the element's box: a mouse or pen (pressed,
        moved, released) or a finger (touchStart, touchMove, touchEnd)."""
        r = self.rect(selector)
        xy = [(r["x"] + px * r["width"], r["y"] + py * r["height"]) for px, py in points]
        if pointer == "touch":
            for kind, (x, y) in zip(["touchStart"] + ["touchMove"] * (len(xy) - 1), xy):
                self.call("Input.dispatchTouchEvent", type=kind, touchPoints=[{"x": x, "y": y, "id": 1}])
            self.call("Input.dispatchTouchEvent", type="touchEnd", touchPoints=[])
            return
        self._mouse("mouseMoved", *xy[0], pointer=pointer, down=False)
        self._mouse("mousePressed", *xy[0], pointer=pointer)
        for x, y in xy[1:]:
            self._mouse("mouseMoved", x, y, pointer=pointer)
        self._mouse("mouseReleased", *xy[-1], pointer=pointer, down=False)

    def drag(self, selector: str, start: float, end: float, steps: int = 8) -> None:
        """Drag across a slider (or any element) from fraction start to fraction end of its width."""
        self.stroke(selector, [(start + (end - start) * k / steps, 0.5) for k in range(steps + 1)])

    def press(self, selector: str, key: str) -> None:
        """Focus an element (as the Tab key would) and press one key on it: "ArrowUp" or "ArrowDown"."""
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        code = {"ArrowUp": 38, "ArrowDown": 40}[key]
        for kind in ("keyDown", "keyUp"):
            self.call("Input.dispatchKeyEvent", type=kind, key=key, code=key, windowsVirtualKeyCode=code)

    def hover(self, selector: str, at: tuple[float, float]) -> None:
        r = self.rect(selector)
        self._mouse("mouseMoved", r["x"] + at[0] * r["width"], r["y"] + at[1] * r["height"], down=False)

    def screenshot(self, png: Path) -> Path:
        """A PNG of the viewport as the browser draws it."""
        png.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return png

    def close(self) -> None:
        try:
            self.call("Browser.close", session=False)
            self._proc.wait(timeout=30)
        except (AssertionError, OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self._proc.wait()
        finally:
            os.close(self._in)
            os.close(self._out)
            self._profile.cleanup()


@contextmanager
def chromium(page: Path | None = None, size: tuple[int, int] = (1200, 900)) -> Iterator[Page]:
    """A headless Chromium tab of ``size`` (CSS pixels, scale 1), with ``page`` opened in it."""
    require_chromium()
    tab = Page(size)
    try:
        if page is not None:
            tab.open(page)
        yield tab
    finally:
        tab.close()
