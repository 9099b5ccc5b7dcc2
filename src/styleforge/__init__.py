"""styleforge: learn your own visual style from pictures you like, and apply it."""

__version__ = "0.1.0"

__all__ = ["__version__"]
