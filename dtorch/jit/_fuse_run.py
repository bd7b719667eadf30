"""Running a ``prim::FusionGroup`` node: the registered op, its body checked, generated C or dtorch's kernels.

The body format is described in ``_fuse.py``. A body comes from the fusion pass or from an archive, so it
is checked before anything runs: known ops with their arity and parameter names, references to earlier
values only. Per input signature (shapes and dtypes) the kernel decides once whether the generated C
applies (float32 values, bool masks, one output shape, the row op last) and compiles it; otherwise, and
for CUDA arrays, it runs the entries with dtorch's own kernels.
"""
from __future__ import annotations

import warnings

import numpy as np

from .._dispatch import REGISTRY, defop
from . import _fuse_c
from ._ir import PRIM_CONSTANT

FUSION_GROUP = "prim::FusionGroup"
# op -> (arity, allowed params, input positions that are bool masks)
ELEMENTWISE = {"add": (2, {"alpha"}, ()), "sub": (2, {"alpha"}, ()), "mul": (2, set(), ()),
               "div": (2, {"rounding_mode"}, ()), "neg": (1, set(), ()), "relu": (1, set(), ()),
               "exp": (1, set(), ()), "gelu": (1, {"approximate"}, ()), "masked_fill": (3, set(), (1,)),
               "where": (3, {"dtype"}, (0,))}
ROW_OPS = {"softmax": (1, {"dim"}, ()), "native_layer_norm": (3, {"n_axes", "eps"}, ())}
SPECS = {**ELEMENTWISE, **ROW_OPS, PRIM_CONSTANT: (0, {"value"}, ())}
PARAM_TYPES = {"alpha": (int, float), "approximate": (str,), "rounding_mode": (str, type(None)),
               "dim": (int, tuple, list), "n_axes": (int,), "eps": (float, int), "dtype": (type(None), np.dtype),
               "value": (bool, int, float)}
MAX_BODY = 4096
_PROGRAMS: dict[int, tuple] = {}
_WARNED: list = []


def _bad(what: str) -> RuntimeError:
    return RuntimeError(f"{FUSION_GROUP}: {what}")


def _check(body, outputs, n_in: int) -> tuple[tuple, tuple]:
    """(entries as (op, args, params dict), outputs) after checking every field; a bad body is refused."""
    if not isinstance(body, (tuple, list)) or not 0 < len(body) <= MAX_BODY:
        raise _bad(f"the body must be 1 to {MAX_BODY} entries")
    entries = []
    for e, entry in enumerate(body):
        if not isinstance(entry, (tuple, list)) or len(entry) != 3:
            raise _bad(f"entry {e} is not (op, args, params)")
        op, args, params = entry
        spec = SPECS.get(op) if isinstance(op, str) else None
        if spec is None:
            raise _bad(f"entry {e}: op {op!r} cannot be fused")
        if (not isinstance(args, (tuple, list)) or len(args) != spec[0]
                or not all(type(a) is int and 0 <= a < n_in + e for a in args)):
            raise _bad(f"entry {e} ({op}): arguments must be {spec[0]} indices of earlier values")
        if not isinstance(params, (tuple, list)) or not all(
                isinstance(p, (tuple, list)) and len(p) == 2 and p[0] in spec[1] for p in params):
            raise _bad(f"entry {e} ({op}): parameters must be (name, value) pairs of {sorted(spec[1])}")
        params = dict(params)
        if op == PRIM_CONSTANT and not isinstance(params.get("value"), (bool, int, float)):
            raise _bad(f"entry {e}: a constant must be a number")
        for k, v in params.items():
            if not isinstance(v, PARAM_TYPES[k]) or (k == "dim" and isinstance(v, (tuple, list))
                                                     and not all(type(d) is int for d in v)):
                raise _bad(f"entry {e} ({op}): parameter {k!r} has the wrong type ({type(v).__name__})")
        entries.append((op, tuple(args), params))
    if (not isinstance(outputs, (tuple, list)) or not outputs
            or not all(type(o) is int and 0 <= o < n_in + len(entries) for o in outputs)):
        raise _bad("outputs must be indices of values")
    return tuple(entries), tuple(outputs)


class Program:
    """One checked body: runs it as generated C where that applies, else with dtorch's kernels."""

    def __init__(self, body, outputs, n_in: int) -> None:
        self.body, self.outputs = _check(body, outputs, n_in)
        self.n_in = n_in
        self.kinds = self._kinds()
        self.variants: dict = {}
        self.kernels: dict = {}

    def _kinds(self) -> tuple | None:
        """Per input "f" (float32) or "b" (bool mask), or None when the body has no C form."""
        n_in, kinds = self.n_in, [None] * self.n_in
        last = len(self.body) - 1
        for e, (op, args, params) in enumerate(self.body):
            if op in ROW_OPS and (e != last or (op == "native_layer_norm" and not all(a < n_in for a in args[1:]))):
                return None
            if (op == "div" and params.get("rounding_mode") is not None) or (op == "where" and params.get("dtype")):
                return None
            masks = SPECS[op][2]
            for pos, a in enumerate(args):
                want = "b" if pos in masks else "f"
                if a < n_in:
                    if kinds[a] not in (None, want):
                        return None
                    kinds[a] = want
                else:
                    src = self.body[a - n_in]
                    is_bool = src[0] == PRIM_CONSTANT and isinstance(src[2]["value"], bool)
                    if (want == "b") != is_bool and not (want == "b" and src[0] == PRIM_CONSTANT):
                        return None
        if any(o < n_in or self.body[o - n_in][0] == PRIM_CONSTANT for o in self.outputs):
            return None
        return tuple(k or "f" for k in kinds)

    def _shape(self, arrays: list) -> tuple | None:
        """The one shape every computed value has for these inputs, or None (then no C)."""
        shapes = [a.shape for a in arrays]
        out = None
        for op, args, _ in self.body:
            if op == PRIM_CONSTANT:
                shapes.append(())
                continue
            try:
                s = shapes[args[0]] if op in ROW_OPS else np.broadcast_shapes(*(shapes[a] for a in args))
            except ValueError:
                return None
            if out is not None and s != out:
                return None
            out = s
            shapes.append(s)
        if not out or 0 in out:
            return None
        op, args, params = self.body[-1]
        if op == "softmax":
            dims = params.get("dim")
            dims = dims if isinstance(dims, (tuple, list)) else (dims,)
            if len(dims) != 1 or type(dims[0]) is not int or dims[0] % len(out) != len(out) - 1:
                return None
        if op == "native_layer_norm" and (params.get("n_axes") != 1 or not isinstance(params.get("eps"), float)
                                          or any(shapes[a][-1:] != out[-1:] for a in args[1:])):
            return None
        return out

    def _applies(self, arrays: list) -> tuple | None:
        """The output shape when the generated C applies to inputs of these shapes and dtypes, else None."""
        if self.kinds is None or any(type(a) is not np.ndarray for a in arrays):
            return None
        for a, k in zip(arrays, self.kinds):
            if a.dtype != (np.bool_ if k == "b" else np.float32):
                return None
        return self._shape(arrays)

    def _kernel(self, nd: int, classes: tuple):
        """The compiled kernel for a rank and inner-stride pattern (None, after one warning, when no compiler)."""
        key = (nd, classes)
        if key not in self.kernels:
            text = _fuse_c.source(self.body, self.n_in, self.outputs, self.kinds, classes, nd)
            try:
                self.kernels[key] = _fuse_c.load_kernel(text)
            except (RuntimeError, OSError) as e:
                self.kernels[key] = None
                if not _WARNED:
                    _WARNED.append(True)
                    reason = str(e).strip().splitlines()[0][:300]
                    warnings.warn(f"dtorch.compile: fused elementwise groups run dtorch's numpy kernels: no generated "
                                  f"C ({reason})", RuntimeWarning, stacklevel=3)
        return self.kernels[key]

    def __call__(self, arrays: list):
        key = tuple((a.shape, a.dtype) if hasattr(a, "shape") else None for a in arrays)
        shape = self.variants.get(key, False)
        if shape is False:
            shape = self.variants[key] = self._applies(arrays)
        if shape is not None:
            laid = _fuse_c.layout(arrays, shape, self.body[-1][0] in ROW_OPS)
            if laid is not None:
                arrs, sizes, strides, classes = laid
                fn = self._kernel(len(sizes), classes)
                if fn is not None:
                    return _fuse_c.call(fn, arrs, sizes, strides, shape, len(self.outputs))
        return self.run_kernels(arrays)

    def run_kernels(self, arrays: list) -> list:
        """The body with dtorch's own kernels, entry by entry (numpy or CUDA)."""
        vals = list(arrays)
        cpu = not arrays or type(arrays[0]) is np.ndarray
        for op, args, params in self.body:
            if op == PRIM_CONSTANT:
                vals.append(params["value"])
                continue
            opdef = REGISTRY[op]
            out = (opdef.cpu_kernel if cpu else opdef.cuda_kernel)(*(vals[a] for a in args), **params)
            vals.append(out[0] if opdef.extra else out)
        return [vals[o] for o in self.outputs]


def program(body, outputs, n_in: int) -> Program:
    """The Program of a node's body (built once per body object)."""
    hit = _PROGRAMS.get(id(body))
    if hit is not None and hit[0] is body and hit[1].n_in == n_in:
        return hit[1]
    if len(_PROGRAMS) > 1024:
        _PROGRAMS.clear()
    prog = Program(body, outputs, n_in)
    _PROGRAMS[id(body)] = (body, prog)
    return prog


@defop(FUSION_GROUP)
def fusion_group(*arrays, body, outputs):
    """A fused elementwise group (see ``_fuse.py``): one output, or a tuple of them."""
    outs = program(body, outputs, len(arrays))(list(arrays))
    return outs[0] if len(outs) == 1 else tuple(outs)



@fusion_group.backward
def _fusion_group_bw(ns, ctx, g):
    raise RuntimeError(f"{FUSION_GROUP} has no backward: dtorch.compile runs the recorded ops when a gradient is "
                       f"needed; run a fused graph under no_grad")
