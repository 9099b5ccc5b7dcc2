"""Taste benchmark on real renders (issue #33): does ``tune`` land where a user pointed, when the
user judges pictures, not control vectors?

For each of two style collections a model restyles one photo at 512 px (``--size``). Two kinds
of simulated users take part, and neither ever sees a control vector:

- **settings users** hold hidden apply settings (strength, paint size, colours kept, tone); the
  ideal picture is the photo restyled with exactly those. A variant's distance is the mean
  absolute pixel difference (in [0,1]) between its render and the ideal.
- **painting users** want "more like this painting": a picture of the collection held back
  from the model. A variant's distance is the Gram (style) distance of its render to that
  painting (``styleforge evaluate``'s relative Gram distance, VGG16 at 256 px).

Each round the user sees the 8 rendered variants ``tune`` proposes, scores each by its distance
plus Gaussian noise (``--noise`` × the improvement on offer, d(default) − d(ideal): a user who
tells apart a twentieth of what the controls can do), types its 1–3 best (favourite
first) and, half the time, ``-N`` for its worst. After 1, 3 and 5 rounds we render the stored
taste and report the recovered fraction of the default-to-ideal distance: (d(default) −
d(taste)) / (d(default) − d(ideal)), where d(ideal) is 0 for a settings user and, for a painting
user, the least distance found by a 3⁴ grid of settings plus every render any searcher showed.
Also: whether the stored taste is at least as close as the best variant the user liked (within
5 %), and the same for random proposals (uniform grids, the same preference model and rule).

    .venv/bin/python bench/taste_renders.py [--users 4] [--rounds 5] [--model NAME=M.safetensors]

Models: by default each collection's zero-training preview (the painter prior with the mean
style of the collection minus its held-back paintings); ``--model hokusai_fuji=M.safetensors``
uses a trained model instead (its held-back paintings may then have been seen in training).
Minutes on a 2-core CPU: every proposal is really rendered.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from styleforge import collection, images
from styleforge.infer.apply import MemoisedNet
from styleforge.infer.restyle import Restyler
from styleforge.infer.settings import Settings
from styleforge.taste import AXES, BASE, TasteSession
from styleforge.taste.rounds import Sketcher
from styleforge.taste.space import from_vector

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
#: (collection, photo) pairs: two collections none of whose pictures the photo resembles.
COLLECTIONS = (("hokusai_fuji", "golden_gate.jpg"), ("monet", "kodak_22_red_barn.jpg"))
REPORT_ROUNDS = (1, 3, 5, 8)
VARIANTS = 8
TARGET_MEAN, TARGET_MIN, NEVER_WORSE_SLACK = 0.80, 0.60, 1.05
HELD_BACK = 4


class Renderer:
    """A look -> the photo restyled with it, (1,3,H,W), memoised."""

    def __init__(self, restyler: Restyler, photo: np.ndarray) -> None:
        restyler.run_batch = MemoisedNet(restyler.run_batch, most=400)
        self.restyler, self.photo = restyler, photo
        self.memo: dict[Settings, np.ndarray] = {}

    def __call__(self, c: Settings) -> np.ndarray:
        if c not in self.memo:
            self.memo[c] = self.restyler.array(self.photo, c)
        return self.memo[c]


@dataclass
class User:
    """A simulated user: ``distance(render)`` (lower is better), noisy picks."""

    name: str
    distance: Callable[[np.ndarray], float]
    noise: float
    rng: np.random.Generator
    ideal: float = 0.0  # the least distance reachable (0: a settings user's own picture)

    def pick(self, renders: Sequence[np.ndarray]) -> tuple[list[int], list[int]]:
        d = np.array([self.distance(r) for r in renders])
        noisy = d + self.noise * self.rng.standard_normal(len(d))
        order = [int(i) for i in np.argsort(noisy)]
        liked = order[: int(self.rng.integers(1, 4))]
        disliked = [order[-1]] if self.rng.random() < 0.5 else []
        return liked, disliked


def preview_model(pictures: list[Path], path: Path) -> Path:
    """The painter prior with the mean style of ``pictures``, as a model file."""
    from styleforge.infer import prior
    from styleforge.infer.model_file import ModelInfo, write_model
    from styleforge.nets import PainterConfig

    net = prior.painter_for([images.open_image(p) for p in pictures])
    style = {"images": len(pictures), "preview": True, "folder_name": path.stem}
    return write_model(path, net.state_dict(), ModelInfo(net=PainterConfig(), style=style))


def pixel_distance(ideal: np.ndarray) -> Callable[[np.ndarray], float]:
    return lambda r: float(np.abs(r - ideal).mean())


def gram_distance(bank: object, painting: Path) -> Callable[[np.ndarray], float]:
    import torch

    from styleforge.metrics.style import style_distance

    target = bank.grams(painting)  # type: ignore[attr-defined]
    memo: dict[int, float] = {}

    def distance(r: np.ndarray) -> float:
        key = hash(r.tobytes())
        if key not in memo:
            memo[key] = style_distance(bank.grams(torch.from_numpy(r)), target)  # type: ignore[attr-defined]
        return memo[key]

    return distance


def random_proposals(session: TasteSession, rng: np.random.Generator) -> list[Settings]:
    """The recommendation so far (as ``tune`` shows it first), then uniform random settings."""
    grid = [from_vector(v) for v in rng.random((VARIANTS, len(AXES)))]
    grid[0] = session.recommendation()
    session.pending = tuple(grid)
    return grid


def record(session: TasteSession, picks: tuple[list[int], list[int]], renders: list) -> None:
    try:
        session.record(*picks, renders=renders)  # type: ignore[call-arg]
    except TypeError:  # a session that does not look at pictures
        session.record(*picks)


def run_user(
    user: User, render: Renderer, proposer: str, seed: int, rounds: int
) -> dict[str, list[float]]:
    """One session: per round, the stored taste's distance and the best liked distance."""
    session = TasteSession(seed=seed, paint_limit=max(render.photo.shape[-2:]))
    if proposer == "gp":
        session.sketch = Sketcher(render.restyler, [render.photo])
    rng = np.random.default_rng([seed, 33])
    out: dict[str, list[float]] = {"taste": [], "liked": [], "shown": [], "seconds": []}
    best_liked = best_shown = np.inf
    for _ in range(rounds):
        start = time.perf_counter()
        shown = session.propose(VARIANTS) if proposer == "gp" else random_proposals(session, rng)
        renders = [render(c) for c in shown]
        out["seconds"].append(time.perf_counter() - start)
        liked, disliked = user.pick(renders)
        best_liked = min(best_liked, *(user.distance(renders[i]) for i in liked))
        best_shown = min(best_shown, *(user.distance(r) for r in renders))
        record(session, (liked, disliked), renders)
        out["taste"].append(user.distance(render(session.recommendation())))
        out["liked"].append(best_liked)
        out["shown"].append(best_shown)
    return out


def grid_search(user: User, render: Renderer) -> float:
    """The least distance over a 3⁴ grid of settings (for a painting user's ideal)."""
    levels = np.array([0.15, 0.5, 0.85])
    best = np.inf
    for v in np.stack(np.meshgrid(*[levels] * len(AXES)), -1).reshape(-1, len(AXES)):
        best = min(best, user.distance(render(from_vector(v))))
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=4, help="of each kind per collection (4)")
    parser.add_argument("--kinds", default="settings,painting")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--noise", type=float, default=0.05)
    parser.add_argument("--proposers", default="gp,random")
    parser.add_argument("--collections", default=",".join(c for c, _ in COLLECTIONS))
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH")
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args(argv)
    models = dict(m.split("=", 1) for m in args.model)
    kinds = args.kinds.split(",")
    proposers = args.proposers.split(",")
    rows = []
    bank = None
    tmp = tempfile.mkdtemp(prefix="taste-bench-")
    for name, photo_name in COLLECTIONS:
        if name not in args.collections.split(","):
            continue
        paths = list(collection.scan(args.data / "styles" / name).images)
        held = paths[len(paths) // (2 * HELD_BACK) :: len(paths) // HELD_BACK][:HELD_BACK]
        model = (
            Path(models[name])
            if name in models
            else preview_model(
                [p for p in paths if p not in held], Path(tmp) / f"{name}.safetensors"
            )
        )
        restyler = Restyler.open(model, use_taste=False)  # onnxruntime on a CPU
        photo = images.pil_to_array(images.open_image(args.data / "content" / photo_name))
        render = Renderer(restyler, images.downscale_to(photo, args.size))
        default = replace(BASE, paint_size=restyler.paint_size or 512)
        users: list[User] = []
        for i in range(args.users if "settings" in kinds else 0):
            rng = np.random.default_rng([i, 15])
            target = from_vector(0.1 + 0.8 * rng.random(len(AXES)))
            dist = pixel_distance(render(target))
            noise = args.noise * dist(render(default))
            users.append(User(f"settings {i + 1}: {target.describe()}", dist, noise,
                              np.random.default_rng([i, 16])))  # fmt: skip
        if "painting" in kinds:
            from styleforge.metrics.features import FeatureBank

            bank = bank or FeatureBank(None, "cpu")
            for i, painting in enumerate(held[: args.users]):
                dist = gram_distance(bank, painting)
                user = User(f"painting {i + 1}: {painting.stem[:40]}", dist, 0.0,
                            np.random.default_rng([i, 26]))  # fmt: skip
                user.ideal = grid_search(user, render)
                # as for a settings user: the noise is a share of the improvement on offer
                user.noise = args.noise * (dist(render(default)) - user.ideal)
                users.append(user)
        for i, user in enumerate(users):
            d0 = user.distance(render(default))
            results = {p: run_user(user, render, p, seed=i, rounds=args.rounds) for p in proposers}
            ideal = min(user.ideal, *(min(r["taste"] + r["shown"]) for r in results.values()))
            gap = d0 - ideal
            row = {"collection": name, "user": user.name, "d0": d0, "ideal": ideal}
            for p, r in results.items():
                row[p] = [(d0 - t) / gap if gap > 0 else 1.0 for t in r["taste"]]
                row[p + "_ok"] = [t <= NEVER_WORSE_SLACK * lk + 1e-12 for t, lk in
                                  zip(r["taste"], r["liked"], strict=True)]  # fmt: skip
                row[p + "_ratio"] = [t / lk if lk > 0 else 1.0 for t, lk in
                                     zip(r["taste"], r["liked"], strict=True)]  # fmt: skip
                row[p + "_s"] = float(np.mean(r["seconds"]))
                row[p + "_shown"] = [(d0 - t) / gap if gap > 0 else 1.0 for t in r["shown"]]
            rows.append(row)
            cells = " | ".join(
                f"{p} "
                + " ".join(f"{row[p][k - 1]:4.0%}" for k in REPORT_ROUNDS if k <= args.rounds)
                + f" (taste/liked {row[p + '_ratio'][-1]:.2f}; best shown "
                + " ".join(
                    f"{row[p + '_shown'][k - 1]:4.0%}" for k in REPORT_ROUNDS if k <= args.rounds
                )
                + ")"
                for p in proposers
            )
            print(f"{name:13s} {user.name[:60]:60s} gap {gap:.4f} | {cells}", flush=True)
    print()
    for k in [k for k in REPORT_ROUNDS if k <= args.rounds]:
        for p in proposers:
            rec = np.array([r[p][k - 1] for r in rows])
            ok = np.array([r[p + "_ok"][k - 1] for r in rows])
            print(f"{p:6s} after {k} round(s): recovered mean {rec.mean():4.0%}, "
                  f"min {rec.min():4.0%}; taste ≤ 1.05× best liked for "
                  f"{ok.sum()}/{len(ok)} users")  # fmt: skip
    for p in proposers:
        print(f"{p}: proposing + rendering a round {np.mean([r[p + '_s'] for r in rows]):.2f} s")
    k = min(5, args.rounds)
    rec = np.array([r["gp"][k - 1] for r in rows]) if "gp" in proposers else np.zeros(1)
    ok = all(r["gp_ok"][k - 1] for r in rows) if "gp" in proposers else False
    passed = rec.mean() >= TARGET_MEAN and rec.min() >= TARGET_MIN and ok
    print(f"{'PASS' if passed else 'FAIL'} after {k} rounds: mean ≥ {TARGET_MEAN:.0%} "
          f"({rec.mean():.0%}), none < {TARGET_MIN:.0%} ({rec.min():.0%}), never worse than "
          "the best liked")  # fmt: skip
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
