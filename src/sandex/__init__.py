"""Sandex: a self-hosted exchange that speaks the Binance protocol, with API keys done right."""

__all__ = ["__version__"]

__version__ = "0.1.0"
