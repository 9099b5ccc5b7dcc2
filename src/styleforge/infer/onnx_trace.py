"""Export a stylizer network to ONNX, for :mod:`styleforge.infer.onnx_runtime`.

The graph has an input ``image`` and an output ``stylized``, both float32 (N,3,H,W) in [0,1],
with N, H and W dynamic (any H, W ≥ ``MIN_SIDE``, multiples of 4 or not). A painter-prior model
(:class:`~styleforge.nets.PainterNet`) has two more inputs: ``strength`` (1,) and
``style_square`` (1,3,256,256), the photo's centre square, from which the graph's own copy of
the style predictor measures the photo's style vector. It is written by
torch's TorchScript-based exporter (``dynamo=False``): the torch.export-based default needs the
``onnxscript`` package, which styleforge does not depend on.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Mapping
from pathlib import Path

import onnx
import torch
from torch import Tensor, nn

from styleforge.fileio import atomic_write
from styleforge.infer.onnx_runtime import INPUT_NAME, OUTPUT_NAME, SQUARE_NAME, STRENGTH_NAME
from styleforge.nets import AnyStylizer, PainterNet, StylePredictor, StylizerNet

__all__ = ["MAX_OPSET", "MIN_OPSET", "export_onnx"]

#: Opset range: ≥ 11 for ``Pad`` with run-time pads (dynamic H, W), ≤ 20 for torch's exporter.
MIN_OPSET, MAX_OPSET = 11, 20

#: Shape of the example traced; any shape gives the same graph.
_EXAMPLE_SHAPE = (1, 3, 36, 44)

#: Exporter warnings that say nothing about this model (category, start of the message).
_NOISE: tuple[tuple[type[Warning], str], ...] = (
    # Python-side checks in forward (validation, padding) that the trace need not record.
    (torch.jit.TracerWarning, ""),
    (DeprecationWarning, "You are using the legacy TorchScript-based ONNX export"),
    (DeprecationWarning, "The feature will be removed"),
    # InstanceNorm2d without running stats always normalises with per-image statistics.
    (UserWarning, "ONNX export mode is set to TrainingMode.EVAL, but operator 'instance_norm'"),
    (UserWarning, "Constant folding - Only steps=1 can be constant folded"),
)


class _PainterGraph(nn.Module):
    """What a painter-prior model's ONNX graph computes: predictor + conditioned transformer."""

    def __init__(self, net: PainterNet, predictor: StylePredictor) -> None:
        super().__init__()
        self.net, self.predictor = net, predictor

    def forward(self, image: Tensor, strength: Tensor, square: Tensor) -> Tensor:
        return self.net(image, strength, self.predictor(square))


def export_onnx(
    net: AnyStylizer,
    path: Path,
    metadata: Mapping[str, str] | None = None,
    opset: int = 17,
) -> Path:
    """Write ``net`` (as float32 on CPU, in eval mode) to the ONNX file ``path``, atomically.

    ``net`` itself is left as it was (device, dtype, training mode). ``metadata`` is stored in the
    model's ``metadata_props`` (read back by ``OnnxStylizerNet.metadata``). Returns ``path``.
    """
    if not isinstance(net, StylizerNet | PainterNet):
        raise TypeError(f"net must be a StylizerNet or PainterNet, got {type(net).__name__}")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be in [{MIN_OPSET}, {MAX_OPSET}], got {opset}")
    props = dict(metadata or {})
    bad = [k for k, v in props.items() if not isinstance(k, str) or not isinstance(v, str)]
    if bad:
        raise TypeError(f"metadata keys and values must be str; not so for {bad}")

    model: nn.Module = copy.deepcopy(net).to(device="cpu", dtype=torch.float32).eval()
    gen = torch.Generator().manual_seed(0)
    example: tuple[Tensor, ...] = (torch.rand(_EXAMPLE_SHAPE, generator=gen),)
    names = [INPUT_NAME]
    dims = {0: "batch", 2: "height", 3: "width"}
    if isinstance(net, PainterNet):
        from styleforge.infer.prior import load_predictor

        model = _PainterGraph(model, load_predictor()).eval()  # type: ignore[arg-type]
        example += (torch.ones(1), torch.rand(1, 3, 256, 256, generator=gen))
        names += [STRENGTH_NAME, SQUARE_NAME]
    with atomic_write(path, ".onnx") as tmp:
        with warnings.catch_warnings():
            for category, message in _NOISE:
                warnings.filterwarnings("ignore", message=message, category=category)
            torch.onnx.export(
                model,
                example,
                tmp,
                dynamo=False,
                input_names=names,
                output_names=[OUTPUT_NAME],
                dynamic_axes={INPUT_NAME: dims, OUTPUT_NAME: dims},
                opset_version=opset,
            )
        proto = onnx.load(tmp)
        onnx.helper.set_model_props(proto, props)
        onnx.checker.check_model(proto, full_check=True)
        onnx.save(proto, tmp)
    return path
