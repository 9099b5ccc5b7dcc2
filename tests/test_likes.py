"""Sampler likes (issue #15): latents around liked seeds, ``generate --like/--dislike`` and its
bad seed lists."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from styleforge.cli import main
from styleforge.infer.model_file import write_model
from styleforge.infer.sampler import SamplerInfo, around_latents, latents
from styleforge.nets.sampler import SamplerConfig, SamplerGenerator

NET = SamplerConfig(resolution=64, latent_dim=8, width=4, max_width=16)
LIKED = [3, 7, 42]


@pytest.fixture
def sampler_file(tmp_path: Path) -> Path:
    """An untrained tiny sampler file (a random generator is enough to tell latents apart)."""
    torch.manual_seed(0)
    return write_model(tmp_path / "s.safetensors", SamplerGenerator(NET).state_dict(),
                       SamplerInfo(NET))  # fmt: skip


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse's own errors
        code = int(stop.code or 0)
    return code, capsys.readouterr().err.strip().splitlines()


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a @ b) / (a.norm() * b.norm()))


def test_latents_gather_around_the_liked_ones_and_away_from_the_disliked() -> None:
    d = 32
    liked = latents(LIKED, d)
    target = liked.mean(0)
    z = around_latents(liked, None, 64, seed=1)
    assert z.shape == (64, d)
    torch.testing.assert_close(z.norm(dim=1), torch.full((64,), d**0.5))  # the typical norm
    assert _cos(z[0], target) > 0.999  # row 0: the liked mean
    random = latents(range(100, 164), d)
    near = float((z.mean(0) - target).norm())
    far = float((random.mean(0) - target).norm())
    assert near < 0.5 * far, (near, far)
    # each sample is close to one of the liked latents (or their mean), unlike random seeds
    centres = torch.cat([target[None], liked])
    best = torch.nn.functional.cosine_similarity(z[:, None], centres[None], dim=-1).amax(1)
    best_random = torch.nn.functional.cosine_similarity(random[:, None], centres[None],
                                                        dim=-1).amax(1)  # fmt: skip
    assert float(best.min()) > float(best_random.max())
    torch.testing.assert_close(around_latents(liked, None, 64, seed=1), z)  # deterministic
    assert not torch.equal(around_latents(liked, None, 64, seed=2), z)
    # a dislike moves every sample away from it
    bad = latents([5], d)
    pushed = around_latents(liked, bad, 64, seed=1)
    before = [_cos(row, bad[0]) for row in z]
    after = [_cos(row, bad[0]) for row in pushed]
    assert all(a < b for a, b in zip(after, before, strict=True))


def test_generate_like_differs_from_seeds_is_deterministic_and_follows_the_likes(
    sampler_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def generate(name: str, *extra: str) -> np.ndarray:
        out = tmp_path / name
        code, err = _run(["generate", str(sampler_file), "-o", str(out), "--device", "cpu",
                          *extra], capsys)  # fmt: skip
        assert code == 0, err
        from PIL import Image

        return np.stack([np.asarray(Image.open(p), np.float64) for p in sorted(out.iterdir())])

    like = ",".join(map(str, LIKED))
    a = generate("a", "--like", like, "-n", "8", "--seed", "1")
    assert sorted(p.name for p in (tmp_path / "a").iterdir())[0] == "like_0000.png"
    assert np.array_equal(generate("b", "--like", like, "-n", "8", "--seed", "1"), a)
    assert not np.array_equal(generate("c", "--like", like, "-n", "8", "--seed", "2"), a)
    liked = generate("liked", "--seeds", like)
    plain = generate("plain", "--seeds", "100-107")
    assert not any(np.array_equal(x, y) for x in a for y in liked)  # new images, not copies
    # the batch looks like the liked images more than random seeds' do
    target = liked.mean(0)
    assert np.abs(a.mean(0) - target).mean() < np.abs(plain.mean(0) - target).mean()
    pushed = generate("pushed", "--like", like, "--dislike", "5", "-n", "8", "--seed", "1")
    assert not np.array_equal(pushed, a)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--like", "3,x"], "--like 3,x: expected seeds"),
        (["--like", "-4"], "from 0 up"),
        (["--like", "2,-1"], "from 0 up"),
        (["--like", ""], "no seeds"),
        (["--like", " , "], "no seeds"),
        (["--like", "3,7", "--dislike", "7"], "seed 7 is both liked"),
        (["--like", "3", "--dislike", "1.5"], "--dislike 1.5: expected seeds"),
        (["--dislike", "4"], "goes with --like"),
        (["--like", "3", "--seeds", "1-4"], "leave out --seeds"),
        (["--seeds", "-2"], "from 0 up"),
    ],
)
def test_bad_like_lists_are_one_line_errors(
    extra: list[str], message: str, sampler_file: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    code, err = _run(["generate", str(sampler_file), "-o", str(tmp_path / "g"), *extra], capsys)
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "g").exists()
