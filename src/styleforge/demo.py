"""``styleforge demo``: learn a folder of prints (the bundled Hokusai ones by default) with a
small training budget, restyle the sample photos, write the model, the results and a contact
sheet; then train a sampler on the same prints and write a grid of new images."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from styleforge import collection, images, sheets

if TYPE_CHECKING:
    from styleforge.train.job import JobRun, RunResult

__all__ = ["BUNDLED_STYLE", "DEMO_SAMPLER_STEPS", "DEMO_STEPS", "DemoConfig", "run_demo"]

#: The demo's prints when no folder is given.
BUNDLED_STYLE = Path(__file__).parent / "assets" / "hokusai_fuji"
#: Training steps of the demo: the quick preset's (about 2.5 minutes on a 2-core CPU, #45).
DEMO_STEPS = 150
#: Sampler training steps of the demo.
DEMO_SAMPLER_STEPS = 300


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


@dataclass(frozen=True)
class DemoConfig:
    """The demo's budget: stylizer and sampler training steps (0 sampler steps: no sampler)."""

    steps: int = DEMO_STEPS
    sampler_steps: int = DEMO_SAMPLER_STEPS
    seed: int = 0


@dataclass(frozen=True)
class _DemoRun:
    """Where and how a demo runs."""

    style_dir: Path
    out_dir: Path
    device: str
    progress: bool
    max_pixels: int
    log: Callable[[str], None]

    def train(
        self, what: str, steps: tuple[int, int], run_dir: str,
        train: Callable[[JobRun], RunResult], describe: Callable[[RunResult], str],
    ) -> bool:  # fmt: skip
        """Say ``what`` is learned in (steps, the full quick preset's), ``train(run)`` in the
        fresh run folder ``run_dir`` under the output folder and say what it wrote;
        ``False``: stopped early."""
        self.log(f"{what} ({steps[0]} steps; the full quick preset is {steps[1]})")
        run: JobRun = {"run_dir": _fresh(self.out_dir / run_dir), "device": self.device,
                       "progress": self.progress, "max_pixels": self.max_pixels}  # fmt: skip
        result = train(run)
        if not result.stopped_early:
            self.log(describe(result))
        return not result.stopped_early


def run_demo(
    config: DemoConfig,
    out_dir: Path,
    style_dir: Path = BUNDLED_STYLE,
    device: str = "auto",
    *,
    progress: bool = True,
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
    log: Callable[[str], None] = _stderr,
) -> bool:
    """Run the demo into ``out_dir`` (its own earlier run folders are replaced); ``log`` hears
    what is done. Returns ``False`` when training was stopped early."""
    job = _DemoRun(style_dir, out_dir, device, progress, max_pixels, log)
    model = _train_stylizer(config, job)
    if model is None:
        return False
    _restyle_samples(model, job)
    if config.sampler_steps == 0:
        return True
    return _train_sampler(config, job)


def _fresh(run_dir: Path) -> Path:
    if run_dir.exists():  # the demo's own earlier run: start afresh
        shutil.rmtree(run_dir)
    return run_dir


def _train_stylizer(config: DemoConfig, job: _DemoRun) -> Path | None:
    """The demo's model file, ``None`` when stopped early."""
    from styleforge.train.config import StylizerTrainConfig
    from styleforge.train.stylizer import describe_stylizer, train_stylizer

    quick = StylizerTrainConfig.preset("quick")
    train_config = quick.with_overrides(steps=config.steps, seed=config.seed)
    model = job.out_dir / "model.safetensors"
    done = job.train(
        f"learning the style of {job.style_dir}", (train_config.steps, quick.steps), "run",
        lambda run: train_stylizer(train_config, job.style_dir, model, **run), describe_stylizer,
    )  # fmt: skip
    return model if done else None


def _restyle_samples(model: Path, job: _DemoRun) -> None:
    """Each sample photo restyled, and a sheet: the prints, then photo | preview | restyled."""
    from torch import Tensor

    from styleforge.infer.restyle import Restyler
    from styleforge.train.data import sample_photos

    trained = Restyler.open(model, device=job.device)  # as `styleforge apply` runs it
    pictures = [images.open_image(p) for p in collection.scan(job.style_dir).images]
    preview = Restyler.like(pictures, device=job.device)
    labels = ["photo", "no training (apply --style-from)", "trained (styleforge apply)"]
    rows: list[Tensor] = []
    for name, photo in sample_photos().items():
        img = images.tensor_to_pil(photo)
        styled = trained(img)
        path = images.save_image(styled, job.out_dir / f"{name}.png")
        job.log(f"wrote {path}")
        row = [photo, images.pil_to_tensor(preview(img)), images.pil_to_tensor(styled)]
        rows.append(sheets.make_sheet(row, labels))
    width = max(r.shape[-1] for r in rows)
    strip = sheets.collection_strip([images.pil_to_tensor(p) for p in pictures], width, 160)
    sheet = images.save_image(sheets.stack_rows([strip, *rows]), job.out_dir / "sheet.png")
    job.log(f"wrote {sheet} (the prints, then photo | preview | restyled)")


def _train_sampler(config: DemoConfig, job: _DemoRun) -> bool:
    """A sampler with the demo's budget, and a grid of 16 new images; ``False``: stopped."""
    from styleforge.infer.sampler import Sampler
    from styleforge.train.config import SamplerTrainConfig
    from styleforge.train.sampler import describe_sampler, train_sampler

    quick = SamplerTrainConfig.preset("quick")
    steps = config.sampler_steps
    train_config = quick.with_overrides(steps=steps, seed=config.seed, kid_every=steps)
    path = job.out_dir / "sampler.safetensors"
    if not job.train(
        f"learning to draw new images like {job.style_dir}", (steps, quick.steps), "sampler_run",
        lambda run: train_sampler(train_config, job.style_dir, path, **run), describe_sampler,
    ):  # fmt: skip
        return False
    batch = Sampler.load(path, job.device).sample(range(16))
    grid = images.save_image(sheets.dream_grid(batch, cols=4), job.out_dir / "dream_grid.png")
    job.log(f"wrote {grid} (16 new images, seeds 0-15; more with `styleforge generate {path}`)")
    return True
