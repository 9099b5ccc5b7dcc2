"""Errors a user can act on: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


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
