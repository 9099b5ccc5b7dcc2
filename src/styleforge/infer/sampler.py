"""The trained sampler as an inference object: ``Sampler.load(path).sample(seeds=range(16))``.

A sampler file is one safetensors file like the stylizer's (see :mod:`.model_file`): the EMA
generator's weights and, in the metadata, ``format`` = :data:`SAMPLER_FORMAT`, the network
config (``net``), the training config, the style set and final metrics.

Painting: a sampler file records its collection's mean style vector for the painter prior
(``paint``: ``style``, ``neutral``, and ``size``, the side painted at by default; 0: the
network's own pixels unless asked). Painted images are drawn at the network's resolution (the
composition: layout, tone, palette), scaled up to the paint size and restyled by the prior in
the collection's style (strokes and paper that a 64 px network cannot afford on a CPU).

Paint stage: a sampler trained with one (``train-sampler``'s second phase, see
:mod:`styleforge.train.paint_stage`) holds it in the same file (tensors ``stage.*``, its config
in ``stage``): a painter fine-tuned on the collection's own pictures, which paints each frame at
``scale``× its side keeping the frame's layout and palette. With a stage, painting uses it
instead of the prior, and ``generate`` paints at ``scale``× by default.

Seeds: the latent of seed ``s`` is ``latent_dim`` standard-normal numbers drawn from a CPU
generator seeded with ``s``, so an image depends only on its seed, not on the batch it was
drawn in nor on the device. Truncation ``ψ`` scales latents toward the mean (0): 1 keeps
them, smaller values trade variety for typical-looking images.

Likes: :func:`around_latents` draws new latents around liked ones, in the manner
of Deep Interactive Evolution (Bontrager et al., 2018): the liked latents' mean and slerp
neighbourhoods of each, pushed away from the disliked ones' mean, at the prior's typical norm.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from styleforge.errors import UserError
from styleforge.infer.model_file import PREPROCESSING, load_weights, now_iso, read_safetensors
from styleforge.nets.painter import PainterConfig
from styleforge.nets.sampler import SamplerConfig, SamplerGenerator
from styleforge.nets.stage import PaintStage
from styleforge.runtime import autocast, pick_device, place
from styleforge.version import __version__

__all__ = [
    "SAMPLER_FORMAT",
    "STAGE_PREFIX",
    "LikeConfig",
    "Sampler",
    "SamplerInfo",
    "around_latents",
    "frame_size",
    "latents",
    "slerp",
]

SAMPLER_FORMAT = "styleforge-sampler-v1"
#: A paint stage's tensors sit in the sampler file under this prefix.
STAGE_PREFIX = "stage."


def frame_size(resolution: int, aspect: float) -> tuple[int, int]:
    """(height, width) of a generated frame: short side ``resolution``, width / height
    ``aspect`` (1: the network's own square)."""
    if not aspect > 0:
        raise ValueError(f"aspect must be positive, got {aspect}")
    if aspect >= 1.0:
        return resolution, max(resolution, round(resolution * aspect))
    return max(resolution, round(resolution / aspect)), resolution


def to_frame(images: Tensor, aspect: float) -> Tensor:
    """Network squares (N,3,R,R) -> (N,3,H,W) at :func:`frame_size` (Lanczos, [0,1]): the
    stretch back of a sampler trained on squeezed pictures (``framing = "whole"``)."""
    from styleforge.images import resize_tensor

    h, w = frame_size(images.shape[-1], aspect)
    return images if (h, w) == tuple(images.shape[-2:]) else resize_tensor(images, h, w)


@dataclass(frozen=True)
class SamplerInfo:
    """What a sampler file says about itself (its metadata, decoded)."""

    net: SamplerConfig
    version: str = __version__
    training: dict[str, Any] = field(default_factory=dict)
    style: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    paint: dict[str, Any] = field(default_factory=dict)
    #: Width / height of the images drawn: the collection's median aspect for a sampler
    #: trained on squeezed pictures, 1 (the network's square) otherwise.
    aspect: float = 1.0
    #: The paint stage's ``net`` (a painter config) and ``scale``; empty: no stage.
    stage: dict[str, Any] = field(default_factory=dict)

    def to_metadata(self) -> dict[str, str]:
        """safetensors metadata: every value a string (JSON for structured ones)."""
        return {
            "format": SAMPLER_FORMAT,
            "styleforge_version": self.version,
            "net": json.dumps(self.net.to_dict()),
            "preprocessing": json.dumps(PREPROCESSING),
            "training": json.dumps(self.training),
            "style": json.dumps(self.style),
            "metrics": json.dumps(self.metrics),
            "created": self.created or now_iso(),
            "paint": json.dumps(self.paint),
            "aspect": repr(float(self.aspect)),
            "stage": json.dumps(self.stage),
        }

    @classmethod
    def from_metadata(cls, meta: Mapping[str, str], path: Path) -> SamplerInfo:
        """Inverse of :meth:`to_metadata`; a bad or foreign header is a :class:`UserError`."""
        if meta.get("format") != SAMPLER_FORMAT:
            hint = (
                " (a stylizer: use `styleforge apply`)"
                if "stylizer" in meta.get("format", "")
                else ""
            )
            raise UserError(f"{path}: not a styleforge sampler file{hint}")
        try:
            return cls(
                net=SamplerConfig.from_dict(json.loads(meta["net"])),
                version=meta.get("styleforge_version", "?"),
                training=json.loads(meta.get("training", "{}")),
                style=json.loads(meta.get("style", "{}")),
                metrics=json.loads(meta.get("metrics", "{}")),
                created=meta.get("created", ""),
                paint=json.loads(meta.get("paint", "{}")),
                aspect=float(meta.get("aspect", "1.0")),
                stage=json.loads(meta.get("stage", "{}")),
            )
        except (KeyError, ValueError, TypeError) as err:
            raise UserError(f"{path}: damaged styleforge sampler header ({err})") from err


def latents(seeds: Iterable[int], latent_dim: int) -> Tensor:
    """(len(seeds), latent_dim) standard-normal latents, row i from seed i alone."""
    rows = [torch.randn(latent_dim, generator=torch.Generator().manual_seed(int(s))) for s in seeds]
    if not rows:
        raise UserError("no seeds given")
    return torch.stack(rows)


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latents a and b (latent_dim,) at fractions t (K,):
    (K, latent_dim). Keeps the norm typical of Gaussian latents, unlike a straight line."""
    a_n, b_n = a / a.norm(), b / b.norm()
    omega = torch.arccos((a_n * b_n).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    t = t[:, None]
    return (torch.sin((1 - t) * omega) / so) * a + (torch.sin(t * omega) / so) * b


@dataclass(frozen=True)
class LikeConfig:
    """How far :func:`around_latents` wanders.

    Args:
        spread: the largest slerp fraction from a centre toward a random latent (0: none,
            1: anywhere); each neighbour draws its fraction from [spread/2, spread].
        push: how far a disliked mean pushes, as a fraction of the typical norm.
    """

    spread: float = 0.35
    push: float = 0.5


def _to_norm(z: Tensor, norm: float) -> Tensor:
    """Rows of (N,d) rescaled to length ``norm``."""
    return z * (norm / z.norm(dim=-1, keepdim=True).clamp_min(1e-8))


def around_latents(
    liked: Tensor, disliked: Tensor | None, n: int, seed: int = 0,
    config: LikeConfig = LikeConfig(),
) -> Tensor:  # fmt: skip
    """``n`` latents (n,d) around ``liked`` (k,d), away from ``disliked`` (m,d) or ``None``.

    Row 0 is the liked latents' mean; the others are slerp neighbourhoods of, in turn, the
    mean and each liked latent (one liked latent: of it alone), toward random latents. With
    dislikes, every row then moves away from the disliked mean's direction. All rows are
    rescaled to √d, the typical norm of a standard-normal latent (a plain mean would be
    shorter: an over-typical, truncated-looking image). Deterministic for ``seed``."""
    if liked.ndim != 2 or len(liked) == 0:
        raise UserError("like at least one seed")
    if n < 1:
        raise UserError(f"ask for at least one image, got {n}")
    d = liked.shape[1]
    norm = math.sqrt(d)
    gen = torch.Generator().manual_seed(int(seed))
    mean = _to_norm(liked.mean(0, keepdim=True), norm)[0]
    centres = [mean, *liked] if len(liked) > 1 else [liked[0]]
    rows = [centres[0]]
    for i in range(1, n):
        target = torch.randn(d, generator=gen)
        t = config.spread * (0.5 + 0.5 * torch.rand(1, generator=gen))
        rows.append(slerp(centres[i % len(centres)], target, t)[0])
    z = _to_norm(torch.stack(rows), 1.0)
    if disliked is not None and len(disliked):
        away = _to_norm(disliked.mean(0, keepdim=True), 1.0)
        z = z - config.push * away
    return _to_norm(z, norm)


class Sampler:
    """A trained unconditional generator, ready to draw new images.

    Args:
        net: the generator (moved to ``device``, eval mode).
        info: what the sampler file says about itself.
        device: where to run.
    """

    def __init__(
        self,
        net: SamplerGenerator,
        info: SamplerInfo,
        device: torch.device,
        stage: PaintStage | None = None,
    ) -> None:
        self.device = device
        self.info = info
        self.net = place(net, device).eval().requires_grad_(False)
        self.stage = place(stage, device).eval().requires_grad_(False) if stage else None
        self._painter: torch.nn.Module | None = None

    @property
    def can_paint(self) -> bool:
        """Whether the file holds a paint stage or a style vector for the painter prior."""
        return self.stage is not None or bool(self.info.paint.get("style"))

    @property
    def frame_side(self) -> int:
        """The long side (px) of the network's own frames."""
        return max(frame_size(self.info.net.resolution, self.info.aspect))

    @property
    def paint_size(self) -> int:
        """The long side (px) the images are painted at by default: the stage's ``scale``× the
        frame's with a stage, else the file's recorded size; 0: not painted by default."""
        if self.stage is not None:
            return self.stage.scale * self.frame_side
        return int(self.info.paint.get("size", 0)) if self.can_paint else 0

    def _painter_net(self) -> torch.nn.Module:
        if self.stage is not None:
            return self.stage
        if self._painter is None:
            from styleforge.infer.prior import prior_painter

            style = torch.tensor(self.info.paint["style"], dtype=torch.float32)
            neutral = torch.tensor(self.info.paint["neutral"], dtype=torch.float32)
            net = prior_painter(style, neutral).eval().requires_grad_(False)
            self._painter = place(net, self.device)
        return self._painter

    @torch.inference_mode()
    def paint(self, images: Tensor, size: int, batch: int = 8) -> Tensor:
        """Frames (N,3,H,W) -> (N,3,H',W') in [0,1], long side ``size``: scaled up (bicubic)
        and painted by the file's paint stage, else restyled by the painter prior with the
        collection's style vector. The frames' own size gives the frames; a stage paints only
        sizes larger than theirs (smaller ones are the frames shrunk)."""
        if size == max(images.shape[-2:]):
            return images
        if not self.can_paint:
            raise UserError(
                "this sampler file records no style for the painter (made by an earlier "
                "version: train it again to paint its images)"
            )
        if size < 8:
            raise UserError(f"paint size must be at least 8 px, got {size}")
        from styleforge.images import resize_tensor, scaled_size

        target = scaled_size(images.shape[-2], images.shape[-1], size)
        if self.stage is not None and size < max(images.shape[-2:]):
            return resize_tensor(images, *target)  # a stage paints enlargements only
        painter = self._painter_net()
        out = []
        for chunk in images.split(batch):
            big = torch.nn.functional.interpolate(
                chunk.to(self.device), size=target, mode="bicubic", align_corners=False
            ).clamp(0, 1)
            with autocast(self.device):
                out.append(painter(big).float().cpu())
        return torch.cat(out).clamp(0, 1)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "auto") -> Sampler:
        """Load a file written by ``styleforge train-sampler`` (never unpickles)."""
        tensors, meta = read_safetensors(Path(path), "sampler")
        info = SamplerInfo.from_metadata(meta, Path(path))
        own = {k: v for k, v in tensors.items() if not k.startswith(STAGE_PREFIX)}
        net = load_weights(SamplerGenerator(info.net), own, Path(path))
        stage = None
        if info.stage:
            try:
                net_config = PainterConfig.from_dict(info.stage["net"])
                stage = PaintStage(net_config, info.stage["scale"], info.stage.get("band"))
            except (KeyError, TypeError, ValueError) as err:
                raise UserError(f"{path}: damaged paint stage header ({err})") from err
            n = len(STAGE_PREFIX)
            weights = {k[n:]: v for k, v in tensors.items() if k.startswith(STAGE_PREFIX)}
            stage = load_weights(stage, weights, Path(path))
        return cls(net, info, pick_device(device), stage)

    @property
    def latent_dim(self) -> int:
        """Size of a latent vector."""
        return self.info.net.latent_dim

    @torch.inference_mode()
    def decode(
        self, z: Tensor, truncation: float = 1.0, batch: int = 16, paint_size: int | None = None
    ) -> Tensor:
        """Latents (N, latent_dim) -> images (N,3,H,W) in [0,1] on the CPU (float32): the
        network's frames (short side R, at the file's :attr:`SamplerInfo.aspect`), painted at a
        long side of ``paint_size`` (default: the file's :attr:`paint_size`; 0: not painted)."""
        if not 0.0 <= truncation <= 1.0:
            raise UserError(f"truncation must be between 0 and 1, got {truncation}")
        out = []
        for chunk in (z * truncation).split(batch):
            with autocast(self.device):
                out.append(self.net(chunk.to(self.device)).float().cpu())
        raw = to_frame(torch.cat(out).clamp(0, 1), self.info.aspect)
        size = self.paint_size if paint_size is None else paint_size
        return self.paint(raw, size) if size else raw

    def sample(
        self, seeds: Sequence[int], truncation: float = 1.0, paint_size: int | None = None
    ) -> Tensor:
        """One image per seed: (len(seeds),3,P,P) in [0,1], reproducible by seed (see
        :meth:`decode` for ``paint_size``)."""
        return self.decode(latents(seeds, self.latent_dim), truncation, paint_size=paint_size)

    def around(
        self, liked: Sequence[int], disliked: Sequence[int] = (), n: int = 16, seed: int = 0,
        truncation: float = 1.0, paint_size: int | None = None,
    ) -> Tensor:  # fmt: skip
        """``n`` images (n,3,R,R) around the liked seeds' latents, away from the disliked ones'
        (see :func:`around_latents`); the same arguments give the same images."""
        both = sorted(set(liked) & set(disliked))
        if both:
            raise UserError(f"seed {both[0]} is both liked and disliked")
        bad = latents(disliked, self.latent_dim) if disliked else None
        z = around_latents(latents(liked, self.latent_dim), bad, n, seed)
        return self.decode(z, truncation, paint_size=paint_size)

    def walk(
        self, seed_a: int, seed_b: int, frames: int, truncation: float = 1.0,
        paint_size: int | None = None,
    ) -> Tensor:  # fmt: skip
        """``frames`` images along the spherical path from seed_a's latent to seed_b's."""
        if frames < 2:
            raise UserError(f"a walk needs at least 2 frames, got {frames}")
        z = latents([seed_a, seed_b], self.latent_dim)
        path = slerp(z[0], z[1], torch.linspace(0, 1, frames))
        return self.decode(path, truncation, paint_size=paint_size)
