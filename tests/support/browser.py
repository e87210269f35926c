"""Headless Chromium (Debian's ``chromium``, from hack/install-system.sh) driven over the
DevTools protocol with plain aiohttp: one page, opened, evaluated, clicked and photographed.

Its microphone can be a WAV file, which Chromium plays in a loop, and it grants the page the
microphone without asking. Pages need a secure context for the microphone: http://127.0.0.1 is
one.

    async with Browser(fake_microphone=wav) as browser:
        await browser.open("http://127.0.0.1:8080/")
        await browser.click("#call")
        phase = await browser.evaluate("window.kubevoxCall.phase")
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp

INSTALL_HINT = "install Debian's chromium with hack/install-system.sh"


class BrowserError(RuntimeError):
    """Chromium did not start, or a command or a script in the page failed."""


def chromium_binary() -> str:
    """The ``chromium`` on PATH; fails naming the script that installs it."""
    binary = shutil.which("chromium")
    if binary is None:
        raise BrowserError(f"chromium is not installed: {INSTALL_HINT}")
    return binary


class Browser:
    """One headless Chromium with a fresh profile and one page. An async context manager:
    leaving it ends the browser (SIGTERM, SIGKILL after ``stop_timeout``) and removes its
    profile."""

    def __init__(
        self,
        *,
        fake_microphone: Path | None = None,
        viewport: tuple[int, int] = (720, 900),
        start_timeout: float = 60.0,
        stop_timeout: float = 10.0,
    ) -> None:
        self.fake_microphone = fake_microphone
        self.viewport = viewport
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._dir: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> Browser:
        try:
            await self._launch()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def _argv(self, profile: Path) -> list[str]:
        argv = [
            chromium_binary(),
            "--headless=new",
            "--no-sandbox",  # as root, and in containers
            "--disable-gpu",
            "--no-first-run",
            "--autoplay-policy=no-user-gesture-required",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",  # Chromium picks; DevToolsActivePort says which
            "--use-fake-ui-for-media-stream",  # grant the microphone without asking
        ]
        if self.fake_microphone is not None:
            argv += [
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={self.fake_microphone}",
            ]
        return [*argv, "about:blank"]

    async def _launch(self) -> None:
        self._dir = Path(tempfile.mkdtemp(prefix="kubevox-chromium-"))
        profile = self._dir / "profile"
        with (self._dir / "chromium.log").open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                *self._argv(profile),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, ended as a whole
            )
        port = await self._devtools_port(profile / "DevToolsActivePort")
        self._http = aiohttp.ClientSession()
        async with self._http.get(f"http://127.0.0.1:{port}/json/list") as resp:
            targets = await resp.json()
        page = next(t for t in targets if t["type"] == "page")
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        # the page's size exactly (--window-size would include the headless window's frame)
        width, height = self.viewport
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width, height=height, deviceScaleFactor=1, mobile=False,
        )  # fmt: skip

    async def _devtools_port(self, active_port: Path) -> int:
        """The port Chromium chose: the first line of DevToolsActivePort, once it is written."""
        assert self._process is not None
        async with asyncio.timeout(self.start_timeout):
            while True:
                if self._process.returncode is not None:
                    raise BrowserError(f"chromium exited while starting:\n{self.log_tail()}")
                with contextlib.suppress(FileNotFoundError, ValueError, IndexError):
                    text = await asyncio.to_thread(active_port.read_text)
                    return int(text.splitlines()[0])
                await asyncio.sleep(0.1)

    def log_tail(self, lines: int = 20) -> str:
        """The end of Chromium's own output (its stderr)."""
        if self._dir is None:
            return ""
        try:
            text = (self._dir / "chromium.log").read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command to the page; its result. Events that arrive meanwhile are
        dropped (nothing here enables a domain that sends them)."""
        if self._ws is None:
            raise BrowserError("the browser is not running")
        async with self._lock:
            ident = next(self._ids)
            await self._ws.send_json({"id": ident, "method": method, "params": params})
            async for message in self._ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                reply = json.loads(message.data)
                if reply.get("id") != ident:
                    continue
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                result: dict[str, Any] = reply["result"]
                return result
        raise BrowserError(f"{method}: the DevTools connection closed\n{self.log_tail()}")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (a promise is awaited), as JSON."""
        reply = await self.send(
            "Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in reply:
            details = reply["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"{expression!r} failed in the page: {text}")
        return reply["result"].get("value")

    async def open(self, url: str, within: float = 30.0) -> None:
        """Navigate to ``url`` and wait until the page and its scripts have loaded."""
        reply = await self.send("Page.navigate", url=url)
        if reply.get("errorText"):
            raise BrowserError(f"{url}: {reply['errorText']}")
        async with asyncio.timeout(within):
            # polling: this driver subscribes to no events (the page's load event among them)
            while await self.evaluate("document.readyState") != "complete":  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """Click the middle of the element, as a mouse would (the page sees a user gesture)."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return null; e.scrollIntoView({block: 'center'});"
            " const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        if box is None:
            raise BrowserError(f"no element matches {selector!r}")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send(
                "Input.dispatchMouseEvent",
                type=kind, x=box["x"], y=box["y"], button="left", clickCount=1,
            )  # fmt: skip

    async def screenshot(self, path: Path) -> Path:
        """The page as it looks now, as a PNG file."""
        reply = await self.send("Page.captureScreenshot", format="png")

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(base64.b64decode(reply["data"]))

        await asyncio.to_thread(write)
        return path

    def _signal(self, signum: signal.Signals) -> None:
        """To Chromium's whole process group (its zygote, renderers and utilities)."""
        assert self._process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signum)

    async def close(self) -> None:
        """End the browser and remove its profile; safe to call twice."""
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        if self._process is not None:
            self._signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self._process.wait(), self.stop_timeout)
            except TimeoutError:
                self._signal(signal.SIGKILL)
                await self._process.wait()
            self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
