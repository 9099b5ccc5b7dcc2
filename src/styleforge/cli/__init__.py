"""Command line: arguments -> config -> library call, nothing else.

Layer: the top (only ``__main__`` above it); may import every package below it, ``app`` (for
``serve``) and ``demo`` included. Nothing imports it.

One module per verb, each with ``add_parser(sub)`` (its sub-command and flags) and
``run(args) -> exit code``. A user mistake prints one line on stderr and exits with code 2.
Verb modules import torch only inside ``run`` (``transfer`` also when it adds its parser, for
the defaults of ``TransferConfig``); ``main`` builds only the named verb's parser, so ``apply``
with an ONNX model never loads torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

from styleforge import errors
from styleforge.cli.common import Parser
from styleforge.errors import EXIT_FAULT, EXIT_USAGE, JobFailed, ReportedElsewhere, UserError
from styleforge.fileio import NO_SPACE
from styleforge.version import __version__

__all__ = ["VERBS", "build_parser", "main", "verb"]


#: The sub-commands, in the order ``--help`` lists them: name -> its module in styleforge.cli
#: (imported only when named, so ``apply`` of an ONNX model starts without the other verbs).
VERBS: dict[str, str] = {
    "transfer": "transfer",
    "evaluate": "evaluate",
    "train": "train",
    "apply": "apply",
    "export": "export",
    "tune": "tune",
    "train-sampler": "train_sampler",
    "generate": "generate",
    "serve": "serve",
    "demo": "demo",
}


def verb(name: str) -> ModuleType:
    """The module of sub-command ``name``: ``add_parser(sub)`` and ``run(args) -> exit code``."""
    return importlib.import_module(f"styleforge.cli.{VERBS[name]}")


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The ``styleforge`` argument parser with all sub-commands, or with just ``only``."""
    parser = Parser(prog="styleforge", description="Learn a visual style and apply it.")
    parser.add_argument("--version", action="version", version=f"styleforge {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=Parser)
    for name in VERBS:
        if only is None or name == only:
            verb(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``styleforge`` command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    named = argv[0] if argv and argv[0] in VERBS else None
    args = build_parser(only=named).parse_args(argv)
    try:
        return int(verb(args.command).run(args))
    except ReportedElsewhere:
        return EXIT_USAGE  # process 0 of a torchrun job printed it
    except UserError as err:
        print(f"styleforge: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except JobFailed as err:  # DiskFull included
        print(f"styleforge: error: {err}", file=sys.stderr, flush=True)
        errors.ERROR_PRINTED.set()
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
