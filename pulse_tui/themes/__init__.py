"""Themes and style sheets for the desk."""

from .themes import DEFAULT_THEME, THEMES

__all__ = ["DEFAULT_THEME", "THEMES"]
