"""Tests for styleforge.train.augment: DiffAugment and the ADA-style probability controller."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from styleforge.train.augment import AugmentPolicy, diff_augment

COLOR = AugmentPolicy(color=True, translation=0.0, cutout=0.0)
TRANSLATE = AugmentPolicy(color=False, translation=0.25, cutout=0.0)
CUTOUT = AugmentPolicy(color=False, translation=0.0, cutout=0.5)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 4, h: int = 32, w: int = 48) -> Tensor:
    return torch.rand(n, 3, h, w, generator=gen(123))


def test_same_seed_same_output_different_seed_different() -> None:
    x = images()
    a = diff_augment(x, AugmentPolicy(), gen(1))
    b = diff_augment(x, AugmentPolicy(), gen(1))
    c = diff_augment(x, AugmentPolicy(), gen(2))
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert a.shape == x.shape and a.dtype == x.dtype


def test_resumable_from_generator_state() -> None:
    x = images()
    g = gen(7)
    diff_augment(x, generator=g)
    state = g.get_state()
    second = diff_augment(x, generator=g)
    g2 = torch.Generator()
    g2.set_state(state)
    assert torch.equal(diff_augment(x, generator=g2), second)


def test_global_rng_when_no_generator() -> None:
    x = images()
    torch.manual_seed(5)
    a = diff_augment(x)
    torch.manual_seed(5)
    assert torch.equal(diff_augment(x), a)


@pytest.mark.parametrize("policy", [AugmentPolicy(), COLOR, TRANSLATE, CUTOUT])
def test_gradient_flows_to_input(policy: AugmentPolicy) -> None:
    x = images().requires_grad_(True)
    diff_augment(x, policy, gen(0)).sum().backward()
    assert x.grad is not None
    assert x.grad.abs().sum() > 0


def test_p_zero_is_identity_and_input_untouched() -> None:
    x = images()
    before = x.clone()
    out = diff_augment(x, AugmentPolicy(), gen(0), p=0.0)
    assert torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr()
    diff_augment(x, AugmentPolicy(), gen(0), p=1.0)
    assert torch.equal(x, before)


def test_rng_consumption_does_not_depend_on_p() -> None:
    x = images()
    g1, g2 = gen(3), gen(3)
    diff_augment(x, generator=g1, p=0.0)
    diff_augment(x, generator=g2, p=0.7)
    assert torch.equal(g1.get_state(), g2.get_state())


def test_per_sample_probability() -> None:
    x = torch.rand(1, 3, 8, 8).expand(200, -1, -1, -1).contiguous()
    out = diff_augment(x, COLOR, gen(0), p=0.5)
    changed = (out != x).flatten(1).any(dim=1).float().mean().item()
    assert 0.35 < changed < 0.65


def test_color_is_per_sample() -> None:
    x = torch.rand(1, 3, 16, 16).expand(4, -1, -1, -1)
    out = diff_augment(x, COLOR, gen(0))
    assert not torch.allclose(out[0], out[1])
    assert not torch.allclose(out[0], x[0])


def test_brightness_range() -> None:
    # A grey image has zero saturation and contrast, so only the brightness shift remains.
    x = torch.full((500, 3, 4, 4), 0.5)
    shift = diff_augment(x, COLOR, gen(0)) - x
    assert shift.abs().max() <= 0.25 + 1e-6
    assert shift.max() > 0.2 and shift.min() < -0.2


def _best_shift(src: Tensor, dst: Tensor, max_shift: tuple[int, int]) -> tuple[int, int] | None:
    """The (dy, dx) with dst == src shifted by (dy, dx), zero-filled, or None."""
    _, h, w = src.shape
    for dy in range(-max_shift[0], max_shift[0] + 1):
        for dx in range(-max_shift[1], max_shift[1] + 1):
            ref = torch.zeros_like(src)
            ref[:, max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = src[
                :, max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
            ]
            if torch.equal(ref, dst):
                return dy, dx
    return None


def test_translation_is_a_zero_filled_shift_within_bounds() -> None:
    x = images(n=6, h=32, w=40) + 0.1  # strictly positive, so fill is distinguishable
    out = diff_augment(x, TRANSLATE, gen(4))
    assert out.shape == x.shape
    shifts = [_best_shift(x[i], out[i], (8, 10)) for i in range(len(x))]
    assert all(s is not None for s in shifts)
    assert any(s != (0, 0) for s in shifts)
    assert len({s[0] for s in shifts if s}) > 1  # per-sample vertical shifts
    assert len({s[1] for s in shifts if s}) > 1  # per-sample horizontal shifts


def test_cutout_zeroes_one_rectangle_of_expected_area() -> None:
    h, w = 32, 48
    out = diff_augment(torch.ones(8, 3, h, w), CUTOUT, gen(0))
    for o in out:
        assert torch.equal(o[0], o[1]) and torch.equal(o[0], o[2])  # same hole in every channel
        zeros = (o[0] == 0).nonzero()
        assert len(zeros) == 16 * 24
        (y0, x0), (y1, x1) = zeros.min(0).values, zeros.max(0).values
        assert (y1 - y0 + 1, x1 - x0 + 1) == (16, 24)  # a solid rectangle, fully inside
    corners = {tuple((o[0] == 0).nonzero().min(0).values.tolist()) for o in out}
    assert len(corners) > 1  # random positions


def test_policy_disabled_is_identity_and_validation() -> None:
    x = images()
    off = AugmentPolicy(color=False, translation=0.0, cutout=0.0)
    assert torch.equal(diff_augment(x, off, gen(0)), x)
    with pytest.raises(ValueError, match="translation"):
        AugmentPolicy(translation=1.0)
    with pytest.raises(ValueError, match="cutout"):
        AugmentPolicy(cutout=-0.1)
    with pytest.raises(ValueError, match="p must"):
        diff_augment(x, p=1.5)
    with pytest.raises(ValueError, match="N,C,H,W"):
        diff_augment(x[0])
    pol = AugmentPolicy(color=False, translation=0.2, cutout=0.3)
    assert AugmentPolicy.from_dict(pol.to_dict()) == pol


def test_gaussian_blur_keeps_flat_colour_and_the_mean_and_removes_fine_stripes() -> None:
    from styleforge.train.augment import gaussian_blur

    flat = torch.full((2, 3, 16, 16), 0.3)
    assert torch.allclose(gaussian_blur(flat, 2.0), flat, atol=1e-6)
    stripes = torch.zeros(1, 3, 32, 32)
    stripes[..., ::2] = 1.0  # a 2-px column pattern
    soft = gaussian_blur(stripes, 1.5)
    assert soft.std() < 0.02 * stripes.std()  # the stripes are gone
    assert abs(soft.mean().item() - 0.5) < 0.02  # the tone is kept
    x = images()
    assert gaussian_blur(x, 0.0) is x  # off: the very same tensor
    y = x.clone().requires_grad_(True)
    gaussian_blur(y, 1.0).sum().backward()
    assert y.grad is not None and torch.isfinite(y.grad).all()
    # Larger than the picture: the kernel is cut to fit, no error.
    assert gaussian_blur(torch.rand(1, 3, 4, 4), 10.0).shape == (1, 3, 4, 4)
