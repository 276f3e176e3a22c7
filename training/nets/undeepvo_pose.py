"""UnDeepVO pose estimator (Li et al., ICRA 2018): shared conv encoder, separate translation and
rotation heads.

Interface as the registry pose nets: ``net(frames (B, 2C, H, W)) -> (B, 6)`` with frames =
[target, source] stacked on channels (normalised) and output the pose vector
``[tx, ty, tz, rx, ry, rz]`` (metres, radians, R = Rz @ Ry @ Rx) of T_source_target.

Architecture: 7 stride-2 convolutions (kernels 7, 5, 3, ..., ReLU; as the paper's VGG-like pose
encoder and SfMLearner's PoseNet), global average pooling (so any input size works and ONNX
export has no size-dependent Reshape), then two fully connected heads that share nothing but
the encoder: translation FC(hidden) - ReLU - ... - FC(3) and rotation FC(hidden) - ... - FC(3)
(the paper: two groups of FC layers of 512 units). Separate heads mean no weighting between the
translation and rotation outputs is needed inside one regressor. Convolutions and hidden FC
layers use He initialisation (PyTorch's default shrinks the activations layer by layer: after 7
convs and 2 FC layers they were ~1e-2 and the translation output grew ~1 mm per Adam step); the
last layer of each head is initialised small so training starts near the identity motion, and
its output is scaled by ``trans_scale`` / ``output_scale``.
"""
from __future__ import annotations

import torch
import torch.nn as nn


def _head(cin: int, hidden: tuple[int, ...]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        fc = nn.Linear(cin, h)
        nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
        nn.init.zeros_(fc.bias)
        layers += [fc, nn.ReLU(inplace=True)]
        cin = h
    last = nn.Linear(cin, 3)
    nn.init.normal_(last.weight, std=1e-3)
    nn.init.zeros_(last.bias)
    layers.append(last)
    return nn.Sequential(*layers)


class UnDeepVOPoseNet(nn.Module):
    def __init__(self, in_channels: int = 1, channels=(16, 32, 64, 128, 256, 256, 512),
                 hidden=(512, 512), output_scale: float = 0.01, trans_scale: float | None = None):
        super().__init__()
        if not channels:
            raise ValueError("channels needs at least one entry")
        layers: list[nn.Module] = []
        cin = 2 * in_channels
        kernels = [7, 5] + [3] * max(0, len(channels) - 2)
        for c, k in zip(channels, kernels):
            conv = nn.Conv2d(cin, c, k, stride=2, padding=k // 2)
            nn.init.kaiming_normal_(conv.weight, nonlinearity="relu")
            nn.init.zeros_(conv.bias)
            layers += [conv, nn.ReLU(inplace=True)]
            cin = c
        self.features = nn.Sequential(*layers)
        self.trans_head = _head(cin, tuple(int(h) for h in hidden))
        self.rot_head = _head(cin, tuple(int(h) for h in hidden))
        self.output_scale = float(output_scale)
        self.trans_scale = float(output_scale if trans_scale is None else trans_scale)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """frames (B, 2C, H, W) = [target, source] -> (B, 6) T_source_target pose vector [t, euler]."""
        feat = self.features(frames).mean(dim=(2, 3))                 # (B, channels[-1])
        return torch.cat([self.trans_scale * self.trans_head(feat), self.output_scale * self.rot_head(feat)], dim=1)
