"""Every recipe in config/train/ loads, validates and builds its method's nets and loss terms."""
from __future__ import annotations

from pathlib import Path

import pytest

from vode_training.config import load_config
from vode_training.methods import build_method

RECIPES = sorted((Path(__file__).resolve().parents[2] / "config" / "train").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_recipe_builds(path):
    cfg = load_config(path, ["data.root=unused"])
    channels = 1 if cfg["data"]["color"] == "gray" else 3
    method = build_method(cfg, channels)
    assert method.nets and method.terms


def test_the_hints_recipe_turns_on_what_it_says():
    cfg = load_config(Path(RECIPES[0]).parent / "driving_hints.yaml", [])
    method = build_method(cfg, 1)
    assert cfg["data"]["depth_hints"] and cfg["data"]["flip"]
    assert "depth_hint" in [t.name for t in method.terms]
