"""The nets share their encoder-decoder and output blocks (nets/blocks.py) without changing the
parameter names, which are part of the checkpoint format."""
from __future__ import annotations

import pytest
import torch

from vode_training.nets.blocks import (SkipEncoderDecoder, bounded_inv_depth, init_depth_logit, inv_depth_range,
                                       scaled_pose)
from vode_training.nets.depth_net import DepthNet
from vode_training.nets.lite import LiteDepthNet, LitePoseNet
from vode_training.nets.pose_net import PoseNet
from vode_training.nets.resflownet import ResFlowNet
from vode_training.nets.rnn_mvod_nets import RecurrentDepthNet, RecurrentPoseNet

# (class, in_channels) -> (number of state_dict entries, first, last): checkpoints load strictly by these names.
KEYS = {
    (DepthNet, 1): (48, "encoder.0.0.1.weight", "heads.3.1.bias"),
    (ResFlowNet, 6): (48, "encoder.0.0.1.weight", "heads.3.1.bias"),
    (RecurrentDepthNet, 1): (54, "encoder.0.0.1.weight", "lstms.4.gates.bias"),
    (LiteDepthNet, 1): (292, "encoder.0.0.0.weight", "heads.3.bias"),
    (PoseNet, 1): (16, "features.0.weight", "head.bias"),
    (LitePoseNet, 1): (28, "features.0.0.weight", "head.bias"),
    (RecurrentPoseNet, 2): (20, "convs.0.0.weight", "head.bias"),
}


@pytest.mark.parametrize("cls,cin", list(KEYS))
def test_parameter_names_are_the_checkpoint_format(cls, cin):
    keys = list(cls(cin).state_dict())
    assert (len(keys), keys[0], keys[-1]) == KEYS[(cls, cin)]


def test_depth_resflow_and_recurrent_nets_share_one_encoder_decoder():
    torch.manual_seed(0)
    depth, flow, rec = DepthNet(1), ResFlowNet(6), RecurrentDepthNet(1)
    for net in (depth, flow, rec):
        assert isinstance(net, SkipEncoderDecoder)
    skeleton = [k for k in depth.state_dict() if not k.startswith("heads.")]
    assert skeleton == [k for k in rec.state_dict() if not k.startswith(("heads.", "lstms."))]
    x = torch.rand(2, 1, 64, 96)                                   # (B, C, H, W), multiples of 32
    feats = depth.encode(x)
    assert [f.shape[-1] for f in feats] == [48, 24, 12, 6, 3]
    levels = depth.decode(feats)
    assert sorted(levels) == [0, 1, 2, 3] and levels[0].shape[-2:] == (64, 96)
    assert all(torch.equal(a, b) for a, b in zip(depth.inv_depths(levels), depth(x)))
    flows = flow(torch.rand(2, 6, 64, 96))
    assert [f.shape for f in flows] == [(2, 2, 64 // 2 ** s, 96 // 2 ** s) for s in range(4)]


def test_recurrent_depth_state_round_trip():
    torch.manual_seed(0)
    net = RecurrentDepthNet(1, lstm_stages=(1, 4)).eval()
    x = torch.rand(1, 1, 64, 64)
    with torch.no_grad():
        out0, state = net(x)
        out1, _ = net(x, state)
    assert [tuple(s.shape) for s in state] == net.state_shapes(64, 64)
    assert not torch.equal(out0[0], out1[0])                      # the state carries history


def test_output_helpers():
    lo, hi = inv_depth_range(0.1, 100.0)
    assert (lo, hi) == pytest.approx((0.01, 10.0))
    out = bounded_inv_depth(torch.tensor([init_depth_logit(10.0, lo, hi)]), lo, hi)
    assert 1.0 / out.item() == pytest.approx(10.0, rel=1e-4)
    v = scaled_pose(torch.ones(2, 6), 2.0, 0.5)
    assert v[:, :3].eq(2.0).all() and v[:, 3:].eq(0.5).all()
