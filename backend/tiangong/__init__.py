"""Tiangong: a local AI sidebar service."""

__version__ = "0.1.0"
