"""A taste session: the rounds so far, the next proposals and the recommendation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from styleforge.errors import UserError
from styleforge.infer.settings import Settings
from styleforge.taste.ideal import (
    fit_metric,
    ideal_posterior,
    metric_distance,
    pick_posterior,
    spread_draws,
)
from styleforge.taste.looks import LookFn, cross_distances, look, look_distances
from styleforge.taste.preference import (
    PreferenceConfig,
    PreferenceModel,
    fit_preference,
    round_outcomes,
)
from styleforge.taste.space import (
    AXES,
    BASE,
    DEFAULT_VARIANTS,
    READABLE_FORMATS,
    TASTE_FORMAT,
    from_vector,
    look_from_dict,
    to_vector,
)

#: Renders of one variant: one (1,3,H,W) array per photo of the round (or one array).
VariantRenders = np.ndarray | Sequence[np.ndarray]


@dataclass(frozen=True)
class Round:
    """One round: the variants shown (in grid order), the 0-based indices picked (liked in the
    order given: the favourite first) and, when the front end passed the renders, how far
    apart the variants looked: the upper triangle of their picture distances, row by row
    (:func:`~styleforge.taste.looks.look_distances`; empty: not measured)."""

    shown: tuple[Settings, ...]
    liked: tuple[int, ...]
    disliked: tuple[int, ...] = ()
    distances: tuple[float, ...] = ()

    def distance_matrix(self) -> np.ndarray | None:
        """The variants' picture distances (n,n), ``None`` when not measured."""
        if not self.distances:
            return None
        n = len(self.shown)
        out = np.zeros((n, n))
        out[np.triu_indices(n, 1)] = self.distances
        return out + out.T

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "shown": [c.to_record() for c in self.shown],
            "liked": list(self.liked),
            "disliked": list(self.disliked),
            "distances": list(self.distances),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Round:
        """Inverse of :meth:`to_dict`, validated (a :class:`UserError` otherwise); a round of a
        v1 record has no ``distances``."""
        keys = {"shown", "liked", "disliked"}
        if not isinstance(data, Mapping) or not keys <= set(data) <= keys | {"distances"}:
            raise UserError("a round needs exactly 'shown', 'liked', 'disliked' (and 'distances')")
        if not isinstance(data["shown"], list):
            raise UserError("'shown' must be a list of controls")
        shown = tuple(look_from_dict(c) for c in data["shown"])
        liked, disliked = (_indices(data[k], k) for k in ("liked", "disliked"))
        rnd = checked_round(shown, liked, disliked)
        distances = data.get("distances", [])
        n = len(shown)
        if (
            not isinstance(distances, list)
            or len(distances) not in (0, n * (n - 1) // 2)
            or any(isinstance(v, bool) or not isinstance(v, (int, float)) or not v >= 0
                   for v in distances)
        ):  # fmt: skip
            raise UserError("'distances' must be the variants' distances, numbers ≥ 0")
        return replace(rnd, distances=tuple(float(v) for v in distances))


def _indices(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        raise UserError(f"'{name}' must be a list of whole numbers")
    return tuple(value)


def checked_round(
    shown: Sequence[Settings], liked: Sequence[int], disliked: Sequence[int]
) -> Round:
    """A :class:`Round`, or a :class:`UserError` naming what is wrong with the picks (numbers
    in messages are 1-based, as the grid shows them)."""
    n = len(shown)
    for i in (*liked, *disliked):
        if not 0 <= i < n:
            raise UserError(f"pick {i + 1} is out of range: the grid shows 1 to {n}")
    if not liked and not disliked:
        raise UserError("an empty round: pick at least one number you like (or -N to dislike)")
    both = sorted(set(liked) & set(disliked))
    if both:
        raise UserError(f"{both[0] + 1} is both liked and disliked")
    if len(set(liked)) != len(liked) or len(set(disliked)) != len(disliked):
        raise UserError("a number is picked twice in one round")
    return Round(tuple(shown), tuple(liked), tuple(disliked))


#: Proposals are drawn from the posterior over ideals raised to this power: a little wider
#: than it, so a model that is wrong about the picture cannot narrow the search too soon.
TEMPER = 0.5
#: Index of the paint size in :data:`AXES`.
_PAINT = next(i for i, a in enumerate(AXES) if a.name == "paint_size")
_STRENGTH = next(i for i, a in enumerate(AXES) if a.name == "strength")
#: Sketched candidates: how many per round (a quarter uniform, the rest around the liked
#: settings), then axis sweeps and a close cloud through the few most probable.
SKETCH_CANDIDATES = 240
SWEEP_STEPS, SWEEP_TOPS = 9, 3
#: The lattice sketched candidates lie on, so that their sketches share network runs: a
#: strength step, and paint-size steps across the unit range.
STRENGTH_STEP, PAINT_STEPS = 0.05, 12


@dataclass
class TasteSession:
    """Rounds of picks and the search over looks (:class:`~styleforge.infer.settings.Settings`
    with every look knob set, in the unit space of :mod:`~styleforge.taste.space`) they drive.

    ``propose(n)`` gives the next grid (deterministic for a seed and the rounds so far), then
    ``record(liked, disliked, renders)`` stores the picks (0-based indices into that grid,
    the favourite first) and, from the variants' renders, how far apart they looked.
    ``recommendation()`` is the best setting found: always one the user was shown and liked
    (never worse than what they liked), ``base`` without picks.

    ``paint_limit``: the paint size above which the judged photos look the same (their long
    side: a network painting at or above a photo's size paints it at full size); the search
    stays at or below it. ``sketch``: the looks of any settings on the judged photos (small
    renders, :data:`~styleforge.taste.looks.LookFn`); with it the posterior over the user's
    ideal measures closeness by the pictures themselves, without it by a metric on the
    controls fitted to the rounds' renders. Both are set by the front end, not stored.
    """

    seed: int = 0
    base: Settings = BASE
    rounds: list[Round] = field(default_factory=list)
    config: PreferenceConfig = field(default_factory=PreferenceConfig)
    pending: tuple[Settings, ...] | None = None
    paint_limit: int | None = None
    sketch: LookFn | None = field(default=None, repr=False, compare=False)
    #: Local search radii (unit space) around the incumbent and the liked points.
    radii: tuple[float, ...] = (0.04, 0.08, 0.16, 0.3)

    # ----------------------------------------------------------------- data

    def _upper(self) -> np.ndarray:
        """(d,) the top of each control's searched range in the unit space."""
        upper = np.ones(len(AXES))
        if self.paint_limit:
            upper[_PAINT] = max(0.0, AXES[_PAINT].to_unit(self.paint_limit))
        return upper

    def _unit(self, c: Settings) -> np.ndarray:
        """(d,) ``c`` in the unit space as the judged photos show it (paint size capped)."""
        return np.minimum(to_vector(c), self._upper())

    def _table(
        self,
    ) -> tuple[np.ndarray, list[Settings], list[tuple[int, int]], set[int], set[int]]:
        """Distinct shown looks (m,d), a shown setting for each (the latest), every round's
        (winner, loser) pairs into them, and the indices ever liked and ever disliked."""
        keys: dict[tuple[float, ...], int] = {}
        controls: list[Settings] = []
        pairs: list[tuple[int, int]] = []
        liked: set[int] = set()
        disliked: set[int] = set()
        for rnd in self.rounds:
            index = []
            for c in rnd.shown:
                key = tuple(np.round(self._unit(c), 9))
                if key not in keys:
                    keys[key] = len(keys)
                    controls.append(c)
                controls[keys[key]] = c
                index.append(keys[key])
            for a, b in round_outcomes(len(rnd.shown), rnd.liked, rnd.disliked):
                if index[a] != index[b]:
                    pairs.append((index[a], index[b]))
            liked.update(index[i] for i in rnd.liked)
            disliked.update(index[i] for i in rnd.disliked)
        points = np.array(list(keys), dtype=np.float64).reshape(-1, len(AXES))
        return points, controls, pairs, liked, disliked

    def data(self) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Distinct shown vectors (m,d) and all rounds' (winner, loser) pairs into them."""
        points, _, pairs, _, _ = self._table()
        return points, pairs

    def _measured(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each round with renders: its variants' vectors (n,d) and picture distances (n,n)."""
        out = []
        for rnd in self.rounds:
            dist = rnd.distance_matrix()
            if dist is not None:
                out.append((np.array([self._unit(c) for c in rnd.shown]), dist))
        return out

    def metric(self) -> tuple[np.ndarray, float]:
        """The picture metric on the unit control space (d,d) and the typical distance between
        a round's variants in it: fitted to the rounds' renders
        (:func:`~styleforge.taste.ideal.fit_metric`); the unit space itself before any."""
        measured = self._measured()
        metric = fit_metric(*zip(*measured, strict=True)) if measured else None
        if metric is None:
            metric = np.eye(len(AXES))
            vectors = [np.array([self._unit(c) for c in r.shown]) for r in self.rounds[:1]]
            dists = [metric_distance(v, v, metric) for v in vectors]
        else:
            dists = [d for _, d in measured]
        off = [d[np.triu_indices(len(d), 1)] for d in dists]
        values = np.concatenate(off) if off else np.zeros(0)
        scale = float(np.median(values)) if len(values) and np.median(values) > 0 else 0.5
        return metric, scale

    def weights(self) -> np.ndarray | None:
        """Each control's weight in the picture (d,), mean 1 (the metric's diagonal), from
        the rounds' renders; ``None`` before any were measured."""
        if not self._measured():
            return None
        diag = np.diag(self.metric()[0])
        return diag / diag.mean()

    def model(self) -> PreferenceModel:
        """The Gaussian-process preference model fitted to every round so far (in the
        picture's metric when renders were measured)."""
        points, pairs = self.data()
        return fit_preference(points, pairs, self.config, weights=self.weights())

    # ----------------------------------------------------------------- search

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, len(self.rounds), salt])

    def _steps(self, metric: np.ndarray) -> np.ndarray:
        """(d,) each control's step in the unit space: as far as it changes the picture (a
        control that changes little takes larger steps)."""
        diag = np.diag(metric)
        return np.minimum(np.sqrt(diag.mean() / np.maximum(diag, 1e-12)), 4.0)

    def _candidates(
        self, centres: np.ndarray, metric: np.ndarray, uniform: int = 2000, around: int = 1600
    ) -> np.ndarray:
        """(k,d) candidate ideals: ``uniform`` ones over the searched range and about
        ``around`` in clouds around the (c,d) ``centres`` (the incumbent, the liked settings),
        at :attr:`radii` times each control's :meth:`_steps`."""
        rng = self._rng(1)
        d = len(AXES)
        step = self._steps(metric)
        clouds = [rng.random((uniform, d)) * self._upper()]
        per = max(5, around // (max(1, len(centres)) * len(self.radii)))
        clouds += [c + r * step * rng.standard_normal((per, d))
                   for c in centres for r in self.radii]  # fmt: skip
        return np.clip(np.concatenate(clouds), 0.0, self._upper())

    def _lattice(self, vectors: np.ndarray) -> list[Settings]:
        """(k,d) unit vectors -> distinct settings on the sketch lattice (strength in steps of
        :data:`STRENGTH_STEP`, paint size in :data:`PAINT_STEPS` steps), in first-seen order."""
        v = np.clip(np.array(vectors, dtype=np.float64), 0.0, self._upper())
        axis = AXES[_STRENGTH]
        unit = STRENGTH_STEP / (axis.high - axis.low)
        v[:, _STRENGTH] = np.round(v[:, _STRENGTH] / unit) * unit
        v[:, _PAINT] = np.minimum(np.round(v[:, _PAINT] * PAINT_STEPS) / PAINT_STEPS,
                                  self._upper()[_PAINT])  # fmt: skip
        return list(dict.fromkeys(from_vector(x) for x in v))

    def _best_liked(self) -> tuple[Settings, np.ndarray] | None:
        """The setting to recommend, with its vector (``None`` without picks): the favourite
        (first liked) of the last round with a like. Every round after the first shows the
        recommendation again, so each favourite was chosen over the one before: the
        recommendation is the best look the user liked, as they judged it. A favourite since
        disliked (or none at all) falls back to the liked setting the model ranks highest."""
        if not any(r.liked or r.disliked for r in self.rounds):
            return None
        points, controls, pairs, liked, disliked = self._table()
        index = {tuple(np.round(p, 9)): i for i, p in enumerate(points)}
        for rnd in reversed(self.rounds):
            if rnd.liked:
                i = index[tuple(np.round(self._unit(rnd.shown[rnd.liked[0]]), 9))]
                if i not in disliked:
                    return controls[i], points[i]
                break
        pool = sorted(liked - disliked) or [i for i in range(len(points)) if i not in disliked]
        if not pool:
            return None
        model = fit_preference(points, pairs, self.config, weights=self.weights())
        best = pool[int(np.argmax(model.utility[pool]))]
        return controls[best], points[best]

    def recommendation(self) -> Settings:
        """The best setting so far: the favourite of the last round, a look the user has seen
        and chose over the previous recommendation (``base`` when nothing was picked)."""
        best = self._best_liked()
        return self.base if best is None else best[0]

    def _first_round(self, n: int) -> list[np.ndarray]:
        """The base plus n − 1 space-filling points (best of 32 Latin hypercubes, maximin)."""
        rng = self._rng(0)
        d = len(AXES)
        base = self._unit(self.base)
        upper = self._upper()
        best, best_gap = None, -1.0
        for _ in range(32):
            lhs = (np.argsort(rng.random((d, n - 1)), axis=1).T + rng.random((n - 1, d))) / (n - 1)
            lhs = lhs * upper
            pts = np.vstack([base, lhs])
            gaps = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) + np.eye(n) * 9
            if gaps.min() > best_gap:
                best, best_gap = lhs, float(gaps.min())
        assert best is not None
        return [base, *best]

    def _ideal_samples(self, incumbent: np.ndarray, k: int) -> list[np.ndarray]:
        """``k`` settings (d,) where the user's ideal may lie: the most probable ideal first,
        then draws from the posterior over ideals (:mod:`~styleforge.taste.ideal`), each at
        least a quarter of the posterior's spread from the others, so the grid narrows as
        the picks agree. Closeness is the sketch's (:meth:`_sketched_samples`) when the
        front end gave one, else the picture metric fitted to the rounds' renders."""
        if self.sketch is not None:
            return self._sketched_samples(incumbent, k)
        points, _, pairs, liked, _ = self._table()
        metric, scale = self.metric()
        centres = np.vstack([incumbent[None], points[sorted(liked)]])
        cand = self._candidates(centres, metric)
        post = ideal_posterior(points, pairs, metric, cand, scale)
        root = np.linalg.cholesky(metric + 1e-12 * np.eye(len(metric)))  # ‖Δ‖_M = ‖Lᵀ Δ‖
        chosen = spread_draws(cand @ root, post, incumbent[None] @ root, k, self._rng(3), TEMPER)
        out = [cand[i] for i in chosen]
        rng = self._rng(4)
        while len(out) < k:  # (nearly) one candidate left: fill at random around it
            out.append(np.clip(out[0] + 0.02 * rng.standard_normal(len(AXES)), 0.0, self._upper()))
        return out

    def _sketched_samples(self, incumbent: np.ndarray, k: int) -> list[np.ndarray]:
        """:meth:`_ideal_samples` with closeness measured on the sketches: the candidates
        (on the lattice, :meth:`_lattice`) and every shown setting are sketched, and the
        posterior weighs each candidate by how well "the closer look wins" explains every
        pick. A second pass adds, through the few most probable candidates, a sweep of each
        control across its range and a close cloud, so one control the first candidates
        missed (say colours kept) is still found."""
        assert self.sketch is not None
        points, controls, pairs, liked, _ = self._table()
        metric, _ = self.metric()
        centres = np.vstack([incumbent[None], points[sorted(liked)]])
        shown = self.sketch(controls)  # (m,F)
        last = [self._unit(c) for c in self.rounds[-1].shown]
        rows = [int(np.argmin(((points - v) ** 2).sum(1))) for v in last]
        among = cross_distances(shown[rows], shown[rows])[np.triu_indices(len(rows), 1)]
        scale = float(np.median(among)) if len(among) and np.median(among) > 0 else 1e-3
        count = SKETCH_CANDIDATES
        cand = self._lattice(self._candidates(centres, metric, count // 4, count - count // 4))
        known = set(cand)
        cand += [c for c in controls if c not in known]
        looks = self.sketch(cand)
        post = pick_posterior(-cross_distances(looks, shown), pairs, scale)
        step, upper, rng = self._steps(metric), self._upper(), self._rng(2)
        extra = []
        for i in np.argsort(post)[::-1][:SWEEP_TOPS]:
            v = self._unit(cand[i])
            for axis in range(len(AXES)):
                sweep = np.repeat(v[None], SWEEP_STEPS, 0)
                sweep[:, axis] = np.linspace(0.0, upper[axis], SWEEP_STEPS)
                extra.append(sweep)
            extra.append(v + 0.05 * step * rng.standard_normal((12, len(AXES))))
        known = set(cand)
        more = [c for c in self._lattice(np.concatenate(extra)) if c not in known]
        if more:
            cand += more
            looks = np.vstack([looks, self.sketch(more)])
            post = pick_posterior(-cross_distances(looks, shown), pairs, scale)
        embedded = looks / np.sqrt(looks.shape[1])  # Euclidean = RMS look distance
        here = controls[int(np.argmin(((points - incumbent) ** 2).sum(1)))]
        taken = embedded[[cand.index(here)]]
        seen = set(controls)
        fresh = np.array([c not in seen for c in cand])  # nothing shown before, again
        chosen = spread_draws(embedded, post, taken, k, self._rng(3), TEMPER, allowed=fresh)
        out = [self._unit(cand[i]) for i in chosen] or [incumbent]
        while len(out) < k:  # fewer distinct looks than variants: the lattice's neighbours
            out.append(np.clip(out[0] + 0.02 * rng.standard_normal(len(AXES)), 0.0, upper))
        return out

    def propose(self, n: int = DEFAULT_VARIANTS) -> list[Settings]:
        """The next grid of ``n`` variants. Round 1: ``base`` and a space-filling design.
        Later: the current recommendation first (the user confirms it or picks better), then
        the most probable ideal and draws from the posterior over the user's ideal look
        (Thompson sampling): wide while the picks are few, close together as they agree."""
        if n < 2:
            raise UserError(f"a round needs at least 2 variants, got {n}")
        best = self._best_liked()
        if best is None:
            chosen = [from_vector(v) for v in self._first_round(n)]
            chosen[0] = self.base
        else:
            vectors = self._ideal_samples(best[1], n - 1)
            chosen = [best[0], *(from_vector(v) for v in vectors)]
        self.pending = tuple(chosen)
        return list(self.pending)

    def record(
        self,
        liked: Sequence[int],
        disliked: Sequence[int] = (),
        renders: Sequence[VariantRenders] | None = None,
    ) -> Round:
        """Store the picks (0-based indices, the favourite first) for the grid of the last
        :meth:`propose`; ``renders``: each variant's render(s) in grid order, from which the
        preference model learns how much each control changes the picture."""
        if self.pending is None:
            raise UserError("no grid to pick from: propose a round first")
        rnd = checked_round(self.pending, list(liked), list(disliked))
        if renders is not None:
            if len(renders) != len(self.pending):
                raise ValueError(f"{len(renders)} renders for a grid of {len(self.pending)}")
            looks = [look([r] if isinstance(r, np.ndarray) else list(r)) for r in renders]
            upper = look_distances(looks)[np.triu_indices(len(looks), 1)]
            rnd = replace(rnd, distances=tuple(round(float(v), 6) for v in upper))
        self.rounds.append(rnd)
        self.pending = None
        return rnd

    def advice(self) -> str | None:
        """Why the four controls may be as far as this look can go, or ``None``: the same
        setting was the favourite of the last two rounds, or the taste sits at the end of a
        control's range. The front ends then offer "more like this" (a refine that learns the
        liked results as an extra style target)."""
        picked = [r for r in self.rounds if r.liked]
        if not picked:
            return None
        taste = self.recommendation()
        if len(picked) >= 2 and all(r.shown[r.liked[0]] == taste for r in picked[-2:]):
            return "you chose the same look as your favourite twice running"
        for axis in AXES:
            value = getattr(taste, axis.name)
            if axis.name != "colors" and value in (axis.low, axis.high):
                return f"your taste is at the end of the {axis.name.replace('_', ' ')} range"
        return None

    # ----------------------------------------------------------------- records

    def to_dict(self) -> dict[str, Any]:
        """A versioned JSON-ready record of the session: format, seed, base and rounds (the
        look it recommends is the model file's taste entry, written beside it)."""
        return {
            "format": TASTE_FORMAT,
            "seed": self.seed,
            "base": self.base.to_record(),
            "rounds": [r.to_dict() for r in self.rounds],
        }

    @classmethod
    def from_dict(cls, data: Any) -> TasteSession:
        """Inverse of :meth:`to_dict` (also a v1 or v2 record, which held the recommended look
        too); a damaged record is a :class:`UserError` (one line)."""
        try:
            if not isinstance(data, Mapping):
                raise UserError("not a JSON object")
            if data.get("format") not in READABLE_FORMATS:
                raise UserError(f"format {data.get('format')!r}, expected {TASTE_FORMAT!r}")
            seed = data.get("seed")
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise UserError("'seed' must be a whole number")
            if not isinstance(data.get("rounds"), list):
                raise UserError("'rounds' must be a list")
            base = look_from_dict(data.get("base"))
            rounds = [Round.from_dict(r) for r in data["rounds"]]
            if data["format"] != TASTE_FORMAT:
                look_from_dict(data.get("recommended"))
        except UserError as err:
            raise UserError(f"damaged taste record: {err}") from None
        return cls(seed=seed, base=base, rounds=rounds)
