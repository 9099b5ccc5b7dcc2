"""Where a stylizer training step's time goes (issue #45), part by part, on the CPU.

    OMP_NUM_THREADS=1 taskset -c 1 .venv/bin/python bench/train_profile.py [--size 160]
        [--steps 12] [--untimed 3] [--channels-last] [--all-channels-last] [--content-cut]
        [--one-d-pass]

Builds the quick preset's state (`new_stylizer_state`: the painter prior, the discriminator)
and its steps (`_StylizerSteps`, via `train_stylizer_loop`'s own builder) and runs the step's
parts by hand with a clock around each, in the order `train_gan` runs them:

- data: the random photo and real crops (`random_crops`) and the Gram-target picks;
- G forward: the generator on the photo crops;
- D step: DiffAugment + the discriminator on real and fake, its loss, backward, Adam;
- VGG photo: the content target's features (no grad);
- VGG fake forward: the output's features (with graph);
- D on fake (G pass): the frozen discriminator on the augmented output;
- losses: content, Gram style, adversarial, TV;
- backward VGG+D: the loss's backward down to the output image (VGG's and D's backward);
- backward G: the output's gradient through the generator;
- G Adam + EMA: the generator's optimiser step and the weight average.

The two backward parts are split by cutting the graph at the output image (the output detached
as a leaf, then its gradient sent through the generator), which gives the same gradients.
Prints ms per part (median over the timed steps) and the share of the step. The levers, each
alone or together: `--channels-last` the content target's VGG pass in channels_last (what
`train_stylizer_loop` does since #45), `--all-channels-last` VGG, G and D all in channels_last,
`--content-cut` that pass only up to the content layer, `--one-d-pass` D on real and fake in
one call. The setup line includes the Gram targets of the style images (`image_grams`), which
the loop computes with its own (channels_last) encoder.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from styleforge.losses import content_loss, style_loss, total_variation
from styleforge.losses.functional import GanLoss
from styleforge.train import stylizer as st
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.data import random_crops
from styleforge.train.loop import frozen, update_ema

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def pool(folder: Path, short: int, n: int) -> list[torch.Tensor]:
    from styleforge import images

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    return [images.resize_to(images.load_image(p), short, "short") for p in files[:n]]


def build(config: StylizerTrainConfig, photos: list[torch.Tensor], styles: list[torch.Tensor]):
    """The steps object `train_stylizer_loop` would build (captured from its first draw)."""
    captured: dict[str, Any] = {}
    original = st._StylizerSteps.draw

    def grab(self: Any, step: int) -> Any:
        captured["steps"] = self
        raise _Stop

    st._StylizerSteps.draw = grab  # type: ignore[method-assign]
    try:
        st.train_stylizer_loop(config, photos, styles, torch.device("cpu"))
    except _Stop:
        pass
    finally:
        st._StylizerSteps.draw = original  # type: ignore[method-assign]
    return captured["steps"]


class _Stop(Exception):
    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--size", type=int, help="crop size (default: the preset's)")
    parser.add_argument("--batch", type=int)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--untimed", type=int, default=3)
    parser.add_argument("--styles", type=int, default=12)
    parser.add_argument("--channels-last", action="store_true", help="content VGG pass in CL")
    parser.add_argument("--all-channels-last", action="store_true", help="VGG, G, D in CL")
    parser.add_argument("--content-cut", action="store_true", help="photo VGG only to relu3_3")
    parser.add_argument("--one-d-pass", action="store_true",
                        help="D on real+fake in one call")  # fmt: skip
    args = parser.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", torch.get_num_threads())))
    preset = StylizerTrainConfig.preset("quick")
    config = replace(preset, size=args.size or preset.size, batch=args.batch or preset.batch,
                     steps=10_000)  # fmt: skip
    short = config.pool_side
    photos = pool(DATA / "content", short, 12)
    styles = pool(DATA / "styles" / "hokusai_fuji", short, args.styles)
    t0 = time.perf_counter()
    steps = build(config, photos, styles)
    print(f"setup (prior, VGG, Gram targets of {len(styles)} styles at {short} px): "
          f"{time.perf_counter() - t0:.1f} s")  # fmt: skip
    state, c = steps.state, config
    fmt = torch.channels_last if args.all_channels_last else torch.contiguous_format
    enc = steps.encoder
    if args.all_channels_last:
        for m in (enc, state.generator, state.disc):
            m.to(memory_format=fmt)
    photo_enc = enc.cut([c.content_layer]) if args.content_cut else enc.cut(enc.layers)
    if args.channels_last or args.all_channels_last:
        photo_enc.to(memory_format=torch.channels_last)
    times: dict[str, list[float]] = defaultdict(list)

    @contextmanager
    def part(name: str) -> Iterator[None]:
        t = time.perf_counter()
        yield
        times[name].append(time.perf_counter() - t)

    def one_step(step: int) -> None:
        rng = state.data_gen
        with part("data (crops)"):
            photo = random_crops(steps.photos, c.batch, c.size, rng).contiguous(memory_format=fmt)
            real = random_crops(steps.pool, c.batch, c.size, rng).contiguous(memory_format=fmt)
            picks = torch.randint(steps.n_styles, (c.batch,), generator=rng)
        with part("G forward"):
            fake = state.generator(photo)
        with part("D step (fwd+bwd+Adam)"):
            aug: Callable[[torch.Tensor], torch.Tensor] = steps.share.augment
            if args.one_d_pass:
                both = state.disc(torch.cat([aug(real), aug(fake.detach())]))
                d_real, d_fake = both.split(c.batch)
            else:
                d_real = state.disc(aug(real))
                d_fake = state.disc(aug(fake.detach()))
            d_loss = GanLoss(c.gan_loss).d(d_real, d_fake)
            d_loss.item()
            state.opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            state.opt_d.step()
        leaf = fake.detach().requires_grad_(True)
        with part("VGG photo (no grad)"), torch.no_grad():
            photo_feats = photo_enc(photo)
        with part("VGG fake forward"):
            feats = enc(leaf)
        with part("D on fake (G pass)"), frozen(state.disc):
            g_logits = state.disc(aug(leaf))
        with part("losses"):
            loss = c.content_weight * content_loss(feats[c.content_layer],
                                                   photo_feats[c.content_layer])  # fmt: skip
            targets = [layer[picks] for layer in steps.grams]
            s = c.style_weight * style_loss([feats[n] for n in c.style_layers], targets)
            a = c.adv_weight * GanLoss(c.gan_loss).g(g_logits)
            t = c.tv_weight * total_variation(leaf)
            loss = loss + s + a + t
            loss.item()
        with part("backward VGG+D"):
            state.opt_g.zero_grad(set_to_none=True)
            loss.backward()
        with part("backward G"):
            fake.backward(leaf.grad)
        with part("G Adam + EMA"):
            state.opt_g.step()
            update_ema(state.ema, state.generator, c.ema_decay)

    for step in range(args.untimed):
        one_step(step)
    times.clear()
    wall = time.perf_counter()
    for step in range(args.steps):
        one_step(step)
    wall = (time.perf_counter() - wall) / args.steps
    total = sum(statistics.median(v) for v in times.values())
    levers = ("channels_last", "all_channels_last", "content_cut", "one_d_pass")
    flags = [f for f in levers if getattr(args, f)]
    print(f"size {c.size}, batch {c.batch}, {torch.get_num_threads()} thread(s), "
          f"levers: {', '.join(flags) or 'none'}; {args.steps} timed steps")  # fmt: skip
    print("| part | ms (median) | share |")
    print("|---|---|---|")
    for name, v in times.items():
        ms = statistics.median(v) * 1000
        print(f"| {name} | {ms:.0f} | {ms / total / 10:.0f} % |")
    print(f"| **sum of medians** | {total * 1000:.0f} | |")
    print(f"mean wall per step: {wall * 1000:.0f} ms")


if __name__ == "__main__":
    main()
