"""RNN-MVOD nets (Wang, Pizer, Frahm, CVPR 2019): ConvLSTM blocks in the depth encoder and the pose net.

Both nets step through a video one frame at a time and carry their history in an explicit state,
a flat list of tensors ``[h_0, c_0, h_1, c_1, ...]`` (one (h, c) pair per ConvLSTM cell, in
network order). ``state=None`` means zeros (the start of a sequence).

RecurrentDepthNet: image (B, C, H, W) normalised, state -> ([inverse depth (B, 1, H/2^s, W/2^s)
    for s = 0..num_scales-1], new state). The DepthNet encoder-decoder of ``depth_net.py`` with a
    ConvLSTM after each encoder stage listed in ``lstm_stages`` (stage i works at H / 2^(i+1));
    the LSTM output h replaces the stage's features (also as the decoder's skip). Inverse depth
    is bounded by min/max depth through a sigmoid, as DepthNet.
RecurrentPoseNet: [image (C), depth feature (1)] stacked on channels (B, C+1, H, W), state ->
    (pose vector (B, 6), new state). Only the *current* frame and its depth go in: the motion
    since the previous frame comes from the state. Output T_previous_current as [t, euler]
    (vode_ros.core.geometry convention), global-average-pooled 1x1 head scaled by ``trans_scale`` /
    ``output_scale`` like PoseNet. Strided convs (kernels 7, 5, 3, ...) with a ConvLSTM after each
    stage in ``lstm_stages``.

``state_shapes(height, width, batch)`` lists the (h, c) shapes for an input of that size, which
the exporter writes into the ONNX metadata (``vode.state``).
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .blocks import PooledPoseHead
from .convlstm import ConvLSTMCell
from .depth_net import DepthNet


def _check_stages(stages, n: int, what: str) -> list[int]:
    stages = sorted({int(s) for s in stages})
    if not stages or stages[0] < 0 or stages[-1] >= n:
        raise ValueError(f"{what}: lstm_stages must be a non-empty subset of 0..{n - 1}, got {stages}")
    return stages


def _take(state: list[torch.Tensor] | None, k: int):
    return None if state is None else (state[2 * k], state[2 * k + 1])


class RecurrentDepthNet(DepthNet):
    def __init__(self, in_channels: int = 1, enc_channels=(16, 32, 64, 128, 192),
                 dec_channels=(16, 32, 48, 64, 96), num_scales: int = 4, min_depth: float = 0.1,
                 max_depth: float = 100.0, init_depth: float | None = None, lstm_stages=(2, 3, 4)):
        super().__init__(in_channels, enc_channels, dec_channels, num_scales, min_depth, max_depth, init_depth)
        self.lstm_stages = _check_stages(lstm_stages, len(enc_channels), "depth net")
        self.lstms = nn.ModuleDict({str(i): ConvLSTMCell(enc_channels[i], enc_channels[i]) for i in self.lstm_stages})
        self.enc_channels = list(enc_channels)

    def state_shapes(self, height: int, width: int, batch: int = 1) -> list[tuple[int, ...]]:
        out = []
        for i in self.lstm_stages:
            shape = (batch, self.enc_channels[i], height >> (i + 1), width >> (i + 1))
            out += [shape, shape]
        return out

    def forward(self, image: torch.Tensor, state: list[torch.Tensor] | None = None):
        """image (B, C, H, W) normalised, state -> ([inv_depth (B, 1, H/2^s, W/2^s)], new state)."""
        new_state: list[torch.Tensor] = []

        def lstm(i: int, x: torch.Tensor) -> torch.Tensor:
            if str(i) not in self.lstms:
                return x
            h, c = self.lstms[str(i)](x, _take(state, len(new_state) // 2))
            new_state.extend((h, c))
            return h                                  # h replaces the stage's features (and skip)

        return self.inv_depths(self.decode(self.encode(image, lstm))), new_state


class RecurrentPoseNet(PooledPoseHead, nn.Module):
    def __init__(self, in_channels: int = 2, channels=(16, 32, 64, 96, 128, 128), lstm_stages=(2, 3, 5),
                 output_scale: float = 0.01, trans_scale: float | None = None):
        super().__init__()
        self.channels = [int(c) for c in channels]
        self.lstm_stages = _check_stages(lstm_stages, len(self.channels), "pose net")
        kernels = [7, 5] + [3] * (len(self.channels) - 2)
        self.convs = nn.ModuleList()
        cin = in_channels
        for c, k in zip(self.channels, kernels):
            self.convs.append(nn.Sequential(nn.Conv2d(cin, c, k, stride=2, padding=k // 2), nn.ReLU(inplace=True)))
            cin = c
        self.lstms = nn.ModuleDict({str(i): ConvLSTMCell(self.channels[i], self.channels[i]) for i in self.lstm_stages})
        self.add_pose_head(cin, output_scale, trans_scale)

    def state_shapes(self, height: int, width: int, batch: int = 1) -> list[tuple[int, ...]]:
        out = []
        h, w = height, width
        for i, c in enumerate(self.channels):
            h, w = (h + 1) // 2, (w + 1) // 2          # stride-2 conv, padding k // 2
            if i in self.lstm_stages:
                out += [(batch, c, h, w), (batch, c, h, w)]
        return out

    def forward(self, x: torch.Tensor, state: list[torch.Tensor] | None = None):
        """x (B, C+1, H, W) = [current image, depth feature], state -> ((B, 6) T_previous_current, new state)."""
        new_state = []
        k = 0
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if str(i) in self.lstms:
                h, c = self.lstms[str(i)](x, _take(state, k))
                new_state += [h, c]
                x = h
                k += 1
        return self.pose_vector(x), new_state
