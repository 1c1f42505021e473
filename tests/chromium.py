"""Headless Chromium over the DevTools protocol, with the standard library only: the browser
reads commands on file descriptor 3 and answers on 4 (`--remote-debugging-pipe`), one JSON
message per NUL-terminated line. Used by tests/test_built_book.py (what a reader's browser
shows on every page of the built book) and by scripts/screenshots:

    python tests/chromium.py OUT_DIR [PAGE.html ...]   # full-page PNGs (default: _build/html/*.html)
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-pipe"]
# Offline and deterministic: every host but this machine's fails at once (the pages load
# MathJax and thebe from CDNs; math then stays as TeX, which the checks do not need).
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"]
WIDTH, HEIGHT = 1280, 900

# What a reader sees, measured in the page once its images have loaded or failed.
CHECK_JS = r"""
(async () => {
  const imgs = [...document.querySelectorAll('.cell_output img, figure img')];
  imgs.forEach(i => { i.loading = 'eager'; });
  await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => {
    i.addEventListener('load', r); i.addEventListener('error', r); setTimeout(r, 10000); })));
  const outputs = [...document.querySelectorAll('.cell_output')];
  const lines = outputs.flatMap(o => o.innerText.split('\n')).map(l => l.trim());
  return JSON.stringify({
    title: document.title,
    tables: document.querySelectorAll('.cell_output table').length,
    images: imgs.map(i => ({src: i.getAttribute('src'), width: i.naturalWidth, height: i.naturalHeight,
                          shown_width: i.width})),
    pipe_lines: lines.filter(l => l.startsWith('|') && l.includes('|---')),
    raw_math: lines.filter(l => /\$[^$\s][^$]*\$/.test(l)),
    errors: [...document.querySelectorAll('.cell_output .traceback, .cell_output .stderr')]
      .map(e => e.innerText.slice(0, 300)),
  });
})()
"""
# Waits (10 s at most) for MathJax to typeset, where the page could load it.
MATHJAX_JS = """
(async () => {
  const ready = window.MathJax && MathJax.startup && MathJax.startup.promise;
  if (ready) await Promise.race([ready, new Promise(r => setTimeout(r, 10000))]);
  return Boolean(ready);
})()
"""


def find_chromium() -> str | None:
    """The browser's executable ($CHROMIUM, else chromium / chromium-browser on PATH)."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    """One headless browser and one tab; `open(path)` loads a page, `check()` and
    `screenshot(png)` look at it. Use as a context manager."""

    def __init__(self, executable: str | None = None, offline: bool = True, timeout: float = 60):
        executable = executable or find_chromium()
        if executable is None:
            raise FileNotFoundError("no chromium on PATH (Debian: apt-get install chromium)")
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="gpm-chromium-")  # a new, empty user-data-dir
        to_browser, self._cmd = os.pipe()
        self._events, from_browser = os.pipe()
        # above 9, so that moving them to 3 and 4 below never overwrites one with the other
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser, from_browser)]
        os.close(to_browser), os.close(from_browser)
        to_browser, from_browser = high
        args = [executable, *FLAGS, *(OFFLINE if offline else []), f"--user-data-dir={self.profile}",
                f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
        # the browser expects the pipe on fds 3 (commands) and 4 (answers): bash moves them there
        shell = f'exec "$@" 3<&{to_browser} 4>&{from_browser} {to_browser}<&- {from_browser}>&-'
        self.proc = subprocess.Popen(["bash", "-c", shell, "chromium", *args], pass_fds=(to_browser, from_browser),
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._id = 0
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Page.enable", session=True)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=True)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self._cmd, self._events):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise TimeoutError("chromium did not answer in time")
            chunk = os.read(self._events, 1 << 20)
            if not chunk:
                raise RuntimeError(f"chromium exited (code {self.proc.poll()})")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: bool = False) -> dict:
        """Send one command and return its result (events that arrive meanwhile are dropped)."""
        self._id += 1
        message = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._cmd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + self.timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def open(self, page: Path) -> None:
        """Load `page` and wait for its load event."""
        self.send("Page.navigate", {"url": Path(page).resolve().as_uri()}, session=True)
        deadline = time.monotonic() + self.timeout
        while True:
            event = self._read_message(deadline)
            if event.get("method") == "Page.loadEventFired" and event.get("sessionId") == self.session:
                return

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def check(self) -> dict:
        """What the open page shows: tables, images (natural size), raw pipes or math, errors."""
        return json.loads(self.evaluate(CHECK_JS))

    def screenshot(self, png: Path) -> None:
        """A full-page PNG of the open page."""
        self.evaluate(CHECK_JS)  # waits for the images
        self.evaluate(MATHJAX_JS)
        size = self.send("Page.getLayoutMetrics", session=True)["cssContentSize"]
        height = min(int(size["height"]), 30000)
        # a viewport as tall as the page: capturing beyond a short viewport shifts the theme's
        # centred layout sideways in the picture
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=True)
        try:
            data = self.send("Page.captureScreenshot", {"format": "png"}, session=True)["data"]
        finally:
            self.send("Emulation.setDeviceMetricsOverride",
                      {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False}, session=True)
        Path(png).write_bytes(base64.b64decode(data))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.strip().splitlines()[-1].strip())
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    pages = [Path(p) for p in argv[1:]] or sorted(Path("_build/html").glob("*.html"))
    # online where the network allows, so that MathJax typesets the math in the screenshots
    with Chromium(offline=os.environ.get("GPM_SCREENSHOTS_OFFLINE", "") not in ("", "0")) as browser:
        for page in pages:
            browser.open(page)
            browser.screenshot(out / f"{page.stem}.png")
            print(f"{out / page.stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
