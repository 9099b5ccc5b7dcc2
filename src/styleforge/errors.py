"""Errors the CLI prints as one line: a user's mistake exits 2, a fault (full disk, a lost
process) exits 1. :data:`EXIT_PARTIAL` is the exit code of a run where some inputs could not be
used while the others were done."""

from __future__ import annotations

import threading

#: Every input was done.
EXIT_OK = 0
#: A fault that is not the user's input: a full disk, a process of a torchrun job that died.
EXIT_FAULT = 1
#: A usage error (missing file, bad flag), or no input at all could be used.
EXIT_USAGE = 2
#: Some inputs could not be used (each named on its own line); the others were done.
EXIT_PARTIAL = 3

#: Set once the command has printed its one error line, so that a watchdog ending a stuck
#: process (:func:`styleforge.train.job.peers_watched`) does not print a second.
ERROR_PRINTED = threading.Event()


class UserError(Exception):
    """A mistake in what the user asked for or gave us (missing file, bad image, bad flag)."""


class ImageError(UserError):
    """An image that cannot be used: unreadable, too large, too small, not an image."""


class WeightsError(UserError):
    """Pretrained weights that are missing, corrupt or of the wrong shape."""


class ReportedElsewhere(UserError):
    """A user error that process 0 of a torchrun job has printed (raised on the others)."""


class JobFailed(Exception):
    """A job that cannot go on through no fault of the user's input (a process of a torchrun
    job died): the CLI prints it as one line and exits with code 1."""


class DiskFull(JobFailed):
    """A file could not be written for lack of space. What was there before (an older
    checkpoint, model or image) is untouched, and no temporary file is left behind."""
