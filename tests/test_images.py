"""Tests for styleforge.images: reading, mode conversion, limits, resizing, saving, colour."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from styleforge.errors import ImageError, UserError
from styleforge.fileio import UMASK
from styleforge.images import (
    array_to_pil,
    downscale_to,
    load_image,
    open_image,
    pil_to_array,
    pil_to_tensor,
    resize_array,
    resize_tensor,
    resize_to,
    rgb_to_yiq,
    save_image,
    scaled_size,
    tensor_to_pil,
    yiq_to_rgb,
)
from styleforge.sheets import make_sheet


def _rgb_array(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _pixel(t: torch.Tensor, y: int = 0, x: int = 0) -> list[int]:
    """The (y, x) pixel of a (1, 3, H, W) tensor in 0..255."""
    return [round(v) for v in (t[0, :, y, x] * 255).tolist()]


# --------------------------------------------------------------------------- conversion


def test_pil_tensor_round_trip() -> None:
    arr = _rgb_array(5, 7)
    t = pil_to_tensor(Image.fromarray(arr))
    assert t.shape == (1, 3, 5, 7)
    assert t.dtype == torch.float32
    expected = torch.from_numpy(arr).permute(2, 0, 1).float() / 255
    assert torch.equal(t[0], expected)
    assert np.array_equal(np.asarray(tensor_to_pil(t)), arr)
    assert np.array_equal(np.asarray(tensor_to_pil(t[0])), arr)  # (3, H, W) accepted too


def test_tensor_to_pil_clamps_and_rounds_without_touching_input() -> None:
    t = torch.tensor([-0.5, 1.5, 0.502, 0.0]).view(1, 1, 2, 2).repeat(1, 3, 1, 1)
    before = t.clone()
    img = tensor_to_pil(t)
    assert img.mode == "RGB"
    assert np.asarray(img)[..., 0].tolist() == [[0, 255], [128, 0]]
    assert torch.equal(t, before)


def test_tensor_to_pil_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match="got \\(2, 3, 4, 4\\)"):
        tensor_to_pil(torch.zeros(2, 3, 4, 4))


# --------------------------------------------------------------------------- reading


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    # stored 40 wide x 20 high, left half red, right half blue; Orientation=6 means
    # "rotate 90 degrees clockwise to display": the left (red) half ends up on top.
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    img.save(path, exif=exif, quality=95)

    t = load_image(path)
    assert t.shape == (1, 3, 40, 20)
    r, _, b = _pixel(t, 5, 10)
    assert r > 200 and b < 60  # top is red
    r, _, b = _pixel(t, 35, 10)
    assert b > 200 and r < 60  # bottom is blue


def _modes() -> list[tuple[str, Image.Image, str, list[list[int]]]]:
    """(id, image, file suffix, expected RGB of pixels (0, 0) and (1, 0))."""
    gray = Image.fromarray(np.array([[100, 200]], dtype=np.uint8))  # L
    bilevel = Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1")
    pal = Image.new("P", (2, 1))
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    pal.info["transparency"] = 0  # index 0 transparent -> white
    cmyk = Image.new("CMYK", (2, 1), (0, 255, 255, 0))  # pure red
    cmyk.putpixel((1, 0), (0, 0, 0, 255))  # pure black
    rgba = Image.fromarray(np.array([[[255, 0, 0, 0], [255, 0, 0, 128]]], dtype=np.uint8))
    la = Image.fromarray(np.array([[[0, 0], [0, 255]]], dtype=np.uint8), mode="LA")
    i16 = Image.fromarray(np.array([[65535, 32896]], dtype=np.uint16))  # I;16
    return [
        ("L", gray, ".png", [[100] * 3, [200] * 3]),
        ("1", bilevel, ".png", [[0] * 3, [255] * 3]),
        ("P-transparency", pal, ".png", [[255] * 3, [255, 0, 0]]),
        ("CMYK", cmyk, ".tif", [[255, 0, 0], [0, 0, 0]]),
        ("RGBA", rgba, ".png", [[255, 255, 255], [255, 127, 127]]),
        ("LA", la, ".png", [[255] * 3, [0] * 3]),
        ("I;16", i16, ".png", [[255] * 3, [128] * 3]),
    ]


_MODES = _modes()


@pytest.mark.parametrize(
    ("image", "suffix", "expected"), [m[1:] for m in _MODES], ids=[m[0] for m in _MODES]
)
def test_modes_are_converted_to_rgb(
    tmp_path: Path, image: Image.Image, suffix: str, expected: list[list[int]]
) -> None:
    path = tmp_path / f"img{suffix}"
    image.save(path)
    with Image.open(path) as stored:
        assert stored.mode == image.mode  # the file really is in that mode
    out = open_image(path)
    assert out.mode == "RGB"
    assert out.size == image.size
    got = np.asarray(out)[0, :2].astype(int)  # pixels (0, 0) and (1, 0)
    assert np.abs(got - np.array(expected)).max() <= 1, got.tolist()


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    path = tmp_path / "deep.png"
    Image.fromarray(np.array([[65535, 32896, 0]], dtype=np.uint16)).save(path)
    t = load_image(path)
    assert t[0, 0, 0].tolist() == pytest.approx([1.0, 128 / 255, 0.0], abs=1e-6)
    assert abs(t[0, 0, 0, 1].item() - 0.5) < 0.01


def test_big_endian_16_bit_and_float_images_in_memory() -> None:
    data = np.array([[65535, 257]], dtype=">u2").tobytes()
    big = Image.frombytes("I;16B", (2, 1), data)
    assert big.mode == "I;16B"
    assert _pixel(pil_to_tensor(big), 0, 0) == [255] * 3
    assert _pixel(pil_to_tensor(big), 0, 1) == [1] * 3
    flt = Image.fromarray(np.array([[1.0, 0.5]], dtype=np.float32))
    assert flt.mode == "F"
    assert _pixel(pil_to_tensor(flt), 0, 1) == [128] * 3


def test_pixel_limit_refused_with_message(tmp_path: Path) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 50)).save(path)
    with pytest.raises(ImageError) as info:
        open_image(path, max_pixels=4_999)
    msg = str(info.value)
    assert msg.startswith(f"{path}: 100x50 is 0.005 megapixels, over the limit of")
    assert "raise it with --max-pixels" in msg
    assert open_image(path, max_pixels=5_000).size == (100, 50)  # exactly at the limit: fine


def test_pixel_limit_checked_before_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "wide.png"
    Image.new("RGB", (100, 50)).save(path)

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(ImageError, match="over the limit"):
        open_image(path, max_pixels=100)


@pytest.mark.parametrize("pil_limit", [1_000, 3_000])  # 64*64 = 4096: error / warning range
def test_decompression_bomb_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pil_limit: int
) -> None:
    path = tmp_path / "bomb.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", pil_limit)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # a mere warning must not let the image through
        with pytest.raises(ImageError, match=r"decompression bomb.*--max-pixels"):
            open_image(path, max_pixels=pil_limit)
    assert caught == []  # and nothing leaks out as a warning either
    assert pil_limit == Image.MAX_IMAGE_PIXELS


def test_higher_max_pixels_overrides_pil_limit_temporarily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "big.png"
    Image.new("RGB", (64, 64)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    assert open_image(path, max_pixels=10_000).size == (64, 64)
    assert Image.MAX_IMAGE_PIXELS == 1_000  # restored


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty file$"):
        open_image(path)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(ImageError) as info:
        open_image(path)
    assert str(info.value) == f"{path}: not an image"


def test_truncated_jpeg(tmp_path: Path) -> None:
    full = tmp_path / "full.jpg"
    Image.fromarray(_rgb_array(64, 64)).save(full, quality=95)
    data = full.read_bytes()
    path = tmp_path / "half.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError) as info:
        open_image(path)
    assert str(info.value).startswith(f"{path}: truncated or corrupt image")
    assert isinstance(info.value, UserError)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.png"
    with pytest.raises(ImageError) as info:
        load_image(path)
    assert str(info.value) == f"{path}: no such file"


def test_open_image_result_outlives_the_file(tmp_path: Path) -> None:
    path = tmp_path / "a.png"
    arr = _rgb_array(6, 4)
    Image.fromarray(arr).save(path)
    img = open_image(path)
    path.unlink()
    assert np.array_equal(np.asarray(img), arr)


# --------------------------------------------------------------------------- resizing


@pytest.mark.parametrize(
    ("wh", "size", "expected_hw"),
    [((40, 20), 10, (5, 10)), ((20, 40), 10, (10, 5)), ((30, 30), 90, (90, 90))],
)
def test_load_image_resizes_long_side(
    tmp_path: Path, wh: tuple[int, int], size: int, expected_hw: tuple[int, int]
) -> None:
    path = tmp_path / "x.png"
    Image.new("RGB", wh, (10, 200, 30)).save(path)
    t = load_image(path, size=size)
    assert t.shape == (1, 3, *expected_hw)
    assert _pixel(t, 2, 2) == [10, 200, 30]
    assert load_image(path).shape == (1, 3, wh[1], wh[0])


def test_resize_to_long_and_short_side() -> None:
    t = torch.rand(2, 3, 30, 60, generator=torch.Generator().manual_seed(0))
    before = t.clone()
    assert resize_to(t, 20).shape == (2, 3, 10, 20)
    assert resize_to(t, 20, side="short").shape == (2, 3, 20, 40)
    assert resize_to(t, 7).shape == (2, 3, 4, 7)  # 3.5 rounds to an int
    assert resize_to(torch.rand(1, 3, 1, 100), 10).shape == (1, 3, 1, 10)  # at least 1
    assert torch.equal(t, before)


def test_resize_to_clamps_overshoot() -> None:
    checker = (torch.arange(16).view(4, 4) + torch.arange(16).view(4, 4).T) % 2
    t = checker.float().expand(1, 3, 4, 4)
    out = resize_to(t, 13)
    plane = Image.fromarray(checker.float().numpy()).resize((13, 13), Image.Resampling.LANCZOS)
    raw = np.asarray(plane)
    assert raw.min() < 0 or raw.max() > 1  # Lanczos really overshoots here
    assert out.min() >= 0 and out.max() <= 1


def test_one_resize_policy_for_files_pil_arrays_and_tensors(tmp_path: Path) -> None:
    arr = _rgb_array(30, 44, seed=3)
    path = tmp_path / "x.png"
    Image.fromarray(arr).save(path)
    full = load_image(path)
    assert torch.equal(full, pil_to_tensor(Image.fromarray(arr)))
    assert np.array_equal(full.numpy(), pil_to_array(Image.fromarray(arr)))
    small = load_image(path, size=17)
    assert small.shape == (1, 3, 12, 17) == resize_to(full, 17).shape
    assert torch.equal(small, resize_to(full, 17))  # a file resizes as its decoded tensor
    assert np.array_equal(resize_array(full.numpy(), 12, 17), small.numpy())
    assert np.array_equal(downscale_to(full.numpy(), 17), small.numpy())
    assert downscale_to(full.numpy(), 50).shape == full.shape  # never enlarged
    assert resize_tensor(full.double(), 12, 17).dtype == torch.float64


def test_scaled_size_fixes_the_reference_side() -> None:
    assert scaled_size(30, 60, 20) == (10, 20)
    assert scaled_size(30, 60, 20, "short") == (20, 40)
    assert scaled_size(60, 30, 7) == (7, 4)
    assert scaled_size(1, 100, 10) == (1, 10)
    with pytest.raises(ValueError, match="side"):
        scaled_size(3, 3, 3, "wide")  # type: ignore[arg-type]


def test_resize_array_takes_batches_and_leaves_its_input() -> None:
    x = np.random.default_rng(0).random((2, 3, 9, 13), dtype=np.float32)
    before = x.copy()
    out = resize_array(x, 5, 7)
    assert out.shape == (2, 3, 5, 7) and out.dtype == np.float32
    assert np.array_equal(out[1:], resize_array(x[1:], 5, 7))
    assert np.array_equal(x, before)
    same = resize_array(x, 9, 13)
    assert np.array_equal(same, x) and not np.shares_memory(same, x)


def test_array_and_tensor_to_pil_agree() -> None:
    x = np.random.default_rng(1).random((1, 3, 6, 5), dtype=np.float32) * 1.2 - 0.1
    assert np.array_equal(
        np.asarray(array_to_pil(x)), np.asarray(tensor_to_pil(torch.from_numpy(x)))
    )
    assert np.array_equal(np.asarray(array_to_pil(x)), np.asarray(array_to_pil(x[0])))
    with pytest.raises(ValueError, match="got \\(2, 3, 6, 5\\)"):
        array_to_pil(np.zeros((2, 3, 6, 5), dtype=np.float32))


# --------------------------------------------------------------------------- saving


def test_save_image_round_trip_and_atomic(tmp_path: Path) -> None:
    arr = _rgb_array(8, 12)
    t = pil_to_tensor(Image.fromarray(arr))
    target = tmp_path / "out" / "deep" / "result.png"
    assert save_image(t, target) == target
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.png"]
    with Image.open(target) as back:
        assert back.format == "PNG"
        assert np.array_equal(np.asarray(back), arr)
    assert target.stat().st_mode & 0o777 == 0o666 & ~UMASK  # not tempfile's 0600

    save_image(Image.fromarray(255 - arr), target)  # replaces the existing file
    with Image.open(target) as back:
        assert np.array_equal(np.asarray(back), 255 - arr)
    assert sorted(p.name for p in target.parent.iterdir()) == ["result.png"]


@pytest.mark.parametrize(
    ("suffix", "fmt"),
    [(".jpg", "JPEG"), (".JPEG", "JPEG"), (".webp", "WEBP"), (".bmp", "BMP"), (".tif", "TIFF")],
)
def test_save_image_format_from_suffix(tmp_path: Path, suffix: str, fmt: str) -> None:
    t = torch.full((1, 3, 16, 16), 0.5)
    target = save_image(t, tmp_path / f"x{suffix}")
    with Image.open(target) as back:
        assert back.format == fmt
        assert back.size == (16, 16)
        assert abs(int(np.asarray(back.convert("RGB"))[8, 8, 0]) - 128) <= 2


def test_save_image_unknown_suffix_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "new" / "x.xyz"
    with pytest.raises(ImageError, match=r"unknown image format '\.xyz'"):
        save_image(torch.zeros(1, 3, 4, 4), target)
    assert list(tmp_path.iterdir()) == []


def test_save_image_failure_removes_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "x.png"
    target.write_bytes(b"old")

    def broken_save(self: Image.Image, *args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    with pytest.raises(ImageError, match="cannot write"):
        save_image(torch.zeros(1, 3, 4, 4), target)
    assert sorted(os.listdir(tmp_path)) == ["x.png"]
    assert target.read_bytes() == b"old"  # the old file is untouched


# --------------------------------------------------------------------------- colour


def test_yiq_round_trip() -> None:
    t = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(1))
    before = t.clone()
    yiq = rgb_to_yiq(t)
    assert yiq.shape == t.shape
    assert torch.allclose(yiq_to_rgb(yiq), t, atol=1e-5)
    assert torch.equal(t, before)


def test_yiq_is_the_same_for_arrays_and_tensors() -> None:
    t = torch.rand(2, 3, 5, 7, generator=torch.Generator().manual_seed(2))
    for fn in (rgb_to_yiq, yiq_to_rgb):
        out = fn(t.numpy())
        assert isinstance(out, np.ndarray) and out.dtype == np.float32
        np.testing.assert_allclose(out, fn(t).numpy(), rtol=0, atol=1e-6)
    assert rgb_to_yiq(t.double().numpy()).dtype == np.float64


def test_yiq_values() -> None:
    white_gray = torch.tensor([1.0, 0.5]).view(1, 1, 1, 2).expand(1, 3, 1, 2)
    yiq = rgb_to_yiq(white_gray)
    assert yiq[0, 0, 0].tolist() == pytest.approx([1.0, 0.5], abs=1e-6)  # Y
    assert yiq[0, 1:].abs().max().item() < 1e-5  # no chroma in grays
    red = torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1)
    assert rgb_to_yiq(red).flatten().tolist() == pytest.approx([0.299, 0.595716, 0.211456])


# --------------------------------------------------------------------------- sheet


def test_make_sheet_shape_and_layout() -> None:
    red = torch.zeros(1, 3, 20, 40)
    red[:, 0] = 1
    blue = torch.zeros(1, 3, 10, 10)
    blue[:, 2] = 1
    sheet = make_sheet([red, blue], height=16, pad=4)
    assert sheet.shape == (1, 3, 4 + 16 + 4, 4 + 32 + 4 + 16 + 4)
    assert _pixel(sheet, 0, 0) == [255, 255, 255]  # white padding
    assert _pixel(sheet, 10, 20) == [255, 0, 0]
    assert _pixel(sheet, 10, 48) == [0, 0, 255]
    assert _pixel(sheet, 10, 38) == [255, 255, 255]  # gap between the images


def test_make_sheet_with_labels_draws_text_below() -> None:
    imgs = [torch.full((1, 3, 30, 30), 0.5), torch.full((1, 3, 30, 60), 0.5)]
    plain = make_sheet(imgs, height=30, pad=5)
    labelled = make_sheet(
        imgs, labels=["style", "a rather long label to shorten"], height=30, pad=5
    )
    assert labelled.shape[-1] == plain.shape[-1] == 5 + 30 + 5 + 60 + 5
    assert labelled.shape[-2] > plain.shape[-2]
    below = labelled[0, :, 5 + 30 + 5 :, :]
    assert below[:, :, 5:35].min() < 0.3  # black text under the first image
    assert below[:, :, :5].min() == 1.0  # nothing drawn in the left margin
    with pytest.raises(ValueError, match="1 labels for 2 images"):
        make_sheet(imgs, labels=["one"])


def test_open_image_decodes_a_jpeg_smaller_only_when_told_and_not_below_twice_the_need(
    tmp_path: Path,
) -> None:
    from styleforge.images import downscale_to, open_image, pil_to_array

    rng = np.random.default_rng(0)
    base = rng.random((3, 60, 80)).repeat(20, 1).repeat(20, 2)  # 1200×1600, smooth blocks
    img = Image.fromarray((base.transpose(1, 2, 0) * 255).astype(np.uint8))
    img.save(tmp_path / "p.jpg", quality=95)
    img.save(tmp_path / "p.png")
    assert open_image(tmp_path / "p.jpg").size == (1600, 1200)
    small = open_image(tmp_path / "p.jpg", at_least=300)
    assert small.size == (800, 600)  # 1/2: 1/4 would give 400 < 2 × 300
    assert open_image(tmp_path / "p.jpg", at_least=100).size == (200, 150)  # 1/8
    assert open_image(tmp_path / "p.png", at_least=100).size == (1600, 1200)
    full = downscale_to(pil_to_array(open_image(tmp_path / "p.jpg")), 300)
    fast = downscale_to(pil_to_array(small), 300)
    assert full.shape == fast.shape == (1, 3, 225, 300)
    assert np.abs(full - fast).mean() < 0.01
