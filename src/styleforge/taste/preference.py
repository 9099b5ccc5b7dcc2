"""The preference model: a Gaussian process on pairwise outcomes with a logistic
(Bradley–Terry) link, fitted by the Laplace approximation (Chu & Ghahramani, ICML 2005), and
expected improvement over it."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from styleforge.taste.space import AXES


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


def _kernel(
    a: np.ndarray, b: np.ndarray, cfg: PreferenceConfig, weights: np.ndarray | None = None
) -> np.ndarray:
    """RBF kernel: (n,d), (m,d) -> (n,m); ``weights`` (d,): a diagonal metric (each control's
    squared step counts by its weight; ``None``: all 1)."""
    diff2 = (a[:, None, :] - b[None, :, :]) ** 2
    d2 = (diff2 if weights is None else diff2 * weights).sum(-1)
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
    weights: np.ndarray | None = None  # (d,) the kernel's metric (see _kernel)

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the utility at (n,d) points -> (n,), (n,)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        if len(self.points) == 0:
            return np.zeros(len(x)), np.full(len(x), math.sqrt(self.config.variance))
        k_star = _kernel(x, self.points, self.config, self.weights)  # (n,m)
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
    weights: np.ndarray | None = None,
) -> PreferenceModel:
    """Fit the utility at (m,d) ``points`` to ``pairs`` (winner, loser) of indices into them;
    ``weights`` (d,): the kernel's diagonal metric (``None``: the unit control space).

    Newton's method on log p(pairs | f) − ½ fᵀK⁻¹f (Laplace approximation; Rasmussen &
    Williams §3.4, with the pairwise likelihood of Chu & Ghahramani 2005)."""
    points = np.asarray(points, dtype=np.float64).reshape(-1, len(AXES))
    m = len(points)
    k_mat = _kernel(points, points, config, weights) + config.jitter * np.eye(m)
    if not pairs:
        z = np.zeros((m, m))
        return PreferenceModel(points, np.zeros(m), np.zeros(m), z, np.eye(m), config, weights)
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
    return PreferenceModel(points, f, grad, w_mat, inv_iwk, config, weights)


def round_outcomes(
    n_shown: int, liked: Sequence[int], disliked: Sequence[int]
) -> list[tuple[int, int]]:
    """A round's (winner, loser) pairs of indices: liked > unpicked > disliked, and the liked
    in the order given (the favourite first)."""
    unpicked = [i for i in range(n_shown) if i not in liked and i not in disliked]
    pairs = [(a, b) for a in liked for b in unpicked + list(disliked)]
    pairs += [(a, b) for i, a in enumerate(liked) for b in liked[i + 1 :]]
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
