"""Stacked LSTMs over the last ``seq_len`` bars, for signals that live in the path.

Tree models see one row; this network sees ``panel.X[i - seq_len + 1 : i + 1]`` for row ``i``,
so it can use patterns such as "a shock k bars ago". Layers may narrow (the brief's 128/64/32),
so each is its own ``nn.LSTM`` rather than one ``num_layers`` module.
"""

from __future__ import annotations

from itertools import pairwise

import torch
from torch import nn

from models.zoo.kinds import MODEL_KINDS
from models.zoo.training import TorchModel


class LSTMNet(nn.Module):
    """LSTM layers of ``hidden_sizes`` units; the last layer's final output feeds a logit."""

    def __init__(self, n_inputs: int, hidden_sizes: list[int], dropout: float) -> None:
        super().__init__()
        widths = [n_inputs, *hidden_sizes]
        self.layers = nn.ModuleList(
            nn.LSTM(w_in, w_out, batch_first=True) for w_in, w_out in pairwise(widths)
        )
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(widths[-1], 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, _ = layer(x)
            x = self.dropout(x)
        return self.head(x[:, -1]).squeeze(-1)


class LSTMModel(TorchModel):
    kind = "lstm"
    DEFAULTS = MODEL_KINDS["lstm"].defaults

    def _network(self, n_inputs: int) -> nn.Module:
        return LSTMNet(n_inputs, list(self.params["hidden_sizes"]), self.params["dropout"])
