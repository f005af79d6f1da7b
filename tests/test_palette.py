"""The colours of static/css/retain.css (issue #19 §4), read from the stylesheet itself:

- the health fills (red, yellow, green, unscored) stay apart for people with deuteranopia or protanopia
  (Machado et al. 2009 simulation, via coloraide), not only for full colour vision;
- every text colour on its pill background reaches WCAG's 4.5:1 (the failing green and grey pills and the
  green figures named in the issue included);
- each health colour has its own shape, so colour is never the only cue.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from django.conf import settings

coloraide = pytest.importorskip("coloraide")
Color = coloraide.Color

CSS = (Path(settings.BASE_DIR) / "static" / "css" / "retain.css").read_text()
HEALTH = ("red", "yellow", "green", "none")
# ΔE2000 between two fills below this reads as "the same colour" at a glance on a 9-px mark.
MIN_DELTA_E = 20


def var(name: str) -> str:
    """The value a custom property gets in retain.css (its last definition wins, as in the browser)."""
    values = re.findall(rf"--{re.escape(name)}\s*:\s*(#[0-9a-fA-F]{{3,6}})\s*;", CSS)
    assert values, f"--{name} is not defined in retain.css"
    return values[-1]


def rule(selector: str) -> str:
    match = re.search(rf"(?m)^[^{{}}]*{re.escape(selector)}\b[^{{]*{{([^}}]*)}}", CSS)
    assert match, selector
    return match.group(1)


def simulate(hex_: str, kind: str) -> Color:
    return Color(hex_).filter(kind, method="machado", in_place=False).convert("srgb").fit()


@pytest.mark.parametrize("vision", ["normal", "deutan", "protan"])
def test_health_fills_stay_distinct(vision):
    fills = {c: var(f"health-{c}") for c in HEALTH}
    seen = {c: Color(v) if vision == "normal" else simulate(v, vision) for c, v in fills.items()}
    close = [
        (a, b, round(seen[a].delta_e(seen[b], method="2000"), 1))
        for a, b in itertools.combinations(HEALTH, 2)
        if seen[a].delta_e(seen[b], method="2000") < MIN_DELTA_E
    ]
    assert close == []


def test_the_old_palette_would_have_failed():
    """The check can fail: the palette the issue reported (#d64545 / #2f9e66) merges under deuteranopia."""
    red, green = simulate("#d64545", "deutan"), simulate("#2f9e66", "deutan")
    assert red.delta_e(green, method="2000") < MIN_DELTA_E


PAIRS = [
    # (text, background) as the pills and figures use them
    ("health-red-text", "health-red-soft"),
    ("health-yellow-text", "health-yellow-soft"),
    ("health-green-text", "health-green-soft"),
    ("health-none-text", "health-none-soft"),
    ("good", "good-soft"),  # green pills (commit, active, on track…) — was #15803d on #e8f6ed, 4.49:1
    ("warn", "warn-soft"),
    ("bad", "bad-soft"),
    ("muted", "surface"),
    ("muted", "bg"),
    ("health-green-text", "surface"),  # green figures on white — was #2f9e66, 3.38:1
    ("health-red-text", "surface"),
    ("health-yellow-text", "surface"),
]


@pytest.mark.parametrize(("text", "background"), PAIRS)
def test_text_contrast_reaches_aa(text, background):
    assert Color(var(text)).contrast(var(background), method="wcag21") >= 4.5


def test_grey_pills_reach_aa():
    """The neutral pill (#f1f3f6) with muted text — the "grey pills 4.47:1" of the issue."""
    body = rule(".pill-muted")
    assert "#f1f3f6" in body and "var(--muted)" in body
    assert Color(var("muted")).contrast("#f1f3f6", method="wcag21") >= 4.5


def test_each_health_colour_has_its_own_shape():
    shapes = {c: rule(f".dot-{c}") for c in ("red", "yellow", "green")}
    assert "clip-path" in shapes["red"] and "clip-path" in shapes["yellow"]
    assert shapes["red"] != shapes["yellow"]
    assert "clip-path" not in shapes["green"]  # the plain circle of .dot
    assert "border-radius: 50%" in rule(".dot")
