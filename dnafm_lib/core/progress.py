"""Progress lines for long jobs: work done of total, rate and ETA, at a bounded cadence.

A Snakemake job's log (its stderr) or a one-shot command's terminal would otherwise stay silent
for an hour: a user tailing it cannot tell a working job from a hung one. ``Progress`` writes
one line when ``every_s`` seconds have passed since its last line or the work crosses the next
``every_fraction`` of the total (at least ``min_interval_s`` after the last line), and once at
the end, e.g.::

    scoring: 420,000/1,000,000 bases (42%), 1,042 bases/s, elapsed 0:06:43, ETA 0:09:17

A job shorter than ``min_interval_s`` writes nothing. ``$DNAFM_PROGRESS_SECONDS`` sets the time
cadence (default 30). Lines go to stderr (or to ``write``, e.g. a progress bar's), never into
an output file. The clock is injectable, for tests.
"""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

EVERY_S_VARIABLE = "DNAFM_PROGRESS_SECONDS"
DEFAULT_EVERY_S = 30.0


def every_seconds() -> float:
    """The time cadence: $DNAFM_PROGRESS_SECONDS (0: a line at every update), else 30 s."""
    text = os.environ.get(EVERY_S_VARIABLE, "")
    try:
        return max(0.0, float(text)) if text else DEFAULT_EVERY_S
    except ValueError:
        return DEFAULT_EVERY_S  # a log cadence is not worth failing a job over


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (hours unbounded)."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _format_rate(rate: float) -> str:
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


class Progress:
    """Counts work toward ``total`` and reports it (see the module docstring).

    ``done`` is where the work starts (a resumed run); the rate counts only what this process did.
    Nothing runs in the background: lines are due only when ``update``/``advance`` is called.
    """

    def __init__(
        self,
        label: str,
        total: int,
        *,
        unit: str = "items",
        done: int = 0,
        every_s: float | None = None,
        every_fraction: float = 0.1,
        min_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        write: Callable[[str], None] | None = None,
    ):
        self.label = label
        self.total = max(0, int(total))
        self.unit = unit
        self.done = int(done)
        self.every_s = every_seconds() if every_s is None else every_s
        self.every_fraction = every_fraction
        self.min_interval_s = min_interval_s
        self._clock = clock
        self._write_line = write
        self._started = self._last_line = clock()
        self._started_done = self.done
        self._last_step = self._step_of(self.done)
        self._written_done: int | None = None  # the count the last line showed
        self._finished = False

    def _step_of(self, done: int) -> int:
        """Which ``every_fraction`` of the total ``done`` has reached."""
        if not self.total or not self.every_fraction:
            return 0
        return math.floor(done / self.total / self.every_fraction + 1e-9)

    def advance(self, amount: int = 1) -> None:
        self.update(self.done + amount)

    def update(self, done: int) -> None:
        """The work done so far; writes a line when one is due."""
        if self._finished:  # a late update from a reader thread
            return
        self.done = min(int(done), self.total) if self.total else int(done)
        now = self._clock()
        step = self._step_of(self.done)
        since = now - self._last_line
        # A tenth crossed speaks unless a line was just written: a quick job's tenths would be noise.
        if since >= self.every_s or (step > self._last_step and since >= self.min_interval_s):
            self._last_step = step
            self._write(now)

    def finish(self) -> None:
        """All work done: the last line (once), unless the last line already said so or the job
        was too short to need any (no line yet and under ``min_interval_s``: bad input stays one line)."""
        if self._finished:
            return
        self._finished = True
        self.done = max(self.done, self.total)
        now = self._clock()
        if self._written_done is None and now - self._started < self.min_interval_s:
            return
        if self._written_done != self.done:
            self._write(now)

    def track(self, iterable: Iterable[T]) -> Iterator[T]:
        """Yield ``iterable``'s items, counting one done each time the next is asked for; finish at its end."""
        for item in iterable:
            yield item
            self.advance()
        self.finish()

    def line(self, now: float) -> str:
        elapsed = max(now - self._started, 0.0)
        rate = (self.done - self._started_done) / elapsed if elapsed > 0 else 0.0
        percent = 100 * self.done // self.total if self.total else 100  # floored: 100% only when done
        remaining = self.total - self.done
        if remaining <= 0:
            eta = "0:00:00"
        elif rate > 0:
            eta = format_duration(remaining / rate)
        else:
            eta = "unknown"
        return (
            f"{self.label}: {self.done:,}/{self.total:,} {self.unit} ({percent}%), {_format_rate(rate)} "
            f"{self.unit}/s, elapsed {format_duration(elapsed)}, ETA {eta}"
        )

    def _write(self, now: float) -> None:
        self._last_line, self._written_done = now, self.done
        if self._write_line is not None:
            self._write_line(self.line(now))
        else:  # sys.stderr looked up now: a redirected stderr is honoured
            print(self.line(now), file=sys.stderr, flush=True)
