"""Errors a user can act on: the CLI prints them as one line and exits with code 2."""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user asked for or gave us (missing file, bad image, bad flag)."""


class ImageError(UserError):
    """An image that cannot be used: unreadable, too large, too small, not an image."""


class WeightsError(UserError):
    """Pretrained weights that are missing, corrupt or of the wrong shape."""
