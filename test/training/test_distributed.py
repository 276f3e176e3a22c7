"""torch.distributed: 2 CPU processes (gloo) train 2 steps -> identical weights on both ranks, one checkpoint."""

import pytest
import torch

from vode_training.config import load_config

pytestmark = [pytest.mark.slow]

GLOO = ["data.width=64", "data.height=64", "data.max_frames=10", "data.max_stride=3",
        "train.batch_size=2", "train.steps=2", "train.log_every=1", "train.ckpt_every=1", "train.num_threads=1",
        "train.device=cpu", "train.backend=gloo", "train.image_every=1"]


@pytest.fixture
def tiny(kitti_dir, tiny_nets) -> list[str]:
    return [f"data.path={kitti_dir}"] + GLOO + tiny_nets


@pytest.mark.needs_data
def test_two_gloo_processes_keep_identical_weights(tmp_path, tiny):
    from vode_training.checkpoint import load_checkpoint, method_from_checkpoint, weights_digest
    from vode_training.trainer import train_distributed

    cfg = load_config(None, tiny)
    out, results = tmp_path / "run", tmp_path / "results"
    results.mkdir()
    train_distributed(cfg, out, 2, progress=False, result_dir=results)
    r0, r1 = (torch.load(results / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert (r0["rank"], r1["rank"], r0["world_size"]) == (0, 1, 2)
    assert r0["trained_steps"] == r1["trained_steps"] == 2
    assert r0["weights_digest"] == r1["weights_digest"]
    assert r0["losses"] != r1["losses"]                          # each rank trained on its own share
    assert sorted(p.name for p in out.glob("*.pt*")) == ["checkpoint.pt"]
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["step"] == 2 and ckpt["world_size"] == 2 and len(ckpt["rng"]) == 2
    assert weights_digest(method_from_checkpoint(ckpt)) == r0["weights_digest"]
