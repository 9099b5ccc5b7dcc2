"""Training loops, checkpoints and their helpers."""
