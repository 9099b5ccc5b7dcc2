"""``styleforge evaluate``: style fidelity, content preservation and sample quality of results."""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.cli.common import Subparsers, add_common, max_pixels, note, positive_int
from styleforge.errors import EXIT_OK, EXIT_PARTIAL, UserError


def add_parser(sub: Subparsers) -> None:
    """The ``evaluate`` sub-command and its flags."""
    ev = sub.add_parser(
        "evaluate",
        help="measure style fidelity, content preservation and sample quality",
        description="Score results against a style collection; pairs results with photos by name.",
    )
    ev.add_argument("results", nargs="+", type=Path, help="result images or folders")
    ev.add_argument("--style", "-s", type=Path, required=True, help="the style collection (folder)")
    ev.add_argument("--content", "-c", type=Path, help="the photos the results were made from")
    ev.add_argument("-o", "--output", type=Path, default=Path("evaluation"), help="report folder")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")
    ev.add_argument("--run", type=Path, help="a training run folder: plot its loss curves")
    ev.add_argument("--size", type=positive_int, default=256, help="evaluation size (long side)")
    add_common(ev)


def run(args: argparse.Namespace) -> int:
    """``styleforge evaluate RESULTS... --style DIR``: the table on stdout (or JSON), the report
    files in ``-o``."""
    from styleforge.metrics.evaluate import evaluate
    from styleforge.metrics.features import EvalSettings
    from styleforge.metrics.report_files import evaluation_text, write_evaluation
    from styleforge.outputs import gather_inputs
    from styleforge.runtime import pick_device

    limit = max_pixels(args)
    if not args.style.exists():
        raise UserError(f"{args.style}: no such file or folder")
    results = gather_inputs(args.results, "evaluate", limit)
    photos = gather_inputs([args.content], "evaluate", limit).files if args.content else None
    if args.run is not None and not args.run.is_dir():
        raise UserError(f"{args.run}: no such training run folder")
    device = pick_device(args.device)
    ev = evaluate(args.style, results.files, photos, EvalSettings(size=args.size), device)
    print(evaluation_text(ev, as_json=args.json))
    files = write_evaluation(ev, args.output, args.size, args.run)
    note(f"wrote {', '.join(map(str, files))}")
    if results.left_out:  # the figures stand for the usable results only: a script can tell
        note(f"evaluated {len(results.files)} result(s); {len(results.left_out)} left out "
             "(listed above)")  # fmt: skip
        return EXIT_PARTIAL
    return EXIT_OK
