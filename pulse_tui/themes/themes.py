"""The desk's themes: Theme objects registered by the App at start-up.

Widgets use theme variables ($primary, $success, ...) only, so every screen
follows the chosen theme. ``kiosk`` is high contrast for warehouse terminals
reached over SSH (pure black/white, saturated status colours).
"""

from __future__ import annotations

from textual.theme import Theme

DEFAULT_THEME = "pulse-dark"

PULSE_DARK = Theme(
    name="pulse-dark",
    primary="#4C9AFF",
    secondary="#B48EF0",
    accent="#F5A524",
    warning="#F2C94C",
    error="#F25F5C",
    success="#4CC38A",
    foreground="#E3E7EE",
    background="#12161C",
    surface="#1A1F27",
    panel="#232A35",
    dark=True,
)

PULSE_LIGHT = Theme(
    name="pulse-light",
    primary="#1F5FBF",
    secondary="#7048B8",
    accent="#B25E00",
    warning="#9A6B00",
    error="#C0262D",
    success="#17804A",
    foreground="#1B1F24",
    background="#F7F8FA",
    surface="#FFFFFF",
    panel="#E6EAF0",
    dark=False,
)

KIOSK = Theme(
    name="kiosk",
    primary="#00FFFF",
    secondary="#FF00FF",
    accent="#FFFF00",
    warning="#FFFF00",
    error="#FF3030",
    success="#00FF00",
    foreground="#FFFFFF",
    background="#000000",
    surface="#000000",
    panel="#202020",
    boost="#FFFFFF",
    dark=True,
    luminosity_spread=0.0,
    text_alpha=1.0,
    variables={
        "footer-key-foreground": "#FFFF00",
        "block-cursor-background": "#FFFF00",
        "block-cursor-foreground": "#000000",
        "block-cursor-text-style": "bold",
        "input-cursor-background": "#FFFFFF",
    },
)

THEMES: dict[str, Theme] = {t.name: t for t in (PULSE_DARK, PULSE_LIGHT, KIOSK)}
