"""``styleforge tune --refine`` (issue #15): a short fine-tune toward the liked results and away
from the disliked ones, written to a new model file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from styleforge.cli import main
from styleforge.infer.model_file import ModelInfo, read_model, write_model
from styleforge.nets import DiscriminatorConfig, StylizerConfig, StylizerNet
from styleforge.taste.record import has_taste, read_session
from styleforge.train.config import StylizerTrainConfig
from styleforge.train.stylizer import Feedback, train_stylizer_loop
from tests.conftest import write_image

TINY = StylizerTrainConfig(
    steps=2, size=32, batch=2, lr_g=3e-3, warmup=0, net=StylizerConfig(width=4, n_res=1),
    disc=DiscriminatorConfig(width=8), checkpoint_every=100, preview_every=100,
)  # fmt: skip


def _smooth(seed: int, color: tuple[float, float, float] | None = None) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, 4, 4, generator=g)
    img = torch.nn.functional.interpolate(small, size=(48, 48), mode="bicubic").clamp(0, 1)
    if color is not None:
        img = 0.2 * img + 0.8 * torch.tensor(color).view(1, 3, 1, 1)
    return img


def test_style_weights_give_the_liked_results_their_share() -> None:
    w = Feedback(liked=[_smooth(0), _smooth(1)], liked_share=0.3).style_weights(6)
    assert w is not None and w.shape == (8,)
    assert float(w.sum()) == pytest.approx(1.0)
    assert float(w[6:].sum()) == pytest.approx(0.3)
    assert Feedback().style_weights(6) is None
    with pytest.raises(ValueError, match="liked_share"):
        Feedback(liked_share=1.0)


def test_feedback_pulls_the_generator_toward_the_liked_results() -> None:
    """Liked results that are all red, a style set of random colours: a refine with them
    makes the outputs redder than the same refine without them; the same start and the same
    picks give the same weights."""
    torch.manual_seed(0)
    start = StylizerNet(TINY.net).state_dict()
    photos = [_smooth(10 + i) for i in range(3)]
    styles = [_smooth(20 + i) for i in range(3)]
    liked = [_smooth(30 + i, (0.9, 0.1, 0.1)) for i in range(2)]
    disliked = [_smooth(40, (0.1, 0.1, 0.9))]
    config = replace(TINY, steps=25, style_weight=1e-2, ema_decay=0.0)

    def run(feedback: Feedback | None) -> torch.nn.Module:
        state = train_stylizer_loop(config, photos, styles, torch.device("cpu"), start=start,
                                    feedback=feedback)  # fmt: skip
        return state.ema.eval()

    def redness(net: torch.nn.Module) -> float:
        with torch.no_grad():
            out = torch.cat([net(p) for p in photos])
        return float((out[:, 0] - out[:, 1:].mean(1)).mean())

    plain = run(None)
    picked = run(Feedback(liked, disliked, liked_share=0.9))
    assert redness(picked) > redness(plain) + 0.1
    again = run(Feedback(liked, disliked, liked_share=0.9))
    for a, b in zip(picked.state_dict().values(), again.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.fixture
def trained(tmp_path: Path) -> Path:
    """A tiny model file with a training recipe in its metadata, as `train` writes them."""
    torch.manual_seed(0)
    net = StylizerNet(TINY.net)
    info = ModelInfo(net=TINY.net, training=TINY.to_dict(), style={"folder_name": "style"})
    return write_model(tmp_path / "m.safetensors", net.state_dict(), info)


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err.strip()


def test_tune_refine_writes_a_new_model_that_records_the_picks(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    style = tmp_path / "style"
    for i in range(3):
        write_image(style / f"s{i}.png", (64, 64), seed=i)
    photo = write_image(tmp_path / "p.png", (48, 40), seed=9)
    before, _ = read_model(trained)
    argv = ["tune", str(trained), str(photo), "-n", "4", "--picks", "1 2 -3", "--size", "64",
            "--refine", "--style", str(style), "--refine-steps", "3", "--device", "cpu",
            "-q"]  # fmt: skip
    code, err = _run(argv, capsys)
    assert code == 0, err
    refined = tmp_path / "m-refined.safetensors"
    assert refined.exists()
    original, _ = read_model(trained)
    assert all(torch.equal(before[k], original[k]) for k in before)  # the original untouched
    assert has_taste(trained)  # ... but for the taste the rounds gave it
    weights, info = read_model(refined)
    assert any(not torch.equal(weights[k], original[k]) for k in original)
    (entry,) = info.refined
    assert entry["from"] == "m.safetensors" and entry["rounds"] == 1 and entry["steps"] == 3
    assert entry["liked"] == 2 and entry["disliked"] == 1  # 2 liked variants × 1 photo
    session = read_session(refined)
    assert session is not None and session.rounds  # the taste travels with it

    # Refining again: the file exists -> a clear line, unless --overwrite.
    code, err = _run(argv, capsys)
    assert code == 2 and "exists" in err and len(err.splitlines()) == 1
    assert _run([*argv, "--overwrite"], capsys)[0] == 0
    _, info2 = read_model(refined)
    assert len(info2.refined) == 1  # refined from the original again, not stacked


def test_refine_mistakes_are_one_line_and_write_nothing(
    trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    style = tmp_path / "style"
    write_image(style / "s.png", (64, 64))
    photo = write_image(tmp_path / "p.png", (48, 40), seed=9)
    base = ["tune", str(trained), str(photo), "-n", "4", "--size", "64", "--device", "cpu", "-q"]
    cases = {
        "needs --style": [*base, "--picks", "1", "--refine"],
        "no such style folder": [*base, "--picks", "1", "--refine", "--style", str(tmp_path / "x")],
        "never overwritten": [*base, "--picks", "1", "--refine", "--style", str(style),
                              "--refined", str(trained)],
        "nothing liked": [*base, "--picks", "-2", "--refine", "--style", str(style), "--restart"],
    }  # fmt: skip
    for expected, argv in cases.items():
        code, err = _run(argv, capsys)
        assert code == 2 and expected in err and len(err.splitlines()) == 1, (expected, err)
    assert not (tmp_path / "m-refined.safetensors").exists()
