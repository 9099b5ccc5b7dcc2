"""Tests for styleforge.infer.onnx_trace and onnx_runtime: torch/onnxruntime parity, metadata,
bad model files, and the torch-free import path."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")

import onnx
from PIL import Image

from styleforge.errors import UserError
from styleforge.infer import onnx_runtime
from styleforge.infer.onnx_runtime import OnnxStylizerNet
from styleforge.infer.onnx_trace import export_onnx
from styleforge.nets import MIN_SIDE, StylizerConfig, StylizerNet

TOL = 1e-3


def randomised(net: StylizerNet, seed: int) -> StylizerNet:
    """``net`` in eval mode with every parameter nudged: norm scales/shifts and biases get
    N(0, 0.1²) added, conv weights are scaled by 1 + N(0, 0.1²) per element."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            noise = 0.1 * torch.randn(p.shape, generator=g)
            if p.ndim == 1:
                p.add_(noise)
            else:
                p.mul_(1 + noise)
    return net.eval()


@pytest.fixture(scope="module")
def tiny() -> StylizerNet:
    torch.manual_seed(0)
    return randomised(StylizerNet(StylizerConfig(width=8, n_res=1)), seed=1)


@pytest.fixture(scope="module")
def quick() -> StylizerNet:
    torch.manual_seed(2)
    return randomised(StylizerNet(StylizerConfig.quick()), seed=3)


@pytest.fixture(scope="module")
def tiny_onnx(tiny: StylizerNet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return export_onnx(tiny, tmp_path_factory.mktemp("onnx") / "tiny.onnx", {"style": "tiny"})


@pytest.fixture(scope="module")
def quick_model(quick: StylizerNet, tmp_path_factory: pytest.TempPathFactory) -> OnnxStylizerNet:
    return OnnxStylizerNet(export_onnx(quick, tmp_path_factory.mktemp("onnx") / "quick.onnx"))


def max_diff(net: StylizerNet, model: OnnxStylizerNet, shape: tuple[int, ...], seed: int) -> float:
    """Max |torch - onnxruntime| on a seeded random batch of ``shape`` (N,3,H,W)."""
    x = torch.rand(shape, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        expected = net(x).numpy()
    got = model(x.numpy())
    assert got.shape == expected.shape and got.dtype == np.float32
    return float(np.abs(got - expected).max())


# --- parity with torch -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape",
    [
        (1, 3, 37, 53),
        (1, 3, 64, 64),
        (2, 3, 300, 200),
        (1, 3, 200, 300),
        (3, 3, 8, 8),
        (1, 3, 9, 14),
        (1, 3, MIN_SIDE, 11),
    ],
)
def test_tiny_matches_torch(tiny: StylizerNet, tiny_onnx: Path, shape: tuple[int, ...]) -> None:
    model = OnnxStylizerNet(tiny_onnx, threads=1)
    assert max_diff(tiny, model, shape, seed=sum(shape)) < TOL


@pytest.mark.parametrize("shape", [(2, 3, 37, 53), (1, 3, 64, 64), (1, 3, 300, 200)])
def test_quick_matches_torch(
    quick: StylizerNet, quick_model: OnnxStylizerNet, shape: tuple[int, ...]
) -> None:
    assert max_diff(quick, quick_model, shape, seed=sum(shape)) < TOL


def test_quick_output_is_not_trivial(quick: StylizerNet) -> None:
    # Guards the parity test against a net whose sigmoid output is nearly constant.
    x = torch.rand(2, 3, 37, 53, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        y = quick(x)
    assert y.std() > 0.02 and (y[0] - y[1]).abs().mean() > 0.02


def test_batch_items_are_independent(tiny_onnx: Path) -> None:
    model = OnnxStylizerNet(tiny_onnx, threads=1)
    x = np.random.default_rng(0).random((3, 3, 37, 53), dtype=np.float32)
    np.testing.assert_allclose(model(x[1:2]), model(x)[1:2], atol=1e-5)


# --- export ------------------------------------------------------------------------------------


def test_export_writes_a_valid_graph(tiny_onnx: Path) -> None:
    proto = onnx.load(tiny_onnx)
    onnx.checker.check_model(proto, full_check=True)
    assert [i.name for i in proto.graph.input] == ["image"]
    assert [o.name for o in proto.graph.output] == ["stylized"]
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims == ["batch", 3, "height", "width"]
    assert [e.name for e in tiny_onnx.parent.iterdir()] == [tiny_onnx.name]  # no temp files


def test_export_leaves_the_net_alone(tmp_path: Path) -> None:
    net = StylizerNet(StylizerConfig(width=4, n_res=0)).train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, tmp_path / "m.onnx")
    assert net.training
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


def test_export_overwrites_and_makes_folders(tiny: StylizerNet, tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "m.onnx"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"old")
    assert export_onnx(tiny, path, {"v": "2"}) == path
    assert OnnxStylizerNet(path).metadata == {"v": "2"}
    assert sorted(e.name for e in path.parent.iterdir()) == ["m.onnx"]


def test_export_rejects_bad_arguments(tiny: StylizerNet, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="opset"):
        export_onnx(tiny, tmp_path / "m.onnx", opset=9)
    with pytest.raises(TypeError, match="metadata"):
        export_onnx(tiny, tmp_path / "m.onnx", {"epochs": 3})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="StylizerNet"):
        export_onnx(torch.nn.Identity(), tmp_path / "m.onnx")  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_export_opset_18(tiny: StylizerNet, tmp_path: Path) -> None:
    path = export_onnx(tiny, tmp_path / "m.onnx", opset=18)
    assert max_diff(tiny, OnnxStylizerNet(path, threads=1), (1, 3, 37, 53), seed=0) < TOL


# --- metadata ----------------------------------------------------------------------------------


def test_metadata_round_trip(tiny: StylizerNet, tmp_path: Path) -> None:
    meta = {"config": '{"width": 8, "n_res": 1}', "style": "Étoilée ✨", "empty": ""}
    path = export_onnx(tiny, tmp_path / "m.onnx", meta)
    model = OnnxStylizerNet(path)
    assert model.metadata == meta
    model.metadata["style"] = "changed"
    assert model.metadata == meta
    assert OnnxStylizerNet(export_onnx(tiny, tmp_path / "none.onnx")).metadata == {}


# --- bad files and bad input -------------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no such file"):
        OnnxStylizerNet(tmp_path / "nope.onnx")


@pytest.mark.parametrize(
    "content",
    [b"", b"not an onnx model\n" * 20, np.arange(256, dtype=np.float32).tobytes()],
    ids=["empty", "text", "floats"],
)
def test_not_onnx(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "bad.onnx"
    path.write_bytes(content)
    with pytest.raises(UserError, match=r"bad\.onnx: not a styleforge ONNX model \(.+\)"):
        OnnxStylizerNet(path)


@pytest.mark.parametrize("fraction", [0.01, 0.3, 0.5, 0.9, 0.999])
def test_truncated(tiny_onnx: Path, tmp_path: Path, fraction: float) -> None:
    data = tiny_onnx.read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(UserError, match="not a styleforge ONNX model"):
        OnnxStylizerNet(path)


def test_other_onnx_model(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "other",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    path = tmp_path / "other.onnx"
    onnx.save(helper.make_model(graph), path)
    with pytest.raises(UserError, match=r"not a styleforge ONNX model \(inputs \['x'\]"):
        OnnxStylizerNet(path)


def test_missing_onnxruntime(tiny_onnx: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` fail
    with pytest.raises(UserError, match="pip install onnxruntime"):
        OnnxStylizerNet(tiny_onnx)


def test_rejects_bad_batches_and_threads(tiny_onnx: Path) -> None:
    model = OnnxStylizerNet(tiny_onnx, threads=1)
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        model(np.zeros((3, 32, 32), np.float32))
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        model(np.zeros((1, 4, 32, 32), np.float32))
    with pytest.raises(ValueError, match="float"):
        model(np.zeros((1, 3, 32, 32), np.uint8))
    with pytest.raises(ValueError, match="at least"):
        model(np.zeros((1, 3, MIN_SIDE - 1, 32), np.float32))
    with pytest.raises(ValueError, match="threads"):
        OnnxStylizerNet(tiny_onnx, threads=0)


def test_float64_input_is_accepted(tiny_onnx: Path) -> None:
    model = OnnxStylizerNet(tiny_onnx, threads=1)
    x = np.random.default_rng(0).random((1, 3, 16, 20))
    np.testing.assert_array_equal(model(x), model(x.astype(np.float32)))


# --- torch-free path ---------------------------------------------------------------------------


def test_min_side_matches_the_net() -> None:
    assert onnx_runtime.MIN_SIDE == MIN_SIDE


def test_runtime_does_not_import_torch(tiny_onnx: Path) -> None:
    code = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        import numpy as np
        from styleforge.infer.onnx_runtime import OnnxStylizerNet
        model = OnnxStylizerNet(Path({str(tiny_onnx)!r}), threads=1)
        y = model(np.full((1, 3, 37, 53), 0.5, np.float32))
        assert y.shape == (1, 3, 37, 53), y.shape
        loaded = sorted(m for m in sys.modules if m == "torch" or m.startswith("torch."))
        assert not loaded, loaded
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


def test_backend_onnx_exports_a_model_once_and_reuses_the_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`apply --backend onnx` on a .safetensors model: the first run exports into the cache, a
    second run opens the same copy without exporting; a changed model gets its own copy, and a
    damaged copy is made again."""
    from styleforge.infer import backends, export
    from tests.conftest import write_tiny_stylizer

    monkeypatch.setenv("STYLEFORGE_CACHE_DIR", str(tmp_path / "cache"))
    exports: list[Path] = []
    real = export.export_model
    monkeypatch.setattr(export, "export_model", lambda m, o: exports.append(m) or real(m, o))
    model = write_tiny_stylizer(tmp_path / "m.safetensors")
    photo = np.random.default_rng(0).random((1, 3, 40, 48), dtype=np.float32)

    run = backends.onnx_backend(model, "cpu")
    first = run(photo, 1.0, None)
    copies = sorted((tmp_path / "cache" / "onnx").iterdir())
    assert len(exports) == 1 and len(copies) == 1 and copies[0].suffix == ".onnx"
    run = backends.onnx_backend(model, "cpu")
    np.testing.assert_array_equal(run(photo, 1.0, None), first)
    assert len(exports) == 1  # reused, not exported again

    copies[0].write_bytes(b"not onnx")  # damaged: exported again, same place
    run = backends.onnx_backend(model, "cpu")
    np.testing.assert_array_equal(run(photo, 1.0, None), first)
    assert len(exports) == 2 and sorted((tmp_path / "cache" / "onnx").iterdir()) == copies

    from styleforge.infer.model_file import read_model, write_model

    state, info = read_model(model)  # retrained: other bytes, so a new copy
    write_model(model, {k: v + 0.01 for k, v in state.items()}, info)
    run = backends.onnx_backend(model, "cpu")
    assert not np.array_equal(run(photo, 1.0, None), first)
    assert len(exports) == 3 and len(list((tmp_path / "cache" / "onnx").iterdir())) == 2


def test_default_apply_on_the_cpu_runs_the_cached_export_without_torch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`styleforge apply M.safetensors` on a machine without a GPU: the first run exports the
    model into the cache, a later run opens the copy and never imports torch; the result is the
    torch backend's."""
    from styleforge.infer import backends
    from tests.conftest import write_image, write_tiny_stylizer

    monkeypatch.setenv("STYLEFORGE_CACHE_DIR", str(tmp_path / "cache"))
    model = write_tiny_stylizer(tmp_path / "m.safetensors")
    photo = write_image(tmp_path / "p.png", seed=2)
    assert backends.choose_backend(model, None, "cpu") == "onnx"
    assert backends.choose_backend(model, None, "cpu", sharded=True) == "torch"
    assert backends.choose_backend(model, None, "cuda") == "torch"
    assert backends.choose_backend(model, "torch", "cpu") == "torch"
    code = textwrap.dedent(
        f"""
        import sys
        from styleforge.cli import main
        args = [{str(model)!r}, {str(photo)!r}, "-o", sys.argv[1], "-q", "--device", "cpu"]
        assert main(["apply", *args, *sys.argv[2:]]) == 0
        print("torch" in sys.modules)
        """
    )

    def run(out: str, *extra: str) -> bool:
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path / out), *extra],
                              capture_output=True, text=True, timeout=300)  # fmt: skip
        assert done.returncode == 0, done.stderr
        return done.stdout.strip().splitlines()[-1] == "True"

    assert run("first.png")  # exported: torch was needed once
    assert len(list((tmp_path / "cache" / "onnx").iterdir())) == 1
    assert not run("second.png")  # the cached copy: no torch
    assert run("torch.png", "--backend", "torch")
    a, b, c = (np.asarray(Image.open(tmp_path / f), np.float32) for f in
               ("first.png", "second.png", "torch.png"))  # fmt: skip
    np.testing.assert_array_equal(a, b)
    assert np.abs(b - c).max() <= 1.0  # one 8-bit level


def test_the_optimised_graph_is_kept_reused_and_remade_when_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """open_exported keeps onnxruntime's optimised graph in the cache: a second open loads it
    (same pixels, same metadata), a damaged copy is made again, an unwritable place is skipped."""
    from styleforge.infer.export import export_model, open_exported, optimized_copy
    from tests.conftest import write_tiny_stylizer

    monkeypatch.setenv("STYLEFORGE_CACHE_DIR", str(tmp_path / "cache"))
    model = export_model(write_tiny_stylizer(tmp_path / "m.safetensors"), tmp_path / "m.onnx")
    kept = optimized_copy(model)
    assert kept is not None and not kept.exists()
    x = np.random.default_rng(0).random((1, 3, 37, 53), dtype=np.float32)
    first = open_exported(model)
    assert kept.is_file() and kept.read_bytes() != model.read_bytes()
    second = open_exported(model)
    np.testing.assert_array_equal(first(x), second(x))
    assert second.metadata == first.metadata
    kept.write_bytes(b"damaged")
    np.testing.assert_array_equal(open_exported(model)(x), first(x))
    assert kept.read_bytes() != b"damaged"
    assert sorted(p.name for p in kept.parent.iterdir()) == [kept.name]  # no temporary left
    blocker = tmp_path / "file"
    blocker.write_text("x")
    np.testing.assert_array_equal(OnnxStylizerNet(model, optimized=blocker / "o.onnx")(x), first(x))
