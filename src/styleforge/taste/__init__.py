"""Learning a person's taste from rounds of picks, for every front end (``styleforge tune``,
the web app's Tune tab).

Layer: above ``infer`` and ``train`` (it restyles variants through the restyle service and
refines through the training loop); imports only downward (``infer``, ``train``, ``images``,
``sheets``, ``errors``, ``fileio``), and nothing below imports it: a restyle reads the stored
look from the model file's header itself.

The knobs a taste is made of are the restyle layer's
:class:`~styleforge.infer.settings.Settings` (strength, paint size, colours kept, tone).

- :mod:`~styleforge.taste.space`: the search space: each knob's range (:data:`AXES`) and the
  unit vector in ``[0,1]^d`` a look maps to and from.
- :mod:`~styleforge.taste.preference`: a Gaussian-process preference model on pairwise outcomes
  with a logistic (Bradley–Terry) link, fitted by the Laplace approximation (Chu & Ghahramani,
  ICML 2005), in the spirit of Koyama et al.'s Sequential Gallery (SIGGRAPH 2020).
- :mod:`~styleforge.taste.session`: :class:`TasteSession`, the rounds so far, ``propose(n)``
  (round 1: the default plus a space-filling design; then the taste so far plus draws from
  the posterior over the user's ideal look, :mod:`~styleforge.taste.ideal`, measured on
  sketches of the judged photos, :mod:`~styleforge.taste.looks`), ``record(liked, disliked,
  renders)``, ``recommendation()`` (the last favourite: never a look the user did not like).
- :mod:`~styleforge.taste.record`: the session and its chosen look in the model file.
- :mod:`~styleforge.taste.rounds`: a round's variants restyled, its grid, the picks typed.
- :mod:`~styleforge.taste.refine`: a new model fine-tuned toward a session's picks.

A round's picks become pairwise outcomes: liked > shown-but-unpicked > disliked. This module
and the first three are torch-free (numpy only).
"""

from __future__ import annotations

from styleforge.taste.preference import (
    PreferenceConfig,
    PreferenceModel,
    fit_preference,
    round_outcomes,
)
from styleforge.taste.session import Round, TasteSession
from styleforge.taste.space import AXES, BASE, DEFAULT_VARIANTS, TASTE_FORMAT, Axis

__all__ = [
    "AXES",
    "BASE",
    "DEFAULT_VARIANTS",
    "TASTE_FORMAT",
    "Axis",
    "PreferenceConfig",
    "PreferenceModel",
    "Round",
    "TasteSession",
    "fit_preference",
    "round_outcomes",
]
