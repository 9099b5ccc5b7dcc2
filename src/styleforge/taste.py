"""Learning a person's taste from rounds of picks: controls, preference model, search.

Torch-free (numpy only), like :mod:`styleforge.infer.apply`, so any front end (the CLI's
``tune``, the web app) can drive it. The pieces:

- :class:`Controls`: the apply-time controls that cost nothing to change (strength, stroke scale,
  colour preservation amount, tone), mapped to and from a unit vector in ``[0,1]^d`` (:data:`AXES`)
  and to :class:`~styleforge.infer.apply.ApplyOptions`.
- :func:`fit_preference`: a Gaussian-process preference model on pairwise outcomes with a
  logistic (Bradley–Terry) link, fitted by the Laplace approximation (Chu & Ghahramani, ICML
  2005), in the spirit of Koyama et al.'s Sequential Gallery (SIGGRAPH 2020).
- :class:`TasteSession`: the rounds so far, ``propose(n)`` (round 1: the default plus a
  space-filling design; then the current best plus expected-improvement picks around it, with
  some exploration), ``record(liked, disliked)``, ``recommendation()`` and a versioned JSON dict.

A round's picks become pairwise outcomes: liked > shown-but-unpicked > disliked.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

import numpy as np

from styleforge.errors import UserError
from styleforge.infer.apply import DEFAULT_PAINT_SIZE, MAX_STRENGTH, ApplyOptions

__all__ = [
    "AXES",
    "TASTE_FORMAT",
    "Axis",
    "Controls",
    "PreferenceConfig",
    "PreferenceModel",
    "Round",
    "TasteSession",
    "fit_preference",
    "round_outcomes",
    "stored_recommendation",
]

#: The ``format`` of a taste record (:meth:`TasteSession.to_dict`).
TASTE_FORMAT = "styleforge-taste-v1"
#: Variants per round unless told otherwise.
DEFAULT_VARIANTS = 8


@dataclass(frozen=True)
class Axis:
    """One control's range; ``log``: searched on a log scale (a size)."""

    name: str
    low: float
    high: float
    log: bool = False

    def to_unit(self, value: float) -> float:
        """Value -> [0,1] (clipped)."""
        lo, hi, v = self.low, self.high, float(value)
        if self.log:
            lo, hi, v = math.log(lo), math.log(hi), math.log(max(v, 1e-12))
        return min(1.0, max(0.0, (v - lo) / (hi - lo)))

    def from_unit(self, unit: float) -> float:
        """[0,1] (clipped) -> value."""
        u = min(1.0, max(0.0, float(unit)))
        if self.log:
            return math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)


#: The searched controls, in vector order (one per field of :class:`Controls`). A new cheap
#: control (say a style-vector mix) is one more field and one more axis.
AXES: tuple[Axis, ...] = (
    Axis("strength", 0.0, MAX_STRENGTH),
    Axis("paint_size", 256.0, 1024.0, log=True),
    Axis("colors", 0.0, 1.0),
    Axis("tone", -1.0, 1.0),
)


@dataclass(frozen=True)
class Controls:
    """Apply-time controls a taste is made of; the defaults are plain ``apply``.

    Args:
        strength: 0 (the photo) .. 1 (the style) .. 2 (more paint).
        paint_size: stroke scale: the long side (px) the network paints at (256..1024).
        colors: how much of the photo's colours to keep, 0..1.
        tone: contrast curve, −1 softer .. 0 unchanged .. 1 punchier.
    """

    strength: float = 1.0
    paint_size: int = DEFAULT_PAINT_SIZE
    colors: float = 0.0
    tone: float = 0.0

    def __post_init__(self) -> None:
        for axis in AXES:
            value = getattr(self, axis.name)
            if not (isinstance(value, (int, float)) and axis.low <= value <= axis.high):
                raise UserError(
                    f"{axis.name} must be from {axis.low:g} to {axis.high:g}, got {value!r}"
                )

    def to_vector(self) -> np.ndarray:
        """float64 (d,) in [0,1], in :data:`AXES` order."""
        return np.array([axis.to_unit(getattr(self, axis.name)) for axis in AXES])

    @classmethod
    def from_vector(cls, vector: Sequence[float] | np.ndarray) -> Controls:
        """Inverse of :meth:`to_vector` (clipped to [0,1]; the paint size rounded to a px)."""
        v = np.asarray(vector, dtype=np.float64).reshape(-1)
        if v.shape != (len(AXES),):
            raise ValueError(f"expected a vector of {len(AXES)}, got shape {v.shape}")
        # rounded: readable records that reload exactly
        values = {axis.name: round(axis.from_unit(u), 4) for axis, u in zip(AXES, v, strict=True)}
        size = int(min(1024, max(256, round(values.pop("paint_size")))))
        return cls(paint_size=size, **values)

    def to_options(self, base: ApplyOptions | None = None) -> ApplyOptions:
        """These controls on top of ``base`` (tiling, max size, ...: kept)."""
        return replace(
            base or ApplyOptions(), strength=float(self.strength), paint_size=int(self.paint_size),
            preserve_colors=float(self.colors), tone=float(self.tone),
        )  # fmt: skip

    def to_dict(self) -> dict[str, float]:
        """JSON-ready ``{name: value}``."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Controls:
        """Inverse of :meth:`to_dict`; anything else is a :class:`UserError`."""
        names = {f.name for f in fields(cls)}
        if not isinstance(data, Mapping) or set(data) != names:
            raise UserError(f"expected controls {sorted(names)}, got {data!r}")
        if any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in data.values()):
            raise UserError(f"controls must be numbers, got {dict(data)!r}")
        if data["paint_size"] != int(data["paint_size"]):
            raise UserError(f"paint_size must be a whole number, got {data['paint_size']!r}")
        return cls(**{**data, "paint_size": int(data["paint_size"])})

    def describe(self) -> str:
        """``strength 1.3, paint size 640 px, colours kept 0.2, tone +0.10``."""
        return (
            f"strength {self.strength:.2f}, paint size {self.paint_size} px, "
            f"colours kept {self.colors:.2f}, tone {self.tone:+.2f}"
        )


# --------------------------------------------------------------------------- preference model


@dataclass(frozen=True)
class PreferenceConfig:
    """Hyper-parameters of the GP preference model (in the unit control space).

    Args:
        lengthscale: RBF kernel length scale.
        variance: prior variance of the utility.
        noise: scale of the logistic link: P(a > b) = σ((f(a) − f(b)) / noise).
        jitter: added to the kernel diagonal.
    """

    lengthscale: float = 0.25
    variance: float = 1.0
    noise: float = 1.0
    jitter: float = 1e-6


def _kernel(a: np.ndarray, b: np.ndarray, cfg: PreferenceConfig) -> np.ndarray:
    """RBF kernel: (n,d), (m,d) -> (n,m)."""
    d2 = ((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    return cfg.variance * np.exp(-0.5 * d2 / cfg.lengthscale**2)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@dataclass(frozen=True)
class PreferenceModel:
    """A fitted GP preference model: the Laplace posterior of the utility.

    ``points`` (m,d) are the distinct shown vectors, ``utility`` (m,) the posterior mode there.
    """

    points: np.ndarray
    utility: np.ndarray
    alpha: np.ndarray  # (m,) K⁻¹ f̂ (= the log-likelihood's gradient at the mode)
    w_matrix: np.ndarray  # (m,m) the negative Hessian of the log-likelihood at the mode
    inv_iwk: np.ndarray  # (m,m) (I + W K)⁻¹
    config: PreferenceConfig

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the utility at (n,d) points -> (n,), (n,)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if len(self.points) == 0:
            return np.zeros(len(x)), np.full(len(x), math.sqrt(self.config.variance))
        k_star = _kernel(x, self.points, self.config)  # (n,m)
        mean = k_star @ self.alpha
        # var = k** − k*ᵀ (K + W⁻¹)⁻¹ k* with (K + W⁻¹)⁻¹ = (I + W K)⁻¹ W
        reduce = np.einsum("nm,mk,kn->n", k_star, self.inv_iwk @ self.w_matrix, k_star.T)
        var = np.maximum(self.config.variance - reduce, 1e-12)
        return mean, np.sqrt(var)


def fit_preference(
    points: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    config: PreferenceConfig = PreferenceConfig(),
    iterations: int = 50,
) -> PreferenceModel:
    """Fit the utility at (m,d) ``points`` to ``pairs`` (winner, loser) of indices into them.

    Newton's method on log p(pairs | f) − ½ fᵀK⁻¹f (Laplace approximation; Rasmussen &
    Williams §3.4, with the pairwise likelihood of Chu & Ghahramani 2005)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, len(AXES))
    m = len(points)
    k_mat = _kernel(points, points, config) + config.jitter * np.eye(m)
    if not pairs:
        z = np.zeros((m, m))
        return PreferenceModel(points, np.zeros(m), np.zeros(m), z, np.eye(m), config)
    a_mat = np.zeros((len(pairs), m))
    for row, (win, lose) in enumerate(pairs):
        a_mat[row, win] += 1.0
        a_mat[row, lose] -= 1.0
    s = config.noise
    f = np.zeros(m)
    eye = np.eye(m)
    for _ in range(iterations):
        p = _sigmoid(a_mat @ f / s)
        grad = a_mat.T @ ((1.0 - p) / s)
        w_mat = a_mat.T @ (a_mat * (p * (1.0 - p) / s**2)[:, None])
        f_new = k_mat @ np.linalg.solve(eye + w_mat @ k_mat, w_mat @ f + grad)
        done = np.max(np.abs(f_new - f)) < 1e-8
        f = f_new
        if done:
            break
    p = _sigmoid(a_mat @ f / s)
    grad = a_mat.T @ ((1.0 - p) / s)
    w_mat = a_mat.T @ (a_mat * (p * (1.0 - p) / s**2)[:, None])
    inv_iwk = np.linalg.inv(eye + w_mat @ k_mat)
    return PreferenceModel(points, f, grad, w_mat, inv_iwk, config)


def round_outcomes(
    n_shown: int, liked: Sequence[int], disliked: Sequence[int]
) -> list[tuple[int, int]]:
    """A round's (winner, loser) pairs of indices: liked > unpicked > disliked."""
    unpicked = [i for i in range(n_shown) if i not in liked and i not in disliked]
    pairs = [(a, b) for a in liked for b in unpicked + list(disliked)]
    return pairs + [(a, b) for a in unpicked for b in disliked]


def _norm_pdf(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) / math.sqrt(2.0 * math.pi)


def _norm_cdf(z: np.ndarray) -> np.ndarray:
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return 0.5 * (1.0 + erf(z / math.sqrt(2.0)))


def expected_improvement(
    mean: np.ndarray, std: np.ndarray, best: float, xi: float = 0.01
) -> np.ndarray:
    """EI of (n,) posterior means and deviations over the incumbent ``best`` -> (n,)."""
    z = (mean - best - xi) / std
    return (mean - best - xi) * _norm_cdf(z) + std * _norm_pdf(z)


# --------------------------------------------------------------------------- the session


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
