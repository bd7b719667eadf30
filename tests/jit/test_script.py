"""dtorch.jit.script: control flow compiled to prim::If/prim::Loop blocks, equal to eager on every branch and trip
count, through save/load, gradients and the passes; unsupported syntax named with file and line."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import List, Optional, Tuple

import numpy as np
import pytest

import dtorch
import dtorch.nn as nn
import dtorch.nn.functional as F
from dtorch import jit
from tests.jit.models import branchy, cnn, gpt_block, mlp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def looped(x, n: int):
    for i in range(n):
        x = x * 0.5 + i
    return x


def halve_until_small(x):
    while x.abs().max() > 1.0:
        x = x / 2
    return x


def early_return(x, k: int):
    if k > 2:
        return x.relu()
    y = x * k
    if bool(y.mean() < 0):
        return -y
    return y


def ranged(x, a: int, b: int):
    acc = x * 0
    for i in range(a, b, 2):
        acc = acc + x * i
    return acc, a + b


def ternary(x, flag: bool):
    return x.exp() if flag and x.numel() > 1 else x.neg()


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        y = self.fc(x)
        if y.mean() > 0:
            return F.relu(y)
        return y * 0.5


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([Block(), Block()])
        self.head = nn.Sequential(nn.Linear(4, 3), nn.Tanh())

    def bump(self, x, n: int):
        i = 0
        while i < n:
            x = x + 1.0
            i += 1
        return x

    @jit.ignore
    def shout(self, x):
        return x * 1  # not compiled: called as Python while the graph is built

    @jit.unused
    def never(self, x):
        raise ValueError("not scriptable: " + str(x))

    @jit.export
    def embed(self, x):
        return self.layers[0](x).sum(dim=1)

    def forward(self, x, n: int, skip: Optional[dtorch.Tensor] = None):
        for m in self.layers:
            x = m(x)
        x = self.shout(self.bump(x, n))
        if skip is not None:
            x = x + skip
        if n > 100:
            x = self.never(x)
        return self.head(x), x.sum()


def _close(a, b, tol=1e-6):
    if isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            _close(x, y, tol)
        return
    if isinstance(a, dtorch.Tensor):
        assert a.shape == b.shape and a.dtype == b.dtype, (a.shape, b.shape, a.dtype, b.dtype)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)
    else:
        assert a == b


# ---- functions: branches and loops --------------------------------------------------------------------------
def test_if_runs_both_branches_from_one_graph():
    s = jit.script(branchy)
    x = dtorch.tensor([1.0, 2.0])
    _close(s(x, x), branchy(x, x))
    graph = s.graph
    _close(s(-x, x), branchy(-x, x))  # the other branch, same graph
    assert s.graph is graph and s.inlined_graph is graph and graph.count("prim::If") == 1
    text = str(graph)
    assert "prim::If(" in text and "block0():" in text and "block1():" in text and "-> (" in text
    assert "if " in s.code and "else:" in s.code


@pytest.mark.parametrize("n", [0, 1, 3, 6])
def test_for_range_trip_counts(n):
    s = jit.script(looped)
    x = dtorch.randn(3)
    _close(s(x, 2), looped(x, 2))
    _close(s(x, n), looped(x, n))
    assert s.graph.count("prim::Loop") == 1 and "block0(%i : int" in str(s.graph)


def test_while_on_a_tensor_condition_and_range_with_step():
    s = jit.script(halve_until_small)
    for scale in (0.5, 3.0, 40.0):
        x = dtorch.tensor([scale, -scale / 3])
        _close(s(x), halve_until_small(x))
    r = jit.script(ranged)
    x = dtorch.randn(2)
    for a, b in ((0, 5), (1, 8), (4, 2)):
        _close(r(x, a, b), ranged(x, a, b))


def first_big(x, n: int):
    total = x * 0
    for i in range(n):
        if total.sum() > 10:
            break
        if i % 2 == 1:
            continue
        total = total + x * i
    return total


def doubled_until(x):
    k = 0
    while True:
        x = x * 2
        k += 1
        if x.sum() > 100:
            break
    return x, k


def test_break_and_continue():
    s = jit.script(first_big)
    for n in (0, 3, 10, 30):
        _close(s(dtorch.ones(2), n), first_big(dtorch.ones(2), n))
    w = jit.script(doubled_until)
    for v in (1.0, 30.0, 0.01):
        _close(w(dtorch.full((2,), v)), doubled_until(dtorch.full((2,), v)))


def reshape_if(x, rows: int):
    if rows > 0:
        return x.view(rows, -1).sum(dim=1)
    return x * 2


def test_an_op_failing_in_the_branch_not_taken_raises_only_when_it_runs():
    s = jit.script(reshape_if)
    x = dtorch.arange(6.0)
    _close(s(x, -1), reshape_if(x, -1))  # compiles view(-1, -1) on the side not taken: fails, becomes a raise
    assert s.graph.guards == {1: -1}  # which holds for rows=-1 only
    with pytest.raises(RuntimeError, match="invalid"):
        s(x, 4)
    _close(s(x, 2), reshape_if(x, 2))
    _close(s(x, -3), reshape_if(x, -3))


def test_early_returns_and_ternary():
    s = jit.script(early_return)
    for k in (1, 2, 3, -1):
        for x in (dtorch.tensor([1.0, -2.0]), dtorch.tensor([-3.0, 1.0])):
            _close(s(x, k), early_return(x, k))
    t = jit.script(ternary)
    for flag in (True, False):
        x = dtorch.randn(3)
        _close(t(x, flag), ternary(x, flag))


def test_gradients_flow_through_blocks():
    s = jit.script(looped)
    for n in (0, 3):
        xs, xe = dtorch.randn(4, requires_grad=True), None
        xe = xs.detach().clone().requires_grad_()
        s(xs, n).sum().backward()
        looped(xe, n).sum().backward()
        _close(xs.grad, xe.grad)
    b = jit.script(branchy)
    for sign in (1.0, -1.0):
        x, y = (sign * dtorch.rand(3) + sign).requires_grad_(), dtorch.randn(3, requires_grad=True)
        b(x, y).pow(2).sum().backward()
        xe, ye = x.detach().clone().requires_grad_(), y.detach().clone().requires_grad_()
        branchy(xe, ye).pow(2).sum().backward()
        _close(x.grad, xe.grad)
        _close(y.grad, ye.grad)


def test_control_flow_on_each_device(device):
    s, w, r = jit.script(branchy), jit.script(halve_until_small), jit.script(looped)
    x = dtorch.tensor([1.0, -3.0, 2.5], device=device)
    for sign in (1.0, -1.0):
        _close(s(sign * x, x).cpu(), branchy(sign * x, x).cpu())
    _close(w(x * 7).cpu(), halve_until_small(x * 7).cpu())
    for n in (0, 3):
        _close(r(x, n).cpu(), looped(x, n).cpu())


# ---- modules --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make,shape", [(mlp, (5, 8)), (cnn, (2, 3, 8, 8)), (gpt_block, (2, 8, 16)),
                                        (lambda lib: gpt_block(lib, sdpa=True), (2, 8, 16))])
def test_scripted_models_equal_eager_and_round_trip(make, shape):
    model = make(dtorch).eval()
    s = jit.script(model)
    x = dtorch.randn(*shape)
    with dtorch.no_grad():
        want = model(x)
        _close(s(x), want)
        buf = io.BytesIO()
        s.save(buf)
        buf.seek(0)
        _close(jit.load(buf)(x), want)


def rows_loop(x):
    total = x[0] * 0
    for i in range(x.size(0)):
        total = total + x[i]
    return total


def test_a_loaded_scripted_graph_refuses_other_shapes_instead_of_reusing_baked_sizes():
    x = dtorch.randn(3, 4)
    s = jit.script(rows_loop)
    _close(s(x), x.sum(0))
    longer = dtorch.randn(5, 4)
    _close(s(longer), longer.sum(0))  # in process: a graph per input signature
    buf = io.BytesIO()
    jit.save(s, buf)
    buf.seek(0)
    loaded = jit.load(buf)
    _close(loaded(longer), longer.sum(0))  # the graph of the last call is the one saved
    with pytest.raises(RuntimeError, match=r"compiled for argument 'x' of shape \[5, 4\] but got \[3, 4\]"):
        loaded(x)


def test_module_list_methods_ignore_unused_export():
    dtorch.manual_seed(0)
    net = Net()
    s = jit.script(net)
    x = dtorch.randn(3, 4)
    for n in (0, 2, 5):
        _close(s(x, n), net(x, n))
    skip = dtorch.randn(3, 4)
    _close(s(x, 1, skip), net(x, 1, skip))
    assert s.graph.count("prim::If") == 3 and s.graph.count("prim::Loop") == 1
    with pytest.raises(jit.Error, match="unused"):
        s(x, 101)
    _close(s.embed(x), net.embed(x))
    assert {k for k, _ in s.named_parameters()} == {k for k, _ in net.named_parameters()}
    assert "self.layers['0'].fc.weight" in s.code


def test_save_load_in_a_fresh_process(tmp_path):
    dtorch.manual_seed(1)
    net = Net().eval()
    s = jit.script(net)
    x = dtorch.randn(2, 4)
    s(x, 1)
    s.save(tmp_path / "net.pt")
    jit.save(_built(looped, x), tmp_path / "loop.pt")
    np.save(tmp_path / "x.npy", x.numpy())
    s.embed(x)
    s.save(tmp_path / "net.pt")
    child = ("import sys, numpy as np, dtorch\n"
             "m = dtorch.jit.load(sys.argv[1] + '/net.pt'); f = dtorch.jit.load(sys.argv[1] + '/loop.pt')\n"
             "x = dtorch.from_numpy(np.load(sys.argv[1] + '/x.npy'))\n"
             "with dtorch.no_grad():\n"
             "    outs = [m(x, n)[0].numpy() for n in (0, 3)] + [f(x, n).numpy() for n in (0, 4)]\n"
             "    outs.append(m.embed(x).numpy())\n"
             "np.save(sys.argv[1] + '/out.npy', np.stack([o.reshape(-1)[:2] for o in outs]))\n"
             "assert not any(k.startswith('tests') for k in sys.modules)\n")
    env = dict(os.environ, PYTHONPATH=ROOT)
    subprocess.run([sys.executable, "-c", child, str(tmp_path)], check=True, env=env, cwd=str(tmp_path))
    got = np.load(tmp_path / "out.npy")
    with dtorch.no_grad():
        want = [net(x, n)[0].numpy() for n in (0, 3)] + [looped(x, n).numpy() for n in (0, 4)] + [net.embed(x).numpy()]
    np.testing.assert_allclose(got, np.stack([o.reshape(-1)[:2] for o in want]), rtol=1e-6, atol=1e-6)


def _built(fn, *args):
    s = jit.script(fn)
    s(*args, 2)
    return s


def test_loaded_archive_keeps_blocks_in_memory():
    s = jit.script(branchy)
    x = dtorch.tensor([1.0, 2.0])
    s(x, x)
    buf = io.BytesIO()
    s.save(buf)
    buf.seek(0)
    loaded = jit.load(buf)
    for sign in (1.0, -1.0):
        _close(loaded(sign * x, x), branchy(sign * x, x))
    assert str(loaded.graph) == str(s.graph)


def test_passes_recurse_or_leave_blocks():
    def fn(x, n: int):
        unused = x * 3  # noqa: F841
        a = x + 1
        b = x + 1
        if a.sum() > 0:
            y = a * b
        else:
            y = b - a
        for _ in range(n):
            dead = y * 7  # noqa: F841
            y = y + a
        return y

    s = jit.script(fn)
    x = dtorch.randn(3)
    s(x, 2)
    g = s.graph.copy()
    before = g.count()
    removed = jit.eliminate_dead_code(g) + jit.eliminate_common_subexpression(g) + jit.constant_fold(g)
    assert removed >= 3 and g.count() < before
    runner = jit.ScriptFunction(g, "fn")
    for sign in (1.0, -1.0):
        for n in (0, 3):
            xx = sign * (x.abs() + 1)
            np.testing.assert_allclose(runner._plan.run_arrays([xx._data, n])[0], fn(xx, n).numpy(), rtol=1e-6)


def reshaped(x, n: int):
    y = x.view(n, -1).sum(dim=0)
    return y + dtorch.ones(n)[0] + x[n - 1]


def test_numbers_used_as_constants_specialize_the_graph(tmp_path):
    s = jit.script(reshaped)
    x = dtorch.arange(6.0)
    for n in (2, 3, 2):
        _close(s(x, n), reshaped(x, n))
    assert s.graph.guards == {1: 2}
    s.save(tmp_path / "g.pt")
    loaded = jit.load(tmp_path / "g.pt")
    _close(loaded(x, 2), reshaped(x, 2))
    with pytest.raises(RuntimeError, match="specialized on n=2"):
        loaded(x, 3)

    def from_loop(x, n: int):
        for i in range(n):
            x = x + dtorch.ones(i + 1).sum()
        return x

    with pytest.raises(jit.frontend.NotSupportedError, match="computed at run time"):
        jit.script(from_loop)(x, 2)


def test_in_place_writes_inside_blocks():
    def outer_write(x):
        if x.sum() > 0:
            x.add_(1)
        return x

    with pytest.raises(jit.frontend.NotSupportedError, match="in-place aten::add_ on a tensor from outside"):
        jit.script(outer_write)(dtorch.ones(2))

    def local_writes(x, n: int):
        y = x * 1
        for i in range(n):
            y += i
            y[0] += 1
        return y

    s = jit.script(local_writes)
    for n in (0, 3):
        _close(s(dtorch.zeros(3), n), local_writes(dtorch.zeros(3), n))


class Inner(nn.Module):
    def forward(self, x):
        if x.sum() > 0:
            return x * 2
        return x - 1


class Outer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.inner = jit.script(Inner())
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.inner(self.fc(x))


def test_scripted_submodule_keeps_its_control_flow_in_trace_and_script():
    dtorch.manual_seed(2)
    m = Outer().eval()
    traced = jit.trace(m, dtorch.randn(2, 3))
    scripted = jit.script(m)
    x = dtorch.randn(2, 3).abs() * 10
    for sign in (1.0, -1.0):
        _close(traced(sign * x), m(sign * x))
        _close(scripted(sign * x), m(sign * x))
    assert traced.graph.count("prim::If") == 1 and scripted.graph.count("prim::If") == 1
    buf = io.BytesIO()
    traced.save(buf)
    buf.seek(0)
    loaded = jit.load(buf)
    _close(loaded(-x), m(-x))


def test_list_and_string_arguments_are_compiled_as_constants(tmp_path):
    def scaled(x, factors: List[int], mode: str = "sum"):
        for k in factors:
            x = x * k
        if mode == "sum":
            return x.sum()
        return x.mean()

    s = jit.script(scaled)
    x = dtorch.arange(4.0)
    for args in (([1, 2],), ([3], "mean"), ([1, 2],)):
        _close(s(x, *args), scaled(x, *args))
    s.save(tmp_path / "s.pt")
    loaded = jit.load(tmp_path / "s.pt")
    _close(loaded(x, [1, 2], "sum"), scaled(x, [1, 2]))
    with pytest.raises(RuntimeError, match="specialized on factors=\\[1, 2\\], mode='sum'"):
        loaded(x, [3], "mean")
    with pytest.raises(RuntimeError, match="Expected a value of type 'List\\[int\\]' for argument 'factors'"):
        s(x, [x])


def rnn(x, state: Tuple[dtorch.Tensor, dtorch.Tensor]):
    h, c = state
    for t in range(x.size(0)):
        h = (x[t] + h).tanh()
        c = c + h[-1] + x[:, t - 1].sum()
    return h, c


def test_tensor_tuple_arguments_and_indexing_with_the_loop_counter(tmp_path):
    s = jit.script(rnn)
    x, state = dtorch.randn(4, 4), (dtorch.zeros(4), dtorch.ones(4))
    _close(s(x, state), rnn(x, state))
    assert [v.name for v in s.graph.inputs] == ["x", "state.0", "state.1"]
    s.save(tmp_path / "rnn.pt")
    _close(jit.load(tmp_path / "rnn.pt")(x, state), rnn(x, state))
    xg = x.clone().requires_grad_()
    s(xg, state)[1].sum().backward()
    xe = x.clone().requires_grad_()
    rnn(xe, state)[1].sum().backward()
    _close(xg.grad, xe.grad)


# ---- errors -----------------------------------------------------------------------------------------------------
def _try(x):
    try:
        return x
    except Exception:
        return x


def _with(x):
    with dtorch.no_grad():
        return x


def _star(*xs):
    return xs[0]


def _del(x):
    y = x
    del y
    return x


def _lambda(x):
    f = lambda t: t  # noqa: E731
    return f(x)


@pytest.mark.parametrize("fn,construct", [(_try, "try blocks aren't supported"),
                                          (_with, "with statements aren't supported"),
                                          (_star, "variable number of arguments"),
                                          (_del, "del statements aren't supported"),
                                          (_lambda, "lambdas aren't supported")])
def test_unsupported_syntax_names_file_line_and_construct(fn, construct):
    with pytest.raises(jit.frontend.NotSupportedError) as e:
        jit.script(fn)
    msg = str(e.value)
    line = fn.__code__.co_firstlineno
    assert construct in msg and __file__ in msg and "<--- HERE" in msg
    assert any(f"line {k}" in msg for k in range(line, line + 4))


def test_type_errors_like_torch():
    def mismatch(x):
        if x.sum() > 0:
            y = x
        else:
            y = 1
        return y

    with pytest.raises(jit.frontend.FrontendError, match="y is set to type Tensor in the true branch and type int"):
        jit.script(mismatch)(dtorch.ones(2))
    s = jit.script(looped)
    with pytest.raises(RuntimeError, match="Expected a value of type 'int' for argument 'n' but instead found type "
                                           "'Tensor'"):
        s(dtorch.ones(2), dtorch.ones(1))
    with pytest.raises(RuntimeError, match="Expected a value of type 'Tensor' for argument 'x'"):
        s(3, 2)
    with pytest.raises(RuntimeError, match="first call"):
        print(jit.script(branchy).graph)


# ---- crafted archives with blocks ------------------------------------------------------------------------------------
def _archive_json(tmp_path):
    import json
    import zipfile

    s = jit.script(looped)
    s(dtorch.ones(2), 2)
    path = tmp_path / "m.pt"
    s.save(path)
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}, json.loads(zf.read("graph.json"))


def _rewrite(tmp_path, parts, graph):
    import hashlib
    import json
    import zipfile

    parts = dict(parts)
    parts["graph.json"] = json.dumps(graph).encode()
    man = json.loads(parts["manifest.json"])
    for k in man["parts"]:
        man["parts"][k]["sha256"] = hashlib.sha256(parts[k]).hexdigest()
    parts["manifest.json"] = json.dumps(man).encode()
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as zf:
        for k, v in parts.items():
            zf.writestr(k, v)
    return path


def _loop(g):
    return next(n for n in g["nodes"] if n["op"] == "prim::Loop")


def _drop_block(g):
    _loop(g)["blocks"] = []


def _sibling_read(g):
    g["nodes"].append({"op": "neg", "inputs": [_loop(g)["blocks"][0]["nodes"][-1]["outputs"][0]["id"]],
                       "outputs": [{"id": 999, "kind": "Tensor"}], "attrs": {}})


def _bad_arity(g):
    _loop(g)["inputs"] = _loop(g)["inputs"][:2]


def _deep(g):
    node = _loop(g)
    cond = node["inputs"][1]
    for _ in range(70):
        node = {"op": "prim::If", "inputs": [cond], "outputs": [],
                "blocks": [{"inputs": [], "nodes": [node], "outputs": []}, {"inputs": [], "nodes": [], "outputs": []}]}
    g["nodes"] = [n for n in g["nodes"] if n["op"] != "prim::Loop"] + [node]


def _raise_without_msg(g):
    g["nodes"].insert(0, {"op": "prim::RaiseException", "inputs": [], "outputs": [], "attrs": {}})


def _sparse_ids(g):
    g["nodes"].insert(0, {"op": "prim::Constant", "inputs": [], "outputs": [{"id": 1 << 39, "kind": "int"}],
                          "attrs": {"value": {"t": "int", "v": 1}}})


def _blocks_on_add(g):
    node = next(n for n in _loop(g)["blocks"][0]["nodes"] if n["op"] == "add")
    node["blocks"] = [{"inputs": [], "nodes": [], "outputs": []}]


@pytest.mark.parametrize("craft,match", [
    (_drop_block, "prim::Loop needs"), (_sibling_read, "outside its block"), (_bad_arity, "prim::Loop needs"),
    (_deep, "nested deeper"), (_raise_without_msg, "needs a message"), (_sparse_ids, "ids must be dense"),
    (_blocks_on_add, "cannot have blocks")])
def test_crafted_block_structures_are_refused(tmp_path, craft, match):
    parts, graph = _archive_json(tmp_path)
    craft(graph)
    with pytest.raises(jit.ArchiveError, match=match):
        jit.load(_rewrite(tmp_path, parts, graph))


@pytest.mark.parametrize("method", ["train", "_hidden", "not an identifier"])
def test_crafted_method_names_are_refused(tmp_path, method):
    import json
    import zipfile

    s = jit.script(Inner())
    s(dtorch.ones(2))
    s.save(tmp_path / "m.pt")
    with zipfile.ZipFile(tmp_path / "m.pt") as zf:
        parts = {n: zf.read(n) for n in zf.namelist()}
    graph = json.loads(parts["graph.json"])
    graph["methods"] = {method: {k: graph[k] for k in ("inputs", "n_user", "nodes", "outputs", "out_spec")}}
    with pytest.raises(jit.ArchiveError, match="is not allowed"):
        jit.load(_rewrite(tmp_path, parts, graph))


# ---- parity with torch.jit.script ------------------------------------------------------------------------------------
@pytest.mark.parametrize("fn,args", [(branchy, ((1.0, -2.0), (0.5, 0.5))), (halve_until_small, ((9.0, -3.0),)),
                                     (early_return, ((-1.0, 2.0), 3))])
def test_same_outputs_as_torch_jit_script(torch, fn, args):
    mine = jit.script(fn)
    theirs = torch.jit.script(fn)
    da = [dtorch.tensor(a) if isinstance(a, tuple) else a for a in args]
    ta = [torch.tensor(a) if isinstance(a, tuple) else a for a in args]
    np.testing.assert_allclose(mine(*da).numpy(), theirs(*ta).numpy(), rtol=1e-6)


def _make_gated(nn_, F_):
    class Gated(nn_.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn_.Linear(4, 4)
            self.layers = nn_.ModuleList([nn_.Linear(4, 4), nn_.Linear(4, 4)])

        def forward(self, x, n: int):
            h = self.fc(x)
            if h.mean() > 0:
                h = F_.relu(h)
            else:
                h = -h
            for layer in self.layers:
                h = layer(h).tanh()
            for i in range(n):
                h = h * 0.5 + i
            return h

    return Gated


def test_same_module_outputs_as_torch_jit_script(torch):
    theirs = _make_gated(torch.nn, torch.nn.functional)()
    mine = _make_gated(nn, F)()
    mine.load_state_dict({k: dtorch.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()})
    ts, ds = torch.jit.script(theirs), jit.script(mine)
    rng = np.random.default_rng(0)
    for sign in (1.0, -1.0):
        for n in (0, 2):
            x = (rng.standard_normal((3, 4)) * sign).astype(np.float32)
            np.testing.assert_allclose(ds(dtorch.tensor(x), n).detach().numpy(),
                                       ts(torch.tensor(x), n).detach().numpy(), rtol=1e-5, atol=1e-6)


class _LoopNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 4)

    def forward(self, x, n: int):
        y = self.bn(self.conv(x)).relu().mean((2, 3))
        if y.sum() > 0:
            y = y * 2
        for _ in range(n):
            y = self.fc(y).relu()
        return y


def test_freeze_and_optimize_for_inference_keep_a_scripted_modules_control_flow_and_number_arguments():
    dtorch.manual_seed(0)
    model = _LoopNet().eval()
    x = dtorch.randn(2, 3, 8, 8)
    s = jit.script(model)
    with dtorch.no_grad():
        s(x, 1)
        for optimized in (jit.freeze(s), jit.optimize_for_inference(s)):
            assert not list(optimized.parameters())
            for n in (0, 1, 3):
                _close(optimized(x, n), model(x, n))
            with pytest.raises(RuntimeError, match="expected a Tensor for argument 'x'"):
                optimized(1.0, 2)
