"""Depth and pose nets by name, so a method picks them from config (``model.depth_net``,
``model.pose_net``).

Every depth net: ``net(image (B, C, H, W)) -> [inverse depth (B, 1, H/2^s, W/2^s), s = 0..num_scales-1]``;
every pose net: ``net(frames (B, 2C, H, W)) -> (B, 6)``. Keyword arguments (besides ``in_channels``):

depth 'small'   DepthNet:     enc_channels (5), dec_channels (5), num_scales, min_depth, max_depth, init_depth
depth 'dispnet' DispNet:      num_scales, min_depth, max_depth, init_depth, output ('bounded' | 'sfmlearner')
depth 'lite'    LiteDepthNet: enc_channels (5), enc_blocks (5), dec_channels (4), num_scales, min_depth,
                              max_depth, init_depth, expand, head_kernel
pose  'small'   PoseNet:      channels, output_scale, trans_scale
pose  'lite'    LitePoseNet:  channels, output_scale, trans_scale

The common depth kwargs (num_scales, min_depth, max_depth, init_depth) mean the same in all three;
channel lists are net-specific (DepthNet's 5-entry dec_channels does not fit LiteDepthNet's 4).
"""
from __future__ import annotations

import torch.nn as nn

from .depth_net import DepthNet
from .dispnet import DispNet
from .lite import LiteDepthNet, LitePoseNet
from .pose_net import PoseNet

DEPTH_NETS: dict[str, type[nn.Module]] = {"small": DepthNet, "dispnet": DispNet, "lite": LiteDepthNet}
POSE_NETS: dict[str, type[nn.Module]] = {"small": PoseNet, "lite": LitePoseNet}


def _build(table: dict[str, type[nn.Module]], what: str, name: str, in_channels: int, kw: dict) -> nn.Module:
    try:
        cls = table[name]
    except KeyError:
        raise ValueError(f"unknown {what} net {name!r}; choose one of {', '.join(table)}") from None
    try:
        return cls(in_channels, **kw)
    except TypeError as exc:   # an option the chosen net does not take: name the net
        raise ValueError(f"{what} net {name!r} ({cls.__name__}): {exc}") from exc


def build_depth_net(name: str, in_channels: int, **kw) -> nn.Module:
    """DEPTH_NETS[name](in_channels, **kw); ValueError naming the choices for an unknown name or option."""
    return _build(DEPTH_NETS, "depth", name, in_channels, kw)


def build_pose_net(name: str, in_channels: int, **kw) -> nn.Module:
    """POSE_NETS[name](in_channels, **kw); ValueError naming the choices for an unknown name or option."""
    return _build(POSE_NETS, "pose", name, in_channels, kw)
