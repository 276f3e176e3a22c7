"""Convolutional LSTM cell (Shi et al., NIPS 2015) with an explicit (h, c) state.

    cell = ConvLSTMCell(in_channels=32, hidden_channels=32)
    h, c = cell.zero_state(x)                 # (B, hidden, H, W) zeros, like x's batch and size
    h, c = cell(x, (h, c))                    # one time step

One 3x3 convolution of [x, h] gives the four gates (input i, forget f, output o, candidate g):
c' = sigmoid(f) * c + sigmoid(i) * tanh(g), h' = sigmoid(o) * tanh(c'). The state is a plain pair
of tensors in and out (no hidden attribute on the module), so the same cell trains on unrolled
subsets and exports to ONNX with the state as graph inputs / outputs. The forget-gate bias starts
at 1 (Jozefowicz et al. 2015) so that early in training the cell keeps its memory.
"""
from __future__ import annotations

import torch
import torch.nn as nn

State = tuple[torch.Tensor, torch.Tensor]


class ConvLSTMCell(nn.Module):
    def __init__(self, in_channels: int, hidden_channels: int, kernel_size: int = 3, forget_bias: float = 1.0):
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.in_channels, self.hidden_channels = int(in_channels), int(hidden_channels)
        self.gates = nn.Conv2d(in_channels + hidden_channels, 4 * hidden_channels, kernel_size,
                               padding=kernel_size // 2)
        with torch.no_grad():
            self.gates.bias.zero_()
            self.gates.bias[hidden_channels:2 * hidden_channels].fill_(forget_bias)   # gate order i, f, o, g

    def zero_state(self, x: torch.Tensor) -> State:
        """Zero (h, c), each (B, hidden, H, W) for an input x (B, in, H, W)."""
        b, _, h, w = x.shape
        z = x.new_zeros(b, self.hidden_channels, h, w)
        return z, z

    def forward(self, x: torch.Tensor, state: State | None = None) -> State:
        """x (B, in, H, W), state (h, c) or None (zeros) -> new (h, c)."""
        h, c = self.zero_state(x) if state is None else state
        i, f, o, g = torch.chunk(self.gates(torch.cat([x, h], dim=1)), 4, dim=1)
        c_new = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h_new = torch.sigmoid(o) * torch.tanh(c_new)
        return h_new, c_new
