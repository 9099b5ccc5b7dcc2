"""Tests for styleforge.losses (functional forms and nn.Module wrappers)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from styleforge.losses import (
    ContentLoss,
    GanLoss,
    StyleLoss,
    TotalVariation,
    content_loss,
    d_bce_loss,
    d_hinge_loss,
    d_lsgan_loss,
    g_hinge_loss,
    g_lsgan_loss,
    g_minimax_loss,
    g_nonsaturating_loss,
    gram_matrix,
    style_loss,
    total_variation,
    weighted_gram_targets,
)

F64 = torch.float64


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def t64(data: object) -> Tensor:
    return torch.tensor(data, dtype=F64)


# A (1, 2, 1, 2) feature map: channel 0 = [1, 2], channel 1 = [3, 4].
# F = [[1, 2], [3, 4]], F Fᵀ = [[5, 11], [11, 25]], C·H·W = 4
# => G = [[1.25, 2.75], [2.75, 6.25]].
HAND_F = [[[[1.0, 2.0]], [[3.0, 4.0]]]]
HAND_G = [[1.25, 2.75], [2.75, 6.25]]


# --------------------------------------------------------------------------- gram_matrix


def test_gram_hand_computed() -> None:
    g = gram_matrix(t64(HAND_F))
    assert g.shape == (1, 2, 2)
    torch.testing.assert_close(g, t64([HAND_G]))


def test_gram_symmetric_and_batch_independent() -> None:
    f = torch.randn(3, 4, 5, 6, dtype=F64)
    g = gram_matrix(f)
    assert g.shape == (3, 4, 4)
    torch.testing.assert_close(g, g.transpose(1, 2))
    singles = torch.cat([gram_matrix(f[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(g, singles)
    perm = torch.tensor([2, 0, 1])
    torch.testing.assert_close(gram_matrix(f[perm]), g[perm])


def test_gram_upcasts_low_precision() -> None:
    f = torch.randn(2, 3, 4, 4)
    g_bf16 = gram_matrix(f.to(torch.bfloat16))
    assert g_bf16.dtype == torch.float32
    torch.testing.assert_close(g_bf16, gram_matrix(f.to(torch.bfloat16).float()))
    assert gram_matrix(f.to(F64)).dtype == F64


def test_gram_float32_under_autocast() -> None:
    f = torch.randn(2, 8, 16, 16)
    expected = gram_matrix(f)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gram_matrix(f)
    assert g.dtype == torch.float32
    torch.testing.assert_close(g, expected)


def test_gram_does_not_modify_input() -> None:
    f = torch.randn(2, 3, 4, 5)
    before = f.clone()
    gram_matrix(f)
    style_loss([f], [torch.zeros(3, 3)])
    content_loss(f, torch.zeros_like(f))
    total_variation(f)
    torch.testing.assert_close(f, before, rtol=0, atol=0)


# --------------------------------------------------------------------------- style_loss


def test_style_loss_one_layer_hand() -> None:
    # G - target = [[0.25, 0.75], [0.75, 0.25]] -> 0.0625 + 2·0.5625 + 0.0625 = 1.25
    target = t64([[1.0, 2.0], [2.0, 6.0]])
    loss = style_loss([t64(HAND_F)], [target])
    assert loss.ndim == 0
    assert loss.item() == pytest.approx(1.25, abs=1e-12)


def test_style_loss_two_layers_is_mean() -> None:
    # Layer 2: a (1, 1, 2, 2) map of ones -> G = [[4 / 4]] = [[1]]; target [[3]] -> (1 - 3)² = 4.
    layer2 = torch.ones(1, 1, 2, 2, dtype=F64)
    loss = style_loss([t64(HAND_F), layer2], [t64([[1.0, 2.0], [2.0, 6.0]]), t64([[3.0]])])
    assert loss.item() == pytest.approx((1.25 + 4.0) / 2, abs=1e-12)


def test_style_loss_batch_mean() -> None:
    # Sample 0 gives 1.25 (above); sample 1 is all zeros -> G = 0, loss 1 + 4 + 4 + 36 = 45.
    f = torch.cat([t64(HAND_F), torch.zeros(1, 2, 1, 2, dtype=F64)])
    target = t64([[1.0, 2.0], [2.0, 6.0]])
    assert style_loss([f], [target]).item() == pytest.approx((1.25 + 45.0) / 2, abs=1e-12)
    # (C, C), (1, C, C) and (N, C, C) targets broadcast identically.
    expected = style_loss([f], [target])
    torch.testing.assert_close(style_loss([f], [target[None]]), expected)
    torch.testing.assert_close(style_loss([f], [target.expand(2, 2, 2)]), expected)


def test_style_loss_zero_for_own_grams() -> None:
    feats = [torch.randn(2, 3, 4, 4), torch.randn(2, 5, 2, 2)]
    targets = [gram_matrix(f) for f in feats]
    assert style_loss(feats, targets).item() == pytest.approx(0.0, abs=1e-12)
    assert style_loss(feats, [t + 0.1 for t in targets]).item() > 0.0


def test_style_loss_bad_inputs() -> None:
    f = torch.randn(2, 3, 4, 4)
    with pytest.raises(ValueError, match="one target per output layer"):
        style_loss([f, f], [gram_matrix(f)])
    with pytest.raises(ValueError, match="at least one layer"):
        style_loss([], [])
    with pytest.raises(ValueError, match=r"targets\[0\] must have shape"):
        style_loss([f], [torch.zeros(4, 4)])
    with pytest.raises(ValueError, match=r"targets\[0\] must have shape"):
        style_loss([f], [torch.zeros(3, 3, 3)])  # batch 3 vs 2
    with pytest.raises(ValueError, match=r"outputs\[0\] must have shape \(N, C, H, W\)"):
        style_loss([torch.randn(3, 4, 4)], [torch.zeros(3, 3)])


# --------------------------------------------------------------------------- weighted targets


def test_weighted_gram_targets() -> None:
    g1 = [torch.randn(3, 3, dtype=F64), torch.randn(5, 5, dtype=F64)]
    g2 = [torch.randn(3, 3, dtype=F64), torch.randn(5, 5, dtype=F64)]
    out = weighted_gram_targets([g1, g2], [0.7, 0.3])
    assert len(out) == 2
    for layer in range(2):
        torch.testing.assert_close(out[layer], 0.7 * g1[layer] + 0.3 * g2[layer])
    # Weights are normalised: 7/3 behaves like 0.7/0.3.
    for a, b in zip(weighted_gram_targets([g1, g2], [7.0, 3.0]), out, strict=True):
        torch.testing.assert_close(a, b)
    # Default: equal weights.
    for layer, t in enumerate(weighted_gram_targets([g1, g2], None)):
        torch.testing.assert_close(t, 0.5 * (g1[layer] + g2[layer]))
    # A single image gives its own Grams back.
    for a, b in zip(weighted_gram_targets([g1], [2.0]), g1, strict=True):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([-0.5, 1.5], "non-negative"),
        ([0.0, 0.0], "all be zero"),
        ([1.0], "2 images"),
        ([1.0, 2.0, 3.0], "2 images"),
        ([math.nan, 1.0], "finite"),
    ],
)
def test_weighted_gram_targets_bad_weights(weights: list[float], match: str) -> None:
    g = [torch.eye(3)]
    with pytest.raises(ValueError, match=match):
        weighted_gram_targets([g, g], weights)


def test_weighted_gram_targets_bad_grams() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        weighted_gram_targets([], None)
    with pytest.raises(ValueError, match="same number of layers"):
        weighted_gram_targets([[torch.eye(3)], [torch.eye(3), torch.eye(2)]], None)
    with pytest.raises(ValueError, match="expected"):
        weighted_gram_targets([[torch.eye(3)], [torch.eye(2)]], None)
    with pytest.raises(ValueError, match=r"\(C, C\) or \(N, C, C\)"):
        weighted_gram_targets([[torch.zeros(2, 3)]], None)


# --------------------------------------------------------------------------- content_loss


def test_content_loss_hand() -> None:
    # Sample 0: output [[1, 2], [3, 4]], target [[1, 0], [3, 6]] -> diffs 0, -2, 0, 2
    #           -> Σ = 8, / (C·H·W = 1·2·2) = 2.
    # Sample 1: identical -> 0.  Batch mean = 1.
    out = t64([[[[1.0, 2.0], [3.0, 4.0]]], [[[5.0, 6.0], [7.0, 8.0]]]])
    tgt = t64([[[[1.0, 0.0], [3.0, 6.0]]], [[[5.0, 6.0], [7.0, 8.0]]]])
    assert content_loss(out[:1], tgt[:1]).item() == pytest.approx(2.0, abs=1e-12)
    assert content_loss(out, tgt).item() == pytest.approx(1.0, abs=1e-12)


def test_content_loss_zero_for_identical() -> None:
    x = torch.randn(2, 3, 4, 5)
    assert content_loss(x, x.clone()).item() == 0.0


def test_content_loss_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="same shape"):
        content_loss(torch.randn(1, 3, 4, 4), torch.randn(1, 3, 4, 5))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        content_loss(torch.randn(3, 4, 4), torch.randn(3, 4, 4))


# --------------------------------------------------------------------------- total_variation


def test_total_variation_hand() -> None:
    # [[1, 2], [4, 8]]: horizontal (2-1)² + (8-4)² = 17, vertical (4-1)² + (8-2)² = 45
    # -> 62 / (C·H·W = 4) = 15.5.  A second, constant sample halves the batch mean.
    x = t64([[[[1.0, 2.0], [4.0, 8.0]]]])
    assert total_variation(x).item() == pytest.approx(15.5, abs=1e-12)
    batch = torch.cat([x, torch.full_like(x, 3.0)])
    assert total_variation(batch).item() == pytest.approx(7.75, abs=1e-12)


def test_total_variation_constant_is_zero() -> None:
    assert total_variation(torch.full((2, 3, 5, 7), 0.42)).item() == 0.0
    assert total_variation(torch.randn(2, 3, 5, 7)).item() > 0.0


def test_total_variation_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        total_variation(torch.randn(3, 5, 5))
    with pytest.raises(ValueError, match="non-empty"):
        total_variation(torch.randn(1, 3, 0, 5))


# --------------------------------------------------------------------------- GAN losses

REAL = t64([-2.0, 0.0, 0.3, 3.5])
FAKE = t64([-1.5, 0.5, 2.0, -4.0, 0.7])


def _log_sigmoid_ref(x: Tensor) -> Tensor:
    return torch.log(torch.sigmoid(x))


def _log_one_minus_sigmoid_ref(x: Tensor) -> Tensor:
    return torch.log(1.0 - torch.sigmoid(x))


def test_gan_losses_at_zero_logits() -> None:
    z = torch.zeros(4, dtype=F64)
    log2 = math.log(2.0)
    assert d_bce_loss(z, z).item() == pytest.approx(2 * log2, abs=1e-12)
    assert g_minimax_loss(z).item() == pytest.approx(-log2, abs=1e-12)
    assert g_nonsaturating_loss(z).item() == pytest.approx(log2, abs=1e-12)
    assert d_hinge_loss(z, z).item() == pytest.approx(2.0, abs=1e-12)
    assert g_hinge_loss(z).item() == pytest.approx(0.0, abs=1e-12)
    assert d_lsgan_loss(z, z).item() == pytest.approx(0.5, abs=1e-12)
    assert g_lsgan_loss(z).item() == pytest.approx(0.5, abs=1e-12)


def test_gan_losses_match_direct_formulas() -> None:
    r, f = REAL, FAKE
    cases: list[tuple[Tensor, Tensor]] = [
        (d_bce_loss(r, f), -_log_sigmoid_ref(r).mean() - _log_one_minus_sigmoid_ref(f).mean()),
        (g_minimax_loss(f), _log_one_minus_sigmoid_ref(f).mean()),
        (g_nonsaturating_loss(f), -_log_sigmoid_ref(f).mean()),
        (d_hinge_loss(r, f), (1 - r).clamp(min=0).mean() + (1 + f).clamp(min=0).mean()),
        (g_hinge_loss(f), -f.mean()),
        (d_lsgan_loss(r, f), 0.5 * ((r - 1) ** 2).mean() + 0.5 * (f**2).mean()),
        (g_lsgan_loss(f), 0.5 * ((f - 1) ** 2).mean()),
    ]
    for got, want in cases:
        assert got.dtype == F64
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
    # Hinge by hand: relu(1 - r) = [3, 1, 0.7, 0] -> 4.7 / 4; relu(1 + f) = [0, 1.5, 3, 0, 1.7]
    # -> 6.2 / 5.
    assert d_hinge_loss(r, f).item() == pytest.approx(4.7 / 4 + 6.2 / 5, abs=1e-12)


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_gan_losses_stable_at_extreme_logits(sign: float) -> None:
    big = torch.full((3,), 100.0 * sign, requires_grad=True)  # float32
    losses = [
        d_bce_loss(big, big),
        g_minimax_loss(big),
        g_nonsaturating_loss(big),
        d_hinge_loss(big, big),
        g_hinge_loss(big),
        d_lsgan_loss(big, big),
        g_lsgan_loss(big),
    ]
    for loss in losses:
        assert torch.isfinite(loss)
        (grad,) = torch.autograd.grad(loss, big)
        assert torch.isfinite(grad).all()
    # Values that a naive log(sigmoid(x)) would turn into ±inf in float32.
    if sign > 0:
        assert d_bce_loss(big, big).item() == pytest.approx(100.0, rel=1e-6)
        assert g_minimax_loss(big).item() == pytest.approx(-100.0, rel=1e-6)
        assert g_nonsaturating_loss(big).item() == pytest.approx(0.0, abs=1e-6)
    else:
        assert d_bce_loss(big, big).item() == pytest.approx(100.0, rel=1e-6)
        assert g_minimax_loss(big).item() == pytest.approx(0.0, abs=1e-6)
        assert g_nonsaturating_loss(big).item() == pytest.approx(100.0, rel=1e-6)


def test_gan_losses_reject_empty() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        g_hinge_loss(torch.empty(0))
    with pytest.raises(ValueError, match="non-empty"):
        d_bce_loss(torch.zeros(2), torch.empty(0))


def test_gan_loss_dispatch() -> None:
    r, f = REAL, FAKE
    expected: dict[str, tuple[Tensor, Tensor]] = {
        "bce": (d_bce_loss(r, f), g_nonsaturating_loss(f)),
        "minimax": (d_bce_loss(r, f), g_minimax_loss(f)),
        "hinge": (d_hinge_loss(r, f), g_hinge_loss(f)),
        "lsgan": (d_lsgan_loss(r, f), g_lsgan_loss(f)),
    }
    for kind, (d_want, g_want) in expected.items():
        gan = GanLoss(kind)  # type: ignore[arg-type]
        torch.testing.assert_close(gan.d(r, f), d_want, rtol=0, atol=0)
        torch.testing.assert_close(gan.g(f), g_want, rtol=0, atol=0)
    # The generator losses really differ between kinds.
    assert GanLoss("bce").g(f).item() != GanLoss("minimax").g(f).item()


def test_gan_loss_invalid_and_frozen() -> None:
    with pytest.raises(ValueError, match="unknown GAN loss kind"):
        GanLoss("wgan")  # type: ignore[arg-type]
    gan = GanLoss("hinge")
    with pytest.raises(dataclasses.FrozenInstanceError):
        gan.kind = "bce"  # type: ignore[misc]


# --------------------------------------------------------------------------- modules


def test_modules_match_functions() -> None:
    f = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(TotalVariation()(f), total_variation(f), rtol=0, atol=0)

    target = torch.randn(2, 3, 6, 5)
    torch.testing.assert_close(ContentLoss(target)(f), content_loss(f, target), rtol=0, atol=0)

    feats = [f, torch.randn(2, 4, 3, 3)]
    targets = [torch.randn(3, 3), torch.randn(2, 4, 4)]
    torch.testing.assert_close(
        StyleLoss(targets)(feats), style_loss(feats, targets), rtol=0, atol=0
    )


def test_module_targets_are_detached_buffers() -> None:
    tgt = torch.randn(3, 3, requires_grad=True)
    module = StyleLoss([tgt, torch.randn(1, 2, 2)])
    assert set(module.state_dict()) == {"target_0", "target_1"}
    assert not module.get_buffer("target_0").requires_grad
    with torch.no_grad():
        tgt.add_(1.0)  # the module holds its own copy
    torch.testing.assert_close(module.get_buffer("target_0"), tgt.detach() - 1.0)

    content = torch.randn(1, 3, 4, 4, requires_grad=True)
    cl = ContentLoss(content)
    assert "target" in dict(cl.named_buffers())
    assert not cl.target.requires_grad
    # Gradient still flows to the output features.
    out = torch.randn(1, 3, 4, 4, requires_grad=True)
    cl(out).backward()
    assert out.grad is not None and content.grad is None


def test_module_bad_targets() -> None:
    with pytest.raises(ValueError, match="at least one"):
        StyleLoss([])
    with pytest.raises(ValueError, match=r"\(C, C\) or \(N, C, C\)"):
        StyleLoss([torch.zeros(2, 3)])
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        ContentLoss(torch.zeros(3, 4, 4))
    with pytest.raises(ValueError, match="same shape"):
        ContentLoss(torch.zeros(1, 3, 4, 4))(torch.zeros(1, 3, 4, 5))


# --------------------------------------------------------------------------- gradcheck


def _rand(*shape: int) -> Tensor:
    return torch.randn(*shape, dtype=F64, requires_grad=True)


def test_gradcheck_feature_losses() -> None:
    f = _rand(2, 3, 4, 3)
    assert torch.autograd.gradcheck(gram_matrix, (f,))

    out1, out2 = _rand(2, 3, 4, 3), _rand(2, 2, 3, 3)
    tgt1, tgt2 = torch.randn(3, 3, dtype=F64), torch.randn(2, 2, 2, dtype=F64)
    assert torch.autograd.gradcheck(lambda a, b: style_loss([a, b], [tgt1, tgt2]), (out1, out2))

    assert torch.autograd.gradcheck(content_loss, (_rand(2, 3, 4, 3), _rand(2, 3, 4, 3)))
    assert torch.autograd.gradcheck(total_variation, (_rand(2, 3, 4, 5),))


def _away_from_kinks(*shape: int) -> Tensor:
    # Hinge losses have kinks at ±1; keep logits clear of them.
    x = torch.randn(*shape, dtype=F64)
    x = torch.where((x.abs() - 1.0).abs() < 0.1, x + 0.3, x)
    return x.requires_grad_(True)


@pytest.mark.parametrize("fn", [d_bce_loss, d_hinge_loss, d_lsgan_loss])
def test_gradcheck_d_losses(fn: Callable[[Tensor, Tensor], Tensor]) -> None:
    assert torch.autograd.gradcheck(fn, (_away_from_kinks(6), _away_from_kinks(2, 3)))


@pytest.mark.parametrize("fn", [g_minimax_loss, g_nonsaturating_loss, g_hinge_loss, g_lsgan_loss])
def test_gradcheck_g_losses(fn: Callable[[Tensor], Tensor]) -> None:
    assert torch.autograd.gradcheck(fn, (_away_from_kinks(7),))


def test_composition_match_compares_each_picture_shrunk_with_its_own_composition() -> None:
    from styleforge.losses import composition_match

    gen = torch.Generator().manual_seed(0)
    pictures = torch.rand(3, 3, 32, 32, generator=gen, requires_grad=True)
    own = torch.nn.functional.avg_pool2d(pictures.detach(), 4)  # (3,3,8,8)
    assert composition_match(pictures, own).item() < 1e-6
    other = own.roll(1, 0)  # another picture's composition
    loss = composition_match(pictures, other)
    assert loss.item() == pytest.approx((own - other).abs().mean().item(), rel=1e-5)
    loss.backward()
    assert pictures.grad is not None and pictures.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="one"):
        composition_match(pictures, own[:2])


def test_layout_match_pairs_each_real_layout_with_one_generated_one() -> None:
    from styleforge.losses import layout_match

    gen = torch.Generator().manual_seed(0)
    coarse = torch.rand(6, 3, 4, 4, generator=gen)  # six different compositions
    real = torch.nn.functional.interpolate(coarse, scale_factor=8, mode="nearest")
    # The same pictures in another order: every layout has its twin, so nothing to pull.
    assert layout_match(real[torch.randperm(6, generator=gen)], real, side=8).item() < 1e-6
    # A set collapsed onto one real layout is further than a set spread over all of them.
    collapsed = real[:1].expand(6, -1, -1, -1)
    assert layout_match(collapsed, real, side=8) > 0.1
    # Only the layout counts: pixel noise that averages out within a cell costs little.
    fine = real + 0.2 * torch.randn(6, 3, 32, 32, generator=gen)
    assert layout_match(fine, real, side=8) < 0.25 * layout_match(collapsed, real, side=8)
    x = collapsed.clone().requires_grad_(True)
    layout_match(x, real, side=8).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="batches differ"):
        layout_match(real[:2], real, side=8)
