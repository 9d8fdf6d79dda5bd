"""Moviola: open, self-hosted video creation on open-weight models."""

__version__ = "0.1.0"
