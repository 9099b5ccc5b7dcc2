"""Kernel Inception Distance on pooled VGG16 features (see ``metrics.features.pooled_vector``).

KID (Bińkowski et al., 2018) is the squared maximum mean discrepancy between two sets of
feature vectors under the polynomial kernel k(a, b) = (aᵀb / d + 1)³, estimated without bias
and averaged over random subsets. Here the features are the project's VGG16 pooled vectors, not
Inception's, so values are comparable only with other styleforge KIDs. 0 means the same
distribution; the unbiased estimate can be slightly negative.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from styleforge.errors import UserError

__all__ = ["kid", "polynomial_kernel"]


def polynomial_kernel(a: Tensor, b: Tensor) -> Tensor:
    """k(a, b) = (aᵀb / d + 1)³ for all pairs: a (n, d), b (m, d) -> (n, m)."""
    d = a.shape[1]
    return (a @ b.T / d + 1.0) ** 3


def _offdiag_sum(k: Tensor) -> Tensor:
    return k.sum() - k.diagonal().sum()


def _mmd2_unbiased(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> float:
    """Unbiased MMD² from kernel matrices kxx (n, n), kyy (m, m), kxy (n, m); n, m >= 2."""
    n, m = kxx.shape[0], kyy.shape[0]
    xx = _offdiag_sum(kxx) / (n * (n - 1))
    yy = _offdiag_sum(kyy) / (m * (m - 1))
    xy = kxy.sum() / (n * m)
    return float((xx + yy - 2 * xy).item())


def _jackknife_stderr(kxx: Tensor, kyy: Tensor, kxy: Tensor) -> float:
    """Two-sample delete-one jackknife standard error of the unbiased MMD² (n, m >= 3).

    Deleting x_i: the kxx off-diagonal sum loses twice row i, the kxy sum loses row i;
    likewise for y_j. se² = (n−1)/n Σ_i (θ₋ᵢ − θ̄ₓ)² + (m−1)/m Σ_j (θ₋ⱼ − θ̄ᵧ)².
    """
    n, m = kxx.shape[0], kyy.shape[0]
    sxx, syy, sxy = _offdiag_sum(kxx), _offdiag_sum(kyy), kxy.sum()
    rx = kxx.sum(dim=1) - kxx.diagonal()  # (n,) off-diagonal row sums
    ry = kyy.sum(dim=1) - kyy.diagonal()  # (m,)
    cx, cy = kxy.sum(dim=1), kxy.sum(dim=0)  # (n,), (m,)
    yy, xx = syy / (m * (m - 1)), sxx / (n * (n - 1))
    theta_x = (sxx - 2 * rx) / ((n - 1) * (n - 2)) + yy - 2 * (sxy - cx) / ((n - 1) * m)
    theta_y = xx + (syy - 2 * ry) / ((m - 1) * (m - 2)) - 2 * (sxy - cy) / (n * (m - 1))
    var = (n - 1) / n * ((theta_x - theta_x.mean()) ** 2).sum()
    var = var + (m - 1) / m * ((theta_y - theta_y.mean()) ** 2).sum()
    return math.sqrt(float(var.item()))


def kid(
    x: Tensor,
    y: Tensor,
    subset_size: int | None = None,
    n_subsets: int = 100,
    seed: int = 0,
) -> tuple[float, float]:
    """Kernel Inception Distance between feature sets x (n, d) and y (m, d): (mean, stderr).

    For each of ``n_subsets`` subsets (``subset_size`` rows of x and ``subset_size`` rows of y,
    drawn without replacement by a ``torch.Generator`` seeded with ``seed``), the unbiased MMD²
    under k(a, b) = (aᵀb/d + 1)³ is computed; ``mean`` is their average and ``stderr`` their
    standard deviation (ddof 1) / √n_subsets, i.e. the Monte-Carlo error of the subset average
    (it does not include the sampling error of the finite sets). ``subset_size`` defaults to
    min(n, m, 100).

    When ``subset_size`` equals both n and m, every subset is the full set: the MMD² is
    computed once, and ``stderr`` is instead the two-sample delete-one jackknife estimate of
    that value's standard error (NaN when n or m is 2, where the jackknife is undefined).
    With ``n_subsets == 1`` on subsets, ``stderr`` is NaN. Computed in float64.
    """
    if x.dim() != 2 or y.dim() != 2:
        raise ValueError(
            f"KID needs (n, d) feature matrices, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    n, m = x.shape[0], y.shape[0]
    if n < 2 or m < 2:
        raise UserError(f"KID needs at least 2 images in each set (got {n} and {m})")
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"feature sizes differ: {x.shape[1]} vs {y.shape[1]}")
    size = min(n, m, 100) if subset_size is None else subset_size
    if not 2 <= size <= min(n, m):
        raise UserError(f"KID subset size must be between 2 and {min(n, m)}, got {size}")
    if n_subsets < 1:
        raise UserError(f"KID needs at least one subset, got {n_subsets}")

    xd, yd = x.detach().double().cpu(), y.detach().double().cpu()
    kxx, kyy, kxy = polynomial_kernel(xd, xd), polynomial_kernel(yd, yd), polynomial_kernel(xd, yd)
    if size == n == m:
        mean = _mmd2_unbiased(kxx, kyy, kxy)
        stderr = _jackknife_stderr(kxx, kyy, kxy) if size >= 3 else math.nan
        return mean, stderr

    gen = torch.Generator().manual_seed(seed)
    values = torch.empty(n_subsets, dtype=torch.float64)
    for s in range(n_subsets):
        ix = torch.randperm(n, generator=gen)[:size]
        iy = torch.randperm(m, generator=gen)[:size]
        values[s] = _mmd2_unbiased(kxx[ix][:, ix], kyy[iy][:, iy], kxy[ix][:, iy])
    mean = float(values.mean().item())
    if n_subsets == 1:
        return mean, math.nan
    return mean, float(values.std().item()) / math.sqrt(n_subsets)
