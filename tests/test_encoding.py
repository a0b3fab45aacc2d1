from __future__ import annotations

import numpy as np
import pytest
import torch

from satikit.encoding import decode, domain_range, encode, to_domain


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("domain", ["x", "y"])
@pytest.mark.parametrize("enabled", [True, False])
def test_integer_round_trip_is_exact(dtype, domain, enabled):
    info = np.iinfo(dtype)
    values = (
        np.random.default_rng(0).integers(0, info.max, size=(5, 7, 3), endpoint=True).astype(dtype)
    )
    values.flat[:2] = [0, info.max]
    encoded = encode(values, domain, enabled=enabled)
    low, high = domain_range(domain, enabled=enabled)
    assert encoded.dtype == np.float32
    assert encoded.min() == low and encoded.max() == high
    np.testing.assert_array_equal(decode(encoded, domain, enabled=enabled, dtype=dtype), values)


def test_ranges_follow_paper():
    assert domain_range("x") == (-1.0, 0.0)
    assert domain_range("y") == (0.0, 1.0)
    assert domain_range("x", enabled=False) == domain_range("y", enabled=False) == (-1.0, 1.0)


def test_float_input_with_explicit_range_round_trips():
    values = np.linspace(-5.0, 5.0, 11, dtype=np.float32)
    encoded = encode(values, "x", in_range=(-5.0, 5.0))
    np.testing.assert_allclose(encoded, np.linspace(-1.0, 0.0, 11), atol=1e-6)
    back = decode(encoded, "x", dtype=np.float32) * 10.0 - 5.0
    np.testing.assert_allclose(back, values, atol=1e-5)


def test_float_values_outside_range_are_clipped():
    encoded = encode(np.array([-0.5, 0.5, 1.5], dtype=np.float32), "y")
    np.testing.assert_array_equal(encoded, [0.0, 0.5, 1.0])


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="in_range"):
        encode(np.zeros(3, np.int32), "x")
    with pytest.raises(ValueError, match="high > low"):
        encode(np.zeros(3), "x", in_range=(1, 1))
    with pytest.raises(ValueError, match="domain"):
        encode(np.zeros(3, np.uint8), "z")  # type: ignore[arg-type]


@pytest.mark.parametrize("domain,expected", [("y", (0.0, 0.5, 1.0)), ("x", (-1.0, -0.5, 0.0))])
def test_to_domain_maps_tanh_range_on_tensors(domain, expected):
    t = torch.tensor([-1.0, 0.0, 1.0], requires_grad=True)
    mapped = to_domain(t, domain)
    assert torch.allclose(mapped, torch.tensor(expected))
    mapped.sum().backward()  # keeps the graph
    assert torch.allclose(t.grad, torch.full((3,), 0.5))
    assert to_domain(t, domain, enabled=False) is t
