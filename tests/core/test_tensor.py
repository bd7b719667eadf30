"""Tensor attributes, conversions and repr, compared with torch where it is installed."""
from __future__ import annotations

import copy

import numpy as np
import pytest

import dtorch
from tests.oracle import assert_close, check_op


# ---- shape, size, dim, numel ----------------------------------------------------------------
def test_shape_and_size_are_size_objects(device):
    x = dtorch.zeros(2, 3, 4, device=device)
    assert isinstance(x.shape, dtorch.Size) and isinstance(x.size(), dtorch.Size)
    assert isinstance(x.shape, tuple)
    assert x.shape == (2, 3, 4) and x.size() == dtorch.Size([2, 3, 4])
    assert x.size(1) == 3 and x.size(-1) == 4 and type(x.size(0)) is int
    assert x.dim() == x.ndim == x.ndimension() == 3
    assert x.numel() == x.nelement() == 24 == x.shape.numel()
    assert repr(x.shape) == "dtorch.Size([2, 3, 4])"
    assert isinstance(x.shape[1:], dtorch.Size) and x.shape[1:] == (3, 4)
    assert isinstance(x.shape + (5,), dtorch.Size)
    assert x.shape[0] == 2 and type(x.shape[0]) is int


def test_size_dim_out_of_range():
    x = dtorch.zeros(2, 3)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.size(2)
    with pytest.raises(IndexError, match="Dimension out of range"):
        x.stride(-3)


def test_scalar_tensor_metadata():
    x = dtorch.tensor(3.5)
    assert x.shape == () and x.dim() == 0 and x.numel() == 1 and x.stride() == ()
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(x)


def test_dtype_device_and_sizes(device):
    x = dtorch.ones(2, 3, dtype=dtorch.float16, device=device)
    assert x.dtype is dtorch.float16 and x.dtype == dtorch.half
    assert x.device == dtorch.device(device) and x.device.type == device
    assert x.element_size() == x.itemsize == 2 and x.nbytes == 12
    assert x.is_floating_point() and not x.is_complex()
    assert not dtorch.zeros(2, dtype=dtorch.int32).is_floating_point()
    assert dtorch.is_tensor(x) and not dtorch.is_tensor(np.zeros(2))
    assert x.is_cuda == (device == "cuda") and x.is_cpu == (device == "cpu")


def test_device_objects():
    d = dtorch.device("cuda:1")
    assert (d.type, d.index) == ("cuda", 1) and str(d) == "cuda:1"
    assert repr(d) == "device(type='cuda', index=1)"
    assert dtorch.device("cuda", 1) == d and hash(dtorch.device("cuda", 1)) == hash(d)
    assert repr(dtorch.device("cpu")) == "device(type='cpu')"
    assert dtorch.device(dtorch.device("cpu")) == dtorch.device("cpu")
    with pytest.raises(RuntimeError, match="Expected one of cpu, cuda"):
        dtorch.device("tpu")
    with pytest.raises(RuntimeError, match="Invalid device string"):
        dtorch.device("cuda:x")


# ---- strides, offsets, contiguity -----------------------------------------------------------
def test_strides_and_contiguity():
    x = dtorch.zeros(3, 4)
    assert x.stride() == (4, 1) and x.stride(0) == 4 and x.stride(-1) == 1
    assert x.is_contiguous()
    t = x.t()
    assert t.stride() == (1, 4) and not t.is_contiguous()
    c = t.contiguous()
    assert c.stride() == (3, 1) and c.is_contiguous()
    assert x.contiguous() is x  # already contiguous: the same tensor, as torch
    e = dtorch.zeros(2, 1, 3).expand(2, 4, 3)
    assert e.stride() == (3, 0, 1) and not e.is_contiguous()
    assert e.contiguous().stride() == (12, 3, 1)


def test_contiguity_ignores_size_one_dims():
    assert dtorch.zeros(3, 1).t().is_contiguous()
    x = dtorch.zeros(4, 3)
    assert x.narrow(0, 1, 2).is_contiguous()
    assert not x.narrow(1, 1, 2).is_contiguous()
    n = x.narrow(1, 1, 1)
    assert not n.is_contiguous() and n.stride() == (3, 1)
    assert x.narrow(0, 1, 1).t().is_contiguous()


def test_storage_offset():
    x = dtorch.zeros(4, 3)
    assert x.storage_offset() == 0
    assert x.select(0, 2).storage_offset() == 6
    assert x.select(1, 2).storage_offset() == 2
    assert x.t().select(0, 2).narrow(0, 1, 2).storage_offset() == 5
    assert x.narrow(0, 1, 2).t().storage_offset() == 3


def test_data_ptr():
    x = dtorch.zeros(4, 3)
    assert x.data_ptr() == x.t().data_ptr()
    assert x.select(0, 1).data_ptr() == x.data_ptr() + 3 * x.element_size()
    assert x.clone().data_ptr() != x.data_ptr()


# ---- item, tolist, Python conversions ------------------------------------------------------
def test_item_and_tolist(device):
    assert dtorch.tensor(3, device=device).item() == 3
    assert type(dtorch.tensor(3, device=device).item()) is int
    assert type(dtorch.tensor(3.5, device=device).item()) is float
    assert type(dtorch.tensor(True, device=device).item()) is bool
    assert dtorch.tensor([[2.5]], device=device).item() == 2.5
    assert dtorch.tensor([[1, 2], [3, 4]], device=device).tolist() == [[1, 2], [3, 4]]
    assert dtorch.tensor(1.5, device=device).tolist() == 1.5
    with pytest.raises(RuntimeError, match="a Tensor with 2 elements cannot be converted to Scalar"):
        dtorch.tensor([1, 2], device=device).item()


def test_python_number_protocols():
    assert int(dtorch.tensor([2.7])) == 2 and float(dtorch.tensor([2])) == 2.0
    assert [10, 20, 30][dtorch.tensor(1)] == 20
    with pytest.raises(TypeError):
        [10, 20, 30][dtorch.tensor(1.0)]
    assert f"{dtorch.tensor(2.5):.2f}" == "2.50"
    assert bool(dtorch.tensor([1.0])) and not bool(dtorch.tensor(0))
    with pytest.raises(RuntimeError, match="ambiguous"):
        bool(dtorch.tensor([1.0, 2.0]))
    assert len(dtorch.zeros(5, 2)) == 5


# ---- numpy -----------------------------------------------------------------------------------
def test_numpy_shares_memory():
    x = dtorch.zeros(2, 3)
    a = x.numpy()
    assert isinstance(a, np.ndarray) and a.dtype == np.float32
    a[0, 1] = 5.0
    assert x.tolist()[0][1] == 5.0
    x.add_(1)
    assert a[0, 0] == 1.0
    view = x.t().numpy()
    assert np.shares_memory(view, a) and view.shape == (3, 2)


def test_numpy_errors():
    x = dtorch.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="Can't call numpy\\(\\) on Tensor that requires grad"):
        x.numpy()
    a = x.detach().numpy()
    assert np.shares_memory(a, x.numpy(force=True))
    assert np.array_equal(np.asarray(x), [1.0, 1.0])


@pytest.mark.cuda
def test_numpy_of_cuda_tensor_raises(device):
    if device != "cuda":
        pytest.skip("cuda only")
    x = dtorch.ones(2, device="cuda")
    with pytest.raises(TypeError, match="can't convert cuda:0 device type tensor to numpy"):
        x.numpy()
    assert x.cpu().numpy().tolist() == [1.0, 1.0]


# ---- clone, detach, conversions ------------------------------------------------------------------
def test_clone_copies_and_records(device):
    x = dtorch.tensor([1.0, 2.0], device=device, requires_grad=True)
    c = x.clone()
    assert c.grad_fn.name() == "CloneBackward0" and c.data_ptr() != x.data_ptr()
    c.sum().backward()
    assert x.grad.tolist() == [1.0, 1.0]
    y = dtorch.tensor([1.0, 2.0], device=device)
    z = y.clone()
    z.add_(1)
    assert y.tolist() == [1.0, 2.0]


def test_detach_shares_storage_and_version(device):
    x = dtorch.tensor([1.0, 2.0], device=device, requires_grad=True)
    d = x.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert d.data_ptr() == x.data_ptr()
    d.add_(1)
    assert x.tolist() == [2.0, 3.0]
    assert x._version == d._version == 1
    data = x.data
    assert not data.requires_grad and data.data_ptr() == x.data_ptr()


def test_to_dtype_and_device(device):
    x = dtorch.tensor([1, 2], device=device)
    assert x.to(dtorch.int64) is x  # nothing to do: the same tensor
    assert x.to(device) is x
    d = x.to(dtorch.float64)
    assert d.dtype is dtorch.float64 and d.tolist() == [1.0, 2.0] and d.device == x.device
    assert x.to(device, dtorch.float16).dtype is dtorch.float16
    assert x.to(dtype=dtorch.float32).dtype is dtorch.float32
    assert x.to(dtorch.zeros(1, dtype=dtorch.float64)).dtype is dtorch.float64
    c = x.to(dtorch.int64, copy=True)
    assert c is not x and c.data_ptr() != x.data_ptr()
    assert x.to("cpu").device == dtorch.device("cpu")


def test_to_is_differentiable():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(dtorch.float64)
    assert y.grad_fn.name() == "ToCopyBackward0"
    (y * y).sum().backward()
    assert x.grad.dtype is dtorch.float32 and x.grad.tolist() == [2.0, 4.0]


def test_to_cuda_without_gpu_raises():
    if dtorch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        dtorch.zeros(2).to("cuda")


@pytest.mark.parametrize("method,dtype", [
    ("float", "float32"), ("double", "float64"), ("half", "float16"), ("long", "int64"),
    ("int", "int32"), ("short", "int16"), ("char", "int8"), ("byte", "uint8"), ("bool", "bool"),
])
def test_dtype_methods_match_torch(method, dtype):
    data = [1.7, -2.7, 0.0, 3.2]
    if dtype == "uint8":
        data = [1.7, 2.7, 0.0, 3.2]
    got = check_op(lambda m, x: getattr(x, method)(), inputs=[dtorch.tensor(data)])
    assert got.dtype.name == dtype


def test_type_strings():
    assert dtorch.zeros(1).type() == "dtorch.FloatTensor"
    assert dtorch.zeros(1, dtype=dtorch.int64).type() == "dtorch.LongTensor"
    assert dtorch.zeros(1).type(dtorch.int32).dtype is dtorch.int32


def test_requires_grad_only_for_floats():
    with pytest.raises(RuntimeError, match="Only Tensors of floating point and complex dtype can require gradients"):
        dtorch.tensor([1, 2]).requires_grad_()
    with pytest.raises(RuntimeError, match="Only Tensors of floating point"):
        dtorch.tensor([1, 2], requires_grad=True)


def test_deepcopy_keeps_leaf_and_grad():
    x = dtorch.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    y = copy.deepcopy(x)
    assert y.requires_grad and y.is_leaf and y.data_ptr() != x.data_ptr()
    assert y.grad.tolist() == [3.0, 3.0] and y.grad.data_ptr() != x.grad.data_ptr()


def test_legacy_constructor():
    assert dtorch.Tensor(2, 3).shape == (2, 3) and dtorch.Tensor(2, 3).dtype is dtorch.float32
    t = dtorch.Tensor([1, 2])
    assert t.dtype is dtorch.float32 and t.tolist() == [1.0, 2.0]


def test_new_constructors():
    x = dtorch.tensor([1.0, 2.0], dtype=dtorch.float64)
    z = x.new_zeros(3)
    assert z.dtype is dtorch.float64 and z.tolist() == [0.0] * 3
    assert x.new_ones((2, 2)).shape == (2, 2)
    f = x.new_full((2,), 7)
    assert f.dtype is dtorch.float64 and f.tolist() == [7.0, 7.0]
    t = x.new_tensor([3, 4])
    assert t.dtype is dtorch.float64 and t.tolist() == [3.0, 4.0]
    assert x.new_tensor([3, 4], dtype=dtorch.int64).dtype is dtorch.int64
    assert x.new_empty(2, 5).shape == (2, 5)


# ---- repr ------------------------------------------------------------------------------------
REPR_CASES = [
    lambda m: m.tensor([1.5, 2.0]),
    lambda m: m.tensor([1.5, 2.0], requires_grad=True),
    lambda m: m.tensor([1.5, 2.0], requires_grad=True) * 2,
    lambda m: m.tensor([1, 2]),
    lambda m: m.tensor([1, 2], dtype=m.int32),
    lambda m: m.tensor([[1, -2], [3, 4]], dtype=m.int8),
    lambda m: m.tensor(5),
    lambda m: m.tensor(1, dtype=m.uint8),
    lambda m: m.tensor([True, False]),
    lambda m: m.tensor(3.0),
    lambda m: m.tensor(-0.0),
    lambda m: m.tensor(2.5, dtype=m.float16),
    lambda m: m.tensor([1.0, 2.0], dtype=m.float64),
    lambda m: m.tensor([1.0, 2.0], dtype=m.float64, requires_grad=True),
    lambda m: m.tensor([1.0, 2.0]).half(),
    lambda m: m.tensor([-0.5, 123.25]),
    lambda m: m.tensor([1e-5, 1.0]),
    lambda m: m.tensor([1e-5, 0.0]),
    lambda m: m.tensor([1e10, 1.0]),
    lambda m: m.tensor([1.0, 5000.0]),
    lambda m: m.tensor([123456789.0]),
    lambda m: m.tensor([0.1, 100.0, 12345.678]),
    lambda m: m.tensor([0.0, 0.0]),
    lambda m: m.tensor([float("nan"), float("inf"), 1.5]),
    lambda m: m.tensor([float("inf"), 1.0]),
    lambda m: m.tensor([float("nan")]),
    lambda m: m.tensor([-3, 100000]),
    lambda m: m.zeros(0),
    lambda m: m.zeros(2, 0),
    lambda m: m.zeros(3, 0, 2),
    lambda m: m.zeros(2, 0, dtype=m.int64),
    lambda m: m.tensor([], dtype=m.int32),
    lambda m: m.arange(12.0).reshape(3, 4),
    lambda m: m.arange(24.0).reshape(2, 3, 4),
    lambda m: m.arange(30.0) / 7,
    lambda m: m.arange(40).reshape(2, 20),
    lambda m: m.linspace(0, 1, 12),
    lambda m: m.arange(2000.0),
    lambda m: m.ones(1100).reshape(11, 100),
    lambda m: m.arange(1200).reshape(20, 60),
    lambda m: m.linspace(-1, 1, 40, dtype=m.float64).reshape(4, 10).requires_grad_(),
]


@pytest.mark.parametrize("case", range(len(REPR_CASES)))
def test_repr_matches_torch(case, torch):
    make = REPR_CASES[case]
    expected = repr(make(torch)).replace("torch.", "dtorch.")
    assert repr(make(dtorch)) == expected


def test_repr_with_float64_default_dtype(float64_default, torch):
    for make in (lambda m: m.tensor([1.5, 2.0]), lambda m: m.tensor([1.5], dtype=m.float32),
                 lambda m: m.zeros(0, dtype=m.float32), lambda m: m.zeros(0)):
        assert repr(make(dtorch)) == repr(make(torch)).replace("torch.", "dtorch.")


@pytest.mark.cuda
def test_repr_cuda(device):
    if device != "cuda":
        pytest.skip("cuda only")
    assert repr(dtorch.tensor([1.0, 2.0], device="cuda")) == "tensor([1., 2.], device='cuda:0')"


# ---- clone keeps layout; copy_ / fill_ / zero_ ----------------------------------------------------
def test_clone_preserves_dense_strides_like_torch(torch):
    cases = [lambda m: m.ones(2, 3).t(), lambda m: m.ones(4, 6).narrow(1, 0, 3),
             lambda m: m.ones(2, 3, 4).permute(1, 0, 2).narrow(2, 1, 3), lambda m: m.ones(3).expand(2, 3),
             lambda m: m.ones(2, 3)]
    for make in cases:
        got, want = make(dtorch).clone(), make(torch).clone()
        assert got.stride() == want.stride() and got.is_contiguous() == want.is_contiguous()
        assert make(dtorch).contiguous().stride() == make(torch).contiguous().stride()


COPY_FILL_CASES = [
    lambda m: m.zeros(2, 3).copy_(m.tensor([1, 2, 3])),
    lambda m: m.zeros(2, 3, dtype=m.int32).copy_(m.tensor([1.7, 2.0, -3.5])),
    lambda m: m.zeros(3).copy_(m.tensor(5.0)),
    lambda m: m.zeros(2, 3).copy_(m.ones(3, 2)),
    lambda m: m.zeros(2, 3).copy_(m.ones(2, 2, 3)),
    lambda m: m.zeros(2).fill_(3),
    lambda m: m.zeros(2, dtype=m.int64).fill_(2.7),
    lambda m: m.zeros(2).fill_(m.tensor(4.0)),
    lambda m: m.zeros(2).fill_(m.ones(2)),
    lambda m: m.ones(2).zero_(),
    lambda m: m.ones(2, 3).t().zero_(),
]


@pytest.mark.parametrize("case", range(len(COPY_FILL_CASES)))
def test_copy_fill_zero_like_torch(case):
    check_op(COPY_FILL_CASES[case], errors=True)


def test_copy_fill_zero_autograd_like_torch(torch):

    def run(m):
        a = m.tensor([1.0, 2.0, 3.0], requires_grad=True)
        v = m.tensor(0.5, requires_grad=True)
        w = m.tensor([3.0, 4.0, 5.0])
        x = m.zeros(3)
        x.copy_(a * 2)
        names = [type(x.grad_fn).__name__]
        y = a * 1
        y.fill_(v)
        names.append(y.grad_fn.name())
        z = a * 1
        z.zero_()
        names.append(z.grad_fn.name())
        u = a * 1
        u.fill_(2.0)
        names.append(u.grad_fn.name())
        ((x + y + z + u) * w).sum().backward()
        return names, a.grad, v.grad

    got, want = run(dtorch), run(torch)
    assert got[0] == want[0]
    assert_close(got[1], want[1])
    assert_close(got[2], want[2])


def test_inplace_arithmetic_on_expanded_tensor_refused():
    x = dtorch.zeros(2).expand(3, 2)
    with pytest.raises(RuntimeError, match="more than one element of the written-to tensor refers to a single"):
        x.add_(1)
