"""A one-line progress bar on stderr (redrawn at most ten times a second).

No dependency: the bench prints one bar per row, and a finished row leaves one line.
When stderr is not a terminal only the finished lines are written, so logs stay clean.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

WIDTH = 30
REDRAW_S = 0.1


class Bar:
    def __init__(self, label: str, total: int, stream: TextIO | None = None) -> None:
        self.label = label
        self.total = max(1, total)
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty()
        self.started = time.monotonic()
        self._drawn = 0.0
        self.done = 0

    def update(self, done: int) -> None:
        self.done = done
        now = time.monotonic()
        if self.live and now - self._drawn >= REDRAW_S:
            self._drawn = now
            self.stream.write("\r" + self.line())
            self.stream.flush()

    def line(self) -> str:
        filled = min(WIDTH, WIDTH * self.done // self.total)
        elapsed = time.monotonic() - self.started
        bar = "#" * filled + "-" * (WIDTH - filled)
        return f"{self.label:<44} [{bar}] {self.done:>7}/{self.total:<7} {elapsed:6.1f}s"

    def finish(self, note: str = "") -> None:
        end = "\r" if self.live else ""
        self.stream.write(f"{end}{self.line()} {note}\n")
        self.stream.flush()
