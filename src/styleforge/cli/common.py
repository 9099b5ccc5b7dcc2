"""What the verbs share: the one-line-error parser, argument types, the common flags, and the
one shape of the two training verbs (``train``, ``train-sampler``)."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from styleforge.configs import DEVICE_CHOICES
from styleforge.errors import UserError
from styleforge.images import DEFAULT_MAX_PIXELS

if TYPE_CHECKING:
    from styleforge.train.job import JobRun, RunResult

#: What ``parser.add_subparsers()`` returns (argparse keeps its class private).
Subparsers = Any


class Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (exit code 2) instead of usage + error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def note(message: str) -> None:
    """A line for the user on stderr (stdout is for results a script reads)."""
    print(message, file=sys.stderr)


def max_pixels(args: argparse.Namespace) -> int:
    """``--max-pixels``, or the default limit."""
    return int(args.max_pixels or DEFAULT_MAX_PIXELS)


def floats(text: str) -> list[float]:
    """argparse type: non-negative numbers like ``0.7,0.3``."""
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.7,0.3, got {text!r}") from None
    if not values or any(v < 0 for v in values):
        raise argparse.ArgumentTypeError(
            f"expected non-negative numbers like 0.7,0.3, got {text!r}"
        )
    return values


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def whole_at_least(minimum: int, words: str) -> Callable[[str], int]:
    """argparse type: a whole number ≥ ``minimum``; ``words`` name what is expected."""

    def parse(text: str) -> int:
        value = _whole_number(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected {words}, got {value}")
        return value

    return parse


positive_int = whole_at_least(1, "a positive number")
non_negative_int = whole_at_least(0, "0 or more")
at_least_2 = whole_at_least(2, "at least 2")


def paint_px(text: str) -> int:
    """argparse type: a side in px, 0 (off) or at least 8."""
    value = _whole_number(text)
    if value < 0 or 0 < value < 8:
        raise argparse.ArgumentTypeError(f"expected 0 (off) or at least 8 px, got {value}")
    return value


def number_in(low: float, high: float) -> Callable[[str], float]:
    """argparse type: a number in [low, high]."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            message = f"expected a number from {low:g} to {high:g}, got {text}"
            raise argparse.ArgumentTypeError(message)
        return value

    return parse


fraction = number_in(0.0, 1.0)


def non_negative(text: str) -> float:
    """argparse type: a number ≥ 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"expected a number ≥ 0, got {value}")
    return value


def add_device(p: argparse.ArgumentParser) -> None:
    """``--device``."""
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="default: auto")


def add_common(p: argparse.ArgumentParser) -> None:
    """``--device``, ``--seed`` and ``--max-pixels``."""
    add_device(p)
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument(
        "--max-pixels", type=positive_int, default=None,
        help="refuse input images larger than this many pixels (default: 50 million)",
    )  # fmt: skip


def add_run_flags(p: argparse.ArgumentParser, run_dir: str, previews: str) -> None:
    """A training run's folder flags: ``--run-dir`` (``run_dir``: its help), ``--resume``,
    ``--preview-every`` (steps between ``previews``) and ``--checkpoint-every``."""
    p.add_argument("--run-dir", type=Path, help=run_dir)
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    p.add_argument("--preview-every", type=positive_int, help=f"steps between {previews}")
    p.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints")


def check_training_output(args: argparse.Namespace, what: str) -> None:
    """``-o`` of a training verb: a ``.safetensors`` name (``what``: the kind of file), not an
    existing file unless ``--overwrite`` or ``--resume``."""
    from styleforge.outputs import refuse_existing

    if args.output.suffix.lower() != ".safetensors":
        raise UserError(f"-o {args.output}: the {what} file name must end in .safetensors")
    refuse_existing([args.output], args.overwrite or args.resume)


@dataclass(frozen=True)
class TrainingVerb:
    """The one shape of the two training verbs (``train``, ``train-sampler``): a folder of
    pictures in (``style_help``), one ``what`` file out (``-o``), a run folder (``run_dir``: its
    help) with ``previews`` every so many steps; ``summary`` and ``description`` are its
    ``--help``. The verb adds its own flags and config in between."""

    name: str
    what: str
    style_help: str
    run_dir: str
    previews: str
    summary: str
    description: str

    def parser(self, sub: Subparsers) -> argparse.ArgumentParser:
        """The verb's parser with its first arguments: the folder of pictures and ``-o``."""
        p: argparse.ArgumentParser = sub.add_parser(
            self.name, help=self.summary, description=self.description
        )
        p.add_argument("style_dir", type=Path, help=self.style_help)
        p.add_argument(
            "-o", "--output", type=Path, required=True, help=f"{self.what} file (.safetensors)"
        )
        return p

    def add_run_flags(self, p: argparse.ArgumentParser) -> None:
        """The run folder's flags (:func:`add_run_flags`)."""
        add_run_flags(p, self.run_dir, self.previews)

    def add_end(self, p: argparse.ArgumentParser) -> None:
        """The verb's last flags: ``--overwrite``, ``--quiet`` and the common ones."""
        p.add_argument(
            "--overwrite", action="store_true", help=f"replace an existing {self.what} file"
        )
        p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        add_common(p)

    def run(
        self,
        args: argparse.Namespace,
        train: Callable[[JobRun], RunResult],
        describe: Callable[[RunResult], str],
    ) -> int:
        """Check ``-o`` (:func:`check_training_output`), then ``train(run)`` with the job's
        keywords from the flags (under torchrun, in every process), and one line from
        ``describe`` on process 0. Exit code 130 when it stopped early (Ctrl-C), else 0."""
        from styleforge.distributed import joined

        check_training_output(args, self.what)
        with joined(args.device) as world:
            result = train(
                {"run_dir": args.run_dir, "resume": args.resume, "device": args.device,
                 "progress": not args.quiet, "max_pixels": max_pixels(args), "world": world}
            )  # fmt: skip
        if result.stopped_early:
            return 130
        if world.is_main:
            note(describe(result))
        return 0
