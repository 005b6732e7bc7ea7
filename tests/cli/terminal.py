"""A command in a pseudo-terminal, its screen rendered by pyte (a VT100 emulator).

What a person would see: the program believes it writes to a real 140x50
terminal (so rich draws its live view), and the test reads the emulated
screen's lines.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import pyte

ROOT = Path(__file__).resolve().parents[2]
BOT_STREAM = [sys.executable, "-m", "bot.data"]


class Terminal:
    """Runs ``argv`` on a pseudo-terminal of ``columns`` x ``lines``."""

    def __init__(self, argv: list[str], env: Mapping[str, str] | None = None,
                 columns: int = 140, lines: int = 50) -> None:
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        full_env = {**os.environ, **(env or {}), "TERM": "xterm-256color",
                    "COLUMNS": str(columns), "LINES": str(lines)}
        full_env.pop("NO_COLOR", None)
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave,
                                        env=full_env, cwd=ROOT, start_new_session=True)
        os.close(slave)
        self._master = master
        self.raw = bytearray()

    def pump(self) -> None:
        """Feed whatever the program wrote so far to the emulator (never blocks)."""
        while select.select([self._master], [], [], 0)[0]:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # the program closed the terminal
                return
            if not data:
                return
            self.raw.extend(data)
            self._stream.feed(data)

    @property
    def text(self) -> str:
        self.pump()
        return "\n".join(line.rstrip() for line in self.screen.display)

    async def wait_for(self, predicate: Callable[[str], bool], timeout: float,
                       what: str) -> str:
        """The screen text once ``predicate(text)`` holds; fails naming ``what`` after timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text
            if predicate(text):
                return text
            if self.process.poll() is not None:
                break
            await asyncio.sleep(0.1)
        raise AssertionError(f"{what} not on screen after {timeout} s; screen:\n{self.text}")

    def close(self) -> int:
        """Stop the program like Ctrl-C would, and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            code = self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.pump()
        os.close(self._master)
        return code
