"""SfMLearner's PoseExpNet (Zhou et al., CVPR 2017): pose of every source frame of a snippet plus
the explainability mask, one shared encoder, as the official TF code (``nets.pose_exp_net``) and
ClementPinard's SfmLearner-Pytorch (``PoseExpNet``).

Input: the snippet stacked on channels, target first, then the S sources in snippet order
(``data.offsets``), each normalised: (B, (1 + S) C, H, W).

- encoder: conv1..conv5, 16, 32, 64, 128, 256 channels, kernels 7, 5, 3, 3, 3, stride 2, ReLU;
- pose head: conv6, conv7 (256, 3x3, stride 2, ReLU), 1x1 conv to 6 S, global average pool,
  times ``output_scale`` (0.01; ``trans_scale`` for the translations, default the same):
  pose (B, S, 6) = [tx, ty, tz, rx, ry, rz] of T_source_target (maps target-camera points into
  source s; vode_ros.core.geometry convention, R = Rz @ Ry @ Rx);
- explainability decoder (``mask=True``): upconv5..upconv1 (ConvTranspose2d stride 2, 256, 128,
  64, 32, 16 channels, kernels 3, 3, 3, 5, 7, ReLU) from conv5; a 3x3 conv with S outputs after
  upconv4, 3, 2, 1 gives the mask logits at H/8, H/4, H/2, H. ``masks`` are returned finest first,
  each (B, S, H/2^s, W/2^s) = sigmoid(logits) in (0, 1): one per source. The TF code predicts 2
  logits per source and takes a softmax; sigmoid of one logit is the same family (Pinard).
Decoder outputs are cropped to the encoder's sizes, so any H, W work.
"""
from __future__ import annotations

import torch
import torch.nn as nn

ENC_CHANNELS = (16, 32, 64, 128, 256, 256, 256)
ENC_KERNELS = (7, 5, 3, 3, 3, 3, 3)
UP_CHANNELS = (256, 128, 64, 32, 16)
UP_KERNELS = (3, 3, 3, 5, 7)


def _conv(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride=2, padding=(k - 1) // 2), nn.ReLU(inplace=True))


def _upconv(cin: int, cout: int, k: int) -> nn.Sequential:
    # 'SAME' transposed conv of the TF code: exactly twice the input size.
    return nn.Sequential(nn.ConvTranspose2d(cin, cout, k, stride=2, padding=(k - 1) // 2, output_padding=1),
                         nn.ReLU(inplace=True))


class PoseExpNet(nn.Module):
    def __init__(self, in_channels: int = 3, num_sources: int = 2, channels=ENC_CHANNELS,
                 output_scale: float = 0.01, trans_scale: float | None = None, mask: bool = True,
                 up_channels=UP_CHANNELS):
        super().__init__()
        channels, up_channels = tuple(channels), tuple(up_channels)
        if len(channels) != 7 or len(up_channels) != 5:
            raise ValueError("PoseExpNet needs 7 encoder channels (conv1..conv7) and 5 upconv channels")
        if num_sources < 1:
            raise ValueError("num_sources must be >= 1")
        self.in_channels, self.num_sources, self.with_mask = int(in_channels), int(num_sources), bool(mask)
        self.output_scale = float(output_scale)
        self.trans_scale = float(output_scale if trans_scale is None else trans_scale)
        cin = in_channels * (1 + num_sources)
        self.encoder = nn.ModuleList()
        for c, k in zip(channels[:5], ENC_KERNELS[:5]):
            self.encoder.append(_conv(cin, c, k))
            cin = c
        enc_out = cin
        self.pose_convs = nn.Sequential(_conv(cin, channels[5], 3), _conv(channels[5], channels[6], 3))
        self.pose_pred = nn.Conv2d(channels[6], 6 * num_sources, 1)
        if self.with_mask:
            self.upconvs = nn.ModuleList()
            cin = enc_out
            for c, k in zip(up_channels, UP_KERNELS):
                self.upconvs.append(_upconv(cin, c, k))
                cin = c
            # mask heads after upconv4, upconv3, upconv2, upconv1 (up_channels[1:]), coarse -> fine
            self.mask_heads = nn.ModuleList(nn.Conv2d(c, num_sources, 3, padding=1) for c in up_channels[1:])
        for m in self.modules():                  # SfmLearner-Pytorch init_weights
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, snippet: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor] | None]:
        """snippet (B, (1+S) C, H, W) = [target, sources...] -> (pose (B, S, 6), masks finest first or None)."""
        feats = [snippet]
        x = snippet
        for conv in self.encoder:
            x = conv(x)
            feats.append(x)                       # feats[i]: H / 2^i
        pose = self.pose_pred(self.pose_convs(x)).mean(dim=(2, 3)).view(-1, self.num_sources, 6)
        pose = torch.cat([self.trans_scale * pose[..., :3], self.output_scale * pose[..., 3:]], dim=-1)
        if not self.with_mask:
            return pose, None
        masks = []
        y = x
        for j, up in enumerate(self.upconvs):     # upconv5 -> H/16, ..., upconv1 -> H
            ref = feats[4 - j]
            y = up(y)[:, :, :ref.shape[2], :ref.shape[3]]
            if j >= 1:
                masks.append(torch.sigmoid(self.mask_heads[j - 1](y)))
        return pose, masks[::-1]
