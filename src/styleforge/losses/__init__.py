"""Style, content, smoothness and adversarial losses (functional and ``nn.Module`` forms).

Layer: above the bottom modules, beside ``features`` (neither imports the other); imports
nothing of styleforge (torch only). ``nets``, ``infer``, ``metrics`` and ``train`` build on it."""

from styleforge.losses import functional
from styleforge.losses.functional import *  # noqa: F403 (its __all__, this package's too)
from styleforge.losses.modules import ContentLoss, StyleLoss, TotalVariation

__all__ = [*functional.__all__, "ContentLoss", "StyleLoss", "TotalVariation"]
