"""``styleforge evaluate``: style fidelity, content preservation and sample quality of results;
``--video``: the flicker of a restyled clip."""

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
    ev.add_argument("--style", "-s", type=Path, help="the style collection (folder)")
    ev.add_argument(
        "--video", type=Path, metavar="SOURCE",
        help="flicker of a restyled clip (the one result): its warping error along the motion "
        "of SOURCE, the clip it was restyled from (Lai et al. 2018; lower is steadier)",
    )  # fmt: skip
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

    if args.video is not None:
        return _video(args)
    if args.style is None:
        raise UserError("give the style collection: --style DIR (or --video SOURCE for a clip)")
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


def _video(args: argparse.Namespace) -> int:
    """``styleforge evaluate RESTYLED --video SOURCE``: the clip's flicker on stdout."""
    import json

    from styleforge.video.evaluate import clip_flicker

    if len(args.results) != 1:
        raise UserError("--video compares one restyled clip with its source")
    flicker = clip_flicker(args.results[0], args.video)
    print(json.dumps(flicker.to_dict(), indent=2) if args.json else flicker.line())
    return EXIT_OK
