"""A tiny training job for the data-parallel tests: run it with ``torchrun`` (or plainly, as one
process, or call :func:`run` in-process).

    python -m tests.ddp_job sampler|stylizer OUT_DIR STEPS [--resume]

Trains on seeded synthetic images with a configuration that has no batch-dependent layers
(no minibatch-stddev channel), with checkpoints in ``OUT_DIR/checkpoint.pt``; process 0 saves
the final generator, EMA and discriminator weights to ``OUT_DIR/final.pt``.

Everything runs in float64 (networks, encoder, images, optimiser state): the same maths then
agrees to ~1e-12 whatever the CPU, its vector width or the reduction order of a split batch,
so the tests can hold equivalence to a tolerance that a real bug (1e-3) cannot slip through.
In float32 a few GAN steps amplify rounding to ~1e-3 on some CPUs.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import torch

from styleforge.distributed import World, joined
from styleforge.nets import DiscriminatorConfig, StylizerConfig
from styleforge.nets.sampler import SamplerConfig
from styleforge.train.config import SamplerTrainConfig, StylizerTrainConfig
from styleforge.train.sampler import train_sampler_loop
from styleforge.train.stylizer import train_stylizer_loop

BATCH = 4


@contextlib.contextmanager
def float64() -> Iterator[None]:
    """Build and compute in float64 inside the block (the default dtype is restored after)."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


def images(n: int, size: int, seed: int) -> list[torch.Tensor]:
    """``n`` smooth random (1,3,size,size) images in [0,1]."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(n, 3, 6, 6, generator=g)
    big = torch.nn.functional.interpolate(small, size=(size, size), mode="bilinear")
    return [t[None] for t in big]


def sampler_config(steps: int) -> SamplerTrainConfig:
    net = SamplerConfig(resolution=64, latent_dim=16, width=4, max_width=16, mbstd_group=1)
    return SamplerTrainConfig(
        steps=steps, batch=BATCH, net=net, r1_every=2, style_batch=2, checkpoint_every=1,
        style_layers=("relu1_1",), style_weight=1e-8,
    )  # fmt: skip


def stylizer_config(steps: int) -> StylizerTrainConfig:
    return StylizerTrainConfig(
        steps=steps, size=32, batch=BATCH, warmup=1, checkpoint_every=1,
        net=StylizerConfig(width=4, n_res=1), disc=DiscriminatorConfig(width=8, n_layers=2),
        style_layers=("relu1_1", "relu2_1"), content_layer="relu2_1",
    )  # fmt: skip


def run(
    kind: str,
    out: Path,
    steps: int,
    resume: bool,
    world: World,
    device: torch.device | None = None,
) -> dict[str, torch.Tensor]:
    """Train in float64 on ``device`` (default CPU); returns the final weights, on the CPU
    (prefixed ``generator.``, ``ema.``, ``disc.``)."""
    with float64():
        return _run(kind, out, steps, resume, world, device)


def _run(
    kind: str,
    out: Path,
    steps: int,
    resume: bool,
    world: World,
    device: torch.device | None,
) -> dict[str, torch.Tensor]:
    ckpt = out / "checkpoint.pt"
    cpu = device if device is not None else torch.device("cpu")
    if kind == "sampler":
        state = train_sampler_loop(
            sampler_config(steps), images(5, 72, 1), cpu, checkpoint=ckpt, resume=resume,
            world=world,
        )  # fmt: skip
    else:
        state = train_stylizer_loop(
            stylizer_config(steps), images(4, 40, 2), images(3, 40, 3), cpu, checkpoint=ckpt,
            resume=resume, world=world,
        )  # fmt: skip
    modules = {"generator": state.generator, "ema": state.ema, "disc": state.disc}
    return {
        f"{name}.{k}": v.detach().cpu().clone()
        for name, module in modules.items()
        for k, v in module.state_dict().items()
    }


def main(argv: list[str]) -> int:
    kind, out, steps = argv[0], Path(argv[1]), int(argv[2])
    out.mkdir(parents=True, exist_ok=True)
    with joined("cpu") as world:
        weights = run(kind, out, steps, "--resume" in argv, world)
    if world.is_main:
        torch.save(weights, out / "final.pt")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
