"""Recording Portal's sandbox: one HTTP server emulating five telephony providers' recording APIs."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "1.0.0"
