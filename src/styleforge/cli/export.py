"""``styleforge export``: a trained model as ONNX."""

from __future__ import annotations

import argparse
from pathlib import Path

from styleforge.cli.common import Subparsers, note
from styleforge.errors import UserError


def add_parser(sub: Subparsers) -> None:
    """The ``export`` sub-command and its flags."""
    ex = sub.add_parser(
        "export", help="export a trained model to ONNX (dynamic height and width)",
        description="Export a .safetensors stylizer to ONNX for onnxruntime and other runtimes.",
    )  # fmt: skip
    ex.add_argument("model", type=Path, help="model file from `styleforge train`")
    ex.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file to write")
    ex.add_argument("--overwrite", action="store_true", help="replace an existing file")


def run(args: argparse.Namespace) -> int:
    """``styleforge export MODEL -o model.onnx``."""
    from styleforge.infer.export import export_model
    from styleforge.outputs import refuse_existing

    if args.output.suffix.lower() != ".onnx":
        raise UserError(f"-o {args.output}: the exported file name must end in .onnx")
    refuse_existing([args.output], args.overwrite)
    out = export_model(args.model, args.output)
    note(f"wrote {out} (input 'image', output 'stylized': float32 N×3×H×W in [0,1])")
    return 0
