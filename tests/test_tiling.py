"""Tiled application: exact reconstruction, pointwise equivalence, batching, arguments."""

from __future__ import annotations

import subprocess
import sys
from itertools import pairwise

import numpy as np
import pytest

from styleforge.infer.tiling import apply_tiled, blend_window, tile_starts


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A seeded random float32 (1,3,h,w) image in [0, 1)."""
    return np.random.default_rng(seed).random((1, 3, h, w), dtype=np.float32)


class _Recorder:
    """Identity-like ``fn`` that records the shape of each batch it is given."""

    def __init__(self, op: str = "identity") -> None:
        self.shapes: list[tuple[int, ...]] = []
        self.op = op

    def __call__(self, x: np.ndarray) -> np.ndarray:
        assert x.dtype == np.float32 and x.ndim == 4 and x.shape[1] == 3
        self.shapes.append(x.shape)
        return x.copy() if self.op == "identity" else x**2 + 0.1


@pytest.mark.parametrize("length", [1, 2, 5, 16, 17, 31, 32, 33, 63, 64, 65, 100, 257, 1000])
@pytest.mark.parametrize(("tile", "overlap"), [(1, 0), (4, 0), (4, 1), (8, 3), (16, 4), (64, 0)])
def test_tile_starts_cover_with_overlap(length: int, tile: int, overlap: int) -> None:
    starts = tile_starts(length, tile, overlap)
    if length <= tile:
        assert starts == [0]
        return
    assert starts[0] == 0
    assert starts[-1] == length - tile
    gaps = [b - a for a, b in pairwise(starts)]
    assert all(g > 0 for g in gaps), starts
    assert all(tile - g >= overlap for g in gaps), starts  # shared px between neighbours
    assert max(gaps) - min(gaps) <= 1, starts  # evenly spread
    covered = np.zeros(length, dtype=bool)
    for s in starts:
        covered[s : s + tile] = True
    assert covered.all()
    # Fewest tiles: one tile less could not keep the overlap.
    if len(starts) > 2:
        assert (len(starts) - 2) * (tile - overlap) < length - tile


def test_tile_starts_bad_arguments() -> None:
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, 16)
    with pytest.raises(ValueError, match="overlap"):
        tile_starts(100, 16, -1)
    with pytest.raises(ValueError, match="tile"):
        tile_starts(100, 0, 0)
    with pytest.raises(ValueError, match="length"):
        tile_starts(0, 16, 4)


def test_blend_window_shape_ramps_and_positivity() -> None:
    win = blend_window(20, 30, 4, 0, 6, 5)
    assert win.shape == (20, 30) and win.dtype == np.float32
    assert (win > 0).all() and (win <= 1).all()
    assert win[4:, 6:25].min() == 1.0  # flat interior and untouched bottom border
    assert win[-1, 15] == 1.0
    np.testing.assert_array_less(win[0, 15], 0.2)  # near 0 at a ramped edge
    assert np.all(np.diff(win[:5, 15]) > 0)  # rising ramp
    assert np.all(np.diff(win[10, 24:]) < 0)  # falling ramp
    # Equal-length rising and falling ramps cross-fade to exactly 1.
    row = blend_window(1, 8, 0, 0, 8, 0)[0]
    np.testing.assert_allclose(row + row[::-1], 1.0, atol=1e-6)
    assert (blend_window(3, 3, 0, 0, 0, 0) == 1).all()


def test_blend_window_bad_arguments() -> None:
    with pytest.raises(ValueError, match="fit"):
        blend_window(8, 8, 5, 4, 0, 0)
    with pytest.raises(ValueError, match=">= 0"):
        blend_window(8, 8, -1, 0, 0, 0)
    with pytest.raises(ValueError, match="positive"):
        blend_window(0, 8, 0, 0, 0, 0)


@pytest.mark.parametrize(
    ("h", "w", "tile", "overlap", "batch"),
    [
        (32, 32, 16, 4, 1),
        (37, 53, 16, 4, 3),  # not multiples of the tile
        (17, 100, 16, 5, 2),  # just over one tile high
        (10, 12, 16, 4, 1),  # smaller than one tile
        (16, 16, 16, 4, 1),  # exactly one tile
        (9, 70, 16, 7, 4),  # one tile high, several wide
        (40, 41, 8, 0, 5),  # no requested overlap
        (64, 48, 9, 4, 8),
    ],
)
def test_identity_is_exact(h: int, w: int, tile: int, overlap: int, batch: int) -> None:
    image = _image(h, w, seed=h * w)
    out = apply_tiled(_Recorder(), image, tile=tile, overlap=overlap, batch=batch)
    assert out.shape == image.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, image, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("h", "w"), [(45, 61), (12, 15), (33, 17)])
def test_pointwise_fn_matches_whole_image(h: int, w: int) -> None:
    image = _image(h, w, seed=1)
    out = apply_tiled(_Recorder("square"), image, tile=16, overlap=4, batch=2)
    np.testing.assert_allclose(out, image**2 + 0.1, rtol=0, atol=1e-6)


def test_single_tile_calls_fn_once_on_whole_image() -> None:
    image = _image(12, 16)
    rec = _Recorder()
    out = apply_tiled(rec, image, tile=16, overlap=4, batch=4)
    assert rec.shapes == [(1, 3, 12, 16)]
    np.testing.assert_array_equal(out, image)
    # A plain identity returning its input still yields a separate array.
    same = apply_tiled(lambda x: x, image, tile=16, overlap=4)
    assert same is not image and not np.shares_memory(same, image)


def test_fn_calls_and_batch_sizes() -> None:
    image = _image(40, 64)
    n_y, n_x = len(tile_starts(40, 16, 4)), len(tile_starts(64, 16, 4))
    assert (n_y, n_x) == (3, 5)
    for batch, expected in [(1, [1] * 15), (4, [4, 4, 4, 3]), (15, [15]), (100, [15])]:
        rec = _Recorder()
        apply_tiled(rec, image, tile=16, overlap=4, batch=batch)
        assert [s[0] for s in rec.shapes] == expected
        assert all(s[1:] == (3, 16, 16) for s in rec.shapes)
    # Clipped to the image: an image lower than the tile gives lower tiles.
    rec = _Recorder()
    apply_tiled(rec, _image(10, 40), tile=16, overlap=4, batch=8)
    assert rec.shapes == [(len(tile_starts(40, 16, 4)), 3, 10, 16)]


def test_blending_hides_seams() -> None:
    """A per-tile constant offset is cross-faded: no jump larger than the offset step."""
    image = np.zeros((1, 3, 24, 60), dtype=np.float32)
    calls = iter(range(100))

    def offset(x: np.ndarray) -> np.ndarray:
        return x + np.float32(next(calls))  # tile k gets value k (batch=1)

    out = apply_tiled(offset, image, tile=16, overlap=6, batch=1)[0, 0, 0]
    assert out[0] == 0 and out[-1] == len(tile_starts(60, 16, 6)) - 1
    assert np.abs(np.diff(out)).max() < 0.5  # a hard seam would jump by 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tile": 8, "overlap": 4}, "2\\*overlap"),
        ({"tile": 8, "overlap": -1}, "overlap"),
        ({"tile": 8, "overlap": 2, "batch": 0}, "batch"),
    ],
)
def test_apply_tiled_bad_arguments(kwargs: dict[str, int], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        apply_tiled(_Recorder(), _image(20, 20), **kwargs)


@pytest.mark.parametrize("shape", [(3, 20, 20), (1, 1, 20, 20), (2, 3, 20, 20), (1, 4, 8, 8)])
def test_apply_tiled_bad_image(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="1,3,H,W"):
        apply_tiled(_Recorder(), np.zeros(shape, dtype=np.float32), tile=8, overlap=2)


def test_fn_changing_shape_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        apply_tiled(lambda x: x[:, :, :-1], _image(30, 30), tile=8, overlap=2)


def test_module_does_not_import_torch() -> None:
    code = "import sys, styleforge.infer.tiling; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
