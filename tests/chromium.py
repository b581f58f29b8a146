"""Headless Chromium for the explorer's tests (Debian's package; .ci/run installs it): open a page as a
file, read back what its scripts wrote, take a screenshot. Standard library only: the browser is run
once per page load with --dump-dom or --screenshot."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = Path(shutil.which("chromium") or "/usr/bin/chromium")   # Debian puts it in /usr/bin
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=20000"]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"no {CHROMIUM} (Debian's chromium package; .ci/run installs it)")


def _run(url: str, *extra: str) -> str:
    with tempfile.TemporaryDirectory() as profile:               # a fresh profile every time
        done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, url],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


class _Pres(HTMLParser):
    """The text of every <pre id=...> of a document (script text is not parsed as markup)."""

    def __init__(self) -> None:
        super().__init__()
        self.text: dict[str, str] = {}
        self._id: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "pre":
            self._id = dict(attrs).get("id")
            self.text[self._id] = ""

    def handle_endtag(self, tag):
        if tag == "pre":
            self._id = None

    def handle_data(self, data):
        if self._id is not None:
            self.text[self._id] += data


def decoded(page: Path, query: str) -> dict:
    """Open page?query as a file; the JSON the page wrote into <pre id="decoded-json"> (z, shape,
    pixels). A script error on the page (<pre id="error">) fails the test with its message."""
    parser = _Pres()
    parser.feed(_run(page.resolve().as_uri() + "?" + query, "--dump-dom"))
    assert not parser.text.get("error"), parser.text["error"]
    assert parser.text.get("decoded-json"), "the page wrote no decoded image"
    return json.loads(parser.text["decoded-json"])


def screenshot(page: Path, png: Path, query: str = "", size: tuple[int, int] = (1200, 900)) -> Path:
    """A PNG of page?query as the browser draws it in a window of ``size``."""
    url = page.resolve().as_uri() + ("?" + query if query else "")
    _run(url, f"--screenshot={png}", f"--window-size={size[0]},{size[1]}")
    assert png.is_file(), f"chromium wrote no {png}"
    return png
