"""``styleforge tune --refine``: a short fine-tune of a trained stylizer toward the user's picks.

The model's own training recipe (from its metadata) runs for a few more steps, starting from its
weights, with the results the user liked added to the style images at a lower weight and the
ones they disliked shown to the discriminator as extra fakes (:class:`~styleforge.train.
stylizer.Feedback`). The refined model is a new file; the original is never touched.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from styleforge import collection, images
from styleforge.errors import UserError
from styleforge.infer.model_file import ModelInfo, read_model, write_model
from styleforge.runtime import pick_device
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.data import resize_pool
from styleforge.train.stylizer import Feedback, train_stylizer_loop

__all__ = ["RefineConfig", "refine_model"]


@dataclass(frozen=True)
class RefineConfig:
    """How long and how strongly a refine pulls toward the picks.

    ``steps``: training steps (the model's own batch and size; about 0.6 s a step for a quick
    painter model on a 2-core CPU). ``liked_share``: the fraction of real crops and Gram
    targets drawn from the liked results rather than the style images (the collection keeps
    the rest; measured on a van Gogh model, 150 steps: a quarter left the colours where they
    were, half moved them visibly toward the liked results). ``ema_decay``: of the
    averaged weights the refined model keeps (shorter than training's, so that a short refine
    shows in the result instead of averaging back toward the start).
    """

    steps: int = 150
    liked_share: float = 0.5
    ema_decay: float = 0.98

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise UserError(f"refine steps must be at least 1, got {self.steps}")
        if not 0.0 < self.liked_share < 1.0:
            raise UserError(f"liked share must be between 0 and 1, got {self.liked_share}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise UserError(f"EMA decay must be in [0, 1), got {self.ema_decay}")


def refine_model(
    model: Path,
    output: Path,
    style_dir: Path,
    liked: Sequence[Tensor],
    disliked: Sequence[Tensor],
    photos: Sequence[Tensor],
    *,
    config: RefineConfig | None = None,
    record: Mapping[str, Any] | None = None,
    device: str | torch.device = "auto",
    max_pixels: int = images.DEFAULT_MAX_PIXELS,
) -> Path:
    """Fine-tune ``model`` toward ``liked`` and away from ``disliked`` results ((1,3,H,W) in
    [0,1]); write the refined model to ``output`` (atomically) and return it.

    ``style_dir``: the collection the model learned (its style images stay the main target).
    ``photos``: content photos ((1,3,H,W)), e.g. those the picks were judged on. ``record``:
    what to note in the new model's metadata about the picks (e.g. the number of rounds).
    """
    config = config or RefineConfig()
    if output.resolve() == model.resolve():
        raise UserError(f"{output}: refine writes a new model; the original is never overwritten")
    if not liked:
        raise UserError("nothing liked yet: refine needs at least one liked result")
    state_dict, info = read_model(model)
    if not info.training:
        raise UserError(f"{model}: its metadata has no training recipe to refine with")
    base = StylizerTrainConfig.from_dict(info.training)
    train = replace(
        base, steps=config.steps, warmup=0, checkpoint_every=config.steps,
        preview_every=config.steps, ema_decay=config.ema_decay,
    )  # fmt: skip
    short = train.pool_side
    coll, styles = collection.load_for(
        style_dir, 1, "refining", lambda t: images.resize_to(t, short, "short"), max_pixels
    )
    if info.style.get("fingerprint") not in (None, coll.fingerprint):
        print(
            f"note: {style_dir} is not the exact set of images {model.name} learned from; "
            "refining toward it anyway",
            file=sys.stderr,
        )
    feedback = Feedback(resize_pool(liked, short), resize_pool(disliked, short), config.liked_share)
    dev = device if isinstance(device, torch.device) else pick_device(device)
    state = train_stylizer_loop(
        train, resize_pool(photos, short), styles, dev, start=state_dict, feedback=feedback
    )
    refined = {
        "from": model.name,
        "from_created": info.created,
        "steps": config.steps,
        "liked_share": config.liked_share,
        "liked": len(liked),
        "disliked": len(disliked),
        **dict(record or {}),
    }
    new_info = ModelInfo(
        net=info.net, training=info.training, style=info.style,
        refined=[*info.refined, refined],
    )  # fmt: skip
    return write_model(output, state.ema.state_dict(), new_info)
