"""Which shipped model runs: the driving one by default, the indoor one for model indoor or an
indoor camera, and a clear error for a name that is not shipped."""
from __future__ import annotations

import pytest

from vode_ros.runtime.inference import ModelLoadError, OnnxModel, default_model_dir, shipped_model_for


def test_shipped_model_folders():
    assert default_model_dir() == default_model_dir("driving")
    assert default_model_dir("indoor") == default_model_dir() / "indoor"
    with pytest.raises(ModelLoadError, match="no shipped model 'outdoor'.*driving, indoor"):
        default_model_dir("outdoor")


@pytest.mark.parametrize("model, domain, expected", [
    ("", "", "driving"), ("", "driving", "driving"), ("", "indoor", "indoor"), ("", " Indoor ", "indoor"),
    ("driving", "indoor", "driving"), ("indoor", "", "indoor")])
def test_the_domain_picks_the_model_where_none_is_named(model, domain, expected):
    assert shipped_model_for(model, domain) == expected


@pytest.mark.parametrize("name", ["driving", "indoor"])
def test_each_shipped_model_loads_and_records_its_domain(name):
    folder = default_model_dir(name)
    if not (folder / "depth.onnx").is_file():
        pytest.skip(f"no shipped {name} model in {folder}")
    for role in ("depth", "pose"):
        model = OnnxModel(folder / f"{role}.onnx", ["CPUExecutionProvider"], 1, expected_kind=role)
        assert name in model.meta.raw.get("vode.train_domain", "driving")
