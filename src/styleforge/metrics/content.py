"""How much of the photo survives in the result: VGG content error and luminance SSIM.

Images are float RGB (N, 3, H, W) in [0, 1]. Both metrics compare images of the same size;
use :func:`match_size` to bring the photo to the result's size first.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from styleforge.errors import UserError
from styleforge.images import check_nchw, resize_tensor, rgb_to_yiq

__all__ = ["SSIM_SIGMA", "SSIM_WINDOW", "content_error", "match_size", "ssim"]

SSIM_WINDOW = 11
"""Side of the Gaussian SSIM window (pixels): scikit-image's for σ = 1.5 (truncated at 3.5 σ)."""
SSIM_SIGMA = 1.5
"""Standard deviation of the Gaussian SSIM window (pixels)."""


def match_size(image: Tensor, reference: Tensor) -> Tensor:
    """Resize ``image`` (N, 3, H, W) to the (H_r, W_r) of ``reference`` (·, ·, H_r, W_r).

    Resized like every image (``images.resize_tensor``: Lanczos, clamped to [0, 1]); the aspect
    ratio follows the reference. An image already of that size is returned clamped, pixels
    unchanged.
    """
    check_nchw(image, "image")
    return resize_tensor(image, int(reference.shape[-2]), int(reference.shape[-1]))


def content_error(result_feat: Tensor, photo_feat: Tensor) -> float:
    """Relative content error ‖F_r − F_p‖_F / ‖F_p‖_F of two equal-shape feature maps.

    ``result_feat`` and ``photo_feat`` are the content-layer (relu4_2) features, shape
    (1, C, H, W), of the result and of the photo resized to the result's size (see
    :func:`match_size` and ``FeatureBank.content_pair``). 0 means identical features. A photo
    with all-zero features gives 0 for an all-zero result and inf otherwise.
    """
    if result_feat.shape != photo_feat.shape:
        raise ValueError(
            f"content features differ in shape: {tuple(result_feat.shape)} vs "
            f"{tuple(photo_feat.shape)}; resize the photo to the result's size first"
        )
    r = result_feat.detach().double()
    p = photo_feat.detach().double()
    diff = torch.linalg.vector_norm(r - p).item()
    ref = torch.linalg.vector_norm(p).item()
    if ref == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / ref


def ssim(a: Tensor, b: Tensor) -> float:
    """Structural similarity of two images on luminance (Y of YIQ), mean over the SSIM map.

    ``a`` and ``b``: (N, 3, H, W) RGB in [0, 1] of the same shape, H and W at least 11.
    ``skimage.metrics.structural_similarity`` per image on Y (float64) with a Gaussian window
    (σ = 1.5, so 11×11), C1 = 0.01², C2 = 0.03², population (co)variances, the map averaged where
    the window fits inside the image; the mean over the N images. 1 means identical luminance.
    """
    from skimage.metrics import structural_similarity  # scikit-image: imported when used

    check_nchw(a, "a")
    check_nchw(b, "b")
    if a.shape != b.shape:
        raise ValueError(
            f"SSIM needs images of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    if min(a.shape[-2], a.shape[-1]) < SSIM_WINDOW:
        raise UserError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, "
            f"got {a.shape[-1]}x{a.shape[-2]}"
        )
    x = rgb_to_yiq(a.detach().double())[:, 0].cpu().numpy()  # (N, H, W) luminance
    y = rgb_to_yiq(b.detach().double())[:, 0].cpu().numpy()
    scores = [
        structural_similarity(
            xi,
            yi,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            data_range=1.0,
        )
        for xi, yi in zip(x, y, strict=True)
    ]
    return float(np.mean(scores))
