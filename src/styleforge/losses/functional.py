"""Loss functions for style transfer and GAN training, as pure functions.

Shape conventions: ``N`` batch, ``C`` channels, ``H``/``W`` height/width. Feature-map
losses compute in at least float32 (bf16/fp16 inputs are upcast), so they are safe to call
under autocast. No function modifies its inputs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "GanKind",
    "GanLoss",
    "composition_match",
    "content_loss",
    "d_bce_loss",
    "d_hinge_loss",
    "d_lsgan_loss",
    "g_hinge_loss",
    "g_lsgan_loss",
    "g_minimax_loss",
    "g_nonsaturating_loss",
    "gram_matrix",
    "layout_match",
    "style_loss",
    "total_variation",
    "weighted_gram_targets",
]

GanKind = Literal["bce", "minimax", "hinge", "lsgan"]
_GAN_KINDS: tuple[str, ...] = ("bce", "minimax", "hinge", "lsgan")


# --------------------------------------------------------------------------- helpers


def _check_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    return x


def _check_feature_map(x: object, name: str) -> Tensor:
    """Check that ``x`` is a non-empty (N, C, H, W) tensor."""
    t = _check_tensor(x, name)
    if t.ndim != 4:
        raise ValueError(f"{name} must have shape (N, C, H, W), got {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
    return t


def _check_logits(x: object, name: str) -> Tensor:
    t = _check_tensor(x, name)
    if t.numel() == 0:
        raise ValueError(f"{name} must be non-empty, got shape {tuple(t.shape)}")
    return t


def _upcast(x: Tensor) -> Tensor:
    """Return ``x`` in at least float32 precision (float32/float64 inputs are returned as is)."""
    if x.is_floating_point() and x.dtype != torch.float16 and x.dtype != torch.bfloat16:
        return x
    return x.to(torch.promote_types(x.dtype, torch.float32))


# --------------------------------------------------------------------------- style / content


def gram_matrix(f: Tensor) -> Tensor:
    """Normalised Gram matrix of a feature map.

    ``G = F Fᵀ / (C·H·W)`` with ``F`` the (C, H·W) reshape of each sample.

    Args:
        f: feature map, shape (N, C, H, W).

    Returns:
        Gram matrices, shape (N, C, C), dtype at least float32. Computed with autocast
        disabled, so a bf16/fp16 input (or an autocast region) cannot lower the precision.
    """
    f = _check_feature_map(f, "f")
    n, c, h, w = f.shape
    feats = _upcast(f).reshape(n, c, h * w)
    device_type = f.device.type
    if torch.amp.is_autocast_available(device_type):
        with torch.autocast(device_type=device_type, enabled=False):
            gram = torch.bmm(feats, feats.transpose(1, 2))
    else:
        gram = torch.bmm(feats, feats.transpose(1, 2))
    return gram / (c * h * w)


def style_loss(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """Gram-matrix style loss averaged over layers.

    Per layer ``l``: ``‖G(out_l) − G_style_l‖²_F`` (sum of squares over the C×C entries),
    averaged over the batch; the result is the mean over the layers.

    Args:
        outputs: per layer, a feature map of shape (N, C_l, H_l, W_l).
        targets: per layer, a target Gram matrix of shape (C_l, C_l), (1, C_l, C_l) or
            (N, C_l, C_l); the first two broadcast over the batch.

    Returns:
        Scalar tensor, dtype at least float32.
    """
    if len(outputs) != len(targets):
        raise ValueError(
            f"style_loss needs one target per output layer, got {len(outputs)} outputs "
            f"and {len(targets)} targets"
        )
    if len(outputs) == 0:
        raise ValueError("style_loss needs at least one layer, got none")
    per_layer: list[Tensor] = []
    for i, (out, tgt) in enumerate(zip(outputs, targets, strict=True)):
        out = _check_feature_map(out, f"outputs[{i}]")
        tgt = _check_tensor(tgt, f"targets[{i}]")
        n, c = out.shape[0], out.shape[1]
        if not (
            (tgt.ndim == 2 and tgt.shape == (c, c))
            or (tgt.ndim == 3 and tgt.shape[1:] == (c, c) and tgt.shape[0] in (1, n))
        ):
            raise ValueError(
                f"targets[{i}] must have shape ({c}, {c}), (1, {c}, {c}) or ({n}, {c}, {c}) "
                f"to match outputs[{i}] of shape {tuple(out.shape)}, got {tuple(tgt.shape)}"
            )
        gram = gram_matrix(out)
        dtype = torch.promote_types(gram.dtype, _upcast(tgt).dtype)
        diff = gram.to(dtype) - tgt.to(dtype)
        per_layer.append(diff.square().sum(dim=(1, 2)).mean())
    return torch.stack(per_layer).mean()


def weighted_gram_targets(
    grams_per_image: Sequence[Sequence[Tensor]], weights: Sequence[float] | None = None
) -> list[Tensor]:
    """Blend the Gram matrices of several style images into one target per layer.

    ``target_l = Σ_i w_i · G_{i,l}`` with the weights normalised to sum to 1.

    Args:
        grams_per_image: ``grams_per_image[i][l]`` is the Gram matrix of image ``i`` at layer
            ``l``, shape (C_l, C_l) or (N, C_l, C_l); shapes must agree across images.
        weights: one non-negative weight per image, not all zero; ``None`` means equal.

    Returns:
        One tensor per layer, with the shape of the inputs for that layer.
    """
    n_images = len(grams_per_image)
    if n_images == 0:
        raise ValueError("weighted_gram_targets needs at least one image, got none")
    if weights is None:
        weights = [1.0] * n_images
    if len(weights) != n_images:
        raise ValueError(f"got {len(weights)} weights for {n_images} images")
    w = [float(x) for x in weights]
    if any(not math.isfinite(x) or x < 0.0 for x in w):
        raise ValueError(f"weights must be finite and non-negative, got {w}")
    total = math.fsum(w)
    if total <= 0.0:
        raise ValueError(f"weights must not all be zero, got {w}")
    w = [x / total for x in w]

    n_layers = len(grams_per_image[0])
    if n_layers == 0:
        raise ValueError("grams_per_image[0] has no layers")
    for i, grams in enumerate(grams_per_image):
        if len(grams) != n_layers:
            raise ValueError(
                f"every image needs the same number of layers: image 0 has {n_layers}, "
                f"image {i} has {len(grams)}"
            )

    result: list[Tensor] = []
    for layer in range(n_layers):
        first = _check_tensor(grams_per_image[0][layer], f"grams_per_image[0][{layer}]")
        if first.ndim not in (2, 3) or first.shape[-1] != first.shape[-2]:
            raise ValueError(
                f"grams_per_image[0][{layer}] must have shape (C, C) or (N, C, C), "
                f"got {tuple(first.shape)}"
            )
        acc = first * w[0]
        for i in range(1, n_images):
            g = _check_tensor(grams_per_image[i][layer], f"grams_per_image[{i}][{layer}]")
            if g.shape != first.shape:
                raise ValueError(
                    f"grams_per_image[{i}][{layer}] has shape {tuple(g.shape)}, expected "
                    f"{tuple(first.shape)} like image 0"
                )
            acc = acc + g * w[i]
        result.append(acc)
    return result


def content_loss(output: Tensor, target: Tensor) -> Tensor:
    """Content (feature reconstruction) loss.

    Per sample ``Σ (F_content − F_out)² / (C·H·W)``, averaged over the batch.

    Args:
        output: features of the generated image, shape (N, C, H, W).
        target: content features, same shape as ``output``.

    Returns:
        Scalar tensor, dtype at least float32.
    """
    output = _check_feature_map(output, "output")
    target = _check_feature_map(target, "target")
    if output.shape != target.shape:
        raise ValueError(
            f"output and target must have the same shape, got {tuple(output.shape)} "
            f"and {tuple(target.shape)}"
        )
    _, c, h, w = output.shape
    diff = _upcast(target) - _upcast(output)
    return (diff.square().sum(dim=(1, 2, 3)) / (c * h * w)).mean()


def total_variation(x: Tensor) -> Tensor:
    """Squared total-variation smoothness penalty.

    For each sample ``n``::

        tv_n = ( Σ_{c,i,j} (x[n,c,i+1,j] − x[n,c,i,j])²      # vertical, i < H−1
               + Σ_{c,i,j} (x[n,c,i,j+1] − x[n,c,i,j])² )    # horizontal, j < W−1
               / (C·H·W)

    and the result is ``mean_n tv_n``. A constant image gives 0.

    Args:
        x: image batch, shape (N, C, H, W).

    Returns:
        Scalar tensor, dtype at least float32.
    """
    x = _check_feature_map(x, "x")
    _, c, h, w = x.shape
    xf = _upcast(x)
    dv = (xf[:, :, 1:, :] - xf[:, :, :-1, :]).square().sum(dim=(1, 2, 3))
    dh = (xf[:, :, :, 1:] - xf[:, :, :, :-1]).square().sum(dim=(1, 2, 3))
    return ((dv + dh) / (c * h * w)).mean()


def layout_match(generated: Tensor, real: Tensor, side: int = 16) -> Tensor:
    """How far a batch of generated pictures' layouts lie from a batch of real ones'.

    Each picture's layout is its area average over a ``side``×``side`` grid. The generated
    and the real layouts are paired one to one by the assignment with the least total L1
    distance (Hungarian method, found without gradients); the loss is the mean absolute
    difference of the pairs: a minibatch optimal-transport distance between the two sets of
    layouts. Every real layout pulls its nearest generated one, so the generated set spreads
    over the collection's compositions instead of one.

    Args:
        generated: (N, 3, H, W) in [0,1].
        real: (N, 3, H', W') in [0,1], the same N.

    Returns:
        Scalar tensor (float32), differentiable in ``generated``.
    """
    from scipy.optimize import linear_sum_assignment

    generated, real = _check_feature_map(generated, "generated"), _check_feature_map(real, "real")
    if generated.shape[0] != real.shape[0]:
        raise ValueError(f"batches differ: {generated.shape[0]} vs {real.shape[0]} pictures")
    g = F.adaptive_avg_pool2d(_upcast(generated), side).flatten(1)
    r = F.adaptive_avg_pool2d(_upcast(real), side).flatten(1).detach()
    cost = torch.cdist(g.detach(), r, p=1)
    rows, cols = linear_sum_assignment(cost.cpu().numpy())
    gi = torch.as_tensor(rows, device=g.device)
    ri = torch.as_tensor(cols, device=g.device)
    return (g[gi] - r[ri]).abs().mean()


def composition_match(generated: Tensor, compositions: Tensor) -> Tensor:
    """How far each generated picture, shrunk to its composition's side (area average), lies
    from the composition it was drawn from: the mean absolute difference.

    Args:
        generated: (N, 3, H, W) in [0,1].
        compositions: (N, 3, s, s) in [0,1], s dividing H and W; taken as fixed targets.

    Returns:
        Scalar tensor (float32), differentiable in ``generated``.
    """
    generated = _check_feature_map(generated, "generated")
    compositions = _check_feature_map(compositions, "compositions")
    if generated.shape[:2] != compositions.shape[:2]:
        raise ValueError(
            f"expected one (3-channel) composition per picture, got {tuple(compositions.shape)} "
            f"for {tuple(generated.shape)}"
        )
    side = (compositions.shape[-2], compositions.shape[-1])
    shrunk = F.adaptive_avg_pool2d(_upcast(generated), side)
    return (shrunk - _upcast(compositions).detach()).abs().mean()


# --------------------------------------------------------------------------- adversarial
# All take raw discriminator logits (pre-sigmoid), any shape, and return a scalar.
# ``softplus(x) = log(1 + eˣ) = −log(1 − σ(x))`` and ``softplus(−x) = −log σ(x)``.


def d_bce_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator BCE loss ``−E[log D(x)] − E[log(1 − D(G(z)))]``.

    Equals ``mean softplus(−real) + mean softplus(fake)``. Shapes: any, non-empty.
    """
    real = _upcast(_check_logits(real_logits, "real_logits"))
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def g_minimax_loss(fake_logits: Tensor) -> Tensor:
    """Original (saturating) generator loss ``E[log(1 − D(G(z)))]``, to be minimised.

    Equals ``−mean softplus(fake)``. Shape: any, non-empty.
    """
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return -F.softplus(fake).mean()


def g_nonsaturating_loss(fake_logits: Tensor) -> Tensor:
    """Non-saturating generator loss ``BCE(1, D(G(z))) = −E[log D(G(z))]``.

    Equals ``mean softplus(−fake)``. Shape: any, non-empty.
    """
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return F.softplus(-fake).mean()


def d_hinge_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator hinge loss ``mean relu(1 − real) + mean relu(1 + fake)``. Shapes: any."""
    real = _upcast(_check_logits(real_logits, "real_logits"))
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def g_hinge_loss(fake_logits: Tensor) -> Tensor:
    """Generator hinge loss ``−mean fake``. Shape: any, non-empty."""
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return -fake.mean()


def d_lsgan_loss(real_logits: Tensor, fake_logits: Tensor) -> Tensor:
    """Discriminator least-squares loss ``0.5·mean (real − 1)² + 0.5·mean fake²``."""
    real = _upcast(_check_logits(real_logits, "real_logits"))
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return 0.5 * (real - 1.0).square().mean() + 0.5 * fake.square().mean()


def g_lsgan_loss(fake_logits: Tensor) -> Tensor:
    """Generator least-squares loss ``0.5·mean (fake − 1)²``. Shape: any, non-empty."""
    fake = _upcast(_check_logits(fake_logits, "fake_logits"))
    return 0.5 * (fake - 1.0).square().mean()


@dataclass(frozen=True)
class GanLoss:
    """A matched pair of discriminator / generator losses.

    ``kind``: ``"bce"`` (D: :func:`d_bce_loss`, G: :func:`g_nonsaturating_loss`),
    ``"minimax"`` (D: :func:`d_bce_loss`, G: :func:`g_minimax_loss`), ``"hinge"`` or
    ``"lsgan"``.
    """

    kind: GanKind

    def __post_init__(self) -> None:
        if self.kind not in _GAN_KINDS:
            raise ValueError(f"unknown GAN loss kind {self.kind!r}; expected one of {_GAN_KINDS}")

    def d(self, real_logits: Tensor, fake_logits: Tensor) -> Tensor:
        """Discriminator loss from raw logits (any shapes) -> scalar."""
        if self.kind == "bce" or self.kind == "minimax":
            return d_bce_loss(real_logits, fake_logits)
        elif self.kind == "hinge":
            return d_hinge_loss(real_logits, fake_logits)
        elif self.kind == "lsgan":
            return d_lsgan_loss(real_logits, fake_logits)
        raise ValueError(f"unknown GAN loss kind {self.kind!r}")

    def g(self, fake_logits: Tensor) -> Tensor:
        """Generator loss from raw logits of generated samples (any shape) -> scalar."""
        if self.kind == "bce":
            return g_nonsaturating_loss(fake_logits)
        elif self.kind == "minimax":
            return g_minimax_loss(fake_logits)
        elif self.kind == "hinge":
            return g_hinge_loss(fake_logits)
        elif self.kind == "lsgan":
            return g_lsgan_loss(fake_logits)
        raise ValueError(f"unknown GAN loss kind {self.kind!r}")
