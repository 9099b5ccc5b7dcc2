"""Video restyling: clip I/O with audio, trims, atomic outputs, flow, the warping error and the
temporal blend. Clips are made here: 96×64, 2 s at 15 fps, moving shapes over a panned texture
with a 440 Hz tone."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageFilter

from styleforge.errors import UserError
from styleforge.infer.restyle import Settings
from styleforge.video import (
    DEFAULT_DENOISE,
    DEFAULT_TEMPORAL,
    FlowEstimator,
    FlowSettings,
    TemporalBlend,
    consistency_mask,
    open_clip,
    restyle_frame,
    restyle_video,
    warp,
    warping_error,
    write_clip,
)

W, H, FPS, SECONDS, RATE = 96, 64, 15, 2.0, 22050
N_FRAMES = int(FPS * SECONDS)


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth seeded RGB uint8 texture (H, W, 3): random values blurred a little."""
    rng = np.random.default_rng(seed)
    small = rng.random((height // 8 + 2, width // 8 + 2, 3)).astype(np.float32)
    img = Image.fromarray((small * 255).astype(np.uint8)).resize((width, height), Image.BICUBIC)
    return np.asarray(img)


def moving_frames(
    n: int = N_FRAMES, width: int = W, height: int = H, square: bool = True
) -> list[np.ndarray]:
    """A panned texture (2 px a frame to the right, 1 px down) with a white square moving
    across it (3 px a frame) when ``square``: RGB uint8 frames (H, W, 3)."""
    big = texture(height + 2 * n, width + 2 * n)
    frames = []
    for i in range(n):
        f = big[i : i + height, 2 * i : 2 * i + width].copy()
        if square:
            x = (3 * i) % (width - 12)
            f[20:32, x : x + 12] = 255
        frames.append(f)
    return frames


def make_clip(path: Path, frames: list[np.ndarray] | None = None, audio: bool = True) -> Path:
    """Write ``frames`` (default :func:`moving_frames`) as an H.264 clip at 15 fps with a mono
    AAC sine tone as long as the video."""
    frames = moving_frames() if frames is None else frames
    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        sound = None
        if audio:
            sound = out.add_stream("aac", rate=RATE)
            sound.layout = "mono"
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts = i
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
        if sound is not None:
            t = np.arange(int(RATE * len(frames) / FPS)) / RATE
            tone = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
            for k in range(0, len(tone), 1024):
                af = av.AudioFrame.from_ndarray(
                    tone[None, k : k + 1024], format="fltp", layout="mono"
                )
                af.sample_rate = RATE
                out.mux(sound.encode(af))
            out.mux(sound.encode(None))
    return path


def probe(path: Path) -> dict[str, float | int | None]:
    """Decoded frame count, fps, size and audio seconds of a written clip."""
    with av.open(str(path)) as c:
        vs = c.streams.video[0]
        fps = float(vs.average_rate) if vs.average_rate else None
        size = (vs.codec_context.width, vs.codec_context.height)
        has_audio = bool(c.streams.audio)
    with av.open(str(path)) as c:
        frames = sum(1 for _ in c.decode(video=0))
    seconds = None
    if has_audio:
        with av.open(str(path)) as c:
            rate = c.streams.audio[0].rate
            seconds = sum(f.samples for f in c.decode(audio=0)) / rate
    return {"frames": frames, "fps": fps, "width": size[0], "height": size[1], "audio": seconds}


def luma_error(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference of two RGB uint8 frames' luma (0..255)."""
    weights = np.array([0.299, 0.587, 0.114])
    return float(np.abs((a.astype(float) - b.astype(float)) @ weights).mean())


def identity(img: Image.Image, settings: Settings | None = None) -> Image.Image:
    return img.copy()


class Flicker:
    """A fake restyler with flicker: a warm tint, plus per-frame random colour jitter and
    pixel noise (seeded)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)

    def __call__(self, img: Image.Image, settings: Settings | None = None) -> Image.Image:
        a = np.asarray(img, dtype=np.float32)
        a = a * np.array([1.0, 0.9, 0.7], np.float32) + 20
        a = a + self.rng.normal(0, 12, size=3) + self.rng.normal(0, 10, size=a.shape)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_clip(tmp_path_factory.mktemp("clip") / "clip.mp4")


# --------------------------------------------------------------------------- reading / writing


def test_open_clip_reads_frames_fps_and_size(clip: Path) -> None:
    c = open_clip(clip)
    assert (c.info.width, c.info.height, c.info.rate, c.info.frames) == (W, H, Fraction(15), 30)
    assert c.info.audio == "aac" and c.info.duration == pytest.approx(2.0, abs=0.01)
    frames = list(c.frames())
    assert len(frames) == N_FRAMES
    assert frames[0].shape == (H, W, 3) and frames[0].dtype == np.uint8
    # the pixels are the frames made, up to H.264 (yuv420: chroma at half resolution)
    made = moving_frames()
    assert luma_error(frames[5], made[5]) < 4 < luma_error(frames[5], made[6])


@pytest.mark.parametrize("suffix", [".mp4", ".webm", ".mov"])
def test_round_trip_keeps_frames_fps_size_and_audio(
    clip: Path, tmp_path: Path, suffix: str
) -> None:
    dst = tmp_path / f"out{suffix}"
    summary = restyle_video(identity, clip, dst, temporal=0.0, progress=False)
    assert summary.frames == N_FRAMES and summary.audio_kept
    got = probe(dst)
    assert got["frames"] == N_FRAMES
    assert got["fps"] == pytest.approx(FPS)
    assert (got["width"], got["height"]) == (W, H)
    assert got["audio"] == pytest.approx(SECONDS, abs=0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [dst.name]  # no temporary left


def test_start_end_trim_video_and_audio(clip: Path, tmp_path: Path) -> None:
    dst = tmp_path / "cut.mp4"
    summary = restyle_video(identity, clip, dst, start=0.5, end=1.5, temporal=0.0, progress=False)
    got = probe(dst)
    assert summary.frames == got["frames"] == 15
    assert got["audio"] == pytest.approx(1.0, abs=0.1)
    first = next(open_clip(dst).frames())
    # frames whose time is in [0.5 s, 1.5 s): 8 (0.533 s) to 22
    assert luma_error(first, moving_frames()[8]) < 4 < luma_error(first, moving_frames()[7])


def test_rotated_clip_is_read_upright(tmp_path: Path) -> None:
    # a phone's portrait clip: landscape frames stored with a display rotation of -90°
    # (a quarter turn clockwise to show them upright)
    stored = np.zeros((H, W, 3), np.uint8)
    stored[:16, :24] = 255  # white in the stored top-left corner
    path = tmp_path / "portrait.mp4"
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = W, H, "yuv420p"
        video.set_display_rotation(-90)
        for i in range(3):
            vf = av.VideoFrame.from_ndarray(stored, format="rgb24")
            vf.pts = i
            out.mux(video.encode(vf))
        out.mux(video.encode(None))
    c = open_clip(path, max_size=48)
    assert (c.info.width, c.info.height, c.info.turns) == (32, 48, 3)
    frame = next(c.frames())
    assert frame.shape == (48, 32, 3)
    assert frame[:8, -8:].mean() > 200 and frame[-8:, :8].mean() < 50  # now top-right


def test_max_size_keeps_even_sides(clip: Path, tmp_path: Path) -> None:
    dst = tmp_path / "small.mp4"
    restyle_video(identity, clip, dst, max_size=50, temporal=0.0, progress=False)
    got = probe(dst)
    assert (got["width"], got["height"]) == (50, 32)


def test_odd_sized_clip_is_made_even(tmp_path: Path) -> None:
    # libx264 needs even sides: write an odd clip as a folder of PNGs, read it, encode mp4
    frames_dir = tmp_path / "odd"
    frames_dir.mkdir()
    for i, f in enumerate(moving_frames(6, width=37, height=25)):
        Image.fromarray(f).save(frames_dir / f"f{i}.png")
    dst = tmp_path / "odd.mp4"
    restyle_video(identity, frames_dir, dst, temporal=0.0, progress=False)
    got = probe(dst)
    assert (got["width"], got["height"], got["frames"]) == (36, 24, 6)


def test_gif_and_frame_folder_outputs(clip: Path, tmp_path: Path) -> None:
    gif = tmp_path / "out.gif"
    s = restyle_video(identity, clip, gif, temporal=0.0, progress=False)
    assert not s.audio_kept
    with Image.open(gif) as img:
        assert img.n_frames == N_FRAMES and img.size == (W, H)
    folder = tmp_path / "frames"
    restyle_video(identity, clip, folder, progress=False, end=1.0)
    names = sorted(p.name for p in folder.iterdir())
    assert len(names) == 15 and names[0] == "frame_000000.png"
    # a folder of frames reads back as a clip (at 25 fps unless told)
    back = open_clip(folder, fps=15)
    assert back.info.frames == 15 and len(list(back.frames())) == 15
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "out.gif"]


def test_frame_folder_replaces_only_its_own_frames(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    restyle_video(identity, clip, folder, progress=False, end=0.4)
    restyle_video(identity, clip, folder, progress=False, end=0.2, overwrite=True)
    assert len(list(folder.iterdir())) == 3
    (folder / "notes.txt").write_text("mine")
    with pytest.raises(UserError, match="other files"):
        restyle_video(identity, clip, folder, progress=False, overwrite=True)
    assert (folder / "notes.txt").read_text() == "mine"


def test_clip_without_audio(tmp_path: Path) -> None:
    src = make_clip(tmp_path / "silent.mp4", moving_frames(6), audio=False)
    summary = restyle_video(identity, src, tmp_path / "out.webm", progress=False)
    assert summary.frames == 6 and not summary.audio_kept
    assert probe(tmp_path / "out.webm")["audio"] is None


def test_write_clip_refuses_unknown_suffix(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="unknown video format"):
        restyle_video(identity, clip, tmp_path / "x.png", progress=False)


def test_existing_output_needs_overwrite(clip: Path, tmp_path: Path) -> None:
    dst = tmp_path / "out.mp4"
    dst.write_bytes(b"keep me")
    with pytest.raises(UserError, match="already exists"):
        restyle_video(identity, clip, dst, progress=False)
    assert dst.read_bytes() == b"keep me"
    restyle_video(identity, clip, dst, progress=False, overwrite=True, end=0.5)
    assert probe(dst)["frames"] == 8


@pytest.mark.parametrize("kind", ["truncated", "text", "missing", "empty"])
def test_unreadable_clip_is_one_line_user_error(clip: Path, tmp_path: Path, kind: str) -> None:
    bad = tmp_path / "bad.mp4"
    if kind == "truncated":
        data = clip.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "text":
        bad.write_text("this is not a video\n")
    elif kind == "empty":
        bad.write_bytes(b"")
    with pytest.raises(UserError) as err:
        restyle_video(identity, bad, tmp_path / "out.mp4", progress=False)
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{bad}:")
    assert not (tmp_path / "out.mp4").exists()


def test_bad_trim_is_user_error(clip: Path) -> None:
    with pytest.raises(UserError, match="after start"):
        open_clip(clip, start=1.0, end=0.5)
    with pytest.raises(UserError, match="past the end"):
        open_clip(clip, start=5.0)


class Boom(Exception):
    pass


@pytest.mark.parametrize("name", ["out.mp4", "out.gif", "frames"])
def test_interrupted_restyle_leaves_nothing(clip: Path, tmp_path: Path, name: str) -> None:
    calls = []

    def fails_on_frame_5(img: Image.Image, settings: Settings | None = None) -> Image.Image:
        calls.append(1)
        if len(calls) == 5:
            raise Boom("interrupted")
        return img

    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(Boom):
        restyle_video(fails_on_frame_5, clip, out_dir / name, progress=False)
    assert list(out_dir.iterdir()) == []


def test_write_clip_block_error_removes_temporary(clip: Path, tmp_path: Path) -> None:
    info = open_clip(clip).info
    with pytest.raises(KeyError), write_clip(tmp_path / "x.mp4", info) as writer:
        writer.write(moving_frames(1)[0])
        raise KeyError("stop")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- flow and metric


def test_flow_recovers_translation_and_warp_aligns() -> None:
    big = texture(200, 200)
    a, b = big[40:104, 40:136].copy(), big[43:107, 45:141].copy()  # b(x) = a(x + (5, 3))
    flow = FlowEstimator(FlowSettings(preset="medium", max_side=None)).flow(a, b)
    assert np.median(flow[..., 0]) == pytest.approx(-5, abs=0.2)
    assert np.median(flow[..., 1]) == pytest.approx(-3, abs=0.2)
    inner = (slice(8, -8), slice(8, -8))
    assert np.abs(warp(b, flow)[inner].astype(int) - a[inner]).mean() < 3


def test_consistency_mask_marks_occlusions() -> None:
    h, w = 32, 48
    zero = np.zeros((h, w, 2), np.float32)
    assert consistency_mask(zero, zero).min() == 1.0
    forward = zero.copy()
    forward[:, :, 0] = 3.0  # everything moves 3 px right, but the way back says "stay"
    assert consistency_mask(forward, zero).max() == 0.0
    backward = zero.copy()
    backward[:, :, 0] = -3.0
    mask = consistency_mask(forward, backward)
    assert mask[:, : w - 4].min() == 1.0 and mask[:, w - 2 :].max() == 0.0  # leaves the frame


def test_warping_error_zero_for_moving_output_large_for_noise() -> None:
    frames = moving_frames(12, square=False)  # a pure translation
    still = warping_error(frames, frames)
    rng = np.random.default_rng(1)
    noisy = [np.clip(f + rng.normal(0, 12, f.shape), 0, 255).astype(np.uint8) for f in frames]
    flicker = warping_error(frames, noisy)
    assert still < 1e-4
    # noise of σ per channel: E[‖n_t − n_{t−1}‖²] = 6σ² (σ = 12/255: 0.0133)
    assert flicker == pytest.approx(6 * (12 / 255) ** 2, rel=0.15)


def test_temporal_blend_lowers_warping_error(clip: Path, tmp_path: Path) -> None:
    inputs = list(open_clip(clip).frames())
    errors = {}
    for alpha in (0.0, 0.6):
        dst = tmp_path / f"alpha_{round(alpha * 10)}"
        restyle_video(Flicker(), clip, dst, temporal=alpha, progress=False)
        errors[alpha] = warping_error(inputs, list(open_clip(dst).frames()))
    assert errors[0.6] < 0.5 * errors[0.0]


def test_temporal_blend_off_is_identity_and_keeps_stills() -> None:
    frame = moving_frames(1)[0]
    styled = np.full_like(frame, 100)
    blend = TemporalBlend(0.6)
    assert np.array_equal(blend(frame, styled), styled)  # the first frame: nothing to blend
    # a still input: the output moves toward the previous one by α
    out = blend(frame, np.full_like(frame, 200))
    assert np.abs(out[8:-8, 8:-8].astype(int) - 140).max() <= 1
    with pytest.raises(ValueError):
        TemporalBlend(1.0)


class Strokes:
    """A fake restyler that, like a stylizer, turns fine detail (sensor noise included) into
    strong strokes: the frame's high band amplified 4×."""

    def __call__(self, img: Image.Image, settings: Settings | None = None) -> Image.Image:
        a = np.asarray(img, dtype=np.float32)
        soft = np.asarray(img.filter(ImageFilter.BoxBlur(2)), dtype=np.float32)
        return Image.fromarray(np.clip(soft + 4 * (a - soft), 0, 255).astype(np.uint8))


def noisy(frames: list[np.ndarray], sigma: float = 4.0, seed: int = 0) -> list[np.ndarray]:
    """``frames`` with fresh Gaussian sensor noise of ``sigma`` levels in each."""
    rng = np.random.default_rng(seed)
    return [np.clip(f + rng.normal(0, sigma, f.shape), 0, 255).astype(np.uint8) for f in frames]


def test_noisy_frames_flicker_less_with_the_input_denoise() -> None:
    inputs = noisy(moving_frames(12, square=False))
    errors = {}
    for alpha, beta in ((0.0, 0.0), (DEFAULT_TEMPORAL, 0.0), (DEFAULT_TEMPORAL, DEFAULT_DENOISE)):
        blend = TemporalBlend(alpha, denoise=beta) if alpha or beta else None
        outputs = [restyle_frame(Strokes(), f, None, blend) for f in inputs]
        errors[alpha, beta] = warping_error(inputs, outputs)
    plain, blended = errors[0.0, 0.0], errors[DEFAULT_TEMPORAL, 0.0]
    default = errors[DEFAULT_TEMPORAL, DEFAULT_DENOISE]
    assert default < 0.4 * plain and default < 0.8 * blended


def test_input_denoise_halves_still_noise_and_keeps_real_changes() -> None:
    still = moving_frames(1, square=False)[0]
    frames = noisy([still] * 8, sigma=3.0)
    blend = TemporalBlend(DEFAULT_TEMPORAL, denoise=DEFAULT_DENOISE)
    for frame in frames:
        cleaned = blend.prepare(frame)
        blend(frame, frame)
    inner = (slice(8, -8), slice(8, -8))
    assert np.std(cleaned[inner].astype(float) - still[inner]) < 0.65 * 3.0
    changed = frames[0].copy()
    changed[20:40, 30:60] = 255 - changed[20:40, 30:60]  # a real change: kept, not ghosted
    out = blend.prepare(changed)
    assert np.abs(out[24:36, 34:56].astype(int) - changed[24:36, 34:56]).max() <= 2
    assert np.array_equal(TemporalBlend(0.5, denoise=0.0).prepare(frames[0]), frames[0])
    with pytest.raises(ValueError):
        TemporalBlend(0.5, denoise=1.0)


# --------------------------------------------------------------------------- a real model


def test_restyle_video_with_a_tiny_model(clip: Path, tmp_path: Path) -> None:
    from styleforge.infer.restyle import Restyler
    from tests.conftest import write_tiny_stylizer

    model = write_tiny_stylizer(tmp_path / "m.safetensors")
    restyler = Restyler.open(model, backend="torch", device="cpu")
    dst = tmp_path / "styled.mp4"
    summary = restyle_video(restyler, clip, dst, end=1.0, progress=False)
    assert summary.frames == 15 and summary.audio_kept
    first_in = next(open_clip(clip).frames()).astype(int)
    first_out = next(open_clip(dst).frames()).astype(int)
    assert np.abs(first_out - first_in).mean() > 10  # restyled, not copied


# --------------------------------------------------------------------------- stability term


def test_stability_loss_and_perturb() -> None:
    import torch

    from styleforge.video.stability import perturb, shift_image, stability_loss

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 32, 32, generator=gen)
    x_p, shift = perturb(x, torch.Generator().manual_seed(3))
    x_q, shift_q = perturb(x, torch.Generator().manual_seed(3))
    assert torch.equal(x_p, x_q) and shift == shift_q  # seeded
    assert x_p.min() >= 0 and x_p.max() <= 1 and not torch.equal(x_p, x)
    # an output that moves exactly with its input is perfectly stable
    assert stability_loss(x, shift_image(x, (2, -1)), shift=(2, -1)).item() == 0.0
    clean = x.clone().requires_grad_(True)
    loss = stability_loss(clean, x + 0.1)
    assert loss.item() == pytest.approx(0.01, rel=1e-4)
    loss.backward()
    assert clean.grad is not None and clean.grad.abs().sum() > 0
    assert torch.equal(clean.detach(), x)  # inputs unchanged
    with pytest.raises(ValueError):
        stability_loss(x, x[:, :, :16])


def test_perturb_of_a_share_of_the_batch_matches_one_process() -> None:
    import torch

    from styleforge.video.stability import perturb

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    whole, shift = perturb(x, torch.Generator().manual_seed(5))
    part, shift_part = perturb(x[2:], torch.Generator().manual_seed(5), rows=slice(2, 4), of=4)
    assert shift_part == shift and torch.equal(part, whole[2:])
    with pytest.raises(ValueError, match="rows"):
        perturb(x[2:], rows=slice(0, 1), of=4)
    with pytest.raises(ValueError):
        perturb(x[0])  # not a batch
