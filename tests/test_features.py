"""The offline VGG encoder: weight extraction and cache, layer names, truncation, preprocessing."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from styleforge.errors import UserError, WeightsError
from styleforge.features import EncoderSpec, VGGEncoder, layer_names, load_encoder
from styleforge.features import weights as W
from styleforge.features.encoder import CaffePreprocess, TorchvisionPreprocess
from styleforge.fileio import sha256_file


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STYLEFORGE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_layer_names_vgg16_and_vgg19() -> None:
    names16 = layer_names("vgg16")
    assert names16[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names16[-3:] == ["conv5_3", "relu5_3", "pool5"]
    assert len(names16) == 13 * 2 + 5
    names19 = layer_names("vgg19")
    assert len(names19) == 16 * 2 + 5
    assert names19.index("relu3_4") == names19.index("conv3_4") + 1
    assert names19[names19.index("relu3_4") + 1] == "pool3"


def test_onnx_extraction_gives_imagenet_vgg16() -> None:
    state = W.extract_vgg16_from_onnx(W.vgg16_onnx_path())
    assert len(state) == 26
    bias = state["conv1_1.bias"][:4]
    assert torch.allclose(bias, torch.tensor([0.7343, 0.0934, 0.0678, 0.8863]), atol=1e-4)
    for name, cout, cin in W.VGG16_CONVS:
        assert state[f"{name}.weight"].shape == (cout, cin, 3, 3)
        assert state[f"{name}.weight"].dtype == torch.float32


def test_cache_written_once_then_reused(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = W.vgg16_state()
    files = list(cache.glob("vgg16-*.safetensors"))
    assert len(files) == 1
    from safetensors import safe_open

    with safe_open(str(files[0]), framework="pt") as fh:
        meta = fh.metadata()
    assert meta["source_sha256"] == sha256_file(W.vgg16_onnx_path())

    def no_extraction(path: Path) -> W.StateDict:
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(W, "extract_vgg16_from_onnx", no_extraction)
    second = W.vgg16_state()
    assert all(torch.equal(first[k], second[k]) for k in first)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "wrong_sha"])
def test_corrupt_cache_is_rebuilt(
    cache: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    reference = W.vgg16_state()
    (path,) = cache.glob("vgg16-*.safetensors")
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a safetensors file" * 100)
    else:
        from safetensors.torch import save_file

        save_file({"conv1_1.bias": torch.zeros(64)}, str(path), metadata={"source_sha256": "0"})
    calls = []
    real_extract = W.extract_vgg16_from_onnx

    def counting(p: Path) -> W.StateDict:
        calls.append(p)
        return real_extract(p)

    monkeypatch.setattr(W, "extract_vgg16_from_onnx", counting)
    rebuilt = W.vgg16_state()
    assert len(calls) == 1
    assert all(torch.equal(reference[k], rebuilt[k]) for k in reference)
    monkeypatch.setattr(W, "extract_vgg16_from_onnx", real_extract)
    assert W._read_cache(path, sha256_file(W.vgg16_onnx_path())) is not None  # repaired


def test_wrong_shapes_are_refused() -> None:
    state = {f"{n}.weight": torch.zeros(o, i, 3, 3) for n, o, i in W.VGG16_CONVS}
    state |= {f"{n}.bias": torch.zeros(o) for n, o, _ in W.VGG16_CONVS}
    W.check_state(state, W.VGG16_CONVS, "ok")
    state["conv3_2.weight"] = torch.zeros(256, 128, 3, 3)
    with pytest.raises(WeightsError, match=r"conv3_2 has shape"):
        W.check_state(state, W.VGG16_CONVS, "bad")
    state["conv3_2.weight"] = torch.zeros(256, 256, 3, 3)
    del state["conv5_3.bias"]
    with pytest.raises(WeightsError, match="no weights for conv5_3"):
        W.check_state(state, W.VGG16_CONVS, "bad")


def test_encoder_is_cut_after_deepest_layer_frozen_and_in_eval() -> None:
    enc = load_encoder(["relu2_1", "relu1_1"])
    assert enc.names[-1] == "relu2_1"
    assert len(enc.body) == len(enc.names) == 7
    enc.train()
    assert not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
    out = enc(torch.rand(2, 3, 32, 40))
    assert set(out) == {"relu1_1", "relu2_1"}
    assert out["relu1_1"].shape == (2, 64, 32, 40)
    assert out["relu2_1"].shape == (2, 128, 16, 20)
    assert (out["relu2_1"] >= 0).all()


def test_conv_outputs_are_not_clobbered_by_inplace_relu() -> None:
    enc = load_encoder(["conv1_1", "relu1_1"])
    out = enc(torch.rand(1, 3, 16, 16))
    assert (out["conv1_1"] < 0).any()  # raw conv output keeps its negative values
    assert torch.equal(out["relu1_1"], out["conv1_1"].clamp(min=0))


def test_unknown_layer_is_a_user_error() -> None:
    with pytest.raises(UserError, match="relu6_1"):
        load_encoder(["relu6_1"])


def test_caffe_preprocessing_values() -> None:
    red = torch.zeros(1, 3, 1, 1)
    red[0, 0] = 1.0  # pure red in RGB [0,1]
    out = CaffePreprocess()(red).flatten().tolist()
    assert out == pytest.approx([0 - 103.939, 0 - 116.779, 255 - 123.68])  # B, G, R


def test_torchvision_preprocessing_values() -> None:
    grey = torch.full((1, 3, 1, 1), 0.5)
    out = TorchvisionPreprocess()(grey).flatten()
    expected = [
        (0.5 - m) / s for m, s in zip((0.485, 0.456, 0.406), (0.229, 0.224, 0.225), strict=False)
    ]
    assert out.tolist() == pytest.approx(expected)


def test_preprocessing_is_chosen_by_the_weights(tmp_path: Path) -> None:
    enc16 = load_encoder(["relu1_1"])
    assert isinstance(enc16.preprocess, CaffePreprocess)
    # A torchvision-layout VGG19 state dict (random values, right shapes).
    raw: dict[str, torch.Tensor] = {}
    conv_indices = [0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34]
    for idx, (_, cout, cin) in zip(conv_indices, W.VGG19_CONVS, strict=True):
        raw[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * 0.01
        raw[f"features.{idx}.bias"] = torch.zeros(cout)
    raw["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path / "vgg19.pth"
    torch.save(raw, path)
    enc19 = load_encoder(["relu3_4"], EncoderSpec("vgg19", path))
    assert isinstance(enc19, VGGEncoder)
    assert isinstance(enc19.preprocess, TorchvisionPreprocess)
    assert torch.equal(enc19.body[enc19.names.index("conv3_4")].weight, raw["features.16.weight"])


def test_vgg19_without_weights_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="encoder-weights"):
        load_encoder(["relu1_1"], EncoderSpec("vgg19"))
    with pytest.raises(WeightsError, match="no such weights file"):
        load_encoder(["relu1_1"], EncoderSpec("vgg19", tmp_path / "missing.pth"))
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not torch")
    with pytest.raises(WeightsError, match="cannot read"):
        load_encoder(["relu1_1"], EncoderSpec("vgg19", bad))


def test_pretrained_features_respond_to_content() -> None:
    """Real ImageNet filters: edges excite conv1 far more than a flat image does."""
    enc = load_encoder(["relu1_1"])
    flat = torch.full((1, 3, 32, 32), 0.5)
    stripes = flat.clone()
    stripes[..., ::4, :] = 1.0
    assert enc(stripes)["relu1_1"].std() > 5 * enc(flat)["relu1_1"].std()


def test_cut_gives_a_shallower_encoder_with_the_same_weights() -> None:
    deep = load_encoder(["relu5_1", "relu4_2"])
    cut = deep.cut(["relu1_1", "relu3_3"])
    fresh = load_encoder(["relu1_1", "relu3_3"])
    assert cut.names == fresh.names and cut.layers == ("relu1_1", "relu3_3")
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0))
    got, want = cut(x), fresh(x)
    assert list(got) == list(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert not any(p.requires_grad for p in cut.parameters())
    with pytest.raises(ValueError, match="stops at relu3_3: no relu4_1"):
        cut.cut(["relu4_1"])
