"""Evaluation metrics: style distance/gain, content error, SSIM, KID, memorization."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.errors import UserError
from styleforge.features import VGGEncoder
from styleforge.images import load_image, pil_to_tensor, rgb_to_yiq
from styleforge.metrics import (
    POOL_LAYERS,
    POOL_SCALES,
    EvalSettings,
    FeatureBank,
    collection_target,
    content_error,
    kid,
    match_size,
    memorization,
    pooled_vector,
    ssim,
    style_distance,
    style_gain,
)
from styleforge.metrics.kid import _mmd2_unbiased, polynomial_kernel
from tests.conftest import ASSETS

HOKUSAI = sorted((ASSETS / "hokusai_fuji").glob("*.jpg"))
STARRY = ASSETS / "style_images" / "starry_night.jpg"


@pytest.fixture(scope="module")
def bank() -> FeatureBank:
    """The real offline VGG16 for all evaluation layers, at a 64 px long side."""
    return FeatureBank(EvalSettings(size=64))


def _noisy(image: torch.Tensor, sigma: float, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (image + sigma * torch.randn(image.shape, generator=g)).clamp(0.0, 1.0)


def _skimage_photo(name: str) -> torch.Tensor:
    from skimage import data

    arr = getattr(data, name)()
    if arr.ndim == 2:
        arr = np.stack([arr] * 3, axis=-1)
    return pil_to_tensor(Image.fromarray(arr))


# --------------------------------------------------------------------------- features


def test_settings_layers_include_pool_layers_once() -> None:
    settings = EvalSettings(style_layers=("relu1_1", "relu3_1"), content_layer="relu3_1")
    assert settings.layers == ("relu1_1", "relu3_1", *[n for n in POOL_LAYERS if n != "relu3_1"])
    with pytest.raises(UserError):
        EvalSettings(size=8)


def test_pooled_vector_is_scaled_channel_mean_and_std() -> None:
    gen = torch.Generator().manual_seed(0)
    channels = {"relu2_1": 128, "relu3_1": 256, "relu4_1": 512, "relu5_1": 512}
    feats = {name: 50 * torch.rand(1, c, 6, 5, generator=gen) for name, c in channels.items()}
    pooled = pooled_vector(feats)
    assert pooled.shape == (2 * sum(channels.values()),)
    start = 0
    for name in POOL_LAYERS:
        flat = feats[name][0].flatten(1)
        c, scale = flat.shape[0], POOL_SCALES[name]
        assert torch.allclose(pooled[start : start + c], flat.mean(1) / scale)
        std = flat.std(1, unbiased=False) / scale
        assert torch.allclose(pooled[start + c : start + 2 * c], std)
        start += 2 * c


@pytest.mark.slow
def test_feature_bank_shapes_and_path_input(bank: FeatureBank) -> None:
    feats = bank.features(STARRY)
    assert max(feats.size) == 64
    assert [tuple(g.shape) for g in feats.grams] == [(c, c) for c in (64, 128, 256, 512, 512)]
    assert feats.content.shape[:2] == (1, 512)
    assert feats.pooled.shape == (2 * (128 + 256 + 512 + 512),)
    # a path gives the same features as the same file loaded at the bank's size
    same = bank.features(load_image(STARRY, size=64))
    assert torch.equal(feats.pooled, same.pooled)
    # ... and as the full-size tensor: files and tensors share one resize policy
    assert torch.equal(bank.prepare(STARRY), bank.prepare(load_image(STARRY)))
    assert torch.equal(bank.pooled([STARRY, STARRY])[1], feats.pooled)


@pytest.mark.slow
def test_pooled_vector_is_order_one_at_default_size() -> None:
    pooled = FeatureBank().pooled([STARRY, HOKUSAI[0]])
    rms = pooled.pow(2).mean(dim=1).sqrt()
    assert torch.all((rms > 0.3) & (rms < 3.0)), rms


def test_feature_bank_rejects_encoder_without_layers(transfer_encoder: VGGEncoder) -> None:
    settings = EvalSettings(style_layers=("relu1_2",))
    with pytest.raises(ValueError, match="relu1_2"):
        FeatureBank(settings, encoder=transfer_encoder)


# --------------------------------------------------------------------------- identity


@pytest.mark.slow
def test_identical_images_score_perfectly(bank: FeatureBank, photo: torch.Tensor) -> None:
    grams = bank.grams(photo)
    assert style_distance(grams, grams) == pytest.approx(0.0, abs=1e-6)
    result_feat, photo_feat = bank.content_pair(photo, photo.clone())
    assert content_error(result_feat, photo_feat) == pytest.approx(0.0, abs=1e-6)
    assert ssim(photo, photo.clone()) == pytest.approx(1.0, abs=1e-6)


def test_collection_target_is_mean_gram() -> None:
    g = torch.Generator().manual_seed(0)
    a = [torch.rand(4, 4, generator=g), torch.rand(1, 6, 6, generator=g)]
    b = [torch.rand(4, 4, generator=g), torch.rand(6, 6, generator=g)]
    target = collection_target([a, b])
    assert torch.allclose(target[0], ((a[0] + b[0]) / 2).double())
    assert torch.allclose(target[1], ((a[1][0] + b[1]) / 2).double())
    # to the centroid (a + b)/2, a is (a - b)/2 away: relative distance ‖a − b‖ / ‖a + b‖
    a0, a1 = a[0].double(), a[1][0].double()
    b0, b1 = b[0].double(), b[1].double()
    expected = 0.5 * (
        (torch.norm(a0 - b0) / torch.norm(a0 + b0)).item()
        + (torch.norm(a1 - b1) / torch.norm(a1 + b1)).item()
    )
    assert style_distance(a, target) == pytest.approx(expected)
    with pytest.raises(UserError):
        collection_target([])


def test_style_gain_edges() -> None:
    assert style_gain(0.8, 0.4) == pytest.approx(2.0)
    assert style_gain(0.8, 0.0) == math.inf
    assert style_gain(0.0, 0.0) == 1.0
    with pytest.raises(ValueError):
        style_gain(-1.0, 0.5)


@pytest.mark.slow
def test_result_closer_to_style_has_higher_gain(bank: FeatureBank, photo: torch.Tensor) -> None:
    style = bank.prepare(STARRY)
    target = bank.grams(style)
    base = match_size(photo, style)  # blend pixel by pixel at the style's size
    photo_distance = style_distance(bank.grams(base), target)

    def gain(alpha: float) -> float:
        result = (1 - alpha) * base + alpha * style
        return style_gain(photo_distance, style_distance(bank.grams(result), target))

    assert gain(0.0) == pytest.approx(1.0)
    assert gain(1.0) == math.inf  # the style image itself: distance 0
    strong, half = gain(0.9), gain(0.5)
    assert strong > 2.0 * half
    assert half > 1.1


# --------------------------------------------------------------------------- content


@pytest.mark.slow
def test_content_error_grows_as_photo_fades(bank: FeatureBank, photo: torch.Tensor) -> None:
    style = match_size(bank.prepare(STARRY), photo)
    errors = [
        content_error(*bank.content_pair((1 - a) * photo + a * style, photo))
        for a in (0.1, 0.5, 0.9)
    ]
    assert 0.0 < errors[0] < errors[1] < errors[2]


def test_content_error_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="resize the photo"):
        content_error(torch.ones(1, 4, 5, 6), torch.ones(1, 4, 6, 5))


def test_match_size_follows_reference() -> None:
    image = torch.rand(1, 3, 30, 50, generator=torch.Generator().manual_seed(0))
    out = match_size(image, torch.zeros(1, 3, 20, 24))
    assert out.shape == (1, 3, 20, 24)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(match_size(image, image), image)


def test_ssim_matches_skimage(photo: torch.Tensor) -> None:
    from skimage.metrics import structural_similarity

    noisy = _noisy(photo, 0.08, seed=1)
    y_a = rgb_to_yiq(photo.double())[0, 0].numpy()
    y_b = rgb_to_yiq(noisy.double())[0, 0].numpy()
    expected = structural_similarity(
        y_a, y_b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1.0
    )
    assert 0.2 < expected < 0.95
    assert ssim(photo, noisy) == pytest.approx(expected, abs=1e-3)


def test_ssim_keeps_the_values_of_the_hand_written_one() -> None:
    """Figures of the earlier hand-written SSIM (valid 11×11 Gaussian convolution, float64),
    recorded before it was replaced by scikit-image's."""
    cat = _skimage_photo("chelsea")[..., 100:164, 150:230]
    noisy = _noisy(cat, 0.08, seed=1)
    coffee = _skimage_photo("coffee")[..., 200:264, 200:280]
    g = torch.Generator().manual_seed(3)
    a = torch.rand(2, 3, 23, 31, generator=g)
    b = a * 0.7 + 0.3 * torch.rand(2, 3, 23, 31, generator=g)
    assert ssim(cat, noisy) == pytest.approx(0.6775699599640925, abs=1e-9)
    assert ssim(cat, coffee) == pytest.approx(0.1639183103153964, abs=1e-9)
    assert ssim(a, b) == pytest.approx(0.8812925486710069, abs=1e-9)  # mean over a batch
    assert ssim(a[..., :11, :11], b[..., :11, :11]) == pytest.approx(0.8704507526036862, abs=1e-9)


def test_ssim_lower_for_noisier_copy(photo: torch.Tensor) -> None:
    light, heavy = _noisy(photo, 0.03, seed=2), _noisy(photo, 0.15, seed=2)
    assert ssim(photo, light) > ssim(photo, heavy) + 0.1
    assert ssim(photo, light) < 1.0


def test_ssim_needs_same_shape_and_window() -> None:
    with pytest.raises(ValueError):
        ssim(torch.zeros(1, 3, 20, 20), torch.zeros(1, 3, 20, 21))
    with pytest.raises(UserError, match="11x11"):
        ssim(torch.zeros(1, 3, 10, 20), torch.zeros(1, 3, 10, 20))


# --------------------------------------------------------------------------- KID


def test_kid_near_zero_for_same_distribution() -> None:
    z = torch.randn(200, 64, generator=torch.Generator().manual_seed(0))
    # halves of 100, subset size 100 = both set sizes: one full estimate, jackknife stderr
    value, stderr = kid(z[:100], z[100:])
    assert 0.0 < stderr < 0.1
    assert abs(value) < 3 * stderr + 1e-3
    shifted, shifted_se = kid(z[:100], z[100:] + 0.5)
    assert shifted > 10 * shifted_se and shifted > 20 * abs(value)


def test_kid_subsets_same_vs_shifted() -> None:
    z = torch.randn(400, 32, generator=torch.Generator().manual_seed(3))
    value, stderr = kid(z[:200], z[200:], subset_size=50, n_subsets=50, seed=1)
    subset_std = stderr * math.sqrt(50)  # sampling spread of one subset estimate
    assert abs(value) < 3 * subset_std
    shifted, _ = kid(z[:200], z[200:] + 0.5, subset_size=50, n_subsets=50, seed=1)
    assert shifted > 3 * subset_std + abs(value)
    # seeded: same seed, same answer; another seed, other subsets
    assert kid(z[:200], z[200:], subset_size=50, n_subsets=50, seed=1) == (value, stderr)
    assert kid(z[:200], z[200:], subset_size=50, n_subsets=50, seed=2)[0] != value


def test_kid_is_unbiased_over_many_draws() -> None:
    gen = torch.Generator().manual_seed(42)
    values = torch.tensor([kid(*torch.randn(2, 30, 16, generator=gen))[0] for _ in range(200)])
    assert abs(values.mean().item()) < 3 * values.std().item() / math.sqrt(200)


def test_unbiased_mmd_matches_definition() -> None:
    gen = torch.Generator().manual_seed(5)
    x, y = torch.randn(5, 3, generator=gen).double(), torch.randn(4, 3, generator=gen).double()
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    xx = sum(k(x[i], x[j]) for i in range(5) for j in range(5) if i != j) / 20
    yy = sum(k(y[i], y[j]) for i in range(4) for j in range(4) if i != j) / 12
    xy = sum(k(x[i], y[j]) for i in range(5) for j in range(4)) / 20
    kxx, kyy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    got = _mmd2_unbiased(kxx, kyy, polynomial_kernel(x, y))
    assert got == pytest.approx(float(xx + yy - 2 * xy))


def test_kid_jackknife_matches_brute_force() -> None:
    gen = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 5, generator=gen).double(), torch.randn(6, 5, generator=gen).double()

    def full(a: torch.Tensor, b: torch.Tensor) -> float:
        return _mmd2_unbiased(
            polynomial_kernel(a, a), polynomial_kernel(b, b), polynomial_kernel(a, b)
        )

    drop = lambda t, i: torch.cat([t[:i], t[i + 1 :]])  # noqa: E731
    tx = torch.tensor([full(drop(x, i), y) for i in range(6)])
    ty = torch.tensor([full(x, drop(y, j)) for j in range(6)])
    var = 5 / 6 * ((tx - tx.mean()) ** 2).sum() + 5 / 6 * ((ty - ty.mean()) ** 2).sum()
    value, stderr = kid(x, y)
    assert value == pytest.approx(full(x, y))
    assert stderr == pytest.approx(var.sqrt().item())


def test_kid_needs_two_images_per_set() -> None:
    with pytest.raises(UserError, match=r"KID needs at least 2 images in each set \(got 1 and 5\)"):
        kid(torch.zeros(1, 8), torch.zeros(5, 8))
    with pytest.raises(UserError, match=r"\(got 4 and 1\)"):
        kid(torch.zeros(4, 8), torch.zeros(1, 8))
    with pytest.raises(UserError, match="subset size"):
        kid(torch.zeros(4, 8), torch.zeros(5, 8), subset_size=5)


@pytest.mark.slow
def test_kid_separates_prints_from_photos(bank: FeatureBank) -> None:
    assert len(HOKUSAI) == 12
    prints = bank.pooled(HOKUSAI)
    names = ("astronaut", "chelsea", "coffee", "rocket", "camera", "immunohistochemistry")
    photos = bank.pooled([_skimage_photo(name) for name in names])
    within, within_se = kid(prints[:6], prints[6:])
    across, _ = kid(photos, prints)
    assert across > within + 3 * within_se
    assert across > 5 * abs(within)


# --------------------------------------------------------------------------- memorization


def test_memorization_copy_and_far_samples() -> None:
    gen = torch.Generator().manual_seed(0)
    collection = torch.randn(10, 16, generator=gen)
    samples = torch.cat([collection[3:4], collection[:2] + 100.0])
    result = memorization(samples, collection)
    assert result["per_sample"][0] == 0.0
    assert all(r > 1.0 for r in result["per_sample"][1:])
    assert result["copies"] == 1
    assert result["min"] == 0.0
    assert result["median"] == sorted(result["per_sample"])[1]


def test_memorization_ratio_scale() -> None:
    gen = torch.Generator().manual_seed(1)
    collection = torch.randn(20, 8, generator=gen)
    near = collection[:4] + 1e-3 * torch.randn(4, 8, generator=gen)
    fresh = torch.randn(50, 8, generator=gen)  # new draws from the same distribution
    assert memorization(near, collection)["copies"] == 4
    fresh_result = memorization(fresh, collection)
    assert 0.6 < fresh_result["median"] < 2.0
    assert fresh_result["copies"] < 10


def test_memorization_needs_two_collection_items() -> None:
    with pytest.raises(UserError, match="at least 2 collection images"):
        memorization(torch.zeros(3, 4), torch.zeros(1, 4))
