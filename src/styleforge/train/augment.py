"""Differentiable augmentation for GAN training on small collections.

:func:`diff_augment` is DiffAugment (Zhao et al., 2020): colour, translation and cutout applied
to *both* real and fake batches before the discriminator, differentiably w.r.t. the images, so the
generator still gets gradients. Images are float NCHW in [0,1]; translation and cutout fill
with 0.

All randomness is drawn on the CPU from the given :class:`torch.Generator` (then moved to the
images' device), and the amount drawn does not depend on ``p`` or on the device, so a run is
reproducible and can be resumed by restoring the generator's state.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from styleforge import configs

__all__ = ["AugmentPolicy", "diff_augment", "gaussian_blur"]


@dataclass(frozen=True)
class AugmentPolicy:
    """Which DiffAugment transforms to use.

    Args:
        color: random brightness (±0.25), saturation (×[0,2]) and contrast (×[0.5,1.5]).
        translation: max shift as a fraction of each side (0 disables), zero-filled.
        cutout: side of the zeroed rectangle as a fraction of each side (0 disables); the
            rectangle lies fully inside the image at a uniformly random position.
    """

    color: bool = True
    translation: float = 0.125
    cutout: float = 0.5

    def __post_init__(self) -> None:
        if not isinstance(self.color, bool):
            raise ValueError(f"color must be a bool, got {self.color!r}")
        if not 0.0 <= self.translation < 1.0:
            raise ValueError(f"translation must be in [0, 1), got {self.translation!r}")
        if not 0.0 <= self.cutout <= 1.0:
            raise ValueError(f"cutout must be in [0, 1], got {self.cutout!r}")

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict of the fields."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AugmentPolicy:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        return configs.from_dict(cls, d)


def _rand(n: int, gen: torch.Generator | None) -> Tensor:
    """(n,) uniform [0,1) float32 on the CPU."""
    return torch.rand(n, generator=gen)


def _randint(low: int, high: int, n: int, gen: torch.Generator | None) -> Tensor:
    """(n,) int64 uniform in [low, high) on the CPU."""
    return torch.randint(low, high, (n,), generator=gen)


Rand = Callable[[], Tensor]
RandInt = Callable[[int, int], Tensor]


def _color(x: Tensor, gate: Tensor, rand: Rand) -> Tensor:
    """Brightness, saturation, contrast on the gated samples of x (N,C,H,W) -> (N,C,H,W)."""
    n = x.shape[0]
    view = (n, 1, 1, 1)
    bright = ((rand() - 0.5) * 0.5).to(x).view(view)
    sat = (rand() * 2.0).to(x).view(view)
    con = (rand() + 0.5).to(x).view(view)
    if not gate.any():
        return x
    y = x + bright
    m = y.mean(dim=1, keepdim=True)
    y = (y - m) * sat + m
    m = y.mean(dim=(1, 2, 3), keepdim=True)
    y = (y - m) * con + m
    return torch.where(gate.to(x.device).view(view), y, x)


def _translate(x: Tensor, ratio: float, gate: Tensor, randint: RandInt) -> Tensor:
    """Shift each gated sample of x (N,C,H,W) by up to ``ratio`` × size, zero-filled."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = randint(-sh, sh + 1) * gate
    tx = randint(-sw, sw + 1) * gate
    if not (ty.any() or tx.any()):
        return x
    dev = x.device
    src_y = torch.arange(h, device=dev).view(1, h) - ty.to(dev).view(n, 1)  # (N,H)
    src_x = torch.arange(w, device=dev).view(1, w) - tx.to(dev).view(n, 1)  # (N,W)
    valid = ((src_y >= 0) & (src_y < h)).view(n, h, 1) & ((src_x >= 0) & (src_x < w)).view(n, 1, w)
    b = torch.arange(n, device=dev).view(n, 1, 1)
    iy = src_y.clamp(0, h - 1).view(n, h, 1)
    ix = src_x.clamp(0, w - 1).view(n, 1, w)
    shifted = x[b, :, iy, ix].permute(0, 3, 1, 2)  # advanced indexing gives (N,H,W,C)
    return shifted * valid.unsqueeze(1).to(x.dtype)


def _cutout(x: Tensor, ratio: float, gate: Tensor, randint: RandInt) -> Tensor:
    """Zero a ratio·H × ratio·W rectangle inside each gated sample of x (N,C,H,W)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = randint(0, h - ch + 1)
    left = randint(0, w - cw + 1)
    if ch == 0 or cw == 0 or not gate.any():
        return x
    dev = x.device
    rows = torch.arange(h, device=dev).view(1, h) - top.to(dev).view(n, 1)
    cols = torch.arange(w, device=dev).view(1, w) - left.to(dev).view(n, 1)
    in_r = ((rows >= 0) & (rows < ch)).view(n, h, 1)
    in_c = ((cols >= 0) & (cols < cw)).view(n, 1, w)
    hole = in_r & in_c & gate.to(dev).view(n, 1, 1)
    return x * (~hole).unsqueeze(1).to(x.dtype)


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur of (N,C,H,W) images with standard deviation ``sigma`` px
    (reflection at the borders); ``sigma`` below 0.05 returns ``x`` itself. Differentiable in
    ``x``; the kernel reaches 3σ (at most the image's side minus one)."""
    if sigma < 0.05:
        return x
    c, h, w = x.shape[1:]
    r = max(1, min(math.ceil(3.0 * sigma), h - 1, w - 1))
    t = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    k = (k / k.sum()).to(x.dtype)
    y = F.pad(x, (r, r, r, r), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(y, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def diff_augment(
    x: Tensor,
    policy: AugmentPolicy | None = None,
    generator: torch.Generator | None = None,
    p: float = 1.0,
    rows: slice | None = None,
    of: int | None = None,
) -> Tensor:
    """DiffAugment a batch: (N,C,H,W) in [0,1] -> new (N,C,H,W) tensor, differentiable in ``x``.

    Args:
        x: images; never modified in place.
        policy: transforms to use; defaults to ``AugmentPolicy()`` (colour, translation, cutout).
        generator: CPU generator for the random draws; ``None`` uses torch's global CPU RNG.
        p: each enabled transform is applied to each sample independently with probability
            ``p`` (ADA-style); ``p = 0`` returns an unchanged copy.
        rows, of: ``x`` is rows ``rows`` of a batch of ``of`` images (one process's share in
            data-parallel training). The random draws are made for the whole batch and this
            share's are used, so each image is augmented as it would be in one process.
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float (N,C,H,W) batch, got {x.dtype} {tuple(x.shape)}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    if generator is not None and generator.device.type != "cpu":
        raise ValueError(f"generator must be a CPU generator, got one on {generator.device}")
    pol = policy if policy is not None else AugmentPolicy()
    n = x.shape[0]
    total = n if of is None else of
    part = slice(0, n) if rows is None else rows
    if len(range(total)[part]) != n:
        raise ValueError(f"rows {part} of a batch of {total} do not match {n} images")

    def rand() -> Tensor:
        return _rand(total, generator)[part]

    def randint(low: int, high: int) -> Tensor:
        return _randint(low, high, total, generator)[part]

    out = x.clone()
    if pol.color:
        out = _color(out, rand() < p, rand)
    if pol.translation > 0:
        out = _translate(out, pol.translation, rand() < p, randint)
    if pol.cutout > 0:
        out = _cutout(out, pol.cutout, rand() < p, randint)
    return out
