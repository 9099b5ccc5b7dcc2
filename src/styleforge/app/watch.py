"""Watching a training job cheaply: its logs read incrementally, its loss plot redrawn only
when new rows have arrived.

The Train tab looks at the watched job every :data:`~styleforge.app.tabs.common.POLL_SECONDS`
while the job trains on the same CPU, so a look must cost next to nothing: a
:class:`LogTail` reads only the bytes appended since the last look (starting over when the
file is rewritten, as a resume does), and :class:`JobWatch` draws the loss plot again only
when there are new rows, and not more often than every :data:`REDRAW_SECONDS`.
"""

from __future__ import annotations

import csv
import io
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from styleforge.fileio import atomic_write, row_step

__all__ = ["REDRAW_SECONDS", "JobWatch", "LogTail", "Watches"]

#: The least time between two drawings of one job's loss plot (a finished job's is drawn at
#: once).
REDRAW_SECONDS = 10.0


class LogTail:
    """The rows of a growing CSV file with a header, read incrementally.

    Each :meth:`read` parses only the whole lines appended since the last one; a file that
    was replaced or shortened (a resume rewrites it) is read again from its start.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: list[dict[str, str]] = []
        self._header: list[str] | None = None
        self._offset = 0
        self._identity: tuple[int, int] | None = None
        self.rewrites = 0  # times the file was read again from its start

    def read(self) -> int:
        """Read what was appended; -> the number of new rows (all of them after a rewrite)."""
        try:
            stat = self.path.stat()
        except OSError:
            return 0
        identity = (stat.st_dev, stat.st_ino)
        if identity != self._identity or stat.st_size < self._offset:
            if self._identity is not None:
                self.rewrites += 1
            self.rows, self._header, self._offset, self._identity = [], None, 0, identity
        if stat.st_size == self._offset:
            return 0
        with self.path.open("rb") as fh:
            fh.seek(self._offset)
            data = fh.read(stat.st_size - self._offset)
        whole = data[: data.rfind(b"\n") + 1]  # a torn last line waits for its end
        self._offset += len(whole)
        lines = list(csv.reader(io.StringIO(whole.decode("utf-8", errors="replace"))))
        if self._header is None and lines:
            self._header, lines = lines[0], lines[1:]
        header = self._header or []
        new = [dict(zip(header, line, strict=False)) for line in lines if line]
        self.rows.extend(new)
        return len(new)


class JobWatch:
    """One job's run folder as the Train tab shows it: its last step, its loss curves and the
    plot of them (a PNG in ``plot``, redrawn only when new rows have arrived)."""

    def __init__(
        self, run_dir: Path, plot: Path, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.run_dir, self.plot = run_dir, plot
        self._clock = clock
        self._tails: dict[Path, LogTail] = {}
        self._drawn_rows = -1
        self._drawn_at = -float("inf")
        self.draws = 0  # plots drawn (for tests)
        self._lock = threading.Lock()  # two pages may watch the same job

    def look(self) -> int:
        """Read what the logs gained; -> the rows now held, all files together."""
        for path in sorted(self.run_dir.glob("*.csv")):
            self._tails.setdefault(path, LogTail(path))
        for tail in self._tails.values():
            tail.read()
        return sum(len(t.rows) for t in self._tails.values())

    def last_step(self) -> int | None:
        """The last step ``log.csv`` holds, ``None`` before its first row."""
        tail = self._tails.get(self.run_dir / "log.csv")
        steps = [row_step(r) for r in reversed(tail.rows)] if tail else []
        return next((s for s in steps if s is not None), None)

    def curves(self) -> dict[str, tuple[list[float], list[float]]]:
        """``{name: (steps, values)}`` of every numeric column (``lr_scale`` left out: a
        setting, not a loss), as :func:`styleforge.metrics.report.read_run_log` reads them."""
        from styleforge.metrics import report

        curves: dict[str, tuple[list[float], list[float]]] = {}
        for path in sorted(self._tails):
            for row in self._tails[path].rows:
                report.add_log_row(curves, row, skip=("step", "lr_scale"))
        return curves

    def status(self, final: bool = False) -> tuple[int | None, Path | None]:
        """(last step, loss plot path or ``None``) as of now; the plot is redrawn when rows
        arrived since it was drawn, at most every :data:`REDRAW_SECONDS` (at once when
        ``final``: the job has ended)."""
        with self._lock:
            rows = self.look()
            now = self._clock()
            due = final or now - self._drawn_at >= REDRAW_SECONDS
            if rows != self._drawn_rows and due:
                curves = self.curves()
                if curves:
                    from styleforge.metrics import report

                    png = report.plot_curves(curves)
                    with atomic_write(self.plot) as tmp:
                        Path(tmp).write_bytes(png)
                    self.draws += 1
                    self._drawn_at = now
                self._drawn_rows = rows
            plot = self.plot if self._drawn_rows > 0 and self.plot.is_file() else None
            return self.last_step(), plot

    def version(self) -> tuple[int, int]:
        """What the plot shows, as (rows drawn, the file's change time): unchanged means
        a page need not fetch it again."""
        try:
            return self._drawn_rows, os.stat(self.plot).st_mtime_ns
        except OSError:
            return self._drawn_rows, 0


class Watches:
    """The :class:`JobWatch` of the last few jobs looked at (shared by the pages: what a job
    has logged is the same for every visitor)."""

    def __init__(self, plot_of: Callable[[str], Path], keep: int = 8) -> None:
        self._plot_of = plot_of
        self._keep = keep
        self._watches: OrderedDict[str, JobWatch] = OrderedDict()
        self._lock = threading.Lock()

    def of(self, job_id: str, run_dir: Path) -> JobWatch:
        """The watch of a job (made on first use; the least recently used go first)."""
        with self._lock:
            watch = self._watches.pop(job_id, None) or JobWatch(run_dir, self._plot_of(job_id))
            self._watches[job_id] = watch
            while len(self._watches) > self._keep:
                self._watches.popitem(last=False)
            return watch
