"""Taste on real pictures (issue #33): the stored taste is never worse than what the user liked,
the search measures closeness as the pictures differ, and "more like this" is offered."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from styleforge import images
from styleforge.cli import main
from styleforge.errors import UserError
from styleforge.infer.restyle import Restyler
from styleforge.infer.settings import Settings
from styleforge.taste import AXES, BASE, TasteSession
from styleforge.taste.ideal import fit_metric, ideal_posterior, metric_distance
from styleforge.taste.looks import look, look_distances
from styleforge.taste.rounds import Sketcher, render_round
from styleforge.taste.space import from_vector, scaled, to_vector
from tests.conftest import write_image, write_tiny_stylizer


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A tiny stylizer and a 48×40 photo."""
    root = tmp_path_factory.mktemp("taste-renders")
    model = write_tiny_stylizer(root / "m.safetensors")
    photo = images.pil_to_array(images.open_image(write_image(root / "p.png", (48, 40), seed=3)))
    return model, photo


@pytest.mark.parametrize("sketched", [False, True], ids=["metric", "sketched"])
def test_never_worse_than_the_best_liked_with_a_scripted_user_on_a_tiny_model(
    tiny: tuple[Path, np.ndarray], sketched: bool
) -> None:
    """Scripted users hold hidden settings and judge the rendered variants by their pixel
    distance to the picture those settings make; after every round the stored taste is a
    setting they were shown and liked, at least as close as the best one they liked (with
    the search measuring looks on sketches, as ``tune`` does, or by the fitted metric)."""
    model, photo = tiny
    restyler = Restyler.open(model, backend="torch", device="cpu", use_taste=False)

    def render(c: Settings) -> np.ndarray:
        return render_round(restyler, [photo], [c])[0][0]

    improved = 0
    for seed in range(3):
        rng = np.random.default_rng([seed, 33])
        ideal = render(from_vector(0.15 + 0.7 * rng.random(len(AXES))))

        def distance(r: np.ndarray, ideal: np.ndarray = ideal) -> float:
            return float(np.abs(r - ideal).mean())

        session = TasteSession(seed=seed, paint_limit=48)
        if sketched:
            session.sketch = Sketcher(restyler, [photo])
        best_liked = np.inf
        liked_settings: list[Settings] = []
        for _ in range(4):
            shown = session.propose(8)
            renders = [render(c) for c in shown]
            d = [distance(r) for r in renders]
            order = [int(i) for i in np.argsort(d)]
            liked, disliked = order[:2], order[-1:]
            best_liked = min(best_liked, d[liked[0]])
            liked_settings += [shown[i] for i in liked]
            session.record(liked, disliked, renders=renders)
            taste = session.recommendation()
            assert taste in liked_settings  # a look the user saw and liked
            assert distance(render(taste)) <= 1.05 * best_liked + 1e-9
        improved += distance(render(session.recommendation())) < distance(render(BASE))
    assert improved >= 2


def test_rounds_keep_their_picture_distances_and_v1_records_still_read() -> None:
    session = TasteSession(seed=1)
    rng = np.random.default_rng(0)
    shown = session.propose(4)
    renders = [rng.random((1, 3, 12, 16)).astype(np.float32) for _ in shown]
    rnd = session.record([1, 0], [3], renders=renders)
    assert len(rnd.distances) == 6 and all(d > 0 for d in rnd.distances)
    matrix = rnd.distance_matrix()
    assert matrix is not None and np.allclose(matrix, matrix.T) and not matrix.diagonal().any()
    again = TasteSession.from_dict(json.loads(json.dumps(session.to_dict())))
    assert again.rounds == session.rounds
    assert again.recommendation() == session.recommendation() == shown[1]

    v1 = session.to_dict()
    v1["format"] = "styleforge-taste-v1"  # v1 held the recommended look too, no distances
    v1["recommended"] = session.recommendation().to_record()
    for r in v1["rounds"]:
        del r["distances"]
    old = TasteSession.from_dict(v1)
    assert old.rounds[0].distances == () and old.weights() is None
    bad = session.to_dict()
    bad["rounds"][0]["distances"] = [1.0, -2.0]
    with pytest.raises(UserError, match="distances"):
        TasteSession.from_dict(bad)
    with pytest.raises(ValueError, match="renders"):
        session.propose(4)
        session.record([0], renders=renders[:2])


def test_looks_see_colour_and_detail() -> None:
    rng = np.random.default_rng(2)
    base = rng.random((1, 3, 64, 96)).astype(np.float32)
    tinted = base.copy()
    tinted[:, 0] = np.clip(tinted[:, 0] + 0.2, 0, 1)
    blurred = np.repeat(np.repeat(base[..., ::2, ::2], 2, -2), 2, -1)
    d = look_distances([look([base]), look([tinted]), look([blurred]), look([base])])
    assert d[0, 3] == 0.0
    assert d[0, 1] > 0.05 and d[0, 2] > 0.05  # a tint and a loss of detail both show


def test_the_picture_metric_is_fitted_from_render_distances() -> None:
    """Distances made by a known metric give that metric back; the session's weights then
    rank a control that changes the picture a lot above one that changes it little."""
    rng = np.random.default_rng(4)
    true = np.diag([4.0, 0.1, 1.0, 0.5])
    true[2, 3] = true[3, 2] = 0.3
    vectors = [rng.random((8, len(AXES))) for _ in range(2)]
    dists = [metric_distance(v, v, true) for v in vectors]
    np.testing.assert_allclose(fit_metric(vectors, dists), true, atol=1e-8)

    session = TasteSession(seed=0)
    for _ in range(2):
        shown = session.propose(8)
        x = np.array([to_vector(c) for c in shown])
        fake = metric_distance(x, x, true)
        # renders whose look distances are those of the metric: a 1-pixel picture per axis
        session.pending = tuple(shown)
        session.record([0], [])
        session.rounds[-1] = type(session.rounds[-1])(
            tuple(shown), (0,), (), tuple(fake[np.triu_indices(8, 1)])
        )  # fmt: skip
    w = session.weights()
    assert w is not None and w[0] > 3 * w[1]


def test_the_posterior_over_ideals_closes_in_on_the_ideal() -> None:
    rng = np.random.default_rng(5)
    ideal = np.array([0.3, 0.6, 0.7, 0.2])
    metric = np.eye(len(AXES))
    points = rng.random((24, len(AXES)))
    utility = -metric_distance(points, ideal[None], metric)[:, 0]
    pairs = [(a, b) if utility[a] > utility[b] else (b, a)
             for a, b in itertools.combinations(range(24), 2)]  # fmt: skip
    cand = rng.random((4000, len(AXES)))
    post = ideal_posterior(points, pairs, metric, cand, scale=0.5)
    assert post.sum() == pytest.approx(1.0)
    mean = post @ cand
    assert np.linalg.norm(mean - ideal) < 0.1
    assert np.linalg.norm(cand[np.argmax(post)] - ideal) < 0.15


def test_a_sketched_search_finds_a_control_whose_effect_is_not_linear() -> None:
    """With sketches (here a made-up picture of the controls, far from linear in them: colours
    kept shows only above strength 0.5, and tone folds back), the posterior measures
    closeness by the looks: a noise-free user who wants one look gets close to it in five
    rounds, closer than the metric fitted on the controls gets."""
    calls = []

    def picture(v: np.ndarray) -> np.ndarray:
        s, p, c, t = v
        return np.array([np.sin(3 * s), 0.3 * p, c * (s > 0.5), np.cos(4 * t), s * c])

    def sketch(settings: Sequence[Settings]) -> np.ndarray:
        calls.append(len(settings))
        return np.array([picture(to_vector(c)) for c in settings])

    ideal = from_vector([0.8, 0.4, 0.7, 0.3])
    target = picture(to_vector(ideal))

    def run(with_sketch: bool) -> float:
        session = TasteSession(seed=2)
        if with_sketch:
            session.sketch = sketch
        for _ in range(5):
            shown = session.propose(8)
            d = [float(np.abs(picture(to_vector(c)) - target).sum()) for c in shown]
            order = [int(i) for i in np.argsort(d)]
            session.record(order[:2], order[-1:], renders=[
                np.full((1, 3, 4, 4), picture(to_vector(c))[:3].mean(), np.float32)
                for c in shown])  # fmt: skip
        return float(np.abs(picture(to_vector(session.recommendation())) - target).sum())

    start = float(np.abs(picture(to_vector(BASE)) - target).sum())
    sketched, fitted = run(True), run(False)
    assert calls and sum(calls) > 100  # the candidates were sketched
    assert sketched < 0.15 * start
    assert sketched < fitted


def test_sketches_are_the_renders_looks_and_carry_to_the_next_command(
    tiny: tuple[Path, np.ndarray], tmp_path: Path
) -> None:
    """A sketch is the look of the photo restyled at sketch size (network runs shared across
    colours kept and tone); kept looks are reused by the next sketcher of the same model and
    photo, and ignored for another photo."""
    from styleforge.taste.looks import look
    from styleforge.taste.rounds import SKETCH_SIDE

    model, photo = tiny
    restyler = Restyler.open(model, backend="torch", device="cpu", use_taste=False)
    big = images.resize_array(photo, 240, 288)  # sketched at SKETCH_SIDE, paint size scaled
    settings = [Settings(strength=s, paint_size=p, colors=c, tone=t) for s, p, c, t in
                [(1.0, 512, 0.0, 0.0), (1.0, 512, 0.6, -0.4), (1.6, 300, 0.2, 0.5),
                 (0.0, 256, 0.0, 0.3)]]  # fmt: skip
    keep = tmp_path / "sketches.npz"
    sketch = Sketcher(restyler, [big], keep=keep)
    got = sketch(settings)
    small = images.downscale_to(big, SKETCH_SIDE)
    scale = SKETCH_SIDE / 288
    want = [look([restyler.array(small, scaled(c, scale))]) for c in settings]
    np.testing.assert_allclose(got, np.array(want), atol=1e-6)
    sketch.save()
    assert keep.is_file()

    again = Sketcher(restyler, [big], keep=keep)
    assert set(again.kept) == set(settings)
    np.testing.assert_array_equal(again(settings), got)
    other = Sketcher(restyler, [np.ascontiguousarray(big[..., ::-1])], keep=keep)
    assert not other.kept  # another photo: the kept looks are not its own
    assert not Sketcher(restyler, [big, big], keep=keep).kept  # nor two photos' looks


def test_a_new_taste_keeps_the_onnx_export(tmp_path: Path) -> None:
    """``tune`` writes the taste into the model after every round: the export cache key
    ignores it (the network is the same), while other weights get a new key."""
    from styleforge.infer.export import export_key
    from styleforge.taste.record import write_taste

    model = write_tiny_stylizer(tmp_path / "m.safetensors")
    before = export_key(model)
    session = TasteSession(seed=0)
    session.propose(4)
    session.record([2])
    tensors = model.read_bytes()[-4096:]
    write_taste(model, session)
    assert export_key(model) == before
    assert model.read_bytes()[-4096:] == tensors  # the weights' bytes are copied as they are
    data = bytearray(model.read_bytes())
    data[-1] ^= 1  # one weight's last byte
    other = tmp_path / "o.safetensors"
    other.write_bytes(bytes(data))
    assert export_key(other) != before
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(UserError, match="truncated"):
        write_taste(cut, session)  # a damaged model is refused, not rewritten
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a model")
    assert len(export_key(junk)) == 64


def test_paint_sizes_the_photos_cannot_show_are_not_searched() -> None:
    session = TasteSession(seed=3, paint_limit=300)
    for _ in range(3):
        shown = session.propose(8)
        assert all(c.paint_size <= 300 for c in shown[1:])
        session.record([2, 1], [])


def test_the_same_favourite_twice_offers_more_like_this(
    tiny: tuple[Path, np.ndarray], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    session = TasteSession(seed=0)
    session.propose(8)
    session.record([3])
    assert session.advice() is None
    for _ in range(2):
        session.propose(8)
        session.record([0])  # the taste so far, again
    assert "same look" in (session.advice() or "")

    model = tmp_path / "m.safetensors"
    model.write_bytes(tiny[0].read_bytes())
    photo = write_image(tmp_path / "p.png", (40, 32), seed=1)
    code = main(["tune", str(model), str(photo), "--picks", "4;1;1 2", "-q", "--thumb", "32",
                 "--device", "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 0, err
    assert "More like this one" in err and "--refine" in err
