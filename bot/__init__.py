"""Voorgesprek: consult preparation and follow-up assistant for Dutch primary care."""

__version__ = "0.1.0"
