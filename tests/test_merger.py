from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from satikit.stitching.windows import overlap_weight
from satikit.training.sati_merge import border_cases, merge


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return -torch.rand(shape, generator=g), torch.rand(shape, generator=g)


@given(ndim=st.integers(1, 3), batch=st.integers(1, 6), data=st.data())
def test_merge_invariants(ndim, batch, data):
    spatial = tuple(data.draw(st.integers(4, 9)) for _ in range(ndim))
    overlap = data.draw(st.integers(1, min(spatial) - 1))
    x, y_hat = _pair((batch, 2, *spatial))
    z, mask, weight = merge(x, y_hat, overlap, generator=torch.Generator().manual_seed(1))
    assert z.shape == x.shape and mask.shape == weight.shape == (batch, 1, *spatial)
    m = mask.expand_as(x)
    assert torch.equal(z[m], y_hat[m]) and torch.equal(z[~m], x[~m])
    assert (weight[~mask] == 0).all() and (weight >= 0).all() and (weight <= 1).all()
    assert torch.equal(weight.flatten(1).amax(1), torch.ones(batch))
    for b in range(batch):  # every sample gets one non-empty strip subset
        assert mask[b].any() and not mask[b].all()


def test_case_frequencies_are_uniform():
    x, y_hat = _pair((3000, 1, 8, 8, 8))
    _, mask, _ = merge(x, y_hat, 2, generator=torch.Generator().manual_seed(0))
    cases = border_cases(3)
    counts = np.zeros(len(cases))
    # identify each sample's case from the mask at the three strip probes
    probes = torch.stack([mask[:, 0, 0, 7, 7], mask[:, 0, 7, 0, 7], mask[:, 0, 7, 7, 0]], 1)
    for row in probes.tolist():
        counts[cases.index(tuple(row))] += 1
    expected = 3000 / 7
    chi2 = ((counts - expected) ** 2 / expected).sum()
    assert chi2 < 22.46  # p = 0.001 for 6 degrees of freedom


def test_leading_cases_always_flag_every_strip():
    x, y_hat = _pair((5, 3, 8, 8))
    _, mask, weight = merge(x, y_hat, 3, cases="leading")
    expected = torch.tensor(overlap_weight((8, 8), (3, 3), (True, True)))
    for b in range(5):
        assert torch.equal(weight[b, 0], expected)
    assert mask[:, :, :3].all() and mask[:, :, :, :3].all() and not mask[:, :, 3:, 3:].any()


def test_without_weighting_weight_is_the_mask():
    x, y_hat = _pair((4, 3, 8, 8))
    _, mask, weight = merge(
        x, y_hat, 2, weighting=False, generator=torch.Generator().manual_seed(0)
    )
    assert torch.equal(weight, mask.float())


def test_generator_makes_it_reproducible():
    x, y_hat = _pair((16, 1, 6, 6))
    a = merge(x, y_hat, 2, generator=torch.Generator().manual_seed(5))[1]
    b = merge(x, y_hat, 2, generator=torch.Generator().manual_seed(5))[1]
    assert torch.equal(a, b)


def test_merge_keeps_gradient_to_y_hat():
    x, y_hat = _pair((2, 1, 6, 6))
    y_hat.requires_grad_(True)
    z, mask, _ = merge(x, y_hat, 2)
    z.sum().backward()
    assert torch.equal(y_hat.grad, mask.float())


@pytest.mark.parametrize(
    "args,match",
    [
        (((2, 3, 8, 8), (2, 3, 8, 7), 2), "same shape"),
        (((2, 3), (2, 3), 1), "spatial"),
        (((2, 3, 8, 8), (2, 3, 8, 8), 8), "overlap"),
        (((2, 3, 8, 8), (2, 3, 8, 8), 0), "overlap"),
    ],
)
def test_bad_input(args, match):
    xs, ys, overlap = args
    with pytest.raises(ValueError, match=match):
        merge(torch.zeros(xs), torch.zeros(ys), overlap)
