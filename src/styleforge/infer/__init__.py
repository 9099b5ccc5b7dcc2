"""Inference: optimisation-based transfer (and, later, feed-forward stylizers and samplers)."""
