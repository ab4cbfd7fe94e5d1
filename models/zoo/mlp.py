"""A multilayer perceptron on a row's own standardised features (the tabular network)."""

from __future__ import annotations

import torch
from torch import nn

from models.zoo.kinds import MODEL_KINDS
from models.zoo.training import TorchModel


class MLPNet(nn.Module):
    """Dense ReLU layers of ``hidden_sizes`` units with dropout, then a logit."""

    def __init__(self, n_inputs: int, hidden_sizes: list[int], dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = n_inputs
        for size in hidden_sizes:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(dropout)]
            width = size
        self.body = nn.Sequential(*layers, nn.Linear(width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x[:, -1]).squeeze(-1)  # (batch, 1, f): the row itself


class MLPModel(TorchModel):
    kind = "mlp"
    DEFAULTS = MODEL_KINDS["mlp"].defaults

    def _network(self, n_inputs: int) -> nn.Module:
        return MLPNet(n_inputs, list(self.params["hidden_sizes"]), self.params["dropout"])
