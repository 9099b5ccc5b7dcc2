"""The sampler: networks at every resolution, the training loop (losses move, exact resume,
NaN rollback), the sampler file, `train-sampler` / `generate` end to end and bad inputs."""

from __future__ import annotations

import csv
from dataclasses import replace
from functools import partial
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.features import load_encoder
from styleforge.features.efficientnet import EfficientNetFeatures, efficientnet_lite0
from styleforge.infer.sampler import Sampler, SamplerInfo, frame_size, latents, slerp, to_frame
from styleforge.nets.projected import VGG_TAPS, FeatureNet, ProjectedDiscriminator, VGGTaps
from styleforge.nets.sampler import (
    RESOLUTIONS,
    SamplerConfig,
    SamplerDiscriminator,
    SamplerGenerator,
    build_sampler_disc,
)
from styleforge.seeds import parse_seeds
from styleforge.tblog import read_scalars
from styleforge.train.config import SamplerTrainConfig
from styleforge.train.loop import StopRequest, TrainingDiverged
from styleforge.train.sampler import (
    SamplerState,
    composition_bank,
    feature_net,
    train_sampler,
    train_sampler_loop,
)

from .conftest import write_image

NET = SamplerConfig(resolution=64, latent_dim=8, width=4, max_width=16)
TINY = SamplerTrainConfig(
    steps=6, batch=4, r1_every=2, checkpoint_every=3, preview_every=3, kid_every=3,
    kid_samples=4, seed=5, style_weight=0.0, net=NET,
)  # fmt: skip
TINY_FLAGS = ["--steps", "4", "--batch", "4", "--latent-dim", "8", "--kid-every", "2",
              "--quiet", "--device", "cpu"]  # fmt: skip


def _images(seed: int, n: int = 4) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(1, 3, 72, 80, generator=gen) for _ in range(n)]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        code = main(argv)
    except SystemExit as stop:
        code = int(stop.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture
def styles(tmp_path: Path) -> Path:
    folder = tmp_path / "styles"
    for i in range(5):
        write_image(folder / f"s{i}.png", size=(80, 72), seed=30 + i)
    return folder


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_networks_have_the_right_shapes_at_every_resolution(resolution: int) -> None:
    cfg = SamplerConfig(resolution=resolution, latent_dim=16, width=4, max_width=16)
    torch.manual_seed(0)
    gen, disc = SamplerGenerator(cfg), SamplerDiscriminator(cfg)
    with torch.no_grad():
        images = gen(torch.randn(4, 16))
    assert images.shape == (4, 3, resolution, resolution)
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    assert disc(images).shape == (4,)
    assert len(cfg.channels()) == cfg.stages + 1 == {64: 5, 128: 6, 256: 7}[resolution]
    with pytest.raises(ValueError, match="expected latents"):
        gen(torch.randn(4, 15))
    with pytest.raises(ValueError, match="expected an"):
        disc(torch.rand(2, 3, resolution // 2, resolution // 2))


def test_minibatch_std_lets_the_discriminator_see_a_collapsed_batch() -> None:
    torch.manual_seed(0)
    disc = SamplerDiscriminator(NET).eval()
    same = torch.rand(1, 3, 64, 64).expand(4, 3, 64, 64).contiguous()
    varied = torch.rand(4, 3, 64, 64)
    varied[0] = same[0]
    # The first image is identical in both batches; only its batch-mates differ.
    assert not torch.allclose(disc(same)[0], disc(varied)[0])
    solo = SamplerDiscriminator(replace(NET, mbstd_group=1)).eval()
    solo.load_state_dict(disc.state_dict())
    assert torch.allclose(solo(same)[0], solo(varied)[0])


def test_config_rejects_unsupported_resolutions() -> None:
    with pytest.raises(ValueError, match="resolution must be one of"):
        SamplerConfig(resolution=100)
    with pytest.raises(UserError, match="not supported"):
        SamplerTrainConfig.preset("quick", 96)
    assert SamplerTrainConfig.preset("quick", 128).resolution == 128
    assert SamplerTrainConfig.from_dict(TINY.to_dict()) == TINY
    quick = SamplerTrainConfig.preset("quick")
    assert quick.net.disc == "projected" and quick.net.sle and quick.r1_gamma == 0
    pixel = quick.with_overrides(disc="conv", generator="dcgan")
    assert pixel.net.disc == "conv" and not pixel.net.sle and pixel.r1_gamma > 0
    assert quick.with_overrides(disc="conv", r1_gamma=0.0).r1_gamma == 0.0
    with pytest.raises(UserError, match="fastgan or dcgan"):
        quick.with_overrides(generator="stylegan")
    assert quick.net.features == "efficientnet" and quick.gan_loss == "hinge"
    assert quick.with_overrides(features="vgg").net.features == "vgg"
    assert SamplerTrainConfig.preset("classic") == SamplerTrainConfig()  # earlier versions
    # EfficientNet-Lite0 sees the images at twice the resolution (at most 256 px) unless the
    # config names its side.
    assert quick.net.feature_side == 128 and quick.batch == 16
    # A few hundred CPU steps: the quick preset learns at 10x the GPU presets' rate (#41).
    assert quick.lr_g == quick.lr_d == 2e-3 and quick.steps == 800
    assert SamplerTrainConfig.preset("standard").lr_g == 2e-4
    assert SamplerTrainConfig.preset("quick", 128).net.feature_side == 256
    assert SamplerTrainConfig.preset("max").net.feature_side == 256
    cheap = replace(quick.net, feature_size=96)
    assert feature_net(cheap, torch.device("cpu")).input_size == 96
    with pytest.raises(ValueError, match="feature_size"):
        SamplerConfig(feature_size=16)
    assert SamplerTrainConfig.preset("classic").net.disc == "conv"


def test_latents_depend_on_the_seed_alone() -> None:
    both = latents([3, 5], 10)
    assert torch.equal(both[1], latents([5], 10)[0])
    assert not torch.equal(both[0], both[1])
    a, b = both
    path = slerp(a, b, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(path[0], a, atol=1e-5) and torch.allclose(path[2], b, atol=1e-5)
    assert path[1].norm() > 0.5 * min(a.norm(), b.norm())  # not through the origin


@pytest.mark.slow
def test_training_moves_both_losses_and_resumes_exactly(tmp_path: Path) -> None:
    device = torch.device("cpu")
    imgs = _images(1)
    straight = train_sampler_loop(TINY, imgs, device)
    assert straight.step == 6 and len(straight.history) == 6
    d = [h["d_loss"] for h in straight.history]
    g = [h["g_adv"] for h in straight.history]
    assert len(set(d)) == 6 and len(set(g)) == 6
    assert "r1" in straight.history[0] and "r1" not in straight.history[1]
    torch.manual_seed(TINY.seed)
    fresh = SamplerGenerator(NET)
    after = straight.generator.state_dict()
    moved = [not torch.equal(p, after[k]) for k, p in fresh.state_dict().items()]
    assert all(moved)

    stop = StopRequest()

    def press_ctrl_c(state: SamplerState) -> None:
        if state.step == 3:
            stop.requested = True

    ckpt = tmp_path / "c.pt"
    half = train_sampler_loop(TINY, imgs, device, ckpt, on_step=press_ctrl_c, stop=stop)
    assert half.step == 3
    resumed = train_sampler_loop(TINY, imgs, device, ckpt, resume=True)
    assert resumed.step == 6 and resumed.history == straight.history
    for part in ("generator", "ema", "disc"):
        want = getattr(straight, part).state_dict()
        for name, value in getattr(resumed, part).state_dict().items():
            assert torch.equal(value, want[name]), f"{part}.{name}"


@pytest.fixture(scope="module", params=["efficientnet", "vgg"])
def features(request: pytest.FixtureRequest) -> FeatureNet:
    if request.param == "vgg":
        return VGGTaps(load_encoder(VGG_TAPS))
    return EfficientNetFeatures(input_size=128)


@pytest.mark.slow
def test_efficientnet_weights_are_the_imagenet_ones() -> None:
    from skimage import data

    net = efficientnet_lite0()
    cat = torch.from_numpy(data.chelsea().copy()).permute(2, 0, 1)[None].float() / 255
    cat = torch.nn.functional.interpolate(cat, size=(224, 224), mode="bilinear", antialias=True)
    with torch.no_grad():
        top = net.classify((cat - 0.5) / 0.5).topk(3).indices[0].tolist()
    assert set(top) <= set(range(281, 286))  # ImageNet's domestic cats
    assert sum(p.numel() for p in net.parameters()) == 4_631_000  # BN folded into the convs


def test_projected_discriminator_reads_frozen_features_and_trains_only_its_heads(
    features: FeatureNet,
) -> None:
    cfg = replace(NET, disc="projected")
    torch.manual_seed(0)
    disc = build_sampler_disc(cfg, features)
    assert isinstance(disc, ProjectedDiscriminator)
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    logits = disc(x)
    scales = len(features.channels)
    assert logits.shape == (2, scales)  # one logit per feature scale and picture
    sides = [m.shape[-1] for m in disc.mixed(x)]
    assert sides == ([32, 16, 8, 4] if scales == 4 else [32, 16, 8])
    assert [m.shape[1] for m in disc.mixed(x)] == [64, 128, 256, 512][:scales]
    # The feature net is neither a parameter nor in the state (a checkpoint does not carry it)
    frozen_params = {id(p) for p in features.parameters()}
    assert not frozen_params & {id(p) for p in disc.parameters()}
    assert all(k.startswith(("heads.", "ccm", "csm")) for k in disc.state_dict())
    # ... and stays frozen (even in train mode) while the heads learn; the generator still
    # gets gradients through it.
    before = {k: v.clone() for k, v in features.state_dict().items()}
    mix = {k: v.clone() for k, v in disc.state_dict().items() if not k.startswith("heads.")}
    heads_before = {k: v.clone() for k, v in disc.state_dict().items() if k.startswith("heads.")}
    disc.train()
    opt = torch.optim.Adam(disc.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        disc(x).square().mean().backward()
        opt.step()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert all(p.grad is None and not p.requires_grad for p in features.parameters())
    for k, v in features.state_dict().items():
        assert torch.equal(v, before[k]), k
    for k, v in mix.items():
        assert torch.equal(disc.state_dict()[k], v), k
    assert any(not torch.equal(disc.state_dict()[k], v) for k, v in heads_before.items())
    # The mixing weights come from a fixed seed: the same for any global seed.
    torch.manual_seed(99)
    other = build_sampler_disc(cfg, features)
    assert torch.equal(other.state_dict()["ccm0"], mix["ccm0"])
    with pytest.raises(ValueError, match="needs its frozen feature network"):
        build_sampler_disc(cfg)
    with pytest.raises(ValueError, match="expected an"):
        disc(torch.rand(1, 3, 32, 32))


def test_a_latent_draws_a_composition_from_the_bank_and_the_image_over_it() -> None:
    """The bank's entry is ⌊Φ(z₀)·n⌋ (uniform over the bank for normal latents), mirrored when
    z₁ > 0; it is a buffer saved with the weights, and the image depends on it. A generator
    without compositions keeps the layout of earlier files."""
    torch.manual_seed(0)
    cfg = replace(NET, sle=True, compositions=4, composition_side=8)
    gen = SamplerGenerator(cfg)
    assert sorted(gen.compose.keys()) == ["0", "1"]  # into the 4×4 and 8×8 maps
    gen.bank.copy_(torch.rand(4, 3, 8, 8))
    z = torch.zeros(6, NET.latent_dim)
    z[:, 0] = torch.tensor([-3.0, -0.5, -0.1, 0.1, 0.5, 3.0])  # Φ: .001 .31 .46 .54 .69 .999
    z[3:, 1] = 1.0
    drawn = gen.composition(z)
    want = [gen.bank[0], gen.bank[1], gen.bank[1], gen.bank[2].flip(-1), gen.bank[2].flip(-1),
            gen.bank[3].flip(-1)]  # fmt: skip
    assert all(torch.equal(d, w) for d, w in zip(drawn, want, strict=True))
    normal = torch.randn(4000, NET.latent_dim, generator=torch.Generator().manual_seed(1))
    many = gen.composition(normal)
    counts = torch.stack([(many == b).flatten(1).all(1) | (many == b.flip(-1)).flatten(1).all(1)
                          for b in gen.bank]).sum(1)  # fmt: skip
    assert counts.sum() == 4000 and counts.min() > 850  # each about a quarter
    assert "bank" in gen.state_dict()
    with torch.no_grad():
        before = gen(z)
        gen.bank.mul_(0.5)
        assert not torch.allclose(gen(z), before)
    plain = SamplerGenerator(replace(NET, sle=True))
    assert not [k for k in plain.state_dict() if k.startswith(("bank", "compose"))]
    with pytest.raises(ValueError, match="no compositions"):
        plain.composition(z)
    with pytest.raises(ValueError, match="composition_side"):
        replace(NET, composition_side=12)


def test_the_bank_holds_each_pictures_centre_square_shrunk() -> None:
    wide = torch.zeros(1, 3, 32, 64)
    wide[..., :, 16:48] = 1.0  # the centre square is white, the sides black
    tall = torch.rand(1, 3, 48, 48)
    bank = composition_bank([wide, tall], 4)
    assert bank.shape == (2, 3, 4, 4)
    assert torch.equal(bank[0], torch.ones(3, 4, 4))
    assert torch.allclose(bank[1], torch.nn.functional.avg_pool2d(tall, 12)[0])
    # A fresh run's bank holds one composition per picture: a config that says otherwise is
    # refused before the first step.
    wrong = replace(TINY, compose=True).composed(3)
    with pytest.raises(ValueError, match="3 compositions for 4 pictures"):
        train_sampler_loop(wrong, _images(0), torch.device("cpu"))


@pytest.mark.slow
def test_a_composed_sampler_file_holds_one_composition_per_picture(tmp_path: Path) -> None:
    """The quick preset composes; its file's bank has one entry per picture, loads and draws
    the same images again."""
    assert SamplerTrainConfig.preset("quick").compose
    assert not SamplerTrainConfig.preset("classic").compose
    folder = tmp_path / "five"
    for i in range(5):
        write_image(folder / f"p{i}.png", size=(80, 72), seed=90 + i)
    out = tmp_path / "c.safetensors"
    train_sampler(replace(TINY, steps=2, compose=True), folder, out, device="cpu",
                  progress=False, measure_kid=False)  # fmt: skip
    sampler = Sampler.load(out, "cpu")
    assert sampler.info.net.compositions == 5
    assert sampler.net.bank.shape == (5, 3, 16, 16) and sampler.net.bank.std() > 0.05
    assert torch.equal(sampler.sample([3, 4]), Sampler.load(out, "cpu").sample([3, 4]))
    rows = list(csv.DictReader((tmp_path / "c.run" / "log.csv").open()))
    assert all(float(r["composition"]) > 0 for r in rows)


def test_skip_layer_excitation_gates_the_fine_maps_and_old_files_keep_their_layout() -> None:
    torch.manual_seed(0)
    plain = SamplerGenerator(NET)
    sle = SamplerGenerator(replace(NET, sle=True))
    assert sorted(sle.excite.keys()) == ["3", "4"]  # 4×4 gates 32×32, 8×8 gates 64×64
    assert not [k for k in plain.state_dict() if k.startswith("excite")]
    shared = {k: v for k, v in sle.state_dict().items() if not k.startswith("excite")}
    assert shared.keys() == plain.state_dict().keys()
    plain.load_state_dict(shared)
    z = torch.randn(3, NET.latent_dim)
    with torch.no_grad():
        gated, ungated = sle(z), plain(z)
    assert gated.shape == (3, 3, 64, 64)
    assert not torch.allclose(gated, ungated)
    assert SamplerConfig.from_dict({"resolution": 64}).disc == "conv"  # old files: old nets


@pytest.mark.slow
@pytest.mark.parametrize("features", ["efficientnet", "vgg"])
def test_projected_sampler_training_resumes_exactly(tmp_path: Path, features: str) -> None:
    # The quick preset's shape: projected discriminator, hinge, its learning rates, a blur that
    # fades mid-run; EfficientNet-Lite0 at a side of its own (``feature_size``), which resumes
    # alike.
    quick = SamplerTrainConfig.preset("quick")
    side = 96 if features == "efficientnet" else 0
    net = replace(NET, sle=True, disc="projected", features=features, feature_size=side)
    # Its composition bank too, which a resumed run takes from the checkpoint.
    cfg = replace(TINY, steps=4, checkpoint_every=2, r1_gamma=0.0, gan_loss="hinge",
                  lr_g=quick.lr_g, lr_d=quick.lr_d, beta1=quick.beta1,
                  blur_sigma=2.0, blur_fade=0.75, net=net, compose=quick.compose)  # fmt: skip
    device = torch.device("cpu")
    imgs = _images(2)
    cfg = cfg.composed(len(imgs))
    vgg = load_encoder(VGG_TAPS) if features == "vgg" else None
    straight = train_sampler_loop(cfg, imgs, device, vgg=vgg)
    assert len({h["d_loss"] for h in straight.history}) == 4
    assert all(h["composition"] > 0 for h in straight.history)
    assert torch.equal(straight.ema.bank, composition_bank(imgs, NET.composition_side))
    stop = StopRequest()

    def press_ctrl_c(state: SamplerState) -> None:
        if state.step == 2:
            stop.requested = True

    ckpt = tmp_path / "c.pt"
    train_sampler_loop(cfg, imgs, device, ckpt, on_step=press_ctrl_c, stop=stop, vgg=vgg)
    resumed = train_sampler_loop(cfg, imgs, device, ckpt, resume=True, vgg=vgg)
    assert resumed.history == straight.history
    for part in ("generator", "ema", "disc"):
        want = getattr(straight, part).state_dict()
        for name, value in getattr(resumed, part).state_dict().items():
            assert torch.equal(value, want[name]), f"{part}.{name}"


@pytest.mark.slow
def test_style_loss_option_and_nan_rollback(capsys: pytest.CaptureFixture[str]) -> None:
    device = torch.device("cpu")
    config = replace(TINY, style_weight=1.0, steps=6, checkpoint_every=2)
    poisoned: list[int] = []

    def poison_at(*steps: int):  # type: ignore[no-untyped-def]
        def hook(state: SamplerState) -> None:
            if state.step in steps and state.step not in poisoned:
                poisoned.append(state.step)
                with torch.no_grad():
                    next(state.generator.parameters()).fill_(float("nan"))

        return hook

    state = train_sampler_loop(config, _images(2), device, on_step=poison_at(3))
    assert state.step == 6 and state.rollbacks == 1 and state.lr_scale == 0.5
    assert "rolled back to step 2" in capsys.readouterr().err
    assert all(h["style"] > 0 for h in state.history)
    poisoned.clear()
    with pytest.raises(TrainingDiverged):
        train_sampler_loop(config, _images(2), device, on_step=poison_at(3, 5))


@pytest.mark.slow
def test_train_sampler_writes_file_grids_logs_and_kid(styles: Path, tmp_path: Path) -> None:
    out = tmp_path / "s.safetensors"
    result = train_sampler(TINY, styles, out, device="cpu", progress=False)
    assert result.model == out and result.steps == 6 and not result.stopped_early
    sampler = Sampler.load(out, "cpu")
    assert sampler.info.net == NET and sampler.info.style["images"] == 5
    assert {"kid", "memorization_median", "memorization_copies"} <= set(sampler.info.metrics)
    run_dir = tmp_path / "s.run"
    assert sorted(p.name for p in (run_dir / "previews").iterdir()) == [
        "step_000003.png", "step_000006.png",
    ]  # fmt: skip
    assert Image.open(run_dir / "preview.png").size == (4 * 130 + 2, 4 * 130 + 2)  # 128 px tiles
    with open(run_dir / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["kid"] != "" for r in rows] == [False, False, True, False, False, True]
    events = list(run_dir.glob("events.out.tfevents.*"))
    tags = {tag for _, tag, _ in read_scalars(events[0])}
    assert {"loss/d_loss", "loss/g_adv", "loss/kid"} <= tags
    # The EMA generator in the file is the one the run previewed.
    first = sampler.sample([0])
    assert first.shape == (1, 3, 64, 64)
    assert torch.allclose(sampler.sample([0, 1])[0], first[0], atol=1e-5)  # batch-independent


@pytest.mark.slow
def test_a_composed_run_resumes_after_pictures_were_added(
    styles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The resumed run keeps the compositions it started with, and says so in one line."""
    model = tmp_path / "s.safetensors"
    flags = [*TINY_FLAGS[2:], "--stage-steps", "0"]
    code, err = run(["train-sampler", str(styles), "-o", str(model), "--steps", "2", *flags],
                    capsys)  # fmt: skip
    assert code == 0, err
    first = Sampler.load(model, "cpu").net.bank.clone()
    assert first.shape[0] == 5
    write_image(styles / "s9.png", size=(80, 72), seed=99)
    code, err = run(["train-sampler", str(styles), "-o", str(model), "--steps", "3", *flags,
                     "--resume", "--overwrite"], capsys)  # fmt: skip
    assert code == 0, err
    assert "holds 6 usable pictures now; the resumed run keeps the 5 compositions" in err
    assert "Traceback" not in err and "ignoring changed" not in err
    sampler = Sampler.load(model, "cpu")
    assert sampler.info.metrics["steps"] == 3 and torch.equal(sampler.net.bank, first)


@pytest.mark.slow
def test_train_sampler_and_generate_cli(
    styles: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "s.safetensors"
    code, err = run(["train-sampler", str(styles), "-o", str(model), *TINY_FLAGS], capsys)
    assert code == 0, err
    assert "KID" in err and model.is_file()
    # --resume with more steps continues the run.
    code, err = run(["train-sampler", str(styles), "-o", str(model), *TINY_FLAGS[2:],
                     "--steps", "6", "--resume"], capsys)  # fmt: skip
    assert code == 0, err
    # The bank's size is the run's own, not a changed setting (--steps scales the stage's).
    ignored = [ln.split("ignoring changed ")[1] for ln in err.splitlines() if "ignoring" in ln]
    assert ignored in ([], ["stage"]), err
    assert Sampler.load(model, "cpu").info.metrics["steps"] == 6

    out = tmp_path / "gen"
    code, err = run(["generate", str(model), "-n", "3", "-o", str(out), "--grid",
                     str(tmp_path / "grid.png")], capsys)  # fmt: skip
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir())
    assert names == ["seed_0000.png", "seed_0001.png", "seed_0002.png"]
    # The quick preset's file carries a paint stage: generate draws 256 px (4x) by default.
    assert Image.open(out / "seed_0000.png").size == (256, 256)
    assert Image.open(tmp_path / "grid.png").size == (2 * 258 + 2, 2 * 258 + 2)
    # The file records the collection's look: asked, generate paints the images at 96 px.
    painted = tmp_path / "painted"
    code, err = run(["generate", str(model), "-n", "1", "-o", str(painted), "--paint-size",
                     "96"], capsys)  # fmt: skip
    assert code == 0, err
    assert Image.open(painted / "seed_0000.png").size == (96, 96)
    again = tmp_path / "again"
    code, err = run(["generate", str(model), "--seeds", "1-2", "-o", str(again)], capsys)
    assert code == 0, err
    assert (again / "seed_0001.png").read_bytes() == (out / "seed_0001.png").read_bytes()
    code, err = run(["generate", str(model), "-n", "3", "-o", str(out)], capsys)
    assert code == 2 and "--overwrite" in err

    gif = tmp_path / "walk.gif"
    code, err = run(["generate", str(model), "--interpolate", "0,2", "--frames", "5", "-o",
                     str(gif)], capsys)  # fmt: skip
    assert code == 0, err
    with Image.open(gif) as walk:
        assert walk.n_frames == 8  # there and back: 5 + 3
    frames = tmp_path / "frames"
    code, err = run(["generate", str(model), "--interpolate", "0,2", "--frames", "3", "-o",
                     str(frames)], capsys)  # fmt: skip
    assert code == 0, err
    first = np.asarray(Image.open(frames / "frame_000.png"), dtype=int)
    assert np.abs(first - np.asarray(Image.open(out / "seed_0000.png"), dtype=int)).max() <= 1

    # `evaluate` on a generated set: KID against the collection and memorization.
    from styleforge.metrics.evaluate import evaluate

    ev = evaluate(styles, sorted(out.iterdir()))
    assert ev.summary["kid"] is not None and "memorization_median" in ev.summary


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train-sampler", "{styles}", "-o", "{tmp}/s.safetensors", "--resolution", "100"],
         "invalid choice"),
        (["train-sampler", "{empty}", "-o", "{tmp}/s.safetensors"], "usable image"),
        (["train-sampler", "{one}", "-o", "{tmp}/s.safetensors"], "at least 4"),
        (["train-sampler", "{missing}", "-o", "{tmp}/s.safetensors"], "no such file or folder"),
        (["train-sampler", "{styles}", "-o", "{tmp}/s.pt"], "must end in .safetensors"),
        (["train-sampler", "{styles}", "-o", "{tmp}/s.safetensors", "--resume"], "no checkpoint"),
        (["generate", "{tmp}/none.safetensors", "-o", "{tmp}/g"], "no such sampler"),
        (["generate", "{bad}", "-o", "{tmp}/g"], "not a readable"),
        (["generate", "{bad}", "-o", "{tmp}/g", "--seeds", "x-y"], "expected seeds"),
        (["generate", "{bad}", "-o", "{tmp}/g.png"], "give a folder"),
        (["generate", "{bad}", "-o", "{tmp}/g", "--truncation", "2"], "0 to 1"),
        (["generate", "{bad}", "-o", "{tmp}/g", "--paint-size", "4"], "at least 8 px"),
        (["generate", "{bad}", "-o", "{tmp}/w.gif", "--interpolate", "1,2,3"], "two seeds"),
    ],
)  # fmt: skip
def test_bad_inputs_get_one_clear_line(
    argv: list[str], message: str, styles: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    (tmp_path / "empty").mkdir()
    write_image(tmp_path / "one" / "a.png", size=(80, 72))
    (tmp_path / "bad.safetensors").write_bytes(b"\x00" * 40)
    subs = {
        "{styles}": str(styles), "{tmp}": str(tmp_path), "{empty}": str(tmp_path / "empty"),
        "{one}": str(tmp_path / "one"), "{missing}": str(tmp_path / "missing"),
        "{bad}": str(tmp_path / "bad.safetensors"),
    }  # fmt: skip
    args = []
    for a in argv:
        for k, v in subs.items():
            a = a.replace(k, v)
        args.append(a)
    code, err = run(args, capsys)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert message in lines[-1], err
    assert "Traceback" not in err


@pytest.mark.slow
def test_a_painting_sampler_paints_in_the_collection_style_and_old_files_do_not(
    tmp_path: Path,
) -> None:
    from styleforge.infer import prior
    from styleforge.infer.model_file import write_model
    from styleforge.infer.sampler import SamplerInfo
    from styleforge.train.sampler import paint_record

    warm = torch.linspace(0, 1, 64)
    pictures = [torch.stack([warm.expand(64, 64), 0.4 * warm.expand(64, 64).T,
                             torch.full((64, 64), 0.1)])[None] for _ in range(2)]  # fmt: skip
    record = paint_record(pictures, 96)
    assert record["size"] == 96 and len(record["style"]) == len(record["neutral"]) == 100
    assert paint_record(pictures, 0)["style"] == record["style"] and paint_record([], 96) == {}
    torch.manual_seed(0)
    net = SamplerGenerator(NET)
    plain = write_model(tmp_path / "plain.safetensors", net.state_dict(), SamplerInfo(NET))
    painted = write_model(tmp_path / "paint.safetensors", net.state_dict(),
                          SamplerInfo(NET, paint=record))  # fmt: skip
    old, new = Sampler.load(plain, "cpu"), Sampler.load(painted, "cpu")
    assert old.paint_size == 0 and not old.can_paint and new.paint_size == 96
    raw = old.sample([0, 1])
    assert raw.shape == (2, 3, 64, 64)
    assert torch.equal(new.sample([0, 1], paint_size=0), raw)  # the same network
    out = new.sample([0, 1])
    assert out.shape == (2, 3, 96, 96) and out.min() >= 0 and out.max() <= 1
    assert new.sample([3], paint_size=32).shape == (1, 3, 32, 32)
    # It is the prior with the recorded style, on the image scaled up.
    up = torch.nn.functional.interpolate(raw, size=(96, 96), mode="bicubic").clamp(0, 1)
    style = torch.tensor(record["style"])
    painter = prior.prior_painter(style, torch.tensor(record["neutral"])).eval()
    with torch.no_grad():
        assert torch.allclose(out, painter(up).clamp(0, 1), atol=1e-5)
    with pytest.raises(UserError, match="records no style for the painter"):
        old.sample([0], paint_size=96)


@pytest.mark.slow
def test_a_stylizer_file_is_not_a_sampler(tmp_path: Path) -> None:
    from styleforge.infer.model_file import ModelInfo, read_model, write_model
    from styleforge.infer.sampler import SamplerInfo
    from styleforge.nets import StylizerConfig, StylizerNet

    net = StylizerConfig(width=4, n_res=1)
    stylizer = write_model(
        tmp_path / "m.safetensors", StylizerNet(net).state_dict(), ModelInfo(net)
    )
    with pytest.raises(UserError, match="use `styleforge apply`"):
        Sampler.load(stylizer, "cpu")
    sampler = write_model(
        tmp_path / "s.safetensors", SamplerGenerator(NET).state_dict(), SamplerInfo(NET)
    )
    with pytest.raises(UserError, match="use `styleforge generate`"):
        read_model(sampler)


def test_parse_seeds() -> None:
    assert parse_seeds("0-3") == [0, 1, 2, 3]
    assert parse_seeds("5, 1,5,2-3") == [5, 1, 2, 3]
    for bad in ("", "a", "3-1", "0-99999"):
        with pytest.raises(UserError):
            parse_seeds(bad)


@pytest.mark.slow
def test_small_generated_sets_are_compared_at_their_own_resolution(
    styles: Path, tmp_path: Path
) -> None:
    from styleforge.images import load_image, save_image
    from styleforge.metrics.evaluate import evaluate

    # Copies of the collection at 40 px: at matched resolution they are copies (ratio ~ 0).
    small = [
        save_image(load_image(p, size=40), tmp_path / "small" / f"{p.stem}.png")
        for p in sorted(styles.iterdir())
    ]
    ev = evaluate(styles, small)
    assert ev.summary["kid_resolution"] == 40
    assert ev.summary["memorization_copies"] == len(small)
    assert any("shrunk to 40 px" in note for note in ev.notes)
    # Results at least as large as the evaluation size are compared with the collection as is.
    big = [write_image(tmp_path / "big" / f"b{i}.png", size=(300, 280), seed=i) for i in range(2)]
    assert "kid_resolution" not in evaluate(styles, big).summary


def test_frames_and_the_recorded_aspect() -> None:
    assert frame_size(64, 1.0) == (64, 64)
    assert frame_size(64, 1.5) == (64, 96) and frame_size(64, 0.5) == (128, 64)
    squares = torch.rand(2, 3, 32, 32)
    assert to_frame(squares, 1.0) is squares
    wide = to_frame(squares, 1.5)
    assert wide.shape == (2, 3, 32, 48) and 0 <= float(wide.min()) <= float(wide.max()) <= 1
    info = SamplerInfo(net=NET, aspect=1.4917)
    assert SamplerInfo.from_metadata(info.to_metadata(), Path("s")).aspect == 1.4917
    old = {k: v for k, v in info.to_metadata().items() if k != "aspect"}
    assert SamplerInfo.from_metadata(old, Path("s")).aspect == 1.0  # earlier files: squares
    with pytest.raises(UserError, match="framing"):
        replace(TINY, framing="squash")  # type: ignore[arg-type]


@pytest.mark.slow
def test_whole_framing_learns_squeezed_pictures_and_draws_the_collection_shape(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Wide pictures (2:1, 2:1, 3:2, 3:2, 1:1): trained squeezed to squares, the sampler file
    records their median aspect 1.5 and every image it draws (samples, paintings, previews,
    KID) is a 96×64 frame; a crop sampler keeps its 64×64 squares."""
    folder = tmp_path / "wide"
    for i, size in enumerate([(160, 80), (140, 70), (120, 80), (150, 100), (90, 90)]):
        write_image(folder / f"w{i}.png", size=size, seed=60 + i)
    out = tmp_path / "w.safetensors"
    result = train_sampler(replace(TINY, framing="whole"), folder, out, device="cpu",
                           progress=False)  # fmt: skip
    sampler = Sampler.load(out, "cpu")
    assert sampler.info.aspect == 1.5 and "kid" in sampler.info.metrics
    assert sampler.sample([0, 1]).shape == (2, 3, 64, 96)
    assert sampler.sample([0], paint_size=48).shape == (1, 3, 32, 48)
    assert Image.open(result.run_dir / "preview.png").size == (4 * 194 + 2, 4 * 130 + 2)
    gen = tmp_path / "gen"
    code, err = run(["generate", str(out), "-n", "1", "-o", str(gen)], capsys)
    assert code == 0, err
    assert Image.open(gen / "seed_0000.png").size == (96, 64)
    crop = tmp_path / "c.safetensors"
    train_sampler(TINY, folder, crop, device="cpu", progress=False, measure_kid=False)
    assert Sampler.load(crop, "cpu").sample([0]).shape == (1, 3, 64, 64)


def test_auto_framing_draws_portrait_shaped_collections_whole(tmp_path: Path) -> None:
    """``auto``: a collection of tall pictures is drawn whole (its frames keep the busts), wide
    and square ones are cropped; the presets use it, explicit framings are kept."""
    auto = replace(TINY, framing="auto")
    assert auto.framing_for([0.7, 0.75, 1.5]) == "whole"
    assert auto.framing_for([1.5, 1.33, 0.7]) == "crop"
    assert auto.framing_for([1.0, 0.95]) == "crop"
    assert replace(TINY, framing="crop").framing_for([0.5]) == "crop"
    assert replace(TINY, framing="whole").framing_for([2.0]) == "whole"
    assert {SamplerTrainConfig.preset(n).framing for n in ("quick", "standard", "max")} == {"auto"}
    assert SamplerTrainConfig.preset("classic").framing == "crop"
    folder = tmp_path / "tall"
    for i, size in enumerate([(64, 96), (66, 99), (70, 105), (80, 120)]):
        write_image(folder / f"t{i}.png", size=size, seed=70 + i)
    out = tmp_path / "t.safetensors"
    train_sampler(replace(auto, steps=2), folder, out, device="cpu", progress=False,
                  measure_kid=False)  # fmt: skip
    sampler = Sampler.load(out, "cpu")
    assert sampler.info.aspect == pytest.approx(2 / 3, abs=0.01)
    assert sampler.sample([0]).shape == (1, 3, 96, 64)


def test_the_discriminator_sees_a_blur_that_fades_to_none() -> None:
    from styleforge.train.sampler import _SamplerSteps

    cfg = replace(TINY, steps=100, blur_sigma=3.0, blur_fade=0.5)
    blur = partial(_SamplerSteps.blur, SimpleNamespace(config=cfg))
    assert blur(0) == 3.0 and blur(25) == pytest.approx(1.5)
    assert blur(50) == 0.0 and blur(99) == 0.0
    assert partial(_SamplerSteps.blur, SimpleNamespace(config=TINY))(0) == 0.0  # off by default
    with pytest.raises(UserError):
        replace(TINY, blur_fade=0.0)
    with pytest.raises(UserError):
        replace(TINY, blur_sigma=-1.0)


def test_dream_grids_show_each_picture_at_least_128_px_without_smoothing() -> None:
    from styleforge.sheets import dream_grid, enlarge

    batch = torch.rand(5, 3, 64, 44, generator=torch.Generator().manual_seed(0))
    big = enlarge(batch)
    assert big.shape == (5, 3, 64 * 3, 44 * 3)  # the short side 44 -> 132 ≥ 128
    assert torch.equal(big[..., ::3, ::3], batch)  # whole pixels repeated, nothing blended
    assert torch.equal(enlarge(torch.ones(1, 3, 256, 256)), torch.ones(1, 3, 256, 256))
    grid = dream_grid(batch)  # 3 columns, 2 rows, 2 px gaps
    assert grid.shape == (1, 3, 2 * (192 + 2) + 2, 3 * (132 + 2) + 2)


def test_layout_judge_sees_only_the_shrunk_picture_and_joins_the_projected_logits(
    features: FeatureNet,
) -> None:
    from styleforge.nets.projected import LayoutDiscriminator

    torch.manual_seed(0)
    judge = LayoutDiscriminator(side=8).eval()  # eval: no power iteration between calls
    x = torch.rand(3, 3, 64, 64)
    cells = torch.nn.functional.adaptive_avg_pool2d(x, 8)
    same_layout = torch.nn.functional.interpolate(cells, scale_factor=8, mode="nearest")
    assert torch.allclose(judge(x), judge(same_layout), atol=1e-5)  # detail within cells unseen
    assert judge(x).shape == (3,)
    net = replace(NET, disc="projected", layout=8)
    disc = build_sampler_disc(net, features)
    assert isinstance(disc, ProjectedDiscriminator)
    assert disc(x).shape == (3, disc.scales + 1)
    with pytest.raises(ValueError, match="layout"):
        replace(NET, layout=12)
    # Old files: a config without the field has no layout judge.
    assert SamplerConfig.from_dict({k: v for k, v in NET.to_dict().items() if k != "layout"}) == NET
