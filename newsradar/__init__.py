"""newsradar: the shared core (event model, bus, store, settings, daemon, CLI)."""

__version__ = "0.1.0"
