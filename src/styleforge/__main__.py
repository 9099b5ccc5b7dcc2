"""``python -m styleforge``."""

from styleforge.cli import main

raise SystemExit(main())
