"""Progress as whole lines at a steady pace, for output that is not a terminal.

A file, a pipe or a CI log cannot rewrite a line in place, so progress that a terminal shows as
one live line (``\\r``) comes there as whole lines: at most one every ``every`` seconds (and the
last one always), and, while a long step gives no news, the last news again with its age, so that
a log says at least every ``every`` seconds that the work goes on. Written by hand (a lock, an
event and a thread): rich and tqdm redraw a live line, which is what a log must not get.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType


class Heartbeat:
    """Say ``update``'s text when ``every`` seconds have passed since the last line (or when
    ``force``); with ``beat``, a background thread says the last text again, with how long ago
    it was measured, whenever ``every`` seconds pass without a line. ``close`` stops the thread.
    """

    def __init__(self, say: Callable[[str], None], every: float = 15.0, *, beat: bool = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.say, self.every, self.clock = say, every, clock
        self.text: str | None = None
        self.measured = self.last_line = clock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if beat:
            self._thread = threading.Thread(target=self._beat, name="progress-heartbeat",
                                            daemon=True)
            self._thread.start()

    def update(self, text: str, force: bool = False) -> None:
        """New progress; said now if ``force`` or ``every`` seconds passed since the last line."""
        with self._lock:
            now = self.clock()
            self.text, self.measured = text, now
            if force or now - self.last_line >= self.every:
                self.last_line = now
                self.say(text)

    def _beat(self) -> None:
        while not self._stop.wait(min(self.every, 1.0)):
            with self._lock:
                now = self.clock()
                if self.text is None or now - self.last_line < self.every:
                    continue
                self.last_line = now
                self.say(f"{self.text} (still running; {now - self.measured:.0f} s since)")

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> Heartbeat:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["Heartbeat"]
