"""A training-time stability term (Gupta et al., ICCV 2017, "Characterizing and Improving
Stability in Neural Style Transfer"): the stylizer's output should change little when its
input changes little, here by a little pixel noise and a shift of a few pixels, as between two
frames of a video.

Used by the stylizer loop when ``StylizerTrainConfig.stability_weight`` > 0 (``styleforge
train --stability W``): ``x_p, shift = perturb(x, gen)``, then
``loss += W · stability_loss(G(x), G(x_p), shift=shift)`` (Gupta et al. use a squared-L2 term
of this kind; Johnson-style networks are not shift-equivariant because of their stride-2
convolutions, which is what makes shifted frames flicker). The term is in [0, 1] pixel units
(about 5e-3 for the painter prior, almost all of it from the shift) while the content and
style losses are on 0–255 VGG features (~1e5–1e6), hence weights of the order of 1e8.

Pure functions on float RGB NCHW tensors in [0, 1]; no tensor passed in is changed.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["Shift", "perturb", "shift_image", "stability_loss"]

Shift = tuple[int, int]
"""(dy, dx) in pixels: content moves down by dy and right by dx."""


def shift_image(x: Tensor, shift: Shift) -> Tensor:
    """``x`` (N, C, H, W) translated by ``shift`` = (dy, dx) whole pixels, the uncovered border
    filled by replicating the edge: ``out[..., i, j] = x[..., i − dy, j − dx]``."""
    dy, dx = shift
    if dy == 0 and dx == 0:
        return x
    h, w = x.shape[-2:]
    if abs(dy) >= h or abs(dx) >= w:
        raise ValueError(f"shift {shift} is not smaller than the image ({h}x{w})")
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))  # left, right, top, bottom
    padded = torch.nn.functional.pad(x, pad, mode="replicate")
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


def perturb(
    x: Tensor,
    generator: torch.Generator | None = None,
    *,
    noise: float = 0.02,
    max_shift: int = 2,
    rows: slice | None = None,
    of: int | None = None,
) -> tuple[Tensor, Shift]:
    """A slightly changed copy of the photos ``x`` (N, 3, H, W) in [0, 1] and the shift used:
    Gaussian pixel noise of std ``noise`` and one translation of up to ``max_shift`` px in each
    direction (drawn from ``generator``, a CPU generator or ``None`` for torch's global one;
    the same shift for the whole batch; (0, 0) possible). ``rows``, ``of``: ``x`` is rows
    ``rows`` of a batch of ``of`` images (one process's share under torchrun); the noise is
    drawn for the whole batch and this share's is used, as in one process.
    Returns (new tensor in [0, 1], (dy, dx))."""
    if x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"expected a float (N, C, H, W) batch, got {x.dtype} {tuple(x.shape)}")
    if noise < 0 or max_shift < 0:
        raise ValueError(f"noise and max_shift must be ≥ 0, got {noise} and {max_shift}")
    n = x.shape[0]
    total = n if of is None else of
    part = slice(0, n) if rows is None else rows
    if len(range(total)[part]) != n:
        raise ValueError(f"rows {part} of a batch of {total} do not match {n} images")
    if max_shift:
        d = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator, device="cpu")
        shift: Shift = (int(d[0]), int(d[1]))
    else:
        shift = (0, 0)
    out = shift_image(x, shift)
    if noise:
        shape = (total, *x.shape[1:])
        eps = torch.randn(shape, generator=generator, device="cpu", dtype=torch.float32)[part]
        out = out + noise * eps.to(device=x.device, dtype=x.dtype)
    return out.clamp(0.0, 1.0), shift


def stability_loss(
    stylizer_out_clean: Tensor,
    stylizer_out_perturbed: Tensor,
    *,
    shift: Shift = (0, 0),
    margin: int = 4,
) -> Tensor:
    """Mean squared difference between the stylizer's output on the photos and on their
    perturbed copies (both (N, 3, H, W)), compared where they show the same content: the
    clean output is shifted by ``shift`` (the one :func:`perturb` used) and a border of
    ``|shift| + margin`` px is left out (replicated edges, zero padding of the network).
    A scalar tensor, differentiable in both arguments; 0 for a perfectly stable network."""
    if stylizer_out_clean.shape != stylizer_out_perturbed.shape:
        raise ValueError(
            f"outputs differ in shape: {tuple(stylizer_out_clean.shape)} and "
            f"{tuple(stylizer_out_perturbed.shape)}"
        )
    if stylizer_out_clean.dim() != 4:
        raise ValueError(f"expected (N, C, H, W) outputs, got {tuple(stylizer_out_clean.shape)}")
    dy, dx = shift
    by, bx = abs(dy) + margin, abs(dx) + margin
    h, w = stylizer_out_clean.shape[-2:]
    if 2 * by >= h or 2 * bx >= w:
        raise ValueError(f"{h}x{w} outputs are too small for shift {shift} and margin {margin}")
    aligned = shift_image(stylizer_out_clean, shift)
    diff = aligned - stylizer_out_perturbed
    return diff[..., by : h - by, bx : w - bx].pow(2).mean()
