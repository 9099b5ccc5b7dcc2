"""The styleforge version (the bottom layer: it imports nothing), recorded in every model file."""

__version__ = "0.1.0"
