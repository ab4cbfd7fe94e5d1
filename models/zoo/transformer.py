"""A Transformer encoder over the last ``seq_len`` bars: attention can weigh any past bar
directly, where an LSTM has to carry it through every step in between."""

from __future__ import annotations

import math

import torch
from torch import nn

from models.zoo.kinds import MODEL_KINDS
from models.zoo.training import TorchModel


def sinusoidal_encoding(length: int, width: int) -> torch.Tensor:
    """The fixed (length, width) positional encoding of "Attention is all you need"."""
    position = torch.arange(length, dtype=torch.float32).unsqueeze(1)
    rate = torch.exp(torch.arange(0, width, 2, dtype=torch.float32) * (-math.log(10_000.0) / width))
    encoding = torch.zeros(length, width)
    encoding[:, 0::2] = torch.sin(position * rate)
    encoding[:, 1::2] = torch.cos(position * rate[: width // 2])
    return encoding


class TransformerNet(nn.Module):
    """Project features to ``d_model``, add positions, encode, read the newest bar's token."""

    def __init__(
        self, n_inputs: int, seq_len: int, d_model: int, heads: int, layers: int, dropout: float
    ) -> None:
        super().__init__()
        if d_model % heads:
            raise ValueError(f"transformer d_model={d_model} must be a multiple of heads={heads}")
        self.project = nn.Linear(n_inputs, d_model)
        self.register_buffer("position", sinusoidal_encoding(seq_len, d_model), persistent=False)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, dim_feedforward=2 * d_model, dropout=dropout, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.encoder(self.project(x) + self.position)
        return self.head(h[:, -1]).squeeze(-1)


class TransformerModel(TorchModel):
    kind = "transformer"
    DEFAULTS = MODEL_KINDS["transformer"].defaults

    def _network(self, n_inputs: int) -> nn.Module:
        p = self.params
        return TransformerNet(
            n_inputs, p["seq_len"], p["d_model"], p["heads"], p["layers"], p["dropout"]
        )
