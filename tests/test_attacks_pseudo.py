"""PseudoDifferentiable (paper 000 §3.3): forward = the real codec's output exactly, backward = identity."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robusthide import RobustHideError
from robusthide.attacks import AttackError, PseudoDifferentiable, straight_through
from robusthide.codecs import get_codec


def fixture_batch(size: int = 64) -> torch.Tensor:
    import skimage.data

    ims = []
    for name in ("astronaut", "coffee", "chelsea"):
        a = getattr(skimage.data, name)()
        h, w = a.shape[:2]
        t, left = (h - size) // 2, (w - size) // 2
        ims.append(a[t:t + size, left:left + size])
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float() / 255.0


def test_forward_equals_real_jpeg_exactly():
    x = fixture_batch()
    # a non-uint8-exact input too: the codec rounds, the layer must give the very same output
    x = torch.cat([x, torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))])
    layer = PseudoDifferentiable("jpeg:q=50")
    y = layer(x)
    ref = get_codec("jpeg:q=50")(x).images
    assert y.dtype == x.dtype and y.shape == x.shape
    assert torch.equal(y, ref)
    assert not torch.equal(y, x)
    assert len(layer.last_nbytes) == 5 and all(b > 100 for b in layer.last_nbytes)


def test_gradient_is_upstream_gradient_exactly():
    x = fixture_batch().requires_grad_(True)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    PseudoDifferentiable("jpeg:q=50")(x).backward(g)
    assert torch.equal(x.grad, g)


def test_straight_through_is_bit_exact_where_the_float_sum_is_not():
    g = torch.Generator().manual_seed(2)
    x = torch.rand(100000, generator=g) * 1e-3
    y = torch.rand(100000, generator=g)
    naive = x + (y - x).detach()
    assert not torch.equal(naive, y)  # why a custom autograd function is used
    assert torch.equal(straight_through(x, y), y)


def test_codec_instance_and_batch_sizes():
    layer = PseudoDifferentiable(get_codec("jpeg:q=30"))
    for n in (1, 3):
        x = fixture_batch(32)[:n]
        assert torch.equal(layer(x), get_codec("jpeg:q=30")(x).images)
    empty = torch.zeros(0, 3, 16, 16)
    assert layer(empty).shape == (0, 3, 16, 16)


def test_black_box_numpy_callable():
    calls = []

    def invert(arr: np.ndarray) -> np.ndarray:
        calls.append((arr.dtype, arr.shape))
        return 255 - arr

    x = fixture_batch(32).requires_grad_(True)
    layer = PseudoDifferentiable(invert)
    y = layer(x)
    assert calls == [(np.uint8, (3, 32, 32, 3))]
    expect = (255 - torch.round(x.detach() * 255)) / 255
    assert torch.equal(y, expect)
    g = torch.randn(x.shape, generator=torch.Generator().manual_seed(3))
    y.backward(g)
    assert torch.equal(x.grad, g)
    assert layer.last_nbytes == [0, 0, 0]


def test_black_box_with_sizes_and_bad_output():
    layer = PseudoDifferentiable(lambda a: (a.copy(), [7] * len(a)))
    x = fixture_batch(16)
    assert torch.equal(layer(x), torch.round(x * 255) / 255)
    assert layer.last_nbytes == [7, 7, 7]
    with pytest.raises(AttackError, match="uint8"):
        PseudoDifferentiable(lambda a: a.astype(np.float32))(x)
    with pytest.raises(AttackError, match="uint8"):
        PseudoDifferentiable(lambda a: a[:, :8])(x)
    with pytest.raises(AttackError):
        PseudoDifferentiable(42)  # type: ignore[arg-type]
    with pytest.raises(RobustHideError):
        PseudoDifferentiable("nosuchcodec:q=1")


def test_autocast_and_half_precision_inputs():
    x = fixture_batch(32)
    ref = get_codec("jpeg:q=50")(x).images
    layer = PseudoDifferentiable("jpeg:q=50")
    xb = x.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(xb)
    assert y.dtype == torch.bfloat16
    assert torch.equal(y, get_codec("jpeg:q=50")(xb.detach().float()).images.to(torch.bfloat16))
    y.float().sum().backward()
    assert torch.equal(xb.grad, torch.ones_like(xb))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(layer(x), ref)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_tensors():
    x = fixture_batch(32).cuda().requires_grad_(True)
    y = PseudoDifferentiable("jpeg:q=50")(x)
    assert y.device == x.device
    assert torch.equal(y.cpu(), get_codec("jpeg:q=50")(x.detach().cpu()).images)
    g = torch.randn_like(x)
    y.backward(g)
    assert torch.equal(x.grad, g)
