"""einsum: the equation parsed and checked as torch does (ellipses, implicit output, sublist form), one
numpy/cupy einsum forward, and a backward that is an einsum of the output's gradient with the other operands."""
from __future__ import annotations

from .._device import xp_of
from .._dispatch import OpDef, apply, defop, tensor_fn
from ..tensor import Tensor, _make
from .linalg import _check_scalar_type, _check_tensor, _needs

__all__ = [
    "einsum",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _expand_ellipses(terms: list, out: str | None, ndims: list) -> tuple[list, str]:
    """Replace '...' by explicit letters (right-aligned across operands); resolve an implicit output."""
    used = set("".join(terms) + (out or ""))
    spare = [c for c in _LETTERS if c not in used]
    n_ell = 0
    for i, (term, nd) in enumerate(zip(terms, ndims)):
        if "..." in term:
            n_ell = max(n_ell, nd - (len(term) - 3))
        elif len(term) != nd:
            raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(term)}) does not match "
                               f"the number of dimensions ({nd}) for operand {i} and no ellipsis was given")
    ell = "".join(spare[:n_ell])
    expanded = []
    for term, nd in zip(terms, ndims):
        if "..." in term:
            k = nd - (len(term) - 3)
            if k < 0:
                raise RuntimeError(f"einsum(): the number of subscripts in the equation ({len(term) - 3}) is more "
                                   f"than the number of dimensions ({nd}) for operand {len(expanded)}")
            term = term.replace("...", ell[n_ell - k:])
        expanded.append(term)
    if out is None:
        counts = {}
        for c in "".join(t.replace("...", "") for t in terms):
            counts[c] = counts.get(c, 0) + 1
        out = ell + "".join(sorted((c for c, n in counts.items() if n == 1), key=_LETTERS.index))
    else:
        out = out.replace("...", ell)
    return expanded, out


def _check_einsum(terms: list, out: str, shapes: list) -> None:
    sizes: dict = {}
    for i, (term, shape) in enumerate(zip(terms, shapes)):
        for c, s in zip(term, shape):
            prev = sizes.get(c)
            if prev is None or prev == 1:
                sizes[c] = s
            elif s != 1 and s != prev:
                raise RuntimeError(f"einsum(): subscript {c} has size {s} for operand {i} which does not broadcast "
                                   f"with previously seen size {prev}")
    for c in out:
        if c not in sizes:
            raise RuntimeError(f"einsum(): output subscript {c} does not appear in the equation for any input operand")
        if out.count(c) > 1:
            raise RuntimeError(f"einsum(): output subscript {c} appears more than once in the output")


def _parse_einsum(equation: str, shapes: list) -> str:
    """Validate ``equation`` against the operands' shapes; return it explicit ('ij,jk->ik'), no ellipsis."""
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) > len(shapes):
        raise RuntimeError("einsum(): fewer operands were provided than specified in the equation")
    if len(terms) < len(shapes):
        raise RuntimeError("einsum(): more operands were provided than specified in the equation")
    for c in lhs + out:
        if c not in _LETTERS and c not in ",.":
            raise RuntimeError(f"einsum(): invalid subscript given at index {eq.index(c)} in the equation string, "
                               "subscripts must be in [a-zA-Z]")
    terms, out = _expand_ellipses(terms, out if arrow else None, [len(s) for s in shapes])
    _check_einsum(terms, out, shapes)
    return ",".join(terms) + "->" + out


def _einsum_kernel(*arrays, equation):
    xp = xp_of(arrays[0])
    out = xp.einsum(equation, *arrays, optimize=len(arrays) > 1)
    # numpy returns views for pure relabelings ('ij->ji', 'ii->i'): an op's output owns its memory
    if any(xp.may_share_memory(out, a) for a in arrays):
        out = out.copy()
    return out


def _eye_for(g, n: int):
    """An identity matrix of ``g``'s kind (array or tensor), dtype and device; no grad."""
    data = g._data if isinstance(g, Tensor) else g
    eye = xp_of(data).eye(n, dtype=data.dtype)
    return _make(eye) if isinstance(g, Tensor) else eye


def _einsum_operand_grad(ns, g, operands: list, terms: list, out: str, i: int, shape: tuple):
    """Gradient of operand ``i``: an einsum of the output's gradient with the other operands.

    A subscript repeated in the operand (a diagonal, 'ii->i') is split into fresh letters
    tied by identity matrices.
    """
    term = terms[i]
    spare = iter(c for c in _LETTERS if c not in "".join(terms) + out)
    target, seen, extra_terms, extra_ops = "", {}, [], []
    for c, n in zip(term, shape):
        if c in seen:
            fresh = next(spare)
            extra_terms.append(c + fresh)
            extra_ops.append(_eye_for(g, n))
            target += fresh
        else:
            seen[c] = n
            target += c
    in_terms = [out] + [t for k, t in enumerate(terms) if k != i] + extra_terms
    present = set("".join(in_terms))
    kept = "".join(c for c in target if c in present)
    ops = [g] + [o for k, o in enumerate(operands) if k != i] + extra_ops
    r = ns.einsum(*ops, equation=",".join(in_terms) + "->" + kept)
    if kept != target:
        r = ns.reshape(r, shape=tuple(r.shape[kept.index(c)] if c in present else 1 for c in target))
    if tuple(r.shape) != tuple(shape):
        # letters summed only inside this operand, or of size 1 everywhere else: broadcast the
        # gradient (sizes where this operand is the one broadcast are summed by the engine)
        r = ns.expand(r, shape=tuple(max(x, y) for x, y in zip(r.shape, shape)))
    return r


def _einsum_bw(ns, ctx, g, *operands):
    lhs, out = ctx._args["equation"].split("->")
    terms = lhs.split(",")
    return tuple(
        _einsum_operand_grad(ns, g, list(operands), terms, out, i, ctx._in_meta[i][0]) if _needs(ctx, i) else None
        for i in range(len(operands))
    )


_EINSUM_OPS: dict = {}


def _einsum_op(n_operands: int) -> OpDef:
    """The einsum op for ``n_operands`` inputs (one registration per arity: it saves all its inputs)."""
    op = _EINSUM_OPS.get(n_operands)
    if op is None:
        name = "einsum" if n_operands == 1 else f"einsum_{n_operands}"
        op = defop(name, save=tuple(range(n_operands)))(_einsum_kernel)
        op.backward(_einsum_bw, "EinsumBackward0")
        _EINSUM_OPS[n_operands] = op
    return op


def _einsum_tensors(*operands, equation: str) -> Tensor:
    return apply(_einsum_op(len(operands)), operands, {"equation": equation})


_einsum_op(1)  # registers ARRAY_NS.einsum, the kernel
_einsum_op(2)
tensor_fn("einsum", _einsum_tensors)


def _sublist_equation(args: tuple) -> tuple[str, list]:
    """einsum(op0, [0, 1], op1, [1, 2], [0, 2]) -> ('ab,bc->ac', [op0, op1])."""
    def letters(sub) -> str:
        return "".join("..." if s is Ellipsis else _LETTERS[s] for s in sub)

    operands = list(args[0::2])
    subs = list(args[1::2])
    out = None
    if len(operands) > len(subs):
        out = operands.pop()
        out = letters(out)
    eq = ",".join(letters(s) for s in subs)
    return (eq + "->" + out if out is not None else eq), operands


def einsum(*args) -> Tensor:
    """Einstein summation: ``einsum('ij,jk->ik', a, b)``, ``einsum('ij,jk', [a, b])`` or the sublist form."""
    if not args:
        raise TypeError("einsum(): must specify the equation string and at least one operand, or at least one "
                        "operand and its subscripts list")
    if isinstance(args[0], str):
        equation, operands = args[0], list(args[1:])
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = list(operands[0])
    else:
        equation, operands = _sublist_equation(args)
    if not operands:
        raise RuntimeError("einsum(): must provide at least one operand")
    for k, t in enumerate(operands):
        _check_tensor(t, "einsum", f"operands[{k}]", 2)
        _check_scalar_type(operands[0], t)
    eq = _parse_einsum(equation, [t._data.shape for t in operands])
    return _einsum_tensors(*operands, equation=eq)
