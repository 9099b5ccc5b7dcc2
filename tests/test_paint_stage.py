"""The sampler's paint stage (issue #43): it keeps the composition it is given, trains and
resumes exactly, travels inside the sampler file, and `generate` paints with it by default."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from PIL import Image

from styleforge import images
from styleforge.infer.model_file import write_model
from styleforge.infer.sampler import STAGE_PREFIX, Sampler, SamplerInfo
from styleforge.nets import PainterConfig, PainterNet
from styleforge.nets.sampler import SamplerConfig, SamplerGenerator
from styleforge.nets.stage import PaintStage, low_band
from styleforge.train.config import PaintStageConfig, SamplerTrainConfig
from styleforge.train.paint_stage import degrade, stage_pairs, start_painter, train_stage_loop
from styleforge.train.sampler import stage_record

NET = SamplerConfig(resolution=64, latent_dim=8, width=4, max_width=16)
TINY = PaintStageConfig(steps=4, size=32, batch=2, checkpoint_every=2)


def _pictures(n: int = 3, seed: int = 0) -> list[torch.Tensor]:
    """Pictures with a layout (a dark band over a light one, a coloured square) and noise."""
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        t = torch.full((1, 3, 80, 64), 0.8)
        t[..., : 30 + 5 * i, :] = 0.2
        t[:, i % 3, 40:60, 20:44] = 0.9
        out.append((t + 0.1 * torch.rand(t.shape, generator=gen)).clamp(0, 1))
    return out


def test_a_flat_colour_frame_stays_that_colour_whatever_the_painter() -> None:
    torch.manual_seed(0)
    stage = PaintStage(PainterConfig(), scale=4).eval()  # an untrained painter: noise strokes
    frame = torch.tensor([0.35, 0.5, 0.65]).view(1, 3, 1, 1).expand(1, 3, 16, 12)
    with torch.no_grad():
        out = stage(images.lift(frame, 64, 48))
    assert out.shape == (1, 3, 64, 48)
    # Shrunk back to the frame's size, the painting is the frame's colour.
    back = torch.nn.functional.avg_pool2d(out, 4)
    assert (back - frame).abs().max() < 0.02
    # And the low band of a picture is its own: the band swap leaves the input's in place.
    pic = _pictures(1)[0]
    assert torch.allclose(low_band(low_band(pic, 4), 4), low_band(pic, 4), atol=0.05)
    with pytest.raises(ValueError, match=r"\(N,3,H,W\)"):
        stage(torch.rand(1, 4, 32, 32))
    # Any size: a partial cell at the edge keeps the mean of what it holds.
    odd = torch.full((1, 3, 30, 34), 0.4)
    with torch.no_grad():
        assert (torch.nn.functional.avg_pool2d(stage(odd), 2) - 0.4).abs().max() < 0.05


def test_pairs_are_the_picture_and_its_degraded_copy_cut_to_the_scale() -> None:
    pairs = stage_pairs(_pictures(2), 64, 4)
    assert [tuple(p.shape) for p in pairs] == [(1, 6, 80, 64)] * 2
    low, high = pairs[0][:, :3], pairs[0][:, 3:]
    assert torch.allclose(low, degrade(high, 4))
    # The degraded copy keeps the layout (its 4× average) and loses the fine noise.
    assert (low_band(low, 4) - low_band(high, 4)).abs().mean() < 0.03
    assert (low - high).abs().mean() > 0.02


@pytest.mark.slow
def test_the_stage_trains_and_resumes_exactly(tmp_path: Path) -> None:
    pairs = stage_pairs(_pictures(), 64, 4)
    start = start_painter([p[:, 3:] for p in pairs], 4)
    cpu = torch.device("cpu")
    whole = train_stage_loop(TINY, pairs, start, cpu)
    assert whole.step == 4 and len(whole.history) == 4
    first = whole.history[0]
    assert {"d_loss", "content", "style", "lowfreq", "adv", "tv"} <= set(first)
    moved = [not torch.equal(a, b) for a, b in zip(
        whole.ema.state_dict().values(), start.state_dict().values(), strict=True)]  # fmt: skip
    assert any(moved)
    ckpt = tmp_path / "stage.pt"
    start = start_painter([p[:, 3:] for p in pairs], 4)
    half = train_stage_loop(TINY, pairs, start, cpu, ckpt, stop_at=2)
    assert half.step == 2 and ckpt.exists()
    start = start_painter([p[:, 3:] for p in pairs], 4)
    rest = train_stage_loop(TINY, pairs, start, cpu, ckpt, resume=True)
    assert rest.step == 4
    for (name, a), b in zip(whole.ema.state_dict().items(), rest.ema.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(a, b), name


def _sampler_file(tmp_path: Path, stage: PaintStage | None) -> Path:
    torch.manual_seed(0)
    net = SamplerGenerator(NET)
    tensors = dict(net.state_dict())
    record = {}
    if stage is not None:
        tensors |= {STAGE_PREFIX + k: v for k, v in stage.state_dict().items()}
        record = stage_record(PaintStageConfig(steps=1))
    info = SamplerInfo(NET, stage=record)
    return write_model(tmp_path / f"s{int(stage is not None)}.safetensors", tensors, info)


def test_the_sampler_file_carries_its_stage_and_older_files_still_load(tmp_path: Path) -> None:
    torch.manual_seed(1)
    stage = PaintStage(PainterConfig(), scale=4)
    with_stage = Sampler.load(_sampler_file(tmp_path, stage), "cpu")
    plain = Sampler.load(_sampler_file(tmp_path, None), "cpu")
    assert with_stage.stage is not None and plain.stage is None and not plain.can_paint
    for (name, a), b in zip(stage.state_dict().items(), with_stage.stage.state_dict().values(),
                            strict=True):  # fmt: skip
        assert torch.equal(a, b), name
    # 4× by default; the network's own size gives its own pixels, the same as a plain file's.
    assert with_stage.paint_size == 256 and plain.paint_size == 0
    painted = with_stage.sample([0, 1])
    assert painted.shape == (2, 3, 256, 256) and painted.min() >= 0 and painted.max() <= 1
    raw = plain.sample([0, 1])
    assert torch.equal(with_stage.sample([0, 1], paint_size=64), raw)
    assert torch.equal(with_stage.sample([0, 1], paint_size=0), raw)
    assert torch.equal(plain.sample([0, 1], paint_size=64), raw)  # no painter needed for that
    # The painting keeps each frame's layout: shrunk back, it is the frame within a little.
    back = torch.nn.functional.avg_pool2d(painted, 4)
    assert (back - raw).abs().mean() < 0.03
    assert with_stage.sample([0], paint_size=32).shape == (1, 3, 32, 32)  # shrunk, not painted
    # A file made before the stage (no stage entry in its header) is a plain sampler.
    assert (
        SamplerInfo.from_metadata(
            {k: v for k, v in SamplerInfo(NET).to_metadata().items() if k != "stage"}, tmp_path
        ).stage
        == {}
    )


def test_the_quick_preset_trains_a_stage_shortened_with_the_run() -> None:
    quick = SamplerTrainConfig.preset("quick")
    assert quick.stage.steps > 0 and quick.stage.scale == 4
    assert SamplerTrainConfig.preset("classic").stage.steps == 0
    short = quick.with_overrides(steps=quick.steps // 2)
    assert short.stage.steps == round(quick.stage.steps / 2)
    assert quick.with_overrides(steps=9, stage_steps=0).stage.steps == 0
    assert SamplerTrainConfig.from_dict(quick.to_dict()) == quick
    old = quick.to_dict()
    del old["stage"]  # a run folder from before the stage
    assert SamplerTrainConfig.from_dict(old).stage.steps == 0
    with pytest.raises(Exception, match="multiple of 4"):
        replace(quick.stage, size=30)


@pytest.mark.slow
def test_train_sampler_with_a_stage_and_generate_at_256(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from styleforge.cli import main

    from .conftest import write_image

    styles = tmp_path / "styles"
    for i in range(4):
        write_image(styles / f"s{i}.png", size=(80, 72), seed=40 + i)
    model = tmp_path / "s.safetensors"
    flags = ["--steps", "2", "--batch", "4", "--latent-dim", "8", "--kid-every", "2", "--quiet",
             "--device", "cpu", "--stage-steps", "2"]  # fmt: skip
    assert main(["train-sampler", str(styles), "-o", str(model), *flags]) == 0
    assert (tmp_path / "s.run" / "stage_checkpoint.pt").exists()
    # What the web app reads to show the stage's progress after the sampler's last step.
    from styleforge.app.actions import _stage_progress

    assert _stage_progress(tmp_path / "s.run") == (2, 2)
    assert _stage_progress(tmp_path) is None
    sampler = Sampler.load(model, "cpu")
    assert sampler.stage is not None and sampler.info.stage["scale"] == 4
    out = tmp_path / "gen"
    assert main(["generate", str(model), "-n", "2", "-o", str(out)]) == 0
    assert Image.open(out / "seed_0000.png").size == (256, 256)
    raw = tmp_path / "raw"
    assert main(["generate", str(model), "-n", "1", "-o", str(raw), "--size", "64"]) == 0
    assert Image.open(raw / "seed_0000.png").size == (64, 64)
    capsys.readouterr()


def test_a_painter_net_is_what_the_stage_wraps() -> None:
    stage = PaintStage(PainterConfig(), scale=2)
    assert isinstance(stage.painter, PainterNet)
    assert set(stage.state_dict()) == {f"painter.{k}" for k in PainterNet().state_dict()}
