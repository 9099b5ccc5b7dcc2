"""Tests for styleforge.collection: scanning a folder of user images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.collection import Collection, Skipped, load, scan
from styleforge.errors import ImageError
from styleforge.fileio import sha256_file
from styleforge.images import load_image


def _image(path: Path, w: int = 80, h: int = 80, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    if path.suffix == ".jpg":
        Image.fromarray(arr).save(path, quality=95)
    else:
        Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    a = _image(root / "a.png", seed=1)
    _image(root / "sub" / "b.jpg", 100, 70, seed=2)
    _image(root / "sub" / "deeper" / "c.png", seed=3)
    (root / "sub" / "deeper" / "copy_of_a.png").write_bytes(a.read_bytes())
    (root / "empty.jpg").write_bytes(b"")
    (root / "notes.txt").write_text("shopping list\n")
    (root / "fake.png").write_text("not a picture\n")
    full = _image(tmp_path / "full.jpg", 96, 96, seed=4).read_bytes()
    (root / "sub" / "broken.jpg").write_bytes(full[: len(full) // 2])
    _image(root / "tiny.png", 40, 30, seed=5)
    _image(root / ".hidden.png", seed=6)
    _image(root / ".cache" / "d.png", seed=7)
    return root


def test_scan_folder(folder: Path) -> None:
    col = scan(folder)
    assert col.root == folder
    assert col.images == (
        folder / "a.png",
        folder / "sub" / "b.jpg",
        folder / "sub" / "deeper" / "c.png",
    )
    reasons = {s.path.relative_to(folder).as_posix(): s.reason for s in col.skipped}
    assert set(reasons) == {"empty.jpg", "fake.png", "notes.txt", "sub/broken.jpg", "tiny.png"}
    assert reasons["empty.jpg"] == "empty file"
    assert reasons["fake.png"] == "not an image"
    assert reasons["notes.txt"] == "not an image file (suffix .txt)"
    assert reasons["sub/broken.jpg"].startswith("truncated or corrupt image")
    assert reasons["tiny.png"] == "too small (40x30, short side < 64 px)"
    assert col.duplicates == ((folder / "sub" / "deeper" / "copy_of_a.png", folder / "a.png"),)
    assert all(isinstance(s, Skipped) for s in col.skipped)


def test_scan_is_deterministic(folder: Path) -> None:
    assert scan(folder) == scan(folder)


def test_report_lists_everything(folder: Path) -> None:
    col = scan(folder)
    report = col.report()
    assert report.splitlines()[0] == f"{folder}: 3 usable images (5 skipped, 1 duplicate)"
    for s in col.skipped:
        assert f"  skipped {s.path}: {s.reason}" in report
    copy, kept = col.duplicates[0]
    assert f"  duplicate {copy} = {kept} (used once)" in report
    assert ".hidden" not in report and ".cache" not in report
    assert len(report.splitlines()) == 1 + 5 + 1


def test_min_side_and_max_pixels_are_passed_on(folder: Path) -> None:
    col = scan(folder, min_side=75)
    assert folder / "sub" / "b.jpg" not in col.images
    assert Skipped(folder / "sub" / "b.jpg", "too small (100x70, short side < 75 px)") in (
        col.skipped
    )
    col = scan(folder, max_pixels=6_500)
    assert col.images == (folder / "a.png", folder / "sub" / "deeper" / "c.png")
    (big,) = [s for s in col.skipped if s.path.name == "b.jpg"]
    assert big.reason.startswith("100x70 is 0.007 megapixels, over the limit of")


def test_require(folder: Path) -> None:
    col = scan(folder)
    col.require(3, "training")  # enough: no error
    with pytest.raises(ImageError) as info:
        col.require(10, "training")
    msg = str(info.value)
    assert msg.startswith(f"{folder}: only 3 usable image(s), training needs at least 10")
    assert "5 skipped (empty.jpg: empty file; fake.png: not an image; notes.txt:" in msg
    assert "and 2 more" in msg
    assert "1 exact duplicate(s) counted once" in msg


def test_require_on_empty_folder(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageError, match="only 0 usable image\\(s\\), style needs at least 1"):
        scan(tmp_path / "empty").require(1, "style")


def test_scan_single_file(tmp_path: Path) -> None:
    good = _image(tmp_path / "one.png")
    assert scan(good) == Collection(
        root=good, images=(good,), skipped=(), duplicates=(), digests=(sha256_file(good),)
    )
    bad = tmp_path / "bad.png"
    bad.write_text("nope")
    col = scan(bad)
    assert col.images == ()
    assert col.skipped == (Skipped(bad, "not an image"),)
    with pytest.raises(ImageError, match=r"bad\.png: not an image"):
        col.require(1, "transfer")


def test_missing_folder(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(ImageError) as info:
        scan(missing)
    assert str(info.value) == f"{missing}: no such file or folder"


def test_load_keeps_what_it_makes_of_each_usable_image_from_the_one_decode(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import styleforge.images as images

    opened: list[Path] = []
    real_open = images.open_image

    def counting_open(path: Path, max_pixels: int = images.DEFAULT_MAX_PIXELS) -> Image.Image:
        opened.append(Path(path))
        return real_open(path, max_pixels)

    monkeypatch.setattr(images, "open_image", counting_open)
    coll, kept = load(folder, lambda t: t[..., :8, :8].clone())
    decoded = list(opened)
    assert coll == scan(folder)
    assert len(kept) == len(coll.images) == 3
    for path, crop in zip(coll.images, kept, strict=True):
        assert torch.equal(crop, load_image(path)[..., :8, :8])
    # every candidate decoded once; the copy of a.png is known by its digest, never decoded
    assert len(set(decoded)) == len(decoded) and set(coll.images) <= set(decoded)
    assert folder / "sub" / "deeper" / "copy_of_a.png" not in decoded
    assert coll.digests == tuple(sha256_file(p) for p in coll.images)


def test_fingerprint_depends_on_content_not_names_or_order(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _image(one / "a.png", seed=1), _image(one / "b.png", seed=2)
    _image(two / "x.png", seed=2), _image(two / "y.png", seed=1)
    before = scan(one).fingerprint
    assert len(before) == 64 and before == scan(two).fingerprint
    _image(one / "b.png", seed=3)
    assert scan(one).fingerprint != before
