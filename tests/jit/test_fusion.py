"""Elementwise fusion: the pass's groups, the generated C against eager, save/load, no compiler, the build cache."""
from __future__ import annotations

import collections
import json
import os
import subprocess
import sys

import numpy as np
import pytest

import dtorch
from dtorch.jit._fuse import fuse_elementwise
from dtorch.jit._fuse_run import Program
from dtorch.utils.cpp_extension import build_c_library
from tests.jit.models import cnn, gpt_block, mlp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODELS = {"mlp": (mlp, (6, 8)), "cnn": (cnn, (3, 3, 8, 8)), "gpt": (gpt_block, (3, 8, 16)),
          "gpt_sdpa": (lambda lib: gpt_block(lib, sdpa=True), (3, 8, 16))}


def _close(got, want):
    """Within 1e-6 relative of eager, relative to the output's scale (outputs near 0 have no relative error)."""
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * float(np.abs(want).max()))


def _ops(graph) -> dict:
    return dict(collections.Counter(n.op for n in graph.nodes if n.op != "prim::Constant"))


def _bodies(graph) -> list[str]:
    return ["+".join(e[0] for e in n.attrs["body"] if e[0] != "prim::Constant")
            for n in graph.nodes if n.op == "prim::FusionGroup"]


def _optimized(name: str):
    make, shape = MODELS[name]
    dtorch.manual_seed(0)
    model = make(dtorch).eval()
    x = dtorch.randn(*shape)
    return model, x, dtorch.jit.optimize_for_inference(dtorch.jit.trace(model, x))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_compiled_fused_models_equal_eager(name):
    make, shape = MODELS[name]
    dtorch.manual_seed(1)
    model = make(dtorch).eval()
    compiled = dtorch.compile(model)
    with dtorch.no_grad():
        for batch in (shape[0], 2):
            x = dtorch.randn(batch, *shape[1:]) * 3
            _close(compiled(x).numpy(), model(x).numpy())
    plans = [e.plan.graph for e in compiled._compiled.cache.values()]
    assert all(g.count("prim::FusionGroup") >= 1 for g in plans)


@pytest.mark.parametrize("name,before,after,groups", [
    ("gpt", {"native_layer_norm": 2, "mul": 1, "masked_fill": 1, "softmax": 1, "add": 2, "gelu": 1, "linear": 4},
     {"prim::FusionGroup": 5, "linear": 4},
     ["native_layer_norm", "mul+masked_fill+softmax", "add+add+native_layer_norm", "add+gelu", "add+add"]),
    ("gpt_sdpa", {"native_layer_norm": 2, "add": 2, "gelu": 1, "scaled_dot_product_attention": 1},
     {"prim::FusionGroup": 4, "scaled_dot_product_attention": 1},
     ["native_layer_norm", "add+add+native_layer_norm", "add+gelu", "add+add"]),
    ("mlp", {"linear": 2, "relu": 1}, {"linear": 2, "prim::FusionGroup": 1}, ["add+relu"]),
    ("cnn", {"convolution": 1, "relu": 1, "max_pool": 1}, {"convolution": 1, "prim::FusionGroup": 1}, ["relu"]),
])
def test_pass_node_counts_and_outputs(name, before, after, groups):
    model, x, opt = _optimized(name)
    graph = opt.graph.copy()
    ops = _ops(graph)
    assert {k: ops.get(k, 0) for k in before} == before
    fuse_elementwise(graph)
    ops = _ops(graph)
    assert {k: ops.get(k, 0) for k in after} == after
    assert not set(ops) & {"mul", "masked_fill", "softmax", "gelu", "native_layer_norm", "relu"}
    assert _bodies(graph) == groups
    opt._set_graph(graph)
    with dtorch.no_grad():
        _close(opt(x).numpy(), model(x).numpy())


def test_fused_node_prints_its_body_and_saves_and_loads_in_a_fresh_process(tmp_path):
    model, x, opt = _optimized("gpt")
    graph = opt.graph.copy()
    fuse_elementwise(graph)
    opt._set_graph(graph)
    text = str(opt.graph)
    assert "prim::FusionGroup[body=[[native_layer_norm, [0, 1, 2], [[eps, 1e-05], [n_axes, 1]]]]" in text
    assert "[gelu, [" in text and "masked_fill" in text
    dtorch.jit.save(opt, tmp_path / "m.pt")
    np.save(tmp_path / "x.npy", x.numpy())
    child = ("import sys, numpy as np, dtorch\n"
             "m = dtorch.jit.load(sys.argv[1]); x = dtorch.from_numpy(np.load(sys.argv[2]))\n"
             "assert m.graph.count('prim::FusionGroup') == 5\n"
             "with dtorch.no_grad(): np.save(sys.argv[3], m(x).numpy())\n")
    res = subprocess.run([sys.executable, "-c", child, str(tmp_path / "m.pt"), str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], cwd=str(tmp_path), capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    with dtorch.no_grad():
        _close(np.load(tmp_path / "y.npy"), model(x).numpy())


def test_no_compiler_falls_back_to_numpy_with_one_warning(tmp_path):
    child = ("import json, warnings, numpy as np, dtorch\n"
             "from tests.jit.models import gpt_block\n"
             "dtorch.manual_seed(0); m = gpt_block(dtorch).eval(); c = dtorch.compile(m)\n"
             "with warnings.catch_warnings(record=True) as w, dtorch.no_grad():\n"
             "    warnings.simplefilter('always')\n"
             "    for b in (3, 2, 3):\n"
             "        x = dtorch.randn(b, 8, 16); d = float(np.abs(c(x).numpy() - m(x).numpy()).max())\n"
             "groups = sum(e.plan.graph.count('prim::FusionGroup') for e in c._compiled.cache.values())\n"
             "print(json.dumps({'diff': d, 'groups': groups, 'warnings': [str(x.message) for x in w]}))\n")
    env = dict(os.environ, CC=str(tmp_path / "no" / "cc"), DTORCH_EXTENSIONS_DIR=str(tmp_path / "ext"),
               PYTHONPATH=ROOT)
    res = subprocess.run([sys.executable, "-c", child], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["groups"] == 10 and out["diff"] == 0.0  # the numpy path runs eager's kernels exactly
    assert len(out["warnings"]) == 1
    assert "no generated C" in out["warnings"][0] and f"C compiler {str(tmp_path / 'no' / 'cc')!r} not found" \
        in out["warnings"][0]


def _counting_compiler(tmp_path):
    log = tmp_path / "cc.log"
    cc = tmp_path / "cc"
    cc.write_text(f"#!/bin/sh\necho \"$@\" >> {log}\nexec cc \"$@\"\n")
    cc.chmod(0o755)
    return str(cc), log


def test_second_compile_hits_the_cache_without_the_compiler(tmp_path, monkeypatch):
    cc, log = _counting_compiler(tmp_path)
    monkeypatch.setenv("CC", cc)
    monkeypatch.setenv("DTORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    dtorch.manual_seed(0)
    model = mlp(dtorch).eval()
    x = dtorch.randn(4, 8)
    with dtorch.no_grad():
        first = dtorch.compile(model)(x).numpy()
        built = log.read_text().count("\n")
        assert built == 1
        second = dtorch.compile(model)(x).numpy()
    assert log.read_text().count("\n") == built
    np.testing.assert_array_equal(first, second)


def test_build_c_library_caches_by_content_and_names_errors(tmp_path):
    import ctypes

    src = "int twice(int x) { return 2 * x; }\n"
    a = build_c_library("t_twice", src, build_directory=tmp_path)
    assert build_c_library("t_twice", src, build_directory=tmp_path) == a
    assert ctypes.CDLL(str(a)).twice(21) == 42
    assert build_c_library("t_twice", src + "\n", build_directory=tmp_path) != a
    with pytest.raises(RuntimeError, match="Error building extension 't_bad'"):
        build_c_library("t_bad", "int f( {", build_directory=tmp_path)


def _group(body, n_out_index, n_in):
    return Program(body, (n_out_index,), n_in)


def test_generated_c_broadcasts_by_strides_and_matches_the_kernels():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 6, 5), dtype=np.float32)
    cases = [
        # (body, inputs): broadcast rows/columns, a transposed (non-contiguous) input, 0-d, a mask
        ((("add", (0, 1), (("alpha", 2),)), ("relu", (2,), ())), [x, rng.standard_normal((6, 1), dtype=np.float32)]),
        ((("sub", (0, 1), ()), ("exp", (2,), ())), [x, x.transpose(1, 0, 2).copy().transpose(1, 0, 2)[:, :, ::-1]]),
        ((("div", (0, 1), ()), ("neg", (2,), ())), [x.transpose(0, 2, 1), np.array(3, np.float32)]),
        ((("div", (0, 1), (("rounding_mode", "floor"),)),), [x, np.array(0.3, np.float32)]),  # numpy path
        ((("masked_fill", (0, 1, 2), ()),), [x, rng.standard_normal(5) > 0, np.array(-2, np.float32)]),
        ((("where", (1, 0, 2), ()), ("gelu", (3,), (("approximate", "tanh"),))),
         [x, rng.standard_normal((4, 1, 5)) > 0, -x]),
        ((("mul", (0, 0), ()), ("softmax", (1,), (("dim", -1),))), [x * 30]),
        ((("add", (0, 1), ()), ("native_layer_norm", (4, 2, 3), (("eps", 1e-5), ("n_axes", 1)))),
         [x, x[:1], rng.standard_normal(5, dtype=np.float32), rng.standard_normal(5, dtype=np.float32)]),
    ]
    for body, arrays in cases:
        prog = Program(body, (len(arrays) + len(body) - 1,), len(arrays))
        _close(prog(arrays)[0], prog.run_kernels(arrays)[0])
        ran_c = bool(list(prog.kernels.values())) and all(prog.kernels.values())
        assert ran_c != (body[0][2] == (("rounding_mode", "floor"),)), body  # floor division has no C form


def test_generated_exp_and_gelu_edges():
    edge = np.array([-np.inf, -200, -103.9, -87.4, -20, -1e-30, 0, 1e-30, 3, 88.5, 88.8, np.inf, np.nan], np.float32)
    for op in ("exp", "gelu"):
        prog = Program(((op, (0,), ()),), (1,), 1)
        with np.errstate(all="ignore"):
            got, want = prog([edge])[0], prog.run_kernels([edge])[0]
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-37)


@pytest.mark.parametrize("body,outputs,match", [
    ("add", (1,), "the body must be"),
    ((("system", (0,), ()),), (1,), "op 'system' cannot be fused"),
    ((("add", (0, 5), ()),), (1,), "arguments must be 2 indices of earlier values"),
    ((("add", (0,), ()),), (1,), "arguments must be 2"),
    ((("relu", (0,), (("inplace", True),)),), (1,), "parameters must be"),
    ((("prim::Constant", (), (("value", "x"),)),), (1,), "a constant must be a number"),
    ((("relu", (0,), ()),), (7,), "outputs must be indices"),
    ((["relu", (0,)],), (1,), "is not \\(op, args, params\\)"),
    ((("add", (0, 0), (("alpha", "2; system()"),)),), (1,), "parameter 'alpha' has the wrong type"),
])
def test_crafted_bodies_are_refused_by_name(body, outputs, match):
    with pytest.raises(RuntimeError, match="prim::FusionGroup: (entry 0:? )?(\\(\\w+\\): )?" + match):
        Program(body, outputs, 1)


def test_in_place_writes_are_not_fused_across():
    def f(x):
        y = x * 2
        y.add_(1)
        return (y * 3).relu(), (x + 1).relu()

    x = dtorch.randn(4, 5)
    compiled = dtorch.compile(f)
    with dtorch.no_grad():
        got = compiled(x)
        want = f(x)
    for g, w in zip(got, want):
        _close(g.numpy(), w.numpy())
    graph = next(iter(compiled.cache.values())).plan.graph
    assert any(n.inplace for n in graph.nodes)
    assert _bodies(graph) == ["relu", "add+relu"]  # y * 3 reads the written y: left out
    assert graph.count("mul") == 2


def test_a_fused_node_refuses_backward_by_name():
    from dtorch._dispatch import REGISTRY

    x = dtorch.randn(3, 4, requires_grad=True)
    with dtorch.enable_grad():
        out = REGISTRY["prim::FusionGroup"](x, body=(("relu", (0,), ()),), outputs=(1,))
    assert out.requires_grad
    with pytest.raises(RuntimeError, match="prim::FusionGroup has no backward"):
        out.sum().backward()
