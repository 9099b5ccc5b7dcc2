"""Stylizer training: losses move, checkpoints resume exactly (tiny configuration)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from styleforge.errors import UserError
from styleforge.nets import DiscriminatorConfig, StylizerConfig
from styleforge.train.checkpoint import load_checkpoint
from styleforge.train.config import SamplerTrainConfig, StylizerTrainConfig
from styleforge.train.data import random_crops
from styleforge.train.stylizer import train_stylizer_loop

pytestmark = pytest.mark.slow

TINY = StylizerTrainConfig(
    steps=6, size=32, batch=2, warmup=2, checkpoint_every=3, seed=3,
    net=StylizerConfig(width=8, n_res=1), disc=DiscriminatorConfig(width=8, n_layers=2),
)  # fmt: skip


def _images(seed: int, n: int = 3) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, 40, 48, generator=gen) for _ in range(n)]


def test_random_crops_are_seeded_and_sized() -> None:
    pool = _images(0)
    a = random_crops(pool, 4, 32, torch.Generator().manual_seed(1))
    b = random_crops(pool, 4, 32, torch.Generator().manual_seed(1))
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b)


@pytest.mark.parametrize("target", ["image", "crop"])
def test_training_moves_losses_and_writes_checkpoint(tmp_path: Path, target: str) -> None:
    ckpt = tmp_path / "run" / "checkpoint.pt"
    config = replace(TINY, style_target=target)
    state = train_stylizer_loop(config, _images(1), _images(2), torch.device("cpu"), ckpt)
    assert state.step == 6
    assert "d_loss" not in state.history[0] and "d_loss" in state.history[-1]
    assert all(torch.isfinite(torch.tensor(list(h.values()))).all() for h in state.history)
    saved = load_checkpoint(ckpt)
    assert saved["step"] == 6 and saved["config"]["size"] == 32
    assert not list(ckpt.parent.glob(".*.tmp"))


def test_resume_gives_the_same_weights_as_a_straight_run(tmp_path: Path) -> None:
    device = torch.device("cpu")
    photos, styles = _images(1), _images(2)
    straight = train_stylizer_loop(TINY, photos, styles, device, tmp_path / "a.pt")
    ckpt = tmp_path / "b.pt"
    half = train_stylizer_loop(TINY, photos, styles, device, ckpt, stop_at=3)
    assert half.step == 3
    resumed = train_stylizer_loop(TINY, photos, styles, device, ckpt, resume=True)
    assert resumed.step == 6
    for name, value in straight.generator.state_dict().items():
        assert torch.equal(value, resumed.generator.state_dict()[name]), name
    for name, value in straight.disc.state_dict().items():
        assert torch.equal(value, resumed.disc.state_dict()[name]), name
    assert straight.history == resumed.history


def test_resume_without_checkpoint_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no checkpoint"):
        train_stylizer_loop(TINY, _images(1), _images(2), torch.device("cpu"),
                            tmp_path / "none.pt", resume=True)  # fmt: skip


def test_a_short_run_leaves_the_warm_up_halfway() -> None:
    quick = StylizerTrainConfig.preset("quick", from_scratch=True)  # the painter's has none
    assert quick.with_overrides(steps=80).warmup == 40  # was 100: never adversarial
    assert quick.with_overrides(steps=1000).warmup == quick.warmup
    assert quick.with_overrides(steps=80, warmup=70).warmup == 70
    assert quick.with_overrides(seed=3).warmup == quick.warmup
    assert StylizerTrainConfig.preset("quick").warmup == 0  # the prior paints from the first step


def test_the_builders_keep_previews_and_kid_within_a_short_run() -> None:
    quick = StylizerTrainConfig.preset("quick")
    assert quick.with_overrides(steps=20).preview_every == 20
    assert quick.with_overrides(steps=20, preview_every=100).preview_every == 100
    assert quick.with_overrides(steps=1000).preview_every == quick.preview_every
    sampler = SamplerTrainConfig.preset("quick")
    short = sampler.with_overrides(steps=100, latent_dim=8)
    assert (short.preview_every, short.kid_every, short.net.latent_dim) == (100, 100, 8)
    assert short.net.resolution == sampler.net.resolution and short.steps == 100
    assert sampler.with_overrides(steps=None, latent_dim=None) == sampler


def test_a_trained_model_paints_at_the_scale_it_learned_at() -> None:
    quick = StylizerTrainConfig.preset("quick")  # crops of 160 px from short sides of 320
    assert quick.pool_side == 320 and quick.learned_paint_size == 427
    assert quick.to_dict()["paint_size"] == 427  # what the model file records
    assert quick.with_overrides(size=256).learned_paint_size == 683
    assert replace(quick, paint_size=300).learned_paint_size == 300
    back = StylizerTrainConfig.from_dict(quick.to_dict())
    assert back.learned_paint_size == 427 and back.to_dict() == quick.to_dict()


def test_two_trainings_in_one_process_give_the_same_weights() -> None:
    # The web app's worker trains job after job in one process. The painter prior's weights
    # are read once a process (cached); reading them must not move the global RNG, or the
    # first training would start its discriminator from other weights than the next ones.
    from styleforge.infer import prior

    prior._states.cache_clear()  # as in a fresh process: the first training reads them
    prior._sample_photo_vectors.cache_clear()
    config = StylizerTrainConfig.preset("quick").with_overrides(steps=3, size=32, batch=2)

    def weights() -> dict[str, torch.Tensor]:
        state = train_stylizer_loop(config, _images(1), _images(2), torch.device("cpu"))
        return {
            **state.ema.state_dict(),
            **{f"d.{k}": v for k, v in state.disc.state_dict().items()},
        }

    first, second = weights(), weights()
    for name, value in first.items():
        assert torch.equal(value, second[name]), name
