"""Learning a person's taste from rounds of picks, for every front end (``styleforge tune``,
the web app's Tune tab).

- :mod:`~styleforge.taste.controls`: :class:`Controls`, the apply-time controls that cost nothing
  to change (strength, stroke scale, colours kept, tone), mapped to and from a unit vector in
  ``[0,1]^d`` (:data:`AXES`) and to the restyle service's settings.
- :mod:`~styleforge.taste.preference`: a Gaussian-process preference model on pairwise outcomes
  with a logistic (Bradley–Terry) link, fitted by the Laplace approximation (Chu & Ghahramani,
  ICML 2005), in the spirit of Koyama et al.'s Sequential Gallery (SIGGRAPH 2020).
- :mod:`~styleforge.taste.session`: :class:`TasteSession`, the rounds so far, ``propose(n)``
  (round 1: the default plus a space-filling design; then the taste so far plus draws from
  the posterior over the user's ideal look, :mod:`~styleforge.taste.ideal`, measured on
  sketches of the judged photos, :mod:`~styleforge.taste.looks`), ``record(liked, disliked,
  renders)``, ``recommendation()`` (the last favourite: never a look the user did not like).
- :mod:`~styleforge.taste.record`: the one place a taste is stored, the model file's metadata.
- :mod:`~styleforge.taste.rounds`: a round's variants restyled, its grid, the picks typed.
- :mod:`~styleforge.taste.refine`: a new model fine-tuned toward a session's picks.

A round's picks become pairwise outcomes: liked > shown-but-unpicked > disliked. This module
and the first three are torch-free (numpy only).
"""

from __future__ import annotations

from styleforge.taste.controls import AXES, DEFAULT_VARIANTS, TASTE_FORMAT, Axis, Controls
from styleforge.taste.preference import (
    PreferenceConfig,
    PreferenceModel,
    fit_preference,
    round_outcomes,
)
from styleforge.taste.session import Round, TasteSession, stored_recommendation

__all__ = [
    "AXES",
    "DEFAULT_VARIANTS",
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
