"""Where the user's ideal look lies: an ideal-point model in picture space.

The user is taken to want one look; of two variants they prefer the one that looks closer to
it. Closeness is measured as the pictures differ: a metric M on the unit control space fitted
to the renders' distances (D_ab² ≈ (a − b)ᵀ M (a − b)), so the utility of a setting x for an
ideal x* is −‖x − x*‖_M (Coombs' unfolding; Bradley–Terry picks with temperature τ). The
posterior over x* is kept on a finite set of candidate ideals, weighted by how well each
explains every pick so far; proposals sample it (Thompson sampling) and so close in on the
ideal as the picks accumulate.

Numpy only.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

__all__ = ["fit_metric", "ideal_posterior", "metric_distance", "pick_posterior", "spread_draws"]

#: Each older round's pairs count this much less in the metric: later rounds are close to the
#: ideal, and the metric is needed there (the picture is not linear in the controls).
RECENCY = 0.3
#: Temperatures of the picks, as shares of the typical distance between a round's variants:
#: the posterior averages over them (the user's consistency is not known).
TEMPERATURES = (0.1, 0.3, 1.0)


def fit_metric(vectors: Sequence[np.ndarray], distances: Sequence[np.ndarray]) -> np.ndarray | None:
    """The picture metric (d,d), symmetric positive semi-definite, from rounds of renders:
    ``vectors[i]`` (n_i,d) a round's variants in the unit control space, ``distances[i]``
    (n_i,n_i) how far apart their pictures are. Least squares on D_ab² ≈ Δᵀ M Δ over every
    pair (each older round weighted :data:`RECENCY` times less), then negative eigenvalues
    set to a small floor. ``None`` without a usable pair."""
    d = np.asarray(vectors[0]).shape[1] if vectors else 0
    iu = np.triu_indices(d)
    rows, target, weight = [], [], []
    for age, (x, dist) in enumerate(zip(vectors[::-1], distances[::-1], strict=True)):
        x = np.asarray(x, dtype=np.float64)
        for a, b in itertools.combinations(range(len(x)), 2):
            delta = x[a] - x[b]
            outer = np.outer(delta, delta)
            outer = outer + outer.T - np.diag(np.diag(outer))  # off-diagonals count twice
            rows.append(outer[iu])
            target.append(float(dist[a, b]) ** 2)
            weight.append(RECENCY**age)
    if len(rows) < len(iu[0]):
        return None
    a_mat, b_vec = np.array(rows), np.array(target)
    if not b_vec.any():
        return None
    root = np.sqrt(np.array(weight))[:, None]
    coef, *_ = np.linalg.lstsq(a_mat * root, b_vec * root[:, 0], rcond=None)
    m = np.zeros((d, d))
    m[iu] = coef
    m = m + m.T - np.diag(np.diag(m))
    vals, vecs = np.linalg.eigh(m)
    floor = 0.02 * max(float(vals.max()), 1e-12)
    return (vecs * np.maximum(vals, floor)) @ vecs.T


def metric_distance(a: np.ndarray, b: np.ndarray, metric: np.ndarray) -> np.ndarray:
    """‖a − b‖_M for (n,d) × (m,d) -> (n,m)."""
    diff = a[:, None, :] - b[None, :, :]
    return np.sqrt(np.maximum(np.einsum("nmi,ij,nmj->nm", diff, metric, diff), 0.0))


def ideal_posterior(
    points: np.ndarray,
    pairs: Sequence[tuple[int, int]],
    metric: np.ndarray,
    candidates: np.ndarray,
    scale: float,
) -> np.ndarray:
    """Posterior weights (k,) of (k,d) candidate ideals given (winner, loser) ``pairs`` of
    indices into the (m,d) shown ``points``, closeness measured in the picture metric (see
    :func:`pick_posterior`). Sums to 1."""
    return pick_posterior(-metric_distance(candidates, points, metric), pairs, scale)


def pick_posterior(
    utility: np.ndarray, pairs: Sequence[tuple[int, int]], scale: float
) -> np.ndarray:
    """Posterior weights (k,) of k candidate ideals from ``utility`` (k,m), each candidate's
    utility of each of the m shown variants (minus how far apart they look), given (winner,
    loser) ``pairs`` of indices into the shown: each candidate's likelihood of every pick
    (Bradley–Terry), averaged over :data:`TEMPERATURES` × ``scale`` (the typical distance
    between variants). Sums to 1."""
    k = utility.shape[0]
    if not pairs:
        return np.full(k, 1.0 / k)
    win = np.array([w for w, _ in pairs])
    lose = np.array([lo for _, lo in pairs])
    margin = utility[:, win] - utility[:, lose]  # (k,p)
    logs = []
    for t in TEMPERATURES:
        z = margin / (t * scale)
        logs.append(-np.logaddexp(0.0, -z).sum(axis=1))  # Σ log σ(z)
    stacked = np.stack(logs)  # (t,k)
    top = stacked.max()
    like = np.exp(stacked - top).mean(axis=0)
    return like / like.sum()


def spread_draws(
    embedded: np.ndarray,
    posterior: np.ndarray,
    taken: np.ndarray,
    k: int,
    rng: np.random.Generator,
    temper: float,
    allowed: np.ndarray | None = None,
) -> list[int]:
    """``k`` indices into (n,e) candidates ``embedded`` so that Euclidean distances there are
    picture distances: the most probable first, then draws from ``posterior`` (n,) raised to
    ``temper`` (Thompson sampling, a little wider than the posterior), each at least a quarter
    of the posterior's spread from the others and from the (t,e) ``taken`` ones (the grid
    narrows as the picks agree; the gap halves while too few are found). Only ``allowed``
    (n,) candidates are drawn (``None``: all; say, none already shown). Fewer than ``k`` only
    when fewer distinct candidates exist."""
    open_ = posterior if allowed is None else np.where(allowed, posterior, 0.0)
    if not open_.any():
        return []
    top = int(np.argmax(open_))
    spread = float(np.sqrt(posterior @ ((embedded - embedded[top]) ** 2).sum(-1)))
    chosen = [top]
    near = np.vstack([taken, embedded[top : top + 1]])
    wide = open_**temper
    draws = rng.choice(len(embedded), size=50 * k, p=wide / wide.sum())
    gap = 0.25 * spread
    while len(chosen) < k and gap > 1e-9:
        for i in draws:
            if len(chosen) == k:
                break
            if np.sqrt(((near - embedded[i]) ** 2).sum(-1)).min() > gap:
                chosen.append(int(i))
                near = np.vstack([near, embedded[i : i + 1]])
        gap /= 2  # a posterior narrower than the gap: closer draws
    return chosen
