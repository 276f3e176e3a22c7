"""A few real training steps on the KITTI clip; checkpoints; config validation; NaN guard."""
import math
from pathlib import Path

import pytest
import torch

from vode_training.config import ConfigError, load_config, parse_overrides
from vode_training.checkpoint import load_checkpoint, method_from_checkpoint
from vode_training.trainer import NonFiniteLossError, Trainer

pytestmark = [pytest.mark.slow]


@pytest.fixture
def tiny(tiny_train) -> list[str]:
    """Three steps with a checkpoint at step 2 (the reload checks), two threads."""
    return tiny_train + ["train.steps=3", "train.ckpt_every=2", "train.num_threads=2"]


@pytest.mark.needs_data
def test_three_steps_write_a_reloadable_checkpoint(tmp_path, tiny):
    cfg = load_config(None, tiny)
    summary = Trainer(cfg, tmp_path / "run", progress=False).train()
    assert math.isfinite(summary["final_loss"]) and summary["final_loss"] > 0
    ckpt_path = tmp_path / "run" / "checkpoint.pt"
    assert Path(summary["checkpoint"]) == ckpt_path and ckpt_path.is_file()
    assert not [p.name for p in (tmp_path / "run").iterdir() if p.name.endswith(".tmp")]   # no half-written file left
    ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=True)
    assert ckpt["step"] == 3 and ckpt["method"] == "sfmlearner"
    assert set(ckpt["models"]) == {"depth", "pose"}
    assert ckpt["optimizer"]["state"]
    assert ckpt["config"]["data"]["width"] == 128
    assert (tmp_path / "run" / "config.yaml").is_file()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    method = method_from_checkpoint(load_checkpoint(ckpt_path))
    with torch.no_grad():
        disps = method.nets["depth"](torch.zeros(1, 1, 64, 128))
    assert [d.shape[-1] for d in disps] == [128, 64, 32, 16]
    assert all(((d >= 1 / 100.0 - 1e-6) & (d <= 1 / 0.1 + 1e-6)).all() for d in disps)

    # resume continues from step 3 to 4
    cfg2 = load_config(None, tiny + ["train.steps=4"])
    summary2 = Trainer(cfg2, tmp_path / "run", resume=ckpt_path, progress=False).train()
    assert summary2["trained_steps"] == 1
    assert load_checkpoint(ckpt_path)["step"] == 4


@pytest.mark.needs_data
def test_non_finite_loss_names_step_and_term(tmp_path, tiny, monkeypatch):
    from vode_training.methods import sfmlearner

    def bad(self, out, batch):
        return torch.tensor(float("nan"))

    monkeypatch.setattr(sfmlearner.SmoothnessTerm, "compute", bad)
    cfg = load_config(None, tiny)
    with pytest.raises(NonFiniteLossError, match=r"step 0.*smoothness=nan"):
        Trainer(cfg, tmp_path / "run", progress=False).train()


@pytest.mark.needs_data
def test_mono_config_trains_without_right_images(tmp_path, tiny):
    cfg = load_config(None, tiny + ["data.stereo=false", "train.steps=1", "loss.smoothness=second_order",
                                    "loss.photometric=l1", "loss.min_reprojection=false"])
    assert math.isfinite(Trainer(cfg, tmp_path / "mono", progress=False).train()["final_loss"])


def test_shipped_config_is_valid(repo_dir):
    cfg = load_config(repo_dir / "config" / "train" / "sfmlearner.yaml")
    assert cfg["method"] == "sfmlearner" and cfg["data"]["stereo"] is True
    assert (cfg["data"]["width"], cfg["data"]["height"]) == (416, 128)


def test_config_overrides_and_errors(tmp_path):
    assert parse_overrides(["train.steps=50", "data.offsets=[-1, 1]", "train.lr=2e-4"]) == {
        "train": {"steps": 50, "lr": "2e-4"}, "data": {"offsets": [-1, 1]}}
    cfg = load_config(None, ["train.lr=2e-4", "train.steps=7"])
    assert cfg["train"]["lr"] == pytest.approx(2e-4) and cfg["train"]["steps"] == 7
    with pytest.raises(ConfigError, match=r"unknown config key 'train.stepz'.*steps"):
        load_config(None, ["train.stepz=5"])
    with pytest.raises(ConfigError, match=r"'train.steps': expected int"):
        load_config(None, ["train.steps=many"])
    with pytest.raises(ConfigError, match=r"unknown method 'nope'"):
        load_config(None, ["method=nope"])
    with pytest.raises(ConfigError, match="multiple of 32"):
        load_config(None, ["data.width=100"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_config(None, ["train.steps"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("loss:\n  smooth_wieght: 0.1\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'loss.smooth_wieght'"):
        load_config(bad)


@pytest.mark.needs_data
def test_snippets_layout_and_strides(kitti_dir):
    from vode_training.data.kitti_snippets import KittiSnippets

    torch.manual_seed(0)
    ds = KittiSnippets(kitti_dir, 128, 64, "gray", stereo=True, augment=True, max_frames=12, max_stride=3)
    assert len(ds) == 10 and ds.channels == 1
    item = ds[0]
    assert item["tgt"].shape == (1, 64, 128) and item["src"].shape == (2, 1, 64, 128)
    assert item["right"].shape == (1, 64, 128) and item["tgt_in"].shape == (1, 64, 128)
    assert 0 <= item["tgt"].min() and item["tgt"].max() <= 1
    assert item["baseline"].item() == pytest.approx(0.537, abs=1e-3)
    assert item["K"][0, 0].item() == pytest.approx(707.0912 * 128 / 1226, rel=1e-6)
    strides = set()
    for i in range(len(ds)):
        it = ds[i]
        s = int(it["stride"])
        strides.add(s)
        t = int(it["index"])
        assert 1 <= s <= min(3, t, 11 - t)
        # the car drives ~1.2 m per frame along +z: T_{t-s,t} has tz ~ +1.2 s, T_{t+s,t} ~ -1.2 s
        assert it["gt_src_tgt"][0, 2, 3].item() == pytest.approx(1.2 * s, abs=0.1)
        assert it["gt_src_tgt"][1, 2, 3].item() == pytest.approx(-1.2 * s, abs=0.1)
    assert len(strides) > 1


@pytest.mark.needs_data
def test_init_nets_takes_only_the_named_nets(tmp_path, tiny):
    """train.init_nets: [depth] keeps a trained depth net and starts a fresh pose net."""
    from vode_training.methods import build_method

    first = Trainer(load_config(None, tiny), tmp_path / "a", progress=False).train()
    trained = load_checkpoint(first["checkpoint"])["models"]
    method = build_method(load_config(None, tiny), channels=1)
    fresh_pose = {k: v.clone() for k, v in method.nets["pose"].state_dict().items()}
    Trainer._init_from(method, first["checkpoint"], ["depth"])
    assert all(torch.equal(v, trained["depth"][k]) for k, v in method.nets["depth"].state_dict().items())
    assert all(torch.equal(v, fresh_pose[k]) for k, v in method.nets["pose"].state_dict().items())
    with pytest.raises(ValueError, match="init_nets names"):
        Trainer._init_from(method, first["checkpoint"], ["flow"])


@pytest.mark.needs_data
def test_nets_only_copy_forgets_where_its_run_started(tmp_path, tiny):
    """The shipped nets-only checkpoint must not carry train.init (a path on the training machine)
    or train.init_nets (fine-tuning with --init would then load only some nets)."""
    from vode_training.checkpoint import export_nets

    first = Trainer(load_config(None, tiny), tmp_path / "a", progress=False).train()
    cfg = load_config(None, tiny + [f"train.init={first['checkpoint']}", "train.init_nets=[depth]"])
    second = Trainer(cfg, tmp_path / "b", progress=False).train()
    slim = load_checkpoint(export_nets(second["checkpoint"], tmp_path / "nets.pt"))
    assert slim["config"]["train"]["init"] == "" and slim["config"]["train"]["init_nets"] == []
    assert str(tmp_path) not in str(slim["config"])
