"""A whole stylizer training job: folders in, model file out, with the comforts a long run needs.

The run folder (default: ``<model>.run/`` beside the model) holds ``checkpoint.pt`` (atomic,
every ``checkpoint_every`` steps and on Ctrl-C / SIGTERM), ``log.csv`` and TensorBoard event
files with the losses, ``preview.png`` (the same photos restyled by the current EMA generator,
refreshed every ``preview_every`` steps; older ones kept in ``previews/``) and ``config.json``.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from styleforge import collection, images
from styleforge.distributed import World
from styleforge.errors import UserError
from styleforge.fileio import atomic_write, disk_full_names
from styleforge.infer.model_file import ModelInfo, style_fingerprint, write_model
from styleforge.report import write_json
from styleforge.runtime import pick_device
from styleforge.tblog import EventWriter, drop_steps_from
from styleforge.train.checkpoint import load_checkpoint
from styleforge.train.common import SINGLE, StopRequest, peers_watched
from styleforge.train.stylizer import TrainConfig, TrainState, train_stylizer_loop

if TYPE_CHECKING:
    from styleforge.train.sampler import SamplerTrainConfig

__all__ = [
    "SAMPLE_PHOTOS",
    "RunResult",
    "default_run_dir",
    "resize_pool",
    "sample_photos",
    "stopped_early",
    "style_record",
    "train_stylizer",
]

#: scikit-image's bundled CC0 colour photos, the default training photos.
SAMPLE_PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle")
#: Photos restyled in every preview (the first ones of the content set, in name order).
PREVIEW_PHOTOS = 4
#: Fewer style images than this get a note that augmentation carries the small set.
FEW_IMAGES = 10


@dataclass(frozen=True)
class RunResult:
    """What a finished (or stopped) training job produced."""

    model: Path | None
    run_dir: Path
    steps: int
    stopped_early: bool
    metrics: dict[str, Any]


def default_run_dir(model: Path) -> Path:
    """``hokusai.safetensors`` -> ``hokusai.run`` beside it."""
    return model.with_name(model.stem + ".run")


def sample_photos() -> dict[str, Tensor]:
    """scikit-image's bundled photos (:data:`SAMPLE_PHOTOS`) as (1,3,H,W) in [0,1]."""
    from skimage import data as skdata

    def load(name: str) -> Tensor:
        array = skdata.stereo_motorcycle()[0] if name == "motorcycle" else getattr(skdata, name)()
        return images.pil_to_tensor(Image.fromarray(array))

    return {name: load(name) for name in SAMPLE_PHOTOS}


def resize_pool(tensors: Sequence[Tensor], short_side: int) -> list[Tensor]:
    """Resize each image so its short side is ``short_side`` px (up or down)."""
    return [images.resize_to(t, short_side, "short") for t in tensors]


def _center_square(t: Tensor, side: int) -> Tensor:
    t = images.resize_to(t, side, "short")
    h, w = t.shape[-2:]
    top, left = (h - side) // 2, (w - side) // 2
    return t[..., top : top + side, left : left + side]


STYLIZER_COLUMNS = ("step", "d_loss", "content", "style", "adv", "tv", "lr_scale")


class RunLog:
    """Losses to ``log.csv`` (one row per step) and to TensorBoard event files.

    Every row reaches the OS as soon as it is logged (before the step's checkpoint is written),
    so after a crash (even kill -9) and ``--resume`` both logs hold every step exactly once.
    """

    def __init__(
        self, run_dir: Path, resume_step: int | None, columns: Sequence[str] = STYLIZER_COLUMNS
    ) -> None:
        self.run_dir = run_dir
        self.path = run_dir / "log.csv"
        self.columns = list(columns)
        # Rows hold 0-based step indices; a checkpoint with ``resume_step`` steps done trains
        # the rows from index ``resume_step`` on again: drop them (a fresh run drops them all).
        keep_below = resume_step if resume_step is not None and self.path.exists() else 0
        drop_steps_from(run_dir, keep_below)
        self._open(keep_below)
        self._tb = EventWriter(run_dir)

    def _open(self, keep_below: int) -> None:
        """Rewrite the CSV with its rows of steps < ``keep_below`` and open it for appending."""
        rows: list[dict[str, str]] = []
        if keep_below > 0:
            with open(self.path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if _row_step(r) < keep_below]
        with atomic_write(self.path) as tmp, open(tmp, "w", newline="") as fh:
            writer = csv.DictWriter(fh, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        self._fh = open(self.path, "a", newline="")  # noqa: SIM115 (closed in close())
        self._csv = csv.DictWriter(self._fh, self.columns, extrasaction="ignore")
        self._last = _row_step(rows[-1]) if rows else -1

    def add(self, step: int, values: dict[str, float]) -> None:
        """Log one step's values (missing columns stay empty). A step at or before the last
        one logged (training rolled back after a NaN) first drops the rows from it on."""
        if step <= self._last:
            self._fh.close()
            self._tb.close()
            drop_steps_from(self.run_dir, step)
            self._open(step)
            self._tb = EventWriter(self.run_dir)
        with disk_full_names(self.path):
            self._csv.writerow({**values, "step": step})
            self._fh.flush()
        self._last = step
        self._tb.add_scalars(step, {f"loss/{k}": v for k, v in values.items() if k != "step"})

    def flush(self) -> None:
        """Push everything to the OS (``add`` already does)."""
        self._fh.flush()
        self._tb.flush()

    def close(self) -> None:
        """Flush and close both files."""
        self.flush()
        self._fh.close()
        self._tb.close()


def _row_step(row: dict[str, str]) -> int:
    """The step of a ``log.csv`` row; a torn last row (a crash mid-write) counts as unknown."""
    try:
        return int(float(row["step"]))
    except (TypeError, ValueError):
        return 1 << 62


def _save_preview(state: TrainState, photos: Tensor, run_dir: Path, strip: Tensor) -> Path:
    """Restyle the fixed preview photos with the EMA generator: a strip of the collection over
    the photo row over the result row."""
    state.ema.eval()
    with torch.no_grad():
        out = state.ema(photos.to(next(state.ema.parameters()).device)).float().cpu()
    rows = [strip, torch.cat(list(photos), -1)[None], torch.cat(list(out), -1)[None]]
    grid = images.stack_rows(rows)
    images.save_image(grid, run_dir / "previews" / f"step_{state.step:06d}.png")
    return images.save_image(grid, run_dir / "preview.png")


C = TypeVar("C", TrainConfig, "SamplerTrainConfig")


def check_resumable(saved: dict[str, Any], config: C, run_dir: Path) -> C:
    """The checkpoint's config, with only ``steps`` (and the checkpoint, preview and KID
    cadence) taken from this invocation; other differences are reported, as changing them
    mid-run is not a resume."""
    old = type(config).from_dict(saved["config"])
    free = ("steps", "checkpoint_every", "preview_every", "kid_every", "compile")
    mismatched = [
        k for k, v in config.to_dict().items() if k not in free and old.to_dict().get(k) != v
    ]
    if mismatched:
        print(
            f"note: resuming {run_dir} with its saved settings; ignoring changed "
            f"{', '.join(mismatched)}",
            file=sys.stderr,
        )
    cadence = {k: getattr(config, k) for k in free if hasattr(config, k) and k != "compile"}
    return replace(old, **cadence)


def prepare_run(
    config: C, output: Path, run: Path, resume: bool, world: World = SINGLE
) -> tuple[C, int | None]:
    """Check the output path and the run folder before a run: with ``resume``, the config to
    go on with and the step its checkpoint reached; without, refuse a run folder that holds a
    checkpoint (so an earlier run is never overwritten by accident). The batch must split
    evenly across ``world``'s processes."""
    ckpt = run / "checkpoint.pt"
    for stale in run.glob(".checkpoint.*.tmp"):  # a write killed before its rename (kill -9)
        stale.unlink(missing_ok=True)
    if output.exists() and output.is_dir():
        raise UserError(f"-o {output}: is a folder; give a file name like style.safetensors")
    saved_step = None
    if not resume:
        if ckpt.exists():
            raise UserError(
                f"{run} holds a checkpoint from an earlier run: add --resume to continue it, "
                "or pick another --run-dir"
            )
    else:
        saved = load_checkpoint(ckpt)
        config = check_resumable(saved, config, run)
        saved_step = int(saved["step"])
        # A run killed after its last checkpoint but before the model was written finishes.
        if saved_step > config.steps or (saved_step == config.steps and output.exists()):
            raise UserError(
                f"{ckpt}: already trained {saved_step} steps; pass a larger --steps to go on"
            )
    world.rows(config.batch)
    return config, saved_step


def train_stylizer(
    config: TrainConfig,
    style_dir: Path,
    output: Path,
    *,
    content_dir: Path | None = None,
    run_dir: Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    evaluate_result: bool = True,
    stop: StopRequest | None = None,
    world: World = SINGLE,
) -> RunResult:
    """Learn the style of the images in ``style_dir``; write the model to ``output``.

    ``content_dir``: the user's own photos (default: scikit-image's sample photos). ``run_dir``:
    previews, logs and checkpoints (default :func:`default_run_dir`). ``resume`` continues the
    run in ``run_dir`` from its checkpoint. Stopping with Ctrl-C or SIGTERM saves a checkpoint
    and returns with ``stopped_early`` (and no model file); so does setting ``stop.requested``
    from another thread (how the web app cancels a job).

    Under torchrun (``world``), every process trains on its share of each batch (see
    :func:`train_stylizer_loop`); process 0 checks the run folder, reads the folders' listing
    and writes everything (checkpoints, logs, previews, the model); the others only train.
    """
    dev = device if isinstance(device, torch.device) else pick_device(world.device(device))
    run = run_dir if run_dir is not None else default_run_dir(output)
    ckpt = run / "checkpoint.pt"
    main = world.is_main
    config, saved_step = world.on_main(lambda: prepare_run(config, output, run, resume, world))

    styles_coll = world.on_main(lambda: collection.scan_for(style_dir, 1, "training", max_pixels))
    if len(styles_coll.images) < FEW_IMAGES and main:
        print(
            f"note: {len(styles_coll.images)} style images is a small set; augmentation keeps "
            "the discriminator from memorising it, and more images give a richer style",
            file=sys.stderr,
        )
    short = config.pool_side
    style_pool = resize_pool([images.load_image(p, max_pixels) for p in styles_coll.images], short)
    if content_dir is not None:
        photo_coll = world.on_main(
            lambda: collection.scan_for(content_dir, 1, "training (--content)", max_pixels)
        )
        raw = [images.load_image(p, max_pixels) for p in photo_coll.images]
    else:
        if main:
            print(
                "note: training on styleforge's few sample photos; pass --content with a folder "
                "of your own photos (20 or more) for a model that suits them better",
                file=sys.stderr,
            )
        raw = list(sample_photos().values())
    photo_pool = resize_pool(raw, short)
    preview_side = min(256, short)
    preview = torch.cat([_center_square(t, preview_side) for t in raw[:PREVIEW_PHOTOS]])
    strip = images.collection_strip(style_pool[:24], preview.shape[0] * preview_side,
                                    height=max(16, preview_side // 2))  # fmt: skip
    stop = stop if stop is not None else StopRequest()
    if not main:
        with peers_watched(world, run), stop.installed():
            state = train_stylizer_loop(
                config, photo_pool, style_pool, dev, checkpoint=ckpt, resume=resume, stop=stop,
                world=world,
            )  # fmt: skip
        return RunResult(None, run, state.step, state.step < config.steps, {})

    run.mkdir(parents=True, exist_ok=True)
    write_json(
        run / "config.json",
        {"config": config.to_dict(), "style_dir": str(style_dir), "output": str(output),
         "processes": world.size},
    )  # fmt: skip
    log = RunLog(run, saved_step)
    bar = tqdm(
        total=config.steps, initial=saved_step or 0, disable=not progress, unit="step",
        dynamic_ncols=True, file=sys.stderr,
    )  # fmt: skip
    start = time.monotonic()

    def on_step(state: TrainState) -> None:
        h = state.history[-1]
        log.add(state.step - 1, {**h, "lr_scale": state.lr_scale})
        bar.update(1)
        if state.step % 10 == 0 or state.step == config.steps:
            bar.set_postfix({k: f"{v:.3g}" for k, v in h.items() if k != "step"}, refresh=False)
        if state.step % config.preview_every == 0 or state.step == config.steps:
            _save_preview(state, preview, run, strip)

    try:
        with peers_watched(world, run), stop.installed():
            state = train_stylizer_loop(
                config, photo_pool, style_pool, dev, checkpoint=ckpt, resume=resume,
                on_step=on_step, stop=stop, world=world,
            )  # fmt: skip
    finally:
        bar.close()
        log.close()
    elapsed = time.monotonic() - start
    if state.step < config.steps:
        return stopped_early(state.step, config.steps, run)
    _save_preview(state, preview, run, strip)
    metrics: dict[str, Any] = {"steps": state.step, "train_seconds_this_session": round(elapsed, 1)}
    metrics |= _final_losses(state.history)
    if evaluate_result:
        metrics |= _evaluate(state, style_dir, raw[:PREVIEW_PHOTOS], run, dev)
    info = ModelInfo(
        net=config.net,
        training=config.to_dict(),
        style=style_record(style_dir, styles_coll.images),
        metrics=metrics,
    )
    write_model(output, state.ema.state_dict(), info)
    return RunResult(output, run, state.step, False, metrics)


def stopped_early(step: int, steps: int, run: Path) -> RunResult:
    """Say where a stopped run's checkpoint is; the result of a run stopped before the end."""
    print(
        f"stopped at step {step}/{steps}; checkpoint saved in {run / 'checkpoint.pt'} "
        f"(continue with --resume)",
        file=sys.stderr,
    )
    return RunResult(None, run, step, True, {})


def style_record(style_dir: Path, files: Sequence[Path]) -> dict[str, Any]:
    """What a model file says about the style set it learned from."""
    return {
        "fingerprint": style_fingerprint(files),
        "images": len(files),
        "folder_name": style_dir.resolve().name,
    }


def _final_losses(history: Sequence[dict[str, float]], last: int = 50) -> dict[str, float]:
    """Mean of each logged loss over the last ``last`` steps."""
    tail = history[-last:]
    keys = sorted({k for h in tail for k in h} - {"step"})
    return {
        f"final_{k}": round(
            sum(h[k] for h in tail if k in h) / max(1, sum(k in h for h in tail)), 4
        )
        for k in keys
    }


def _evaluate(
    state: TrainState, style_dir: Path, photos: Sequence[Tensor], run: Path, dev: torch.device
) -> dict[str, Any]:
    """Style gain and content error of the EMA generator on the preview photos (at 256 px)."""
    from styleforge.metrics.evaluate import evaluate

    folder = run / "final"
    srcs, outs = [], []
    state.ema.eval()
    for i, photo in enumerate(photos):
        small = images.resize_to(photo, 256)
        with torch.no_grad():
            result = state.ema(small.to(dev)).float().cpu()
        srcs.append(images.save_image(small, folder / "photos" / f"photo_{i}.png"))
        outs.append(images.save_image(result, folder / f"photo_{i}.png"))
    ev = evaluate(style_dir, outs, srcs, device=dev)
    keys = ("mean_style_gain", "mean_content_error", "mean_ssim", "kid")
    return {k: round(float(ev.summary[k]), 4) for k in keys if ev.summary.get(k) is not None}


def describe(result: RunResult) -> str:
    """One line for the terminal about a finished run."""
    m = result.metrics
    parts = [f"wrote {result.model}"]
    if "mean_style_gain" in m:
        parts.append(f"style gain {m['mean_style_gain']:.2f}, SSIM {m.get('mean_ssim', 0):.2f}")
    parts.append(f"previews and logs in {result.run_dir}")
    return "; ".join(parts)
