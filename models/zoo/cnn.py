"""A 2-D CNN reading the last ``seq_len`` bars x ``features`` as an image.

The brief's network is Conv2D(32) -> Conv2D(64) -> Dense(50) -> Dense(1) over a 30-bar x
20-feature window; each convolution (3x3, same padding, ReLU) is followed by a 2x2 max-pool
so the dense layer stays small. Which 20 features form the image is the ``features`` param
(default ``models.zoo.kinds.CNN_FEATURES``; [] takes every panel feature): a convolution
assumes neighbouring columns are related, so the list groups returns, volatility, trend and
volume. The L2 penalty is the optimizer's ``weight_decay``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from models.zoo.kinds import MODEL_KINDS
from models.zoo.training import TorchModel


class ChannelsLastMaxPool(nn.Module):
    """``nn.MaxPool2d(2, ceil_mode=True)`` computed in the channels-last layout, then back.

    Torch's CPU max-pool kernel for the default layout is about 4x slower at these sizes (1.1
    vs 0.28 ms for the first pool of a 50-window bar close: more than the two convolutions
    together). A maximum involves no rounding, so output and gradients are the same bits
    (tested); returning to the default layout keeps the next convolution's arithmetic as it was.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.max_pool2d(x.contiguous(memory_format=torch.channels_last), 2, ceil_mode=True)
        return pooled.contiguous()


def _pooled(size: int) -> int:
    return -(-size // 2)  # a ceil-mode 2x2 pool


class CNNNet(nn.Module):
    def __init__(
        self, n_inputs: int, seq_len: int, channels: list[int], dense: int, dropout: float
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        height, width, depth = seq_len, n_inputs, 1
        for out in channels:
            layers += [
                nn.Conv2d(depth, out, kernel_size=3, padding=1),
                nn.ReLU(),
                ChannelsLastMaxPool(),
            ]
            height, width, depth = _pooled(height), _pooled(width), out
        self.body = nn.Sequential(
            *layers,
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(depth * height * width, dense),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(dense, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.unsqueeze(1)).squeeze(-1)  # (batch, 1 channel, bars, features)


class CNNModel(TorchModel):
    kind = "cnn"
    DEFAULTS = MODEL_KINDS["cnn"].defaults

    def _input_features(self, feature_names: Sequence[str]) -> tuple[str, ...]:
        return tuple(self.params["features"]) or tuple(feature_names)

    def _network(self, n_inputs: int) -> nn.Module:
        p = self.params
        return CNNNet(n_inputs, p["seq_len"], list(p["channels"]), p["dense"], p["dropout"])
