"""A real browser for the cluster tests: Debian's Chromium, headless, driven over the DevTools
protocol on a pipe (`--remote-debugging-pipe`: no debugging port anyone could reach).

It runs in the gateway's network namespace, a host on the public network like the laptop with
no route off this machine, and it resolves only the Satellite domain (to the proxy's public
address; every other name fails), with its background services off: it sends no packet
anywhere else.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, Optional

from cluster import on

GATEWAY = "gateway"


class Chromium:
    """One headless Chromium with one page; use as a context manager (it is killed at the end)."""

    def __init__(self, env: Dict[str, str]) -> None:
        self.profile = tempfile.mkdtemp(prefix="galyleo-chromium-")
        to_browser, self._commands = os.pipe()
        self._replies, from_browser = os.pipe()
        rules = f"MAP *.{env['SATELLITE_DOMAIN']} {env['PROXY_PUBLIC_ADDR']}, MAP * ~NOTFOUND"
        argv = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--no-default-browser-check", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--disable-extensions", "--no-pings",
                "--ignore-certificate-errors", f"--host-resolver-rules={rules}", f"--user-data-dir={self.profile}",
                "--window-size=1280,800", "--remote-debugging-pipe", "about:blank"]
        shell = 'exec 3<&"$0" 4>&"$1"; shift; exec "$@"'  # the protocol's fds: commands on 3, replies on 4
        self.proc = subprocess.Popen(on(GATEWAY, ["bash", "-c", shell, str(to_browser), str(from_browser)] + argv),
                                     pass_fds=(to_browser, from_browser), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(to_browser)
        os.close(from_browser)
        self._ids = itertools.count(1)
        self._buffer = b""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """The browser and its tabs are gone, as when a laptop's lid closes for good."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self._commands, self._replies):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def _read(self) -> Dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._replies, 1 << 16)
            if not chunk:
                raise ConnectionError("chromium exited")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, session: Optional[str] = None, **params: Any) -> Dict[str, Any]:
        number = next(self._ids)
        message: Dict[str, Any] = {"id": number, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == number:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def page(self, method: str, **params: Any) -> Dict[str, Any]:
        return self.call(method, self.session, **params)

    def js(self, expression: str) -> Any:
        return self.page("Runtime.evaluate", expression=expression, returnByValue=True).get("result", {}).get("value")

    def wait_for(self, expression: str, what: str, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while not self.js(expression):
            if time.time() > deadline:
                raise AssertionError(f"the page never showed {what} within {timeout} s: {self.js('location.href')}")
            time.sleep(0.5)

    def key(self, key: str, code: str, keycode: int, modifiers: int = 0, text: str = "") -> None:
        self.page("Input.dispatchKeyEvent", type="keyDown", key=key, code=code, windowsVirtualKeyCode=keycode,
                  modifiers=modifiers, **({"text": text} if text else {}))
        self.page("Input.dispatchKeyEvent", type="keyUp", key=key, code=code, windowsVirtualKeyCode=keycode,
                  modifiers=modifiers)

    def type(self, text: str) -> None:
        """Keystrokes, one character at a time, into whatever has the focus (xterm.js reads key events)."""
        for char in text:
            self.page("Input.dispatchKeyEvent", type="keyDown", key=char, text=char, unmodifiedText=char)
            self.page("Input.dispatchKeyEvent", type="keyUp", key=char)
        self.key("Enter", "Enter", 13, text="\r")


def open_vscode_terminal(browser: Chromium, url: str) -> None:
    """Open URL (a -i vscode session's), wait for the workbench, and open a terminal (Ctrl+`)."""
    browser.page("Page.navigate", url=url)
    browser.wait_for("!!document.querySelector('.monaco-workbench .part.editor')", "VS Code's workbench")
    browser.wait_for("document.readyState === 'complete'", "the page loaded")
    browser.key("`", "Backquote", 192, modifiers=2)  # Ctrl+`: View: Toggle Terminal
    browser.wait_for("!!document.querySelector('.xterm-helper-textarea')", "a terminal")


def run_in_terminal(browser: Chromium, command: str) -> None:
    """Type COMMAND and Enter into the terminal (the one open_vscode_terminal opened)."""
    browser.js("document.querySelector('.xterm-helper-textarea').focus()")
    browser.type(command)
