"""A taste session: the rounds so far, the next proposals and the recommendation."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from styleforge.errors import UserError
from styleforge.taste.controls import AXES, DEFAULT_VARIANTS, TASTE_FORMAT, Controls
from styleforge.taste.preference import (
    PreferenceConfig,
    PreferenceModel,
    expected_improvement,
    fit_preference,
    round_outcomes,
)


@dataclass(frozen=True)
class Round:
    """One round: the variants shown (in grid order) and the 0-based indices picked."""

    shown: tuple[Controls, ...]
    liked: tuple[int, ...]
    disliked: tuple[int, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "shown": [c.to_dict() for c in self.shown],
            "liked": list(self.liked),
            "disliked": list(self.disliked),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Round:
        """Inverse of :meth:`to_dict`, validated (a :class:`UserError` otherwise)."""
        if not isinstance(data, Mapping) or set(data) != {"shown", "liked", "disliked"}:
            raise UserError("a round needs exactly 'shown', 'liked' and 'disliked'")
        if not isinstance(data["shown"], list):
            raise UserError("'shown' must be a list of controls")
        shown = tuple(Controls.from_dict(c) for c in data["shown"])
        liked, disliked = (_indices(data[k], k) for k in ("liked", "disliked"))
        return checked_round(shown, liked, disliked)


def _indices(value: Any, name: str) -> tuple[int, ...]:
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) for i in value
    ):
        raise UserError(f"'{name}' must be a list of whole numbers")
    return tuple(value)


def checked_round(
    shown: Sequence[Controls], liked: Sequence[int], disliked: Sequence[int]
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


@dataclass
class TasteSession:
    """Rounds of picks and the search over :class:`Controls` they drive.

    ``propose(n)`` gives the next grid (deterministic for a seed and the rounds so far), then
    ``record(liked, disliked)`` stores the picks (0-based indices into that grid).
    ``recommendation()`` is the best setting found; without picks it is ``base``.
    """

    seed: int = 0
    base: Controls = field(default_factory=Controls)
    rounds: list[Round] = field(default_factory=list)
    config: PreferenceConfig = field(default_factory=PreferenceConfig)
    pending: tuple[Controls, ...] | None = None
    #: Local search radii (unit space) around the incumbent and the liked points.
    radii: tuple[float, ...] = (0.04, 0.08, 0.16, 0.3)

    # ----------------------------------------------------------------- data

    def data(self) -> tuple[np.ndarray, list[tuple[int, int]]]:
        """Distinct shown vectors (m,d) and all rounds' (winner, loser) pairs into them."""
        keys: dict[tuple[float, ...], int] = {}
        pairs: list[tuple[int, int]] = []
        for rnd in self.rounds:
            index = []
            for c in rnd.shown:
                key = tuple(np.round(c.to_vector(), 9))
                index.append(keys.setdefault(key, len(keys)))
            for a, b in round_outcomes(len(rnd.shown), rnd.liked, rnd.disliked):
                if index[a] != index[b]:
                    pairs.append((index[a], index[b]))
        points = np.array(list(keys), dtype=np.float64).reshape(-1, len(AXES))
        return points, pairs

    def model(self) -> PreferenceModel:
        """The preference model fitted to every round so far."""
        points, pairs = self.data()
        return fit_preference(points, pairs, self.config)

    # ----------------------------------------------------------------- search

    def _rng(self, salt: int) -> np.random.Generator:
        return np.random.default_rng([self.seed, len(self.rounds), salt])

    def _candidates(self, model: PreferenceModel, centre: np.ndarray) -> np.ndarray:
        """(k,d) candidate vectors: clouds around the incumbent and the best shown points, and
        uniform ones for exploration."""
        rng = self._rng(1)
        d = len(AXES)
        top = model.points[np.argsort(-model.utility)[:4]]
        clouds = [centre + r * rng.standard_normal((200, d)) for r in self.radii]
        clouds += [p + r * rng.standard_normal((40, d)) for p in top for r in self.radii]
        clouds.append(rng.random((400, d)))
        return np.clip(np.concatenate(clouds), 0.0, 1.0)

    def _incumbent(self, model: PreferenceModel) -> np.ndarray:
        """The vector of highest posterior mean among the shown points and candidates near
        them (d,); the base setting without picks."""
        if not any(r.liked or r.disliked for r in self.rounds) or len(model.points) == 0:
            return self.base.to_vector()
        best = model.points[int(np.argmax(model.utility))]
        rng = self._rng(2)
        d = len(AXES)
        near = [best + r * rng.standard_normal((300, d)) for r in self.radii[:2]]
        cand = np.clip(np.concatenate([model.points, *near]), 0.0, 1.0)
        mean, std = model.predict(cand)
        # a lower confidence bound: no credit for wandering away from what was seen
        return cand[int(np.argmax(mean - 0.5 * std))]

    def recommendation(self) -> Controls:
        """The best setting so far (``base`` when nothing was picked)."""
        return Controls.from_vector(self._incumbent(self.model()))

    def _first_round(self, n: int) -> list[np.ndarray]:
        """The base plus n − 1 space-filling points (best of 32 Latin hypercubes, maximin)."""
        rng = self._rng(0)
        d = len(AXES)
        base = self.base.to_vector()
        best, best_gap = None, -1.0
        for _ in range(32):
            lhs = (np.argsort(rng.random((d, n - 1)), axis=1).T + rng.random((n - 1, d))) / (n - 1)
            pts = np.vstack([base, lhs])
            gaps = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)) + np.eye(n) * 9
            if gaps.min() > best_gap:
                best, best_gap = lhs, float(gaps.min())
        assert best is not None
        return [base, *best]

    def propose(self, n: int = DEFAULT_VARIANTS) -> list[Controls]:
        """The next grid of ``n`` variants; the first is the current best (round 1: ``base``).

        Later rounds: the rest by expected improvement over the incumbent, greedily, each pick
        damping the EI near itself so the grid spreads (local penalisation); one slot goes to
        the most uncertain candidate near the incumbent (exploration)."""
        if n < 2:
            raise UserError(f"a round needs at least 2 variants, got {n}")
        model = self.model()
        if not any(r.liked or r.disliked for r in self.rounds):
            chosen = self._first_round(n)
        else:
            centre = self._incumbent(model)
            cand = self._candidates(model, centre)
            mean, std = model.predict(cand)
            best = float(model.predict(centre[None])[0][0])
            score = expected_improvement(mean, std, best)
            chosen = [centre]
            explore = n >= 4
            for slot in range(n - 1):
                penalty = np.ones(len(cand))
                for c in chosen:
                    dist2 = ((cand - c) ** 2).sum(-1)
                    penalty *= 1.0 - np.exp(-0.5 * dist2 / (0.5 * self.config.lengthscale) ** 2)
                if explore and slot == n - 2:  # the last slot: the most uncertain nearby
                    near = np.sqrt(((cand - centre) ** 2).sum(-1)) < 2 * self.config.lengthscale
                    pick = int(np.argmax(std * penalty * near))
                else:
                    pick = int(np.argmax(score * penalty))
                chosen.append(cand[pick])
        self.pending = tuple(Controls.from_vector(v) for v in chosen)
        return list(self.pending)

    def record(self, liked: Sequence[int], disliked: Sequence[int] = ()) -> Round:
        """Store the picks (0-based indices) for the grid of the last :meth:`propose`."""
        if self.pending is None:
            raise UserError("no grid to pick from: propose a round first")
        rnd = checked_round(self.pending, list(liked), list(disliked))
        self.rounds.append(rnd)
        self.pending = None
        return rnd

    # ----------------------------------------------------------------- records

    def to_dict(self) -> dict[str, Any]:
        """A versioned JSON-ready record: format, seed, base, rounds and the recommendation."""
        return {
            "format": TASTE_FORMAT,
            "seed": self.seed,
            "base": self.base.to_dict(),
            "rounds": [r.to_dict() for r in self.rounds],
            "recommended": self.recommendation().to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Any) -> TasteSession:
        """Inverse of :meth:`to_dict`; a damaged record is a :class:`UserError` (one line)."""
        try:
            if not isinstance(data, Mapping):
                raise UserError("not a JSON object")
            if data.get("format") != TASTE_FORMAT:
                raise UserError(f"format {data.get('format')!r}, expected {TASTE_FORMAT!r}")
            seed = data.get("seed")
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise UserError("'seed' must be a whole number")
            if not isinstance(data.get("rounds"), list):
                raise UserError("'rounds' must be a list")
            base = Controls.from_dict(data.get("base"))
            rounds = [Round.from_dict(r) for r in data["rounds"]]
            Controls.from_dict(data.get("recommended"))
        except UserError as err:
            raise UserError(f"damaged taste record: {err}") from None
        return cls(seed=seed, base=base, rounds=rounds)


def stored_recommendation(data: Any) -> Controls:
    """The recommendation a taste record holds (validated; no refit, so it is what was
    written whatever the BLAS): a damaged record is a :class:`UserError`."""
    TasteSession.from_dict(data)
    return Controls.from_dict(data["recommended"])
