"""Region statistics in training: a crop normalised with the statistics of a wider region."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from satikit.training.shared_statistics import region_statistics


def net(dims: int = 2) -> nn.Module:
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    norm = nn.InstanceNorm2d if dims == 2 else nn.InstanceNorm3d
    torch.manual_seed(0)
    return nn.Sequential(
        conv(2, 4, 3, padding=1),
        norm(4, affine=True),
        nn.ReLU(),
        conv(4, 2, 3, padding=1),
        norm(2),
    )


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), dims=st.sampled_from([2, 3]))
def test_the_crop_with_its_own_region_is_the_plain_forward(seed, dims):
    g = net(dims)
    x = torch.rand(2, 2, *(8,) * dims, generator=torch.Generator().manual_seed(seed))
    with region_statistics(g, g, x):
        inside = g(x)
    assert torch.allclose(inside, g(x), atol=1e-5)


def test_each_layer_uses_the_regions_statistics_and_gradients_reach_the_crop():
    g = net()
    generator = torch.Generator().manual_seed(1)
    region = torch.rand(2, 2, 24, 24, generator=generator) * 3
    crop = torch.rand(2, 2, 8, 8, generator=generator).requires_grad_()
    first, second = g[1], g[4]
    with torch.no_grad():
        h = g[0](region)
        mean1, var1 = h.mean((2, 3), keepdim=True), h.var((2, 3), unbiased=False, keepdim=True)
        h = g[3](g[2](first(h)))
        mean2, var2 = h.mean((2, 3), keepdim=True), h.var((2, 3), unbiased=False, keepdim=True)
    a = g[0](crop)
    a = (a - mean1) / torch.sqrt(var1 + first.eps)
    a = a * first.weight.view(1, -1, 1, 1) + first.bias.view(1, -1, 1, 1)
    a = g[3](g[2](a))
    expected = (a - mean2) / torch.sqrt(var2 + second.eps)
    with region_statistics(g, g, region):
        out = g(crop)
    assert torch.allclose(out, expected, atol=1e-5)
    assert not torch.allclose(out, g(crop), atol=1e-3)  # the crop's own statistics differ
    out.sum().backward()
    assert crop.grad is not None and crop.grad.abs().sum() > 0
    assert not first._forward_hooks  # the hooks are gone after the block


def test_a_call_with_other_layers_is_refused():
    g = net()
    region = torch.rand(1, 2, 16, 16)
    with pytest.raises(ValueError, match="same layers on every call"):
        with region_statistics(g, g, region):
            g[1](g[0](region[:, :, :8, :8]))  # stops after the first normalisation
