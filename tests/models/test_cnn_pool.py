"""The CNN's channels-last max-pool is torch's default max-pool bit for bit, forward and backward,
so networks saved before it predict and train exactly as they did."""

import pytest
import torch
from torch import nn

from models.zoo.cnn import ChannelsLastMaxPool


@pytest.mark.parametrize("shape", [(50, 8, 30, 20), (1, 16, 15, 10), (7, 3, 5, 4)])
def test_pooling_and_its_gradient_equal_the_default_kernel(shape) -> None:
    torch.manual_seed(0)
    # ReLU outputs: ties at zero are where two kernels could pick different maxima.
    x = torch.relu(torch.randn(shape)).requires_grad_(True)
    x_ref = x.detach().clone().requires_grad_(True)
    out, ref = ChannelsLastMaxPool()(x), nn.MaxPool2d(2, ceil_mode=True)(x_ref)
    assert out.is_contiguous() and out.shape == ref.shape
    assert torch.equal(out, ref)
    weights = torch.randn(ref.shape)
    (out * weights).sum().backward()
    (ref * weights).sum().backward()
    assert torch.equal(x.grad, x_ref.grad)
