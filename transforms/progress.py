"""Progress a person can watch: posts read, texts scored, rate and ETA, every few seconds.

The steps of the job count into one process-wide :data:`PROGRESS` (``add``: a lock and an
add, cheap beside the work counted): the file reader counts posts read, the scoring step
posts matched and, after the model, texts and posts scored. Once :meth:`Progress.configure`
has enabled it in a process, a daemon thread writes one line to stderr every few seconds
while the counts move: on a terminal one line redrawn in place with a bar, otherwise a
new line each time (what a log collects)::

    progress: 41,200 posts read, 3,009 matched | scored 1,310 texts (1,450/3,009 posts, 48%) 45.2 texts/s, ETA 0:34

The rate is measured from the end of the first batch (its texts arrive at once, after the
model load and the batch's own work) to the latest scored text; the ETA is the matched posts
not yet scored at that rate in posts (every matched post is counted before scoring starts:
a shuffle separates the two).

On a cloud runner, where the DoFns run in worker processes, the same figures are Beam
metrics that the runner's console and logs show: counters ``sentiment/texts_scored``,
``sentiment/posts_scored`` and ``read/records``, gauges ``sentiment/texts_per_second`` and
``sentiment/eta_seconds``. A worker writes lines only where the job enabled them (the
scoring step carries the choice to its workers); ``--quiet`` disables them everywhere.
"""

from __future__ import annotations

import sys
import threading
import time
import typing

POSTS_READ = "posts_read"
POSTS_MATCHED = "posts_matched"
TEXTS_SCORED = "texts_scored"
POSTS_SCORED = "posts_scored"
DEFAULT_INTERVAL = 5.0
# Texts scored within this many seconds of the first one belong to the first batch.
_FIRST_BATCH_SECONDS = 0.5


def _clock(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Counts of a run and the reporter thread that prints them.

    Args:
        interval: Seconds between lines.
        clock: Monotonic time source (a test passes its own).
    """

    def __init__(self, interval: float = DEFAULT_INTERVAL, clock: typing.Callable[[], float] = time.monotonic):
        self._lock = threading.Lock()
        self._clock = clock
        self._interval = interval
        self._counts: dict[str, int] = {}
        self._started = clock()
        self._first_scored: float | None = None
        self._base: tuple[float, int, int] | None = None  # end of the first batch
        self._last_scored = 0.0
        self._enabled = False
        self._stream: typing.TextIO | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self._last_printed: tuple[int, ...] | None = None
        self._drawn = False

    @property
    def enabled(self) -> bool:
        """Whether lines are being written in this process."""
        return self._enabled

    def configure(self, enabled: bool, interval: float | None = None,
                  stream: typing.TextIO | None = None) -> None:
        """Starts (or stops) reporting for a new run; the counts start from zero.

        Args:
            enabled: Write progress lines (False: ``--quiet``).
            interval: Seconds between lines (default: unchanged, 5 s at first).
            stream: Where lines go (default: stderr at the time of each write).
        """
        with self._lock:
            self._counts = {}
            self._started = self._clock()
            self._first_scored = None
            self._base = None
            self._last_printed = None
            self._drawn = False
            self._enabled = bool(enabled)
            self._stream = stream
            if interval is not None:
                self._interval = float(interval)
            start = self._enabled and (self._thread is None or not self._thread.is_alive())
            if start:
                self._thread = threading.Thread(target=self._run, name="progress", daemon=True)
        self._wake.set()  # a sleeping reporter picks up the new interval
        if start:
            self._thread.start()

    def enable_once(self, enabled: bool) -> None:
        """Enables reporting in a worker process unless this process already chose (the launcher did)."""
        if self._thread is None and not self._enabled and enabled:
            self.configure(True)

    def add(self, name: str, n: int = 1) -> None:
        """Adds ``n`` to the count ``name``."""
        with self._lock:
            count = self._counts[name] = self._counts.get(name, 0) + n
            if name in (TEXTS_SCORED, POSTS_SCORED):
                now = self._last_scored = self._clock()
                if self._first_scored is None:
                    self._first_scored = now
                if now - self._first_scored <= _FIRST_BATCH_SECONDS:
                    self._base = (now, self._counts.get(TEXTS_SCORED, 0), self._counts.get(POSTS_SCORED, 0))
            done = name == POSTS_SCORED and count >= self._counts.get(POSTS_MATCHED, 0) > 0
        if done and self._enabled:
            self.report(final=True)  # scoring is over: say so before the job's own output follows

    def snapshot(self) -> dict[str, float]:
        """The counts, and (once scoring has started) ``texts_per_second`` and ``eta_seconds``."""
        with self._lock:
            now = self._clock()
            out: dict[str, float] = {k: self._counts.get(k, 0)
                                            for k in (POSTS_READ, POSTS_MATCHED, TEXTS_SCORED, POSTS_SCORED)}
            out["elapsed_seconds"] = now - self._started
            if self._base is not None and self._last_scored > self._base[0]:
                seconds = self._last_scored - self._base[0]
                out["texts_per_second"] = (out[TEXTS_SCORED] - self._base[1]) / seconds
                posts_rate = (out[POSTS_SCORED] - self._base[2]) / seconds
                remaining = max(0, out[POSTS_MATCHED] - out[POSTS_SCORED])
                if posts_rate > 0:
                    out["eta_seconds"] = remaining / posts_rate
        return out

    def line(self, bar_width: int = 0) -> str:
        """The progress line (with a bar of ``bar_width`` characters when > 0)."""
        s = self.snapshot()
        parts = [f"progress: {s[POSTS_READ]:,} posts read"]
        if s[POSTS_MATCHED]:
            parts[0] += f", {s[POSTS_MATCHED]:,} matched"
        if s[TEXTS_SCORED]:
            matched = s[POSTS_MATCHED]
            share = s[POSTS_SCORED] / matched if matched else 0.0
            scored = f"scored {s[TEXTS_SCORED]:,} texts ({s[POSTS_SCORED]:,}/{matched:,} posts, {share:.0%})"
            if "texts_per_second" in s:
                scored += f" {s['texts_per_second']:.1f} texts/s"
            if "eta_seconds" in s:
                scored += f", ETA {_clock(s['eta_seconds'])}"
            if bar_width > 0:
                filled = int(round(min(1.0, share) * bar_width))
                scored = f"[{'#' * filled}{'.' * (bar_width - filled)}] " + scored
            parts.append(scored)
        parts.append(f"elapsed {_clock(s['elapsed_seconds'])}")
        return " | ".join(parts)

    def report(self, final: bool = False) -> bool:
        """Writes a line now if the counts moved since the last one; returns whether it wrote.

        Args:
            final: The last line of the scoring stage: on a terminal, end the redrawn line.
        """
        with self._lock:
            key = tuple(self._counts.get(k, 0) for k in (POSTS_READ, POSTS_MATCHED, TEXTS_SCORED, POSTS_SCORED))
            if not self._enabled or not any(key) or key == self._last_printed:
                return False
            self._last_printed = key
            stream = self._stream or sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        try:
            if tty:
                stream.write("\r" + self.line(bar_width=20) + "\x1b[K" + ("\n" if final else ""))
                self._drawn = not final
            else:
                stream.write(self.line() + "\n")
            stream.flush()
        except (OSError, ValueError):  # a closed stream must not take the job down
            return False
        return True

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            self._wake.clear()
            if not self._enabled:
                if self._drawn:
                    self._drawn = False
                    (self._stream or sys.stderr).write("\n")
                return
            self.report()


PROGRESS = Progress()
