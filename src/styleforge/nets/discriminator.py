"""PatchGAN discriminator (pix2pix / CycleGAN "70×70" with the defaults) and its config.

Every output logit judges one receptive-field patch of the input, so a small style collection
gives many training signals per image. With spectral norm (the default, Miyato et al., 2018) the
convs are Lipschitz-constrained and no normalisation layers are used; without it the inner
layers use affine InstanceNorm as in CycleGAN.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from styleforge import configs

__all__ = ["DiscriminatorConfig", "PatchDiscriminator"]

_KERNEL = 4
_PAD = 1
_MAX_MULT = 8


@dataclass(frozen=True)
class DiscriminatorConfig(configs.DictConfig):
    """Constructor config of :class:`PatchDiscriminator`; JSON-able via :meth:`to_dict`.

    Args:
        width: channels of the first conv; doubles per stride-2 layer, capped at 8·width.
        n_layers: number of stride-2 convs (3 gives the 70×70 receptive field).
        spectral_norm: wrap every conv in spectral normalisation (then no norm layers).
    """

    width: int = 64
    n_layers: int = 3
    spectral_norm: bool = True

    def __post_init__(self) -> None:
        configs.check_ints(self, ("width", "n_layers"))
        if not isinstance(self.spectral_norm, bool):
            raise ValueError(f"spectral_norm must be a bool, got {self.spectral_norm!r}")


class PatchDiscriminator(nn.Module):
    """PatchGAN: (N,3,H,W) in [0,1] -> (N,1,h,w) raw logits, one per input patch.

    For ``n_layers`` = L, h = ⌊H / 2^L⌋ − 2 (e.g. 64 px -> 6, 128 px -> 14 with L = 3).

    Args:
        config: architecture; defaults to ``DiscriminatorConfig()``. Kept as ``self.config``.
    """

    def __init__(self, config: DiscriminatorConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = configs.given_or_default(config, DiscriminatorConfig)
        w, sn = cfg.width, cfg.spectral_norm
        mults = [min(2**i, _MAX_MULT) for i in range(cfg.n_layers + 1)]
        # (in, out, stride, norm+act?) per conv; the first has no norm, the last is the head.
        specs = [(3, w, 2)]
        specs += [(w * mults[i - 1], w * mults[i], 2) for i in range(1, cfg.n_layers)]
        specs += [(w * mults[-2], w * mults[-1], 1)]
        layers: list[nn.Module] = []
        for i, (c_in, c_out, stride) in enumerate(specs):
            layers.append(self._conv(c_in, c_out, stride, sn))
            if i > 0 and not sn:
                layers.append(nn.InstanceNorm2d(c_out, affine=True))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
        layers.append(self._conv(w * mults[-1], 1, 1, sn))
        self.model = nn.Sequential(*layers)
        self._strides = [s for _, _, s in specs] + [1]

    @staticmethod
    def _conv(c_in: int, c_out: int, stride: int, sn: bool) -> nn.Module:
        conv = nn.Conv2d(c_in, c_out, _KERNEL, stride=stride, padding=_PAD)
        return _spectral_norm(conv) if sn else conv

    @property
    def receptive_field(self) -> int:
        """Side in px of the input patch each output logit sees (70 for the default config)."""
        rf, jump = 1, 1
        for s in self._strides:
            rf += (_KERNEL - 1) * jump
            jump *= s
        return rf

    def output_size(self, h: int, w: int) -> tuple[int, int]:
        """Spatial size (h, w) of the logit map for an H×W input (may be ≤ 0 if too small)."""

        def one(n: int) -> int:
            for s in self._strides:
                n = (n + 2 * _PAD - _KERNEL) // s + 1
            return n

        return one(h), one(w)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N,1,h,w) for images ``x`` (N,3,H,W) in [0,1] (mapped to [-1,1] inside)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an (N,3,H,W) batch, got shape {tuple(x.shape)}")
        oh, ow = self.output_size(x.shape[-2], x.shape[-1])
        if min(oh, ow) < 1:
            raise ValueError(
                f"input {x.shape[-2]}×{x.shape[-1]} is too small for a PatchDiscriminator "
                f"with n_layers={self.config.n_layers}"
            )
        return self.model(x * 2.0 - 1.0)
