"""The training-time stability term (``StylizerTrainConfig.stability_weight``, ``train
--stability``): its config, its log column, determinism and resume, and that it does make a
stylizer steadier under small input changes (tiny from-scratch networks, 32 px crops)."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from styleforge.errors import UserError
from styleforge.nets import DiscriminatorConfig, StylizerConfig
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.stylizer import (
    STYLIZER_COLUMNS,
    StylizerState,
    train_stylizer,
    train_stylizer_loop,
)
from styleforge.video.stability import perturb

from .conftest import write_image

TINY = StylizerTrainConfig(
    steps=6, size=32, batch=2, warmup=2, checkpoint_every=3, preview_every=6, seed=3,
    net=StylizerConfig(width=8, n_res=1), disc=DiscriminatorConfig(width=8, n_layers=2),
    stability_weight=1e6,
)  # fmt: skip
CPU = torch.device("cpu")


def _images(seed: int, n: int = 3) -> list[torch.Tensor]:
    """``n`` random (1, 3, 40, 48) pictures in [0, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, 40, 48, generator=gen) for _ in range(n)]


def _smooth_images(seed: int, n: int = 4) -> list[torch.Tensor]:
    """``n`` (1, 3, 40, 48) photo-like pictures: random 5×6 colour fields upsampled bicubically
    (smooth, so a network can reproduce them, unlike pixel noise)."""
    gen = torch.Generator().manual_seed(seed)
    small = [torch.rand(1, 3, 5, 6, generator=gen) for _ in range(n)]
    return [
        torch.nn.functional.interpolate(s, size=(40, 48), mode="bicubic").clamp(0, 1) for s in small
    ]


def _same_weights(a: StylizerState, b: StylizerState) -> bool:
    return all(
        torch.equal(va, b.generator.state_dict()[k]) for k, va in a.generator.state_dict().items()
    )


# --------------------------------------------------------------------------------- config


def test_config_round_trips_and_is_off_by_default() -> None:
    assert StylizerTrainConfig().stability_weight == 0.0
    assert all(
        StylizerTrainConfig.preset(p, from_scratch=s).stability_weight == 0.0
        for p in ("quick", "standard", "max")
        for s in (False, True)
    )
    d = TINY.to_dict()
    assert d["stability_weight"] == 1e6
    assert StylizerTrainConfig.from_dict(d) == replace(TINY, paint_size=TINY.learned_paint_size)
    older = {k: v for k, v in StylizerTrainConfig().to_dict().items() if k != "stability_weight"}
    assert StylizerTrainConfig.from_dict(older).stability_weight == 0.0  # files from before it
    assert TINY.with_overrides(stability_weight=None).stability_weight == 1e6
    assert TINY.with_overrides(stability_weight=5.0).stability_weight == 5.0


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_a_negative_weight_is_refused(bad: float) -> None:
    with pytest.raises(UserError, match="stability weight must be ≥ 0"):
        replace(TINY, stability_weight=bad)
    with pytest.raises(UserError):
        StylizerTrainConfig.from_dict(TINY.to_dict() | {"stability_weight": bad})


def test_cli_maps_stability_to_the_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import styleforge.train.stylizer as stylizer
    from styleforge.cli import main

    seen: list[StylizerTrainConfig] = []

    def fake_train(config: StylizerTrainConfig, *args: object, **kwargs: object) -> object:
        seen.append(config)
        return SimpleNamespace(stopped_early=True)

    monkeypatch.setattr(stylizer, "train_stylizer", fake_train)
    out = str(tmp_path / "m.safetensors")
    assert main(["train", str(tmp_path), "-o", out, "--stability", "2e7", "-q"]) == 130
    assert main(["train", str(tmp_path), "-o", out, "-q"]) == 130
    assert [c.stability_weight for c in seen] == [2e7, 0.0]
    with pytest.raises(SystemExit):
        main(["train", str(tmp_path), "-o", out, "--stability", "-1"])
    assert "--stability" in capsys.readouterr().err


# ------------------------------------------------------------------------------- training


def test_training_with_the_term_is_logged_deterministic_and_resumes_exactly(
    tmp_path: Path,
) -> None:
    photos, styles = _images(1), _images(2)
    a = train_stylizer_loop(TINY, photos, styles, CPU)
    assert all(h["stab"] > 0 for h in a.history)  # every step, warm-up included
    b = train_stylizer_loop(TINY, photos, styles, CPU, tmp_path / "b.pt", stop_at=3)
    b = train_stylizer_loop(TINY, photos, styles, CPU, tmp_path / "b.pt", resume=True)
    assert b.step == 6 and _same_weights(a, b)
    assert [h["stab"] for h in a.history] == [h["stab"] for h in b.history]
    # The perturbations have a stream of their own: the run's other draws stay as they were.
    off = train_stylizer_loop(replace(TINY, stability_weight=0.0), photos, styles, CPU)
    assert "stab" not in off.history[-1] and not _same_weights(a, off)
    assert torch.equal(off.data_gen.get_state(), a.data_gen.get_state())


def test_the_job_writes_the_stab_column(tmp_path: Path) -> None:
    styles, photos = tmp_path / "styles", tmp_path / "photos"
    for i in range(3):
        write_image(styles / f"s{i}.png", size=(72, 64), seed=10 + i)
        write_image(photos / f"p{i}.jpg", size=(80, 64), seed=20 + i)
    config = replace(TINY, steps=3, checkpoint_every=3, preview_every=3)
    out = tmp_path / "m.safetensors"
    train_stylizer(
        config, styles, out, content_dir=photos, device="cpu", progress=False,
        evaluate_result=False,
    )  # fmt: skip
    with open(tmp_path / "m.run" / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert "stab" in STYLIZER_COLUMNS and "stab" in rows[0]
    assert [float(r["stab"]) > 0 for r in rows] == [True] * 3


def _crops(photos: list[torch.Tensor]) -> torch.Tensor:
    """The central 32 px crops of (1, 3, 40, 48) ``photos``: (N, 3, 32, 32)."""
    return torch.cat([p[..., 4:36, 8:40] for p in photos])


def _output_change(state: StylizerState, photos: list[torch.Tensor], seed: int) -> float:
    """Mean |G(x) − G(x')| over the crops x of ``photos`` and x' = x with Gaussian pixel noise
    (std 0.02, no shift) as :func:`perturb` makes it, averaged over 4 noise draws."""
    gen, x = torch.Generator().manual_seed(seed), _crops(photos)
    net = state.generator.eval()
    changes = []
    with torch.no_grad():
        for _ in range(4):
            moved, _ = perturb(x, gen, noise=0.02, max_shift=0)
            changes.append((net(x) - net(moved)).abs().mean())
    return float(torch.stack(changes).mean())


def _spread(state: StylizerState, photos: list[torch.Tensor]) -> float:
    """Mean |G(x_i) − G(x_j)| between the outputs of different photos: far from 0 unless the
    network paints every photo alike."""
    with torch.no_grad():
        out = state.generator.eval()(_crops(photos))
    return float((out - out.roll(1, 0)).abs().mean())


#: The stability weight of the steadiness test, large against the tiny networks' content loss
#: (~3e5; the raw term is ~1e-2 at the start).
STEADY = 1e9


@pytest.mark.slow
def test_the_term_makes_the_output_steadier() -> None:
    """Two tiny networks from the same seed and data, 40 steps, without and with a large
    stability weight. Seeds 0–3 gave output changes under noise of 0.20–0.31× the plain
    network's, with outputs of different photos still 0.6–1.0× as far apart (not a constant
    picture); the test asks for < 0.5× and > 0.4×."""
    config = replace(
        TINY, steps=40, warmup=10, checkpoint_every=40, preview_every=40, seed=0,
        stability_weight=0.0,
    )  # fmt: skip
    photos, styles, held_out = _smooth_images(10), _images(20), _smooth_images(99)
    plain = train_stylizer_loop(config, photos, styles, CPU)
    steady = train_stylizer_loop(replace(config, stability_weight=STEADY), photos, styles, CPU)
    change_plain = _output_change(plain, held_out, 0)
    change_steady = _output_change(steady, held_out, 0)
    assert change_steady < 0.5 * change_plain, (change_steady, change_plain)
    assert _spread(steady, held_out) > 0.4 * _spread(plain, held_out)
