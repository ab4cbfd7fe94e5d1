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

from models.zoo.kinds import MODEL_KINDS
from models.zoo.training import TorchModel


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
                nn.MaxPool2d(2, ceil_mode=True),
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
