"""Headless Chromium for tests and benches: Debian's ``/usr/bin/chromium`` driven by Playwright for Python.

Playwright's own browser download (``playwright install``) is never used: it fetches from the internet. Each
:class:`Chromium` starts one browser with a fresh profile directory and the flags that keep it off the
network (no background networking, component updates, sync or QUIC); every page it opens records its
console messages, uncaught errors, dialogs and any request other than the file it was asked to open.

    with Chromium() as chromium:
        page = chromium.open(Path("report.html"), color_scheme="dark")
        assert page.problems == []
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM = "/usr/bin/chromium"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync")


@dataclass
class Opened:
    """A page and what happened while it loaded and ran."""

    page: Any
    """The Playwright page."""
    url: str
    console: list[tuple[str, str]] = field(default_factory=list)
    """(type, text) of every console message."""
    errors: list[str] = field(default_factory=list)
    """Uncaught exceptions in the page."""
    dialogs: list[str] = field(default_factory=list)
    """alert/confirm/prompt messages (dismissed)."""
    requests: list[str] = field(default_factory=list)
    """Every URL requested other than the page itself."""

    @property
    def problems(self) -> list[str]:
        """Console errors and warnings, page errors, dialogs and network requests: a clean page has none."""
        return ([f"console {kind}: {text}" for kind, text in self.console if kind in ("error", "warning")]
                + [f"page error: {e}" for e in self.errors] + [f"dialog: {d}" for d in self.dialogs]
                + [f"request: {r}" for r in self.requests])


class Chromium:
    """One headless Chromium (fresh profile, no network), for as many pages as needed."""

    def __init__(self, executable: str = CHROMIUM) -> None:
        if shutil.which(executable) is None:
            raise RuntimeError(f"{executable}: expected Debian's chromium, got nothing there "
                               "(install it with: apt-get install -y chromium; .ci/run does)")
        self.executable = executable
        self._profile = tempfile.mkdtemp(prefix="evalkit-chromium-")
        self._playwright: Any = None
        self._context: Any = None

    def __enter__(self) -> Chromium:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        # A persistent context is the one way to give Chromium a --user-data-dir of our choosing.
        self._context = self._playwright.chromium.launch_persistent_context(
            self._profile, executable_path=self.executable, headless=True, args=list(FLAGS),
            viewport={"width": 1280, "height": 900}, service_workers="block",
        )
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._context is not None:
                self._context.close()
        finally:
            if self._playwright is not None:
                self._playwright.stop()
            shutil.rmtree(self._profile, ignore_errors=True)

    def open(self, path: Path, *, color_scheme: str = "light", width: int = 1280, height: int = 900,
             wait_until: str = "load") -> Opened:
        """Opens a file in a new tab and waits for ``wait_until`` (``load`` or ``domcontentloaded``)."""
        page = self._context.new_page()
        page.set_viewport_size({"width": width, "height": height})
        page.emulate_media(color_scheme=color_scheme)
        url = path.resolve().as_uri()
        opened = Opened(page, url)
        page.on("console", lambda message: opened.console.append((message.type, message.text)))
        page.on("pageerror", lambda error: opened.errors.append(str(error)))

        def dialog(d: Any) -> None:
            opened.dialogs.append(d.message)
            d.dismiss()

        page.on("dialog", dialog)
        page.on("request", lambda request: None if request.url == url else opened.requests.append(request.url))
        page.goto(url, wait_until=wait_until)
        return opened

    def close(self, opened: Opened) -> None:
        opened.page.close()
