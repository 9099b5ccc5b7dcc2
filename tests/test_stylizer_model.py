"""The model file, the Stylizer inference object, blending and tiling with a real network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from styleforge.errors import UserError
from styleforge.infer.apply import blend, stylize_array
from styleforge.infer.model_file import ModelInfo, read_model, write_model
from styleforge.infer.settings import Settings
from styleforge.infer.stylizer import Stylizer
from styleforge.nets import StylizerConfig, StylizerNet


def _net(seed: int = 0, config: StylizerConfig | None = None) -> StylizerNet:
    torch.manual_seed(seed)
    net = StylizerNet(config or StylizerConfig(width=8, n_res=1))
    with torch.no_grad():  # move the norms off identity so the net is not near-trivial
        for m in net.modules():
            if isinstance(m, torch.nn.InstanceNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.fixture
def model_path(tmp_path: Path) -> Path:
    net = _net()
    info = ModelInfo(net=net.config, training={"size": 64}, style={"images": 3}, metrics={"g": 2})
    return write_model(tmp_path / "m.safetensors", net.state_dict(), info)


def test_model_file_round_trip(model_path: Path) -> None:
    state, info = read_model(model_path)
    assert info.net == StylizerConfig(width=8, n_res=1)
    assert info.training == {"size": 64} and info.metrics == {"g": 2}
    assert info.preprocessing["range"] == [0.0, 1.0] and info.created
    ref = _net().state_dict()
    assert set(state) == set(ref)
    assert all(torch.equal(state[k], ref[k]) for k in ref)
    assert not list(model_path.parent.glob(".*"))  # no temporary file left behind


def test_truncated_foreign_and_missing_model_files_are_user_errors(
    model_path: Path, tmp_path: Path
) -> None:
    data = model_path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="not a readable styleforge model"):
        read_model(cut)
    text = tmp_path / "notes.safetensors"
    text.write_text("hello")
    with pytest.raises(UserError, match="not a readable"):
        read_model(text)
    foreign = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign), metadata={"format": "pt"})
    with pytest.raises(UserError, match="not a styleforge stylizer model"):
        read_model(foreign)
    with pytest.raises(UserError, match="no such model"):
        read_model(tmp_path / "missing.safetensors")
    with pytest.raises(UserError, match="folder"):
        read_model(tmp_path)


def test_weights_not_matching_the_header_are_a_user_error(tmp_path: Path) -> None:
    net = _net()
    info = ModelInfo(net=StylizerConfig(width=16, n_res=1))  # header says another width
    path = write_model(tmp_path / "bad.safetensors", net.state_dict(), info)
    with pytest.raises(UserError, match="do not match"):
        Stylizer.load(path, "cpu")


def test_stylizer_on_pil_and_tensors(model_path: Path) -> None:
    sty = Stylizer.load(model_path, "cpu")
    photo = torch.rand(1, 3, 37, 50, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = _net()(photo)
    out = sty(photo)
    assert out.shape == photo.shape
    torch.testing.assert_close(out, expected, atol=1e-6, rtol=0)
    assert sty(photo[0]).shape == (3, 37, 50)
    assert sty(torch.cat([photo, photo])).shape == (2, 3, 37, 50)
    pil = Image.new("RGB", (50, 37), (200, 30, 40))
    result = sty(pil)
    assert isinstance(result, Image.Image) and result.size == (50, 37)
    assert sty(pil, max_size=25).size == (25, 18)


@pytest.mark.parametrize("extra", [{}, {"colors": 0.5, "strength": 0.7}])
def test_pil_and_tensor_with_max_size_give_the_same_pixels(
    model_path: Path, extra: dict[str, float]
) -> None:
    from skimage import data

    from styleforge.images import pil_to_array, pil_to_tensor, tensor_to_pil

    sty = Stylizer.load(model_path, "cpu")
    pil = Image.fromarray(data.chelsea()).resize((90, 60))  # a photo with detail to resample
    from_pil = sty(pil, max_size=41, **extra)
    from_tensor = sty(pil_to_tensor(pil), max_size=41, **extra)
    assert from_tensor.shape == (1, 3, 27, 41) and from_pil.size == (41, 27)
    assert np.array_equal(np.asarray(from_pil), np.asarray(tensor_to_pil(from_tensor)))
    rounding = np.abs(pil_to_array(from_pil) - from_tensor.numpy()).max()
    assert rounding <= 0.5 / 255 + 1e-6  # the PIL result is the tensor one, rounded to 8 bits


def test_strength_and_preserve_colors(model_path: Path) -> None:
    sty = Stylizer.load(model_path, "cpu")
    photo = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(sty(photo, strength=0.0), photo, atol=1e-6, rtol=0)
    full, half = sty(photo), sty(photo, strength=0.5)
    torch.testing.assert_close(half, (photo + full) / 2, atol=1e-5, rtol=0)
    kept = sty(photo, colors=True)
    # The stylized luminance with the photo's chrominance.
    from styleforge.images import rgb_to_yiq

    y_kept, y_full, y_photo = rgb_to_yiq(kept), rgb_to_yiq(full), rgb_to_yiq(photo)
    inside = ((kept > 0.001) & (kept < 0.999)).all(dim=1)  # clamping moves out-of-gamut pixels
    assert inside.float().mean() > 0.5
    assert (y_kept[:, 0] - y_full[:, 0]).abs()[inside].max() < 1e-4
    chroma_kept = (y_kept[:, 1:] - y_photo[:, 1:]).abs().mean()
    assert chroma_kept < (y_full[:, 1:] - y_photo[:, 1:]).abs().mean()
    with pytest.raises(UserError, match="strength"):
        sty(photo, strength=2.5)


def test_blend_is_exact_at_the_ends() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.random((2, 1, 3, 8, 8), dtype=np.float32)
    np.testing.assert_allclose(blend(a, b, 1.0, False), b, atol=1e-7)
    np.testing.assert_allclose(blend(a, b, 0.0, False), a, atol=1e-7)
    np.testing.assert_allclose(blend(a, a, 1.0, True), a, atol=1e-5)


def test_identity_network_tiles_reproduce_the_input_exactly() -> None:
    photo = np.random.default_rng(2).random((1, 3, 150, 230), dtype=np.float32)
    opts = Settings(tile=64, overlap=16, batch=3)
    np.testing.assert_allclose(stylize_array(lambda x: x.copy(), photo, opts), photo, atol=1e-6)


def test_tiled_and_untiled_outputs_of_a_real_network_differ_little() -> None:
    net = _net(3, StylizerConfig.quick())
    sty = Stylizer(net, ModelInfo(net.config), torch.device("cpu"))
    gen = torch.Generator().manual_seed(4)
    small = torch.rand(1, 3, 12, 16, generator=gen)
    photo = torch.nn.functional.interpolate(small, size=(192, 256), mode="bicubic").clamp(0, 1)
    whole = sty(photo, tile=0)
    tiled = sty(photo, tile=128, overlap=32)
    # Per-tile InstanceNorm statistics move the result a little; the style change is far larger.
    diff = (whole - tiled).abs().mean()
    assert diff < 0.2 * (whole - photo).abs().mean(), diff
    assert not torch.equal(whole, tiled)  # tiles really were used
    with pytest.raises(UserError, match="twice the overlap"):
        sty(photo, tile=60, overlap=32)
