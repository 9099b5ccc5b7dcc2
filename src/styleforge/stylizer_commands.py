"""``styleforge train``, ``apply`` and ``export``: parsed arguments -> library calls.

``apply`` with an ``.onnx`` model never imports torch: it runs on onnxruntime, numpy and PIL.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from styleforge import images
from styleforge.distributed import joined, shard, world
from styleforge.errors import UserError
from styleforge.infer.apply import (
    ApplyOptions,
    ApplySummary,
    RunBatch,
    apply_files,
    plan_outputs,
)
from styleforge.taste_commands import apply_options

ONNX_FORMAT = "styleforge-stylizer-onnx-v1"


def _note(message: str) -> None:
    print(message, file=sys.stderr)


def run_train(args: argparse.Namespace) -> int:
    """``styleforge train STYLE_DIR -o MODEL``."""
    from styleforge.train.config import StylizerTrainConfig
    from styleforge.train.stylizer import describe_stylizer, train_stylizer

    if args.output.suffix.lower() != ".safetensors":
        raise UserError(f"-o {args.output}: the model file name must end in .safetensors")
    if args.output.exists() and not args.overwrite and not args.resume:
        raise UserError(f"{args.output} already exists; pass --overwrite to replace it")
    base = StylizerTrainConfig.preset(args.preset, from_scratch=args.from_scratch)
    lr_d = None if args.lr is None else args.lr / 10
    config = base.with_overrides(
        steps=args.steps, size=args.size, batch=args.batch, lr_g=args.lr, lr_d=lr_d,
        style_weight=args.style_weight, content_weight=args.content_weight,
        adv_weight=args.adv_weight, gan_loss=args.gan_loss, seed=args.seed,
        preview_every=args.preview_every, checkpoint_every=args.checkpoint_every,
    )  # fmt: skip
    if args.compile:
        config = config.with_overrides(compile=True)
    with joined(args.device) as w:
        result = train_stylizer(
            config, args.style_dir, args.output, content_dir=args.content,
            run_dir=args.run_dir, resume=args.resume, device=args.device,
            progress=not args.quiet, max_pixels=int(args.max_pixels or images.DEFAULT_MAX_PIXELS),
            world=w,
        )  # fmt: skip
    if result.stopped_early:
        return 130
    if w.is_main:
        _note(describe_stylizer(result))
    return 0


def _torch_backend(model: Path, device: str) -> RunBatch:
    from styleforge.infer.stylizer import Stylizer

    return Stylizer.load(model, device).backend()


def _preview_backend(style_dir: Path, device: str, max_pixels: int) -> RunBatch:
    """The zero-training stylizer of a collection: the painter prior with the mean style."""
    from styleforge import collection, prior
    from styleforge.infer.model_file import ModelInfo
    from styleforge.infer.stylizer import Stylizer
    from styleforge.nets import PainterConfig
    from styleforge.runtime import pick_device

    coll = collection.scan_for(style_dir, 1, "a style preview", max_pixels=max_pixels)
    pictures = [images.open_image(p, max_pixels=max_pixels) for p in coll.images]
    net = prior.painter_for(pictures)
    info = ModelInfo(net=PainterConfig(), style={"images": len(pictures), "preview": True})
    return Stylizer(net, info, pick_device(device)).backend()


def _onnx_backend(model: Path, device: str) -> RunBatch:
    from styleforge.infer.onnx_runtime import OnnxStylizerNet

    if device not in ("auto", "cpu"):
        raise UserError("--backend onnx runs on the CPU; leave out --device or use --device cpu")
    net = OnnxStylizerNet(model)
    if net.metadata.get("format") != ONNX_FORMAT:
        raise UserError(f"{model}: an ONNX model, but not one exported by styleforge")
    return net


def run_apply(args: argparse.Namespace) -> int:
    """``styleforge apply MODEL INPUT... -o OUT`` (or ``--style-from DIR INPUT... -o OUT``)."""
    max_pixels = int(args.max_pixels or images.DEFAULT_MAX_PIXELS)
    inputs: list[Path] = list(args.inputs)
    model: Path | None = args.model
    if args.style_from is not None:
        inputs = [model, *inputs] if model is not None else inputs
        model = None
        if args.backend == "onnx":
            raise UserError("--style-from runs the torch backend; leave out --backend onnx")
    elif model is None or not inputs:
        raise UserError("give a model file and the photos to restyle (or --style-from DIR)")
    if not inputs:
        raise UserError("give the photos to restyle")
    options = apply_options(args, model)
    if model is None:
        pairs = plan_outputs(inputs, args.output)
        run_batch = _preview_backend(args.style_from, args.device, max_pixels)
        return _apply_and_report(run_batch, pairs, options, args, max_pixels)
    if not model.is_file():
        raise UserError(f"{model}: no such model file")
    is_onnx = model.suffix.lower() == ".onnx"
    backend = args.backend or ("onnx" if is_onnx else "torch")
    if backend == "torch" and is_onnx:
        raise UserError(f"{model}: an ONNX model runs with --backend onnx")
    pairs = plan_outputs(inputs, args.output)
    w = world()
    if w.distributed:
        return _run_apply_sharded(args, pairs, options, max_pixels)
    with tempfile.TemporaryDirectory(prefix="styleforge-") as tmp:
        if backend == "torch":
            run_batch = _torch_backend(model, args.device)
        elif is_onnx:
            run_batch = _onnx_backend(model, args.device)
        else:  # a .safetensors model on onnxruntime: export it for this run
            run_batch = _onnx_backend(export_model(model, Path(tmp) / "model.onnx"), args.device)
        return _apply_and_report(run_batch, pairs, options, args, max_pixels)


def _apply_and_report(
    run_batch: RunBatch,
    pairs: list[tuple[Path, Path]],
    options: ApplyOptions,
    args: argparse.Namespace,
    max_pixels: int,
) -> int:
    summary = apply_files(
        run_batch, pairs, options, overwrite=args.overwrite,
        skip_existing=args.skip_existing, max_pixels=max_pixels, progress=not args.quiet,
    )  # fmt: skip
    for src, reason in summary.failed:
        _note(f"failed {src}: {reason}")
    if len(pairs) == 1 and summary.done:
        _note(f"{pairs[0][0]} -> {summary.done[0]}")
    else:
        _note(summary.line())
    return summary.exit_code


def _run_apply_sharded(
    args: argparse.Namespace,
    pairs: list[tuple[Path, Path]],
    options: ApplyOptions,
    max_pixels: int,
) -> int:
    """``torchrun --nproc_per_node=N -m styleforge apply ...``: each process restyles every N-th
    file of the sorted plan; outputs that exist are skipped (unless ``--overwrite``), so a
    re-run after a crash finishes the rest; rank 0 prints one summary for all."""
    import torch

    w = world()
    w.init("nccl" if args.device.startswith("cuda") and torch.cuda.is_available() else "gloo")
    try:
        device = args.device
        if device.startswith("cuda") and torch.cuda.is_available():
            device = f"cuda:{w.local_rank % torch.cuda.device_count()}"
        mine = shard(pairs, w)
        if args.backend == "onnx" or args.model.suffix.lower() == ".onnx":
            raise UserError("sharded apply runs the torch backend; pass the .safetensors model")
        summary = apply_files(
            _torch_backend(args.model, device), mine, options, overwrite=args.overwrite,
            skip_existing=not args.overwrite, max_pixels=max_pixels, progress=False,
        )  # fmt: skip
        parts = w.gather(
            ([str(p) for p in summary.done], [str(p) for p in summary.skipped],
             [(str(p), r) for p, r in summary.failed])
        )  # fmt: skip
    finally:
        w.close()
    if not w.is_main:
        return 0
    total = ApplySummary()
    for done, skipped, failed in parts:
        total.done += [Path(p) for p in done]
        total.skipped += [Path(p) for p in skipped]
        total.failed += [(Path(p), r) for p, r in failed]
    for src, reason in total.failed:
        _note(f"failed {src}: {reason}")
    per_rank = ", ".join(f"rank {i}: {len(d)}" for i, (d, _, _) in enumerate(parts))
    _note(f"{total.line()} with {w.size} processes ({per_rank})")
    return total.exit_code


def export_model(model: Path, output: Path) -> Path:
    """Export a ``.safetensors`` stylizer to ONNX (dynamic batch, height and width)."""
    from styleforge.infer.model_file import read_model
    from styleforge.infer.onnx_export import export_onnx
    from styleforge.nets import build_stylizer

    state, info = read_model(model)
    net = build_stylizer(info.net)
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise UserError(f"{model}: weights do not match the architecture in its header") from err
    meta = {k: v for k, v in info.to_metadata().items() if k != "format"}
    meta |= {
        "format": ONNX_FORMAT,
        "source_model": model.name,
    }
    return export_onnx(net, output, metadata=meta)


def run_export(args: argparse.Namespace) -> int:
    """``styleforge export MODEL -o model.onnx``."""
    if args.output.suffix.lower() != ".onnx":
        raise UserError(f"-o {args.output}: the exported file name must end in .onnx")
    if args.output.exists() and not args.overwrite:
        raise UserError(f"{args.output} already exists; pass --overwrite to replace it")
    out = export_model(args.model, args.output)
    _note(f"wrote {out} (input 'image', output 'stylized': float32 N×3×H×W in [0,1])")
    return 0
