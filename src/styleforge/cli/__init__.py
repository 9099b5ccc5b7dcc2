"""Command line: arguments -> config -> library call, nothing else.

One module per verb, each with ``add_parser(sub)`` (its sub-command and flags) and
``run(args) -> exit code``. A user mistake prints one line on stderr and exits with code 2.
Verb modules import torch only inside ``run`` (``transfer`` also when it adds its parser, for
the defaults of ``TransferConfig``); ``main`` builds only the named verb's parser, so ``apply``
with an ONNX model never loads torch.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NamedTuple

from styleforge import __version__
from styleforge.cli import (
    apply,
    demo,
    evaluate,
    export,
    generate,
    serve,
    train,
    train_sampler,
    transfer,
    tune,
)
from styleforge.cli.common import Parser, Subparsers
from styleforge.errors import EXIT_FAULT, EXIT_USAGE, JobFailed, ReportedElsewhere, UserError
from styleforge.fileio import NO_SPACE

__all__ = ["VERBS", "Verb", "build_parser", "main"]


class Verb(NamedTuple):
    """A sub-command: what adds its parser, and what runs it (parsed arguments -> exit code)."""

    add_parser: Callable[[Subparsers], None]
    run: Callable[[argparse.Namespace], int]


#: The sub-commands, in the order ``--help`` lists them.
VERBS: dict[str, Verb] = {
    "transfer": Verb(transfer.add_parser, transfer.run),
    "evaluate": Verb(evaluate.add_parser, evaluate.run),
    "train": Verb(train.add_parser, train.run),
    "apply": Verb(apply.add_parser, apply.run),
    "export": Verb(export.add_parser, export.run),
    "tune": Verb(tune.add_parser, tune.run),
    "train-sampler": Verb(train_sampler.add_parser, train_sampler.run),
    "generate": Verb(generate.add_parser, generate.run),
    "serve": Verb(serve.add_parser, serve.run),
    "demo": Verb(demo.add_parser, demo.run),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``styleforge`` argument parser with all sub-commands, or with just ``only``."""
    parser = Parser(prog="styleforge", description="Learn a visual style and apply it.")
    parser.add_argument("--version", action="version", version=f"styleforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name, verb in VERBS.items():
        if only is None or name == only:
            verb.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``styleforge`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    named = argv[0] if argv and argv[0] in VERBS else None
    args = build_parser(only=named).parse_args(argv)
    try:
        return VERBS[args.command].run(args)
    except ReportedElsewhere:
        return EXIT_USAGE  # process 0 of a torchrun job printed it
    except UserError as err:
        print(f"styleforge: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except JobFailed as err:  # DiskFull included
        print(f"styleforge: error: {err}", file=sys.stderr)
        return EXIT_FAULT
    except OSError as err:  # a full disk met outside styleforge's own writers
        if err.errno not in NO_SPACE:
            raise
        print(f"styleforge: error: {err.filename or 'a file'}: no space left on device",
              file=sys.stderr)  # fmt: skip
        return EXIT_FAULT
    except KeyboardInterrupt:
        print("styleforge: interrupted", file=sys.stderr)
        return 130
