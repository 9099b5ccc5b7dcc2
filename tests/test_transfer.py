"""Optimisation-based transfer with the real pretrained VGG16 (tiny images)."""

from __future__ import annotations

import itertools

import pytest
import torch

from styleforge.errors import UserError
from styleforge.features import VGGEncoder
from styleforge.images import resize_to, rgb_to_yiq
from styleforge.infer.transfer import LossTerms, TransferConfig, transfer

pytestmark = pytest.mark.slow


def test_scales_coarse_to_fine_only_for_large_outputs() -> None:
    assert TransferConfig(size=512).scales() == [512]
    assert TransferConfig(size=1024).scales() == [512, 724, 1024]
    ladder = TransferConfig(size=2048).scales()
    assert ladder[0] == 512 and ladder[-1] == 2048
    assert all(b > a for a, b in itertools.pairwise(ladder))
    cfg = TransferConfig(size=1024, steps=100)
    assert [cfg.steps_at(i) for i in range(3)] == [100, 50, 50]


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(UserError):
        TransferConfig(steps=0)
    with pytest.raises(UserError):
        TransferConfig(style_weight=-1)


def test_transfer_lowers_style_loss_and_keeps_content(
    photo: torch.Tensor, starry: torch.Tensor, transfer_encoder: VGGEncoder
) -> None:
    cfg = TransferConfig(size=64, steps=40)
    history: list[LossTerms] = []
    out = transfer(photo, [starry], cfg, encoder=transfer_encoder, progress=False, history=history)
    assert out.shape == (1, 3, 43, 64)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    first, last = history[0], history[-1]
    assert first.content == 0.0  # starts from the photo
    assert last.style < first.style / 5  # style loss falls by a clear factor
    assert last.content < first.style / 5  # while the photo's content stays bounded
    assert not torch.allclose(out, photo, atol=0.05)


def test_noise_init_is_reproducible_by_seed(
    photo: torch.Tensor, starry: torch.Tensor, transfer_encoder: VGGEncoder
) -> None:
    cfg = TransferConfig(size=32, steps=3, init="noise", seed=7)
    a = transfer(photo, [starry], cfg, encoder=transfer_encoder, progress=False)
    b = transfer(photo, [starry], cfg, encoder=transfer_encoder, progress=False)
    c = transfer(
        photo, [starry], TransferConfig(size=32, steps=3, init="noise", seed=8),
        encoder=transfer_encoder, progress=False,
    )  # fmt: skip
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_preserve_colors_keeps_the_photos_chroma(
    photo: torch.Tensor, starry: torch.Tensor, transfer_encoder: VGGEncoder
) -> None:
    cfg = TransferConfig(size=48, steps=10, preserve_colors=True)
    out = transfer(photo, [starry], cfg, encoder=transfer_encoder, progress=False)
    want = rgb_to_yiq(resize_to(photo, 48))[:, 1:]
    got = rgb_to_yiq(out)[:, 1:]
    assert (got - want).abs().mean() < 0.01  # chroma of the photo (up to clamping)
    plain = transfer(
        photo, [starry], TransferConfig(size=48, steps=10), encoder=transfer_encoder, progress=False
    )
    assert (rgb_to_yiq(plain)[:, 1:] - want).abs().mean() > 0.02  # plain transfer recolours


def test_multiscale_and_adam_and_two_weighted_styles(
    photo: torch.Tensor, starry: torch.Tensor, transfer_encoder: VGGEncoder
) -> None:
    cfg = TransferConfig(size=64, steps=4, base_size=32, multiscale_from=64, optimizer="adam")
    assert cfg.scales() == [32, 45, 64]
    history: list[LossTerms] = []
    out = transfer(
        photo, [starry, starry.flip(-1)], cfg, style_weights=[0.7, 0.3],
        encoder=transfer_encoder, progress=False, history=history,
    )  # fmt: skip
    assert out.shape == (1, 3, 43, 64)
    assert len(history) == 4 + 2 + 2
