"""A whole sampler training job: a folder of pictures in, a sampler file out.

The run folder (default ``<sampler>.run/``) holds the same things as a stylizer run:
``checkpoint.pt`` (atomic, every ``checkpoint_every`` steps and on Ctrl-C / SIGTERM),
``log.csv`` and TensorBoard event files (losses, and KID every ``kid_every`` steps),
``preview.png`` (a 4×4 grid of the EMA generator's images for fixed seeds, so successive
previews show the same latents maturing; older ones in ``previews/``) and ``config.json``.

KID is measured the way ``styleforge evaluate`` measures a generated set: ``kid_samples``
images from fixed seeds against the whole collection shrunk to the samples' resolution, on
pooled VGG16 features at 256 px.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from styleforge import collection, images
from styleforge.distributed import World
from styleforge.errors import UserError
from styleforge.infer.model_file import write_model
from styleforge.infer.sampler import SamplerInfo, latents
from styleforge.report import write_json
from styleforge.runtime import autocast, pick_device
from styleforge.train.common import SINGLE, StopRequest, peers_watched
from styleforge.train.run import (
    RunLog,
    RunResult,
    default_run_dir,
    prepare_run,
    stopped_early,
    style_record,
)
from styleforge.train.sampler import (
    PREVIEW_SEEDS,
    SamplerState,
    SamplerTrainConfig,
    train_sampler_loop,
)

__all__ = ["KID_SEED_BASE", "MIN_IMAGES", "SAMPLER_COLUMNS", "train_sampler"]

#: A sampler needs at least this many pictures (fewer can only be copied, not learned).
MIN_IMAGES = 4
#: KID samples use seeds KID_SEED_BASE, KID_SEED_BASE + 1, ... (apart from the preview seeds).
KID_SEED_BASE = 10_000
SAMPLER_COLUMNS = (
    "step", "d_loss", "g_loss", "g_adv", "style", "r1", "d_real", "d_fake", "kid", "lr_scale",
)  # fmt: skip


class KidProbe:
    """KID of the EMA generator's fixed-seed samples against the collection, measured as
    ``styleforge evaluate`` measures a generated set (collection shrunk to the resolution)."""

    def __init__(
        self, image_paths: Sequence[Path], samples: int, resolution: int, device: torch.device
    ) -> None:
        from styleforge.metrics.evaluate import matched_collection
        from styleforge.metrics.features import FeatureBank

        self.bank = FeatureBank(device=device)
        self.collection = matched_collection(self.bank, image_paths, resolution)
        self.samples = samples

    def images(self, state: SamplerState) -> Tensor:
        """(samples,3,R,R) EMA images for the fixed KID seeds."""
        return _ema_images(state, range(KID_SEED_BASE, KID_SEED_BASE + self.samples))

    def measure(self, batch: Tensor) -> dict[str, float]:
        """KID (and its stderr) and the memorization figures of ``batch`` vs the collection."""
        from styleforge.metrics.kid import kid
        from styleforge.metrics.memorization import memorization

        pooled = self.bank.pooled(list(batch[:, None]))
        value, stderr = kid(pooled, self.collection)
        mem = memorization(pooled, self.collection)
        return {
            "kid": value,
            "kid_stderr": stderr,
            "memorization_median": mem["median"],
            "memorization_copies": float(mem["copies"]),
        }


@torch.no_grad()
def _ema_images(state: SamplerState, seeds: Sequence[int] | range) -> Tensor:
    """EMA generator images for ``seeds`` (latents as in ``infer.sampler.latents``)."""
    ema = state.ema.eval()
    device = next(ema.parameters()).device
    z = latents(seeds, ema.config.latent_dim)
    out = []
    for chunk in z.split(16):
        with autocast(device):
            out.append(ema(chunk.to(device)).float().cpu())
    return torch.cat(out).clamp(0, 1)


def _save_preview(state: SamplerState, run_dir: Path) -> Path:
    grid = images.grid(_ema_images(state, PREVIEW_SEEDS), cols=4)
    images.save_image(grid, run_dir / "previews" / f"step_{state.step:06d}.png")
    return images.save_image(grid, run_dir / "preview.png")


def train_sampler(
    config: SamplerTrainConfig,
    style_dir: Path,
    output: Path,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    device: str | torch.device = "auto",
    progress: bool = True,
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    measure_kid: bool = True,
    stop: StopRequest | None = None,
    world: World = SINGLE,
) -> RunResult:
    """Learn to draw new images like those in ``style_dir``; write the sampler to ``output``.

    ``run_dir``: previews, logs and checkpoints (default ``<output>.run``); ``resume``
    continues that run from its checkpoint. ``measure_kid``: log KID every ``kid_every`` steps
    and at the end. Ctrl-C / SIGTERM (or ``stop.requested``, set from another thread) saves a
    checkpoint and returns with ``stopped_early``.

    Under torchrun (``world``) every process trains on its share of each batch (see
    :func:`train_sampler_loop`); process 0 checks the run folder, lists the collection and
    writes everything (checkpoints, logs, previews, KID, the sampler file).
    """
    dev = device if isinstance(device, torch.device) else pick_device(world.device(device))
    run = run_dir if run_dir is not None else default_run_dir(output)
    ckpt = run / "checkpoint.pt"
    config, saved_step = world.on_main(lambda: prepare_run(config, output, run, resume, world))
    coll = world.on_main(lambda: _scan(style_dir, max_pixels))
    short = max(config.resolution, round(config.resolution * config.pool_scale))
    pool = [images.resize_to(images.load_image(p, max_pixels), short, "short") for p in coll.images]
    stop = stop if stop is not None else StopRequest()
    if not world.is_main:
        with peers_watched(world, run), stop.installed():
            state = train_sampler_loop(
                config, pool, dev, checkpoint=ckpt, resume=resume, stop=stop, world=world
            )
        return RunResult(None, run, state.step, state.step < config.steps, {})
    probe = (
        KidProbe(coll.images, config.kid_samples, config.resolution, dev) if measure_kid else None
    )

    run.mkdir(parents=True, exist_ok=True)
    write_json(
        run / "config.json",
        {"config": config.to_dict(), "style_dir": str(style_dir), "output": str(output),
         "processes": world.size},
    )  # fmt: skip
    log = RunLog(run, saved_step, SAMPLER_COLUMNS)
    bar = tqdm(
        total=config.steps, initial=saved_step or 0, disable=not progress, unit="step",
        dynamic_ncols=True, file=sys.stderr,
    )  # fmt: skip
    start = time.monotonic()
    last_kid: dict[str, float] = {}

    def on_step(state: SamplerState) -> None:
        nonlocal last_kid
        h = dict(state.history[-1])
        if probe is not None and (state.step % config.kid_every == 0 or state.step == config.steps):
            last_kid = probe.measure(probe.images(state))
            h["kid"] = last_kid["kid"]
        log.add(state.step - 1, {**h, "lr_scale": state.lr_scale})
        bar.update(1)
        if state.step % 10 == 0 or state.step == config.steps:
            shown = {k: h[k] for k in ("d_loss", "g_adv", "kid") if k in h}
            if "kid" not in shown and last_kid:
                shown["kid"] = last_kid["kid"]
            bar.set_postfix({k: f"{v:.3g}" for k, v in shown.items()}, refresh=False)
        if state.step % config.preview_every == 0 or state.step == config.steps:
            _save_preview(state, run)

    try:
        with peers_watched(world, run), stop.installed():
            state = train_sampler_loop(
                config, pool, dev, checkpoint=ckpt, resume=resume, on_step=on_step, stop=stop,
                world=world,
            )  # fmt: skip
    finally:
        bar.close()
        log.close()
    elapsed = time.monotonic() - start
    if state.step < config.steps:
        return stopped_early(state.step, config.steps, run)
    _save_preview(state, run)
    metrics: dict[str, Any] = {"steps": state.step, "train_seconds_this_session": round(elapsed, 1)}
    if last_kid:
        metrics |= {k: round(v, 5) for k, v in last_kid.items()}
    info = SamplerInfo(
        net=config.net,
        training=config.to_dict(),
        style=style_record(style_dir, coll.images),
        metrics=metrics,
    )
    write_model(output, state.ema.state_dict(), info)
    return RunResult(output, run, state.step, False, metrics)


def _scan(style_dir: Path, max_pixels: int) -> collection.Collection:
    """The collection, with at least :data:`MIN_IMAGES` usable pictures."""
    coll = collection.scan_for(style_dir, 1, "a sampler", max_pixels)
    if len(coll.images) < MIN_IMAGES:
        raise UserError(
            f"{style_dir}: {len(coll.images)} usable image(s); a sampler learns from at least "
            f"{MIN_IMAGES} (fewer can only be copied). To paint photos like one picture, use "
            "`styleforge transfer`"
        )
    return coll


def describe_sampler(result: RunResult) -> str:
    """One line for the terminal about a finished sampler run."""
    m = result.metrics
    parts = [f"wrote {result.model}"]
    if "kid" in m:
        parts.append(f"KID {m['kid']:.3f}, memorization {m['memorization_median']:.2f}")
    parts.append(f"sample grids and logs in {result.run_dir}")
    return "; ".join(parts)
