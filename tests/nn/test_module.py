"""nn.Module and nn.Parameter: registration, iteration orders, hooks, modes, state_dict, repr, device/dtype moves."""
from __future__ import annotations

import copy
from collections import OrderedDict

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
from tests.oracle import torch_or_skip


# ---- two equivalent model families (dtorch and torch), built from the same code --------------
def _define(lib):
    class Block(lib.nn.Module):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.scale = lib.nn.Parameter(lib.ones(n))
            self.register_buffer("running", lib.zeros(n))
            self.register_buffer("scratch", lib.zeros(n), persistent=False)
            self.act = lib.nn.ReLU()

        def forward(self, x):
            return self.act(x * self.scale + self.running)

    class Net(lib.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = lib.nn.Sequential(Block(3), lib.nn.Tanh())
            self.blocks = lib.nn.ModuleList([Block(3), Block(3)])
            self.head = lib.nn.ModuleDict({"out": Block(3), "aux": lib.nn.Identity()})
            self.bias = lib.nn.Parameter(lib.zeros(3))
            self.shared = self.blocks[0]  # the same module twice: deduplicated by default
            self.empty = None

        def forward(self, x):
            x = self.stem(x)
            for b in self.blocks:
                x = b(x)
            return self.head["out"](x) + self.bias

    return Net


def _nets():
    torch = torch_or_skip()
    return _define(dtorch)(), _define(torch)()


def test_parameter_basics():
    t = dtorch.randn(2, 3)
    p = nn.Parameter(t)
    assert isinstance(p, dtorch.Tensor) and isinstance(p, nn.Parameter)
    assert p.requires_grad and p.is_leaf
    assert p.data_ptr() == t.data_ptr()  # shares storage, no copy
    assert type(p * 2) is dtorch.Tensor and type(p.detach()) is dtorch.Tensor
    assert repr(p).startswith("Parameter containing:\ntensor(") and repr(p).endswith("requires_grad=True)")
    assert not nn.Parameter(t, requires_grad=False).requires_grad
    assert nn.Parameter().shape == (0,)
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(dtorch.tensor([1, 2]))
    q = copy.deepcopy(p)
    assert type(q) is nn.Parameter and q.requires_grad and q.data_ptr() != p.data_ptr()
    np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy())


def test_parameter_repr_matches_torch(torch):
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    expected = repr(torch.nn.Parameter(torch.from_numpy(data)))
    assert repr(nn.Parameter(dtorch.from_numpy(data))) == expected


def test_named_parameters_buffers_modules_match_torch():
    d, t = _nets()
    assert [n for n, _ in d.named_parameters()] == [n for n, _ in t.named_parameters()]
    assert [n for n, _ in d.named_buffers()] == [n for n, _ in t.named_buffers()]
    assert [n for n, _ in d.named_modules()] == [n for n, _ in t.named_modules()]
    assert [n for n, _ in d.named_children()] == [n for n, _ in t.named_children()]
    assert [n for n, _ in d.named_parameters(prefix="model", recurse=True)] == \
        [n for n, _ in t.named_parameters(prefix="model")]
    assert [n for n, _ in d.named_parameters(remove_duplicate=False)] == \
        [n for n, _ in t.named_parameters(remove_duplicate=False)]
    assert [n for n, _ in d.named_modules(remove_duplicate=False)] == \
        [n for n, _ in t.named_modules(remove_duplicate=False)]
    assert [n for n, _ in d.named_modules(prefix="m")] == [n for n, _ in t.named_modules(prefix="m")]
    assert [n for n, _ in d.named_parameters(recurse=False)] == ["bias"]
    assert len(list(d.parameters())) == len(list(t.parameters()))
    assert len(list(d.modules())) == len(list(t.modules()))
    assert len(list(d.children())) == len(list(t.children()))


def test_state_dict_keys_match_torch_and_share_memory():
    d, t = _nets()
    sd = d.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd.keys()) == list(t.state_dict().keys())
    assert "stem.0.scratch" not in sd  # non-persistent buffers stay out
    assert sd["bias"].data_ptr() == d.bias.data_ptr()
    assert not sd["bias"].requires_grad and type(sd["bias"]) is dtorch.Tensor
    assert d.state_dict(keep_vars=True)["bias"] is d.bias
    assert list(d.state_dict(prefix="p.").keys())[0] == "p." + list(sd.keys())[0]


def test_state_dict_from_torch_loads_and_round_trips():
    d, t = _nets()
    for p in t.parameters():
        p.data.normal_()
    converted = {k: dtorch.from_numpy(v.detach().numpy().copy()) for k, v in t.state_dict().items()}
    before = d.bias
    result = d.load_state_dict(converted)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert d.bias is before  # loaded in place: optimizers keep their references
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(d.state_dict()[k].numpy(), v.numpy())


def test_load_state_dict_strict_errors_like_torch(torch):
    d, t = _nets()
    for lib, model in ((dtorch, d), (torch, t)):
        sd = model.state_dict()
        sd.pop("stem.0.running")
        sd["blocks.1.extra"] = lib.zeros(1)
        sd["unknown.weight"] = lib.zeros(1)
        with pytest.raises(RuntimeError) as err:
            model.load_state_dict(sd)
        msg = str(err.value).replace("torch", "T").replace("dT", "T")
        if lib is dtorch:
            dmsg = msg
        else:
            assert dmsg == msg
        result = model.load_state_dict(sd, strict=False)
        assert result.missing_keys == ["stem.0.running"]
        assert sorted(result.unexpected_keys) == ["blocks.1.extra", "unknown.weight"]


def test_load_state_dict_size_mismatch_message():
    m = nn.Sequential(nn.PReLU(3))
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict({"0.weight": dtorch.zeros(4)})
    assert str(err.value) == (
        "Error(s) in loading state_dict for Sequential:\n\tsize mismatch for 0.weight: copying a param with shape "
        "dtorch.Size([4]) from checkpoint, the shape in current model is dtorch.Size([3]).")
    with pytest.raises(TypeError, match="Expected state_dict to be dict-like"):
        m.load_state_dict([1, 2])


def test_load_state_dict_under_autograd_keeps_leaf_and_bumps_nothing_wrong():
    m = nn.PReLU(2)
    opt_ref = m.weight
    m.load_state_dict({"weight": dtorch.tensor([0.5, 0.7])})
    assert m.weight is opt_ref and m.weight.is_leaf and m.weight.requires_grad
    np.testing.assert_allclose(m.weight.detach().numpy(), [0.5, 0.7])
    m.load_state_dict({"weight": dtorch.tensor([1.0, 2.0])}, assign=True)
    assert isinstance(m.weight, nn.Parameter) and m.weight is not opt_ref and m.weight.requires_grad


def test_setattr_routing_and_errors():
    m = nn.Module()
    m.w = nn.Parameter(dtorch.zeros(2))
    m.child = nn.ReLU()
    m.register_buffer("buf", dtorch.ones(1))
    m.plain = 3
    assert list(m._parameters) == ["w"] and list(m._modules) == ["child"] and list(m._buffers) == ["buf"]
    with pytest.raises(TypeError, match=r"cannot assign 'dtorch.FloatTensor' as parameter 'w' "
                                        r"\(torch.nn.Parameter or None expected\)"):
        m.w = dtorch.zeros(2)
    with pytest.raises(TypeError, match="cannot assign 'int' as child module 'child'"):
        m.child = 1
    with pytest.raises(TypeError, match="cannot assign 'str' as buffer 'buf'"):
        m.buf = "x"
    m.buf = dtorch.zeros(3)  # a tensor replaces a buffer, stays a buffer
    assert m._buffers["buf"].shape == (3,)
    m.w = None
    assert m.w is None and "w" in m._parameters
    with pytest.raises(KeyError, match="attribute 'plain' already exists"):
        m.register_parameter("plain", None)
    with pytest.raises(KeyError, match="name can"):
        m.register_buffer("a.b", None)
    with pytest.raises(TypeError, match="cannot assign 'dtorch.FloatTensor' object to parameter 'q'"):
        m.register_parameter("q", dtorch.zeros(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("x", 3)
    with pytest.raises(ValueError, match="Cannot assign non-leaf Tensor"):
        leaf = dtorch.zeros(1, requires_grad=True)
        p = nn.Parameter(dtorch.zeros(1))
        p.grad_fn = (leaf * 2).grad_fn
        m.register_parameter("nl", p)
    with pytest.raises(AttributeError, match="'Module' object has no attribute 'nope'"):
        _ = m.nope
    del m.child, m.buf, m.plain
    assert not m._modules and not m._buffers and not hasattr(m, "plain")
    m.child = nn.Parameter(dtorch.zeros(1))  # a name moves between registries
    assert "child" in m._parameters
    with pytest.raises(TypeError, match="as parameter 'child'"):  # as torch: a parameter name takes None only
        m.child = nn.Tanh()
    m.child = None
    del m.child
    m.child = nn.Tanh()
    assert "child" in m._modules and "child" not in m._parameters


def test_buffer_class_registers():
    m = nn.Module()
    m.b = nn.Buffer(dtorch.zeros(2), persistent=False)
    assert "b" in m._buffers and "b" in m._non_persistent_buffers_set
    assert "b" not in m.state_dict()


def test_assign_before_init_raises():
    class Bad(nn.Module):
        def __init__(self) -> None:
            self.w = nn.Parameter(dtorch.zeros(1))

    with pytest.raises(AttributeError, match="cannot assign parameters before Module.__init__"):
        Bad()


def test_forward_missing():
    with pytest.raises(NotImplementedError, match=r'Module \[Module\] is missing the required "forward" function'):
        nn.Module()(1)


def test_get_submodule_parameter_buffer():
    d = _define(dtorch)()
    assert d.get_submodule("stem.0") is d.stem[0]
    assert d.get_submodule("") is d
    assert d.get_parameter("blocks.1.scale") is d.blocks[1].scale
    assert d.get_buffer("head.out.running") is d.head["out"].running
    with pytest.raises(AttributeError, match="Sequential has no attribute `9`"):
        d.get_submodule("stem.9")
    with pytest.raises(AttributeError, match="`scale` is not an nn.Module"):
        d.get_submodule("stem.0.scale")
    with pytest.raises(AttributeError, match="`act` is not an nn.Parameter"):
        d.get_parameter("stem.0.act")


def test_hooks_run_modify_and_remove():
    lin = nn.Sequential(nn.Identity())
    calls = []

    def pre(mod, args):
        calls.append("pre")
        return args[0] * 2  # a non-tuple is wrapped

    def post(mod, args, out):
        calls.append("post")
        return out + 1

    h1 = lin.register_forward_pre_hook(pre)
    h2 = lin.register_forward_hook(post)
    x = dtorch.ones(2)
    np.testing.assert_allclose(lin(x).numpy(), [3.0, 3.0])
    assert calls == ["pre", "post"]
    h1.remove()
    h2.remove()
    np.testing.assert_allclose(lin(x).numpy(), [1.0, 1.0])
    assert calls == ["pre", "post"]


def test_hooks_with_kwargs_and_prepend():
    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    m = Scale()
    order = []
    m.register_forward_pre_hook(lambda mod, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True)
    m.register_forward_hook(lambda mod, args, kwargs, out: order.append(("kw", kwargs["factor"])),
                            with_kwargs=True)
    m.register_forward_hook(lambda mod, args, out: order.append("first"), prepend=True)
    with m.register_forward_hook(lambda mod, args, out: out * 0):
        assert m(dtorch.ones(1)).item() == 0.0
    assert m(dtorch.ones(1)).item() == 3.0
    assert order[:2] == ["first", ("kw", 3.0)]


def test_train_eval_propagate():
    d = _define(dtorch)()
    assert all(m.training for m in d.modules())
    assert d.eval() is d
    assert not any(m.training for m in d.modules())
    d.train()
    assert all(m.training for m in d.modules())
    d.stem.train(False)
    assert d.training and not d.stem[0].act.training
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        d.train(1)


def test_requires_grad_and_zero_grad():
    d = _define(dtorch)()
    out = d(dtorch.randn(4, 3)).sum()
    out.backward()
    assert all(p.grad is not None for p in d.parameters())
    d.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.any() for p in d.parameters())
    d.zero_grad()
    assert all(p.grad is None for p in d.parameters())
    d.requires_grad_(False)
    assert not any(p.requires_grad for p in d.parameters())


def test_apply_visits_children_first():
    d = _define(dtorch)()
    seen = []
    d.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[:2] == ["ReLU", "Block"]


def test_to_dtype_keeps_parameter_identity_and_grads():
    m = nn.PReLU(3)
    m.register_buffer("count", dtorch.zeros(1, dtype=dtorch.int64))
    w = m.weight
    m(dtorch.randn(2, 3)).sum().backward()
    assert m.double() is m
    assert m.weight is w and w.dtype == dtorch.float64 and w.grad.dtype == dtorch.float64
    assert m.count.dtype == dtorch.int64  # integer buffers keep their dtype
    m.to(dtorch.float32)
    assert w.dtype == dtorch.float32
    m.half()
    assert w.dtype == dtorch.float16
    m.float()
    m.to(dtorch.zeros(1, dtype=dtorch.float64))
    assert w.dtype == dtorch.float64
    with pytest.raises(TypeError, match="nn.Module.to only accepts floating point"):
        m.to(dtorch.int32)


def test_to_device(device):
    m = _define(dtorch)()
    w = m.bias
    m.to(device)
    assert m.bias is w and w.device.type == device
    assert all(b.device.type == device for b in m.buffers())
    out = m(dtorch.randn(2, 3, device=device))
    assert out.device.type == device
    m.cpu()
    assert w.device.type == "cpu"


def test_repr_matches_torch():
    d, t = _nets()
    assert repr(d) == repr(t)


def test_dir_lists_registered_names():
    d = _define(dtorch)()
    names = dir(d)
    assert "stem" in names and "bias" in names and "forward" in names


def test_deepcopy_module():
    d = _define(dtorch)()
    c = copy.deepcopy(d)
    assert c.shared is c.blocks[0] and c.bias is not d.bias
    np.testing.assert_array_equal(c.bias.detach().numpy(), d.bias.detach().numpy())


def test_init_rejects_arguments():
    with pytest.raises(TypeError, match="unexpected keyword argument 'foo'"):
        nn.Module(foo=1)


def _backward_hook_run(lib, x_np, input_grad: bool):
    m = lib.nn.PReLU(3)
    with lib.no_grad():
        m.weight.copy_(lib.tensor([0.1, 0.2, 0.3]))
    seen = []

    def hook(mod, grad_input, grad_output):
        seen.append(([None if g is None else g.detach().numpy().copy() for g in grad_input],
                     [g.detach().numpy().copy() for g in grad_output]))
        if grad_input[0] is not None:
            return (grad_input[0] * 3,)
        return None

    m.register_full_backward_hook(hook)
    m.register_full_backward_pre_hook(lambda mod, go: (go[0] * 2,))
    x = lib.from_numpy(x_np.copy()).requires_grad_(input_grad)
    (m(x) * lib.arange(6.0).reshape(2, 3)).sum().backward()
    return seen, (x.grad.numpy() if input_grad else None), m.weight.grad.numpy()


@pytest.mark.filterwarnings("ignore:Full backward hook is firing")
@pytest.mark.parametrize("input_grad", [True, False])
def test_full_backward_hooks_match_torch(input_grad, torch):
    x = np.array([[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]], np.float32)
    d = _backward_hook_run(dtorch, x, input_grad)
    t = _backward_hook_run(torch, x, input_grad)
    (d_seen, d_xg, d_wg), (t_seen, t_xg, t_wg) = d, t
    assert len(d_seen) == len(t_seen) == 1
    for a, b in zip(d_seen[0][0] + d_seen[0][1], t_seen[0][0] + t_seen[0][1]):
        assert (a is None and b is None) or np.allclose(a, b)
    np.testing.assert_allclose(d_wg, t_wg, rtol=1e-6)
    if input_grad:
        np.testing.assert_allclose(d_xg, t_xg, rtol=1e-6)


def test_full_backward_hook_warns_without_input_grad():
    m = nn.PReLU()
    m.register_full_backward_hook(lambda mod, gi, go: None)
    with pytest.warns(UserWarning, match="Full backward hook is firing"):
        m(dtorch.randn(3)).sum().backward()


def test_always_call_forward_hook_runs_on_error():
    class Boom(nn.Module):
        def forward(self, x):
            raise ValueError("boom")

    m = Boom()
    calls = []
    m.register_forward_hook(lambda mod, args, out: calls.append(out), always_call=True)
    m.register_forward_hook(lambda mod, args, out: calls.append("never"))
    with pytest.raises(ValueError, match="boom"):
        m(1)
    assert calls == [None]
