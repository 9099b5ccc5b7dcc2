"""Style, content, smoothness and adversarial losses (functional and ``nn.Module`` forms)."""

from styleforge.losses.functional import (
    GanKind,
    GanLoss,
    content_loss,
    d_bce_loss,
    d_hinge_loss,
    d_lsgan_loss,
    g_hinge_loss,
    g_lsgan_loss,
    g_minimax_loss,
    g_nonsaturating_loss,
    gram_matrix,
    layout_match,
    style_loss,
    total_variation,
    weighted_gram_targets,
)
from styleforge.losses.modules import ContentLoss, StyleLoss, TotalVariation

__all__ = [
    "ContentLoss",
    "GanKind",
    "GanLoss",
    "StyleLoss",
    "TotalVariation",
    "content_loss",
    "d_bce_loss",
    "d_hinge_loss",
    "d_lsgan_loss",
    "g_hinge_loss",
    "g_lsgan_loss",
    "g_minimax_loss",
    "g_nonsaturating_loss",
    "gram_matrix",
    "layout_match",
    "style_loss",
    "total_variation",
    "weighted_gram_targets",
]
