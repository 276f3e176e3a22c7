"""--resume continues bit-exactly: 6 uninterrupted steps == 3 steps + resume + 3 steps (exact floats)."""

import pytest
import torch

from vode_training.config import load_config
from vode_training.checkpoint import load_checkpoint, method_from_checkpoint, weights_digest
from vode_training.trainer import Trainer

pytestmark = [pytest.mark.slow]


# Mid-epoch resume (10 frames -> 8 snippets -> 4 batches of 2 per epoch; 6 steps cross an epoch),
# random strides and colour jitter (data RNG), automask (torch RNG inside the loss), TensorBoard images.
RESUME = ["data.width=64", "data.height=64", "data.max_frames=10", "data.max_stride=3",
        "data.augment=true", "loss.automask=true", "train.batch_size=2", "train.log_every=1", "train.ckpt_every=100",
        "train.image_every=2", "train.num_threads=1"]


@pytest.fixture
def tiny(kitti_dir, tiny_nets) -> list[str]:
    return [f"data.path={kitti_dir}"] + RESUME + tiny_nets


@pytest.mark.needs_data
def test_resume_is_bit_exact(tmp_path, tiny):
    full = Trainer(load_config(None, tiny + ["train.steps=6"]), tmp_path / "full", progress=False).train()
    first = Trainer(load_config(None, tiny + ["train.steps=3"]), tmp_path / "split", progress=False).train()
    ckpt = load_checkpoint(tmp_path / "split" / "checkpoint.pt")          # weights_only=True load
    assert ckpt["step"] == 3 and ckpt["sampler"]["epoch"] == 0 and ckpt["sampler"]["position"] == 3
    assert len(ckpt["rng"]) == 1 and set(ckpt["rng"][0]) >= {"torch", "numpy", "python"}
    torch.manual_seed(12345)                                               # disturb the RNGs in between
    second = Trainer(load_config(None, tiny + ["train.steps=6"]), tmp_path / "split",
                     resume=tmp_path / "split" / "checkpoint.pt", progress=False).train()
    assert second["trained_steps"] == 3
    assert first["losses"] + second["losses"] == full["losses"]            # exact float equality
    assert second["weights_digest"] == full["weights_digest"]
    a = load_checkpoint(tmp_path / "full" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "split" / "checkpoint.pt")
    assert a["sampler"]["epoch"] == b["sampler"]["epoch"] == 1 and a["sampler"]["position"] == 2
    for k, v in a["optimizer"]["state"].items():
        assert torch.equal(v["exp_avg"], b["optimizer"]["state"][k]["exp_avg"])
    assert weights_digest(method_from_checkpoint(a)) == weights_digest(method_from_checkpoint(b))
    # TensorBoard got images (logged every 2 steps without touching the RNGs: the losses above agree)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    ea = EventAccumulator(str(tmp_path / "full"))
    ea.Reload()
    assert {"depth/inverse_depth", "warped/source0", "input/target"} <= set(ea.Tags()["images"])
    assert [e.step for e in ea.Images("depth/inverse_depth")] == [1, 2, 4, 6]


@pytest.mark.needs_data
def test_resume_refuses_a_different_data_order(tmp_path, tiny):
    Trainer(load_config(None, tiny + ["train.steps=1"]), tmp_path / "r", progress=False).train()
    with pytest.raises(ValueError, match="data order"):
        Trainer(load_config(None, tiny + ["train.steps=2", "train.batch_size=3"]), tmp_path / "r",
                resume=tmp_path / "r" / "checkpoint.pt", progress=False).train()


def test_sampler_matches_dataloader_and_resumes():
    from torch.utils.data import DataLoader

    from vode_training.data.sampler import ResumableBatchSampler

    n, bs = 10, 4
    dl = DataLoader(list(range(n)), batch_size=bs, shuffle=True, drop_last=True, generator=torch.Generator().manual_seed(3))
    old = [b.tolist() for _ in range(3) for b in dl]
    s = ResumableBatchSampler(n, bs, 3)
    it = iter(s)
    new = [next(it) for _ in range(len(old))]
    assert new == old
    # resume after 3 batches (epoch 1, position 1)
    s2 = ResumableBatchSampler(n, bs, 3)
    it2 = iter(s2)
    [next(it2) for _ in range(3)]
    state = s2.state(3, 0, 0)
    assert (state["epoch"], state["position"]) == (1, 1)
    s3 = ResumableBatchSampler(n, bs, 99)
    s3.load_state(state)
    it3 = iter(s3)
    assert [next(it3) for _ in range(3)] == old[3:6]
    # distributed split: ranks get disjoint shares of the same permutation
    r0, r1 = (ResumableBatchSampler(n, 2, 3, rank=r, world_size=2) for r in (0, 1))
    b0, b1 = next(iter(r0)) + next(iter(r0)), []
    i1 = iter(r1)
    b1 = next(i1) + next(i1)
    assert not set(b0) & set(b1) and r0.batches_per_epoch() == 2
