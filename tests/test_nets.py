"""Tests for styleforge.nets: the stylizer, the PatchGAN discriminator and their configs."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from styleforge import configs
from styleforge.nets import (
    MIN_SIDE,
    AnyStylizerConfig,
    DiscriminatorConfig,
    PainterConfig,
    PatchDiscriminator,
    StylizerConfig,
    StylizerNet,
    stylizer_config_from_dict,
)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def quick() -> StylizerNet:
    torch.manual_seed(1)
    return StylizerNet(StylizerConfig.quick()).eval()


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --- StylizerNet -------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(64, 64), (37, 50), (MIN_SIDE, 9)])
def test_stylizer_output_shape_and_range(quick: StylizerNet, size: tuple[int, int]) -> None:
    x = torch.rand(2, 3, *size)
    y = quick(x)
    assert y.shape == x.shape
    assert y.min() >= 0.0 and y.max() <= 1.0
    assert torch.isfinite(y).all()


def test_stylizer_rejects_bad_input(quick: StylizerNet) -> None:
    with pytest.raises(ValueError, match="at least"):
        quick(torch.rand(1, 3, MIN_SIDE - 1, 32))
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        quick(torch.rand(1, 1, 32, 32))


def test_stylizer_padding_does_not_leak_across_batch(quick: StylizerNet) -> None:
    # Same image alone or in a batch -> same output (InstanceNorm, no batch statistics).
    x = torch.rand(3, 3, 37, 50)
    torch.testing.assert_close(quick(x[1:2]), quick(x)[1:2], atol=1e-5, rtol=1e-5)


def test_presets() -> None:
    q, s, m = StylizerConfig.quick(), StylizerConfig.standard(), StylizerConfig.max()
    assert (q.width, q.n_res) == (12, 3)
    assert s == StylizerConfig() and (s.width, s.n_res) == (32, 5)
    assert (m.width, m.n_res) == (48, 9)
    assert 100_000 <= n_params(StylizerNet(q)) <= 200_000
    assert n_params(StylizerNet(q)) < n_params(StylizerNet(s)) < n_params(StylizerNet(m))


def test_quick_channels() -> None:
    convs = [m for m in StylizerNet(StylizerConfig.quick()).modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs[:3]] == [12, 24, 48]
    assert convs[0].kernel_size == (9, 9) and convs[-1].kernel_size == (9, 9)
    assert [c.stride for c in convs[1:3]] == [(2, 2), (2, 2)]
    assert convs[-1].out_channels == 3


def test_stylizer_config_round_trip_and_rebuild() -> None:
    cfg = StylizerConfig(width=8, n_res=2, norm="instance")
    d = json.loads(json.dumps(cfg.to_dict()))
    assert StylizerConfig.from_dict(d) == cfg
    a = StylizerNet(cfg).eval()
    # Perturb the affine norm params so an untouched rebuild would differ.
    with torch.no_grad():
        for p in a.parameters():
            p.add_(0.05 * torch.randn_like(p))
    b = StylizerNet(StylizerConfig.from_dict(d)).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 32, 40)
    assert torch.equal(a(x), b(x))
    assert b.config == cfg


def test_stylizer_config_validation() -> None:
    with pytest.raises(ValueError, match="unknown"):
        StylizerConfig.from_dict({"width": 8, "depth": 3})
    with pytest.raises(ValueError, match="width"):
        StylizerConfig(width=0)
    with pytest.raises(ValueError, match="norm"):
        StylizerConfig(norm="batch")  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        StylizerConfig().width = 3  # type: ignore[misc]


def test_norm_none_has_no_instance_norm() -> None:
    m = StylizerNet(StylizerConfig(width=8, n_res=1, norm="none"))
    assert not any(isinstance(x, nn.InstanceNorm2d) for x in m.modules())
    y = m(torch.rand(1, 3, 16, 16))
    assert y.shape == (1, 3, 16, 16)


def test_stylizer_gradients_reach_first_layer() -> None:
    m = StylizerNet(StylizerConfig.quick())
    y = m(torch.rand(2, 3, 32, 32))
    ((y - 0.3) ** 2).mean().backward()
    first = next(x for x in m.modules() if isinstance(x, nn.Conv2d)).weight
    assert first.grad is not None
    assert first.grad.abs().sum() > 0


def test_no_transposed_convs() -> None:
    for cfg in (StylizerConfig.quick(), StylizerConfig.max()):
        mods = list(StylizerNet(cfg).modules())
        assert not any(isinstance(x, nn.ConvTranspose2d) for x in mods)
        assert sum(isinstance(x, nn.Upsample) for x in mods) == 2


# --- Discriminator --------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "out"), [(64, 6), (128, 14)])
def test_discriminator_output_shape(size: int, out: int) -> None:
    d = PatchDiscriminator(DiscriminatorConfig(width=16))
    y = d(torch.rand(2, 3, size, size))
    assert y.shape == (2, 1, out, out)
    assert d.output_size(size, size) == (out, out)


def test_discriminator_default_is_70px_patchgan() -> None:
    d = PatchDiscriminator()
    assert d.receptive_field == 70
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert all(c.kernel_size == (4, 4) for c in convs)
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert not any(isinstance(m, nn.InstanceNorm2d | nn.BatchNorm2d) for m in d.modules())


def test_discriminator_maps_input_to_minus_one_one() -> None:
    d = PatchDiscriminator(DiscriminatorConfig(width=8, spectral_norm=False)).eval()
    seen: list[torch.Tensor] = []
    d.model[0].register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    d(torch.zeros(1, 3, 32, 32))
    assert torch.equal(seen[0], -torch.ones(1, 3, 32, 32))


def test_discriminator_rejects_too_small() -> None:
    with pytest.raises(ValueError, match="too small"):
        PatchDiscriminator(DiscriminatorConfig(width=8))(torch.rand(1, 3, 16, 16))


def test_spectral_norm_present_and_bounds_sigma() -> None:
    d = PatchDiscriminator(DiscriminatorConfig(width=8)).train()
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert all(parametrize.is_parametrized(c, "weight") for c in convs)
    with torch.no_grad():  # make the raw weights large: unnormalised sigma >> 1
        for c in convs:
            c.get_parameter("parametrizations.weight.original").mul_(50.0)
        for _ in range(10):  # each train-mode forward runs one power iteration
            d(torch.rand(2, 3, 64, 64))
    d.eval()
    for c in convs:
        raw = c.get_parameter("parametrizations.weight.original")
        assert torch.linalg.matrix_norm(raw.flatten(1), ord=2) > 5.0
        sigma = torch.linalg.matrix_norm(c.weight.detach().flatten(1), ord=2)
        assert sigma <= 1.05


def test_discriminator_without_spectral_norm_uses_instance_norm() -> None:
    d = PatchDiscriminator(DiscriminatorConfig(width=8, spectral_norm=False))
    assert not any(parametrize.is_parametrized(m) for m in d.modules())
    assert sum(isinstance(m, nn.InstanceNorm2d) for m in d.modules()) == 3
    assert d(torch.rand(1, 3, 64, 64)).shape == (1, 1, 6, 6)


def test_discriminator_config_round_trip() -> None:
    cfg = DiscriminatorConfig(width=8, n_layers=2, spectral_norm=False)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert DiscriminatorConfig.from_dict(d) == cfg
    a = PatchDiscriminator(cfg).eval()
    b = PatchDiscriminator(DiscriminatorConfig.from_dict(d)).eval()
    b.load_state_dict(a.state_dict())
    x = torch.rand(1, 3, 48, 48)
    assert torch.equal(a(x), b(x))
    with pytest.raises(ValueError, match="unknown"):
        DiscriminatorConfig.from_dict({"widht": 8})
    with pytest.raises(ValueError, match="n_layers"):
        DiscriminatorConfig(n_layers=0)


def test_discriminator_gradients_reach_input() -> None:
    d = PatchDiscriminator(DiscriminatorConfig(width=8))
    x = torch.rand(1, 3, 64, 64, requires_grad=True)
    d(x).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


@dataclasses.dataclass(frozen=True)
class _Outer(configs.DictConfig):
    """A config nesting the net configs, as the training configs do."""

    net: AnyStylizerConfig = dataclasses.field(default_factory=StylizerConfig.quick)
    disc: DiscriminatorConfig = dataclasses.field(default_factory=DiscriminatorConfig)
    layers: tuple[str, ...] = ("relu1_1", "relu2_1")
    steps: int = 10


@pytest.mark.parametrize("net", [StylizerConfig(width=4, n_res=1), PainterConfig(n_res=2)])
def test_nested_configs_round_trip_through_json(net: AnyStylizerConfig) -> None:
    cfg = _Outer(net=net, disc=DiscriminatorConfig(width=8), layers=("relu3_1",), steps=3)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["net"] == net.to_dict() and d["disc"]["width"] == 8 and d["layers"] == ["relu3_1"]
    back = _Outer.from_dict(d)
    assert back == cfg
    assert type(back.net) is type(net) and isinstance(back.layers, tuple)
    assert _Outer.from_dict({"steps": 4}) == _Outer(steps=4)  # missing keys take defaults
    assert _Outer.from_dict({"net": net}).net is net  # a config already built passes through


def test_nested_config_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match="unknown arch 'paint'"):
        _Outer.from_dict({"net": {"arch": "paint"}})
    with pytest.raises(ValueError, match=r"unknown DiscriminatorConfig keys: \['widht'\]"):
        _Outer.from_dict({"disc": {"widht": 8}})
    with pytest.raises(TypeError, match="needs a dict"):
        StylizerConfig.from_dict([("width", 4)])  # type: ignore[arg-type]
    assert stylizer_config_from_dict({}) == StylizerConfig()
    assert PainterConfig().to_dict()["widths"] == [8, 16, 32]
