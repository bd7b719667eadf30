"""The script compiler: runs a function's ``ast`` on example inputs with a :class:`ScriptTracer` installed.

Straight-line code goes through the tracer (every dtorch op, Tensor method and F.* call records its registry op);
what depends on run-time values becomes graph structure: ``if`` on a tensor or a run-time scalar is a
``prim::If`` whose two blocks are both compiled, ``for i in range(...)`` and ``while`` are a ``prim::Loop`` whose
body is compiled once with the loop-carried variables as block inputs, Python arithmetic and comparisons on
run-time scalars are ``prim::`` scalar ops. Loops over ModuleLists, Sequentials and tuples are unrolled, user
functions, methods and submodules are compiled inline. Statements: _script_stmt.py; control flow:
_script_control.py.
"""
from __future__ import annotations

import ast
import builtins
import operator
import types
from typing import Any, Callable

from ..nn._functional.sparse import embedding
from ..nn.modules.module import Module
from ..tensor import Tensor
from ._script_builtins import call_builtin
from ._script_values import ScriptTracer, is_sym
from .frontend import FrontendError, NotSupportedError, SourceContext, check

MAX_INLINE_DEPTH = 64
_BINOPS = {ast.Add: ("add", operator.add), ast.Sub: ("sub", operator.sub), ast.Mult: ("mul", operator.mul),
           ast.Div: ("truediv", operator.truediv), ast.FloorDiv: ("floordiv", operator.floordiv),
           ast.Mod: ("mod", operator.mod), ast.Pow: ("pow", operator.pow), ast.MatMult: (None, operator.matmul),
           ast.BitAnd: (None, operator.and_), ast.BitOr: (None, operator.or_), ast.BitXor: (None, operator.xor),
           ast.LShift: (None, operator.lshift), ast.RShift: (None, operator.rshift)}
_CMPOPS = {ast.Lt: ("lt", operator.lt), ast.LtE: ("le", operator.le), ast.Gt: ("gt", operator.gt),
           ast.GtE: ("ge", operator.ge), ast.Eq: ("eq", operator.eq), ast.NotEq: ("ne", operator.ne)}
_SOURCES: dict = {}


class Raises(Exception):
    """Internal: the code being compiled raises at run time here (a ``prim::RaiseException``)."""

    def __init__(self, msg: str, emitted: bool = False) -> None:
        super().__init__(msg)
        self.msg, self.emitted = msg, emitted


def modifier(fn) -> str | None:
    """"ignore", "unused", "export" (dtorch.jit's decorators) or None."""
    return getattr(getattr(fn, "__func__", fn), "_dtorch_jit_modifier", None)


def source_of(fn: Callable) -> SourceContext:
    """The checked source of ``fn`` (cached per code object)."""
    fn = getattr(fn, "__func__", fn)
    code = getattr(fn, "__code__", None)
    ctx = _SOURCES.get(code)
    if ctx is None:
        ctx = SourceContext(fn)
        check(ctx)
        _SOURCES[code] = ctx
    return ctx


def is_user_function(fn) -> bool:
    """A plain Python function defined outside dtorch and numpy: compiled, not called."""
    fn = getattr(fn, "__func__", fn)
    mod = getattr(fn, "__module__", None) or ""
    return isinstance(fn, types.FunctionType) and mod.split(".")[0] not in ("dtorch", "numpy", "typing")


def is_user_module(m) -> bool:
    return isinstance(m, Module) and not type(m).__module__.startswith("dtorch.")


class Frame:
    """One function being compiled: its source, locals, globals and closure."""

    def __init__(self, ctx: SourceContext, env: dict) -> None:
        fn = ctx.fn
        self.ctx, self.env = ctx, env
        self.globals = getattr(fn, "__globals__", {})
        closure = getattr(fn, "__closure__", None) or ()
        self.closure = {}
        for name, cell in zip(fn.__code__.co_freevars, closure):
            try:
                self.closure[name] = cell.cell_contents
            except ValueError:
                pass
        self.ret: Any = None
        self.node: ast.AST | None = None

    def error(self, msg: str, node: ast.AST | None = None) -> FrontendError:
        return self.ctx.error(node if node is not None else self.node, msg)


class Compiler:
    """Compiles functions into the tracer's graph: expressions here; statements (``run_function``) and
    control flow (``emit_if``) come from the subclass in _script_module.py."""

    def __init__(self, tracer: ScriptTracer) -> None:
        self.tracer = tracer
        self.depth = 0
        self.stack: list = []

    # ---- functions --------------------------------------------------------------------------------
    def run_function(self, f: Frame) -> Any:
        raise NotImplementedError

    def emit_if(self, f: Frame, cond, runners: list) -> Any:
        raise NotImplementedError

    def call_function(self, fn: Callable, args: list, kwargs: dict, self_obj=None) -> Any:
        ctx = source_of(fn)
        key = getattr(fn, "__func__", fn)
        if key in self.stack:
            raise NotSupportedError(ctx.range(ctx.tree, 3), f"recursive calls are not supported ({ctx.name} "
                                    "calls itself)")
        if len(self.stack) > MAX_INLINE_DEPTH:
            raise NotSupportedError(ctx.range(ctx.tree, 3), "calls nested too deeply")
        env = bind_arguments(ctx, args, kwargs, self_obj)
        self.stack.append(key)
        try:
            return self.run_function(Frame(ctx, env))
        finally:
            self.stack.pop()

    # ---- expressions --------------------------------------------------------------------------------
    def ev(self, node: ast.AST, f: Frame) -> Any:
        meth = getattr(self, "ev_" + type(node).__name__, None)
        if meth is None:
            raise f.error(f"{type(node).__name__} expressions aren't supported", node)
        return meth(node, f)

    def ev_Constant(self, node, f):
        return node.value

    def ev_Name(self, node, f):
        name = node.id
        for scope in (f.env, f.closure, f.globals):
            if name in scope:
                return scope[name]
        if hasattr(builtins, name):
            return getattr(builtins, name)
        raise f.error(f"undefined value {name}", node)

    def ev_Attribute(self, node, f):
        base = self.ev(node.value, f)
        if is_sym(base):
            raise f.error(f"attribute {node.attr!r} of a run-time scalar isn't supported", node)
        try:
            return getattr(base, node.attr)
        except AttributeError:
            raise f.error(f"Module '{type(base).__name__}' has no attribute '{node.attr}'" if isinstance(base, Module)
                          else f"{type(base).__name__} has no attribute {node.attr!r}", node) from None

    def ev_Tuple(self, node, f):
        return tuple(self.ev(e, f) for e in node.elts)

    def ev_List(self, node, f):
        return [self.ev(e, f) for e in node.elts]

    def ev_Dict(self, node, f):
        if any(k is None for k in node.keys):
            raise f.error("dict unpacking isn't supported", node)
        return {self.ev(k, f): self.ev(v, f) for k, v in zip(node.keys, node.values)}

    def ev_Slice(self, node, f):
        part = [self.ev(x, f) if x is not None else None for x in (node.lower, node.upper, node.step)]
        return slice(*part)

    def ev_Subscript(self, node, f):
        base, index = self.ev(node.value, f), self.ev(node.slice, f)
        if not isinstance(base, Tensor) and syms_in(index):
            raise f.error("indexing a tuple or list with a value computed at run time isn't supported", node)
        if isinstance(base, Tensor) and syms_in(index):
            return self.sym_index(base, index, f, node)
        return self.direct(operator.getitem, [base, index], {}, f, node)

    def sym_index(self, base: Tensor, index, f: Frame, node) -> Tensor:
        """``x[i]``, ``x[:, i]``... with run-time ints: the other parts as usual, then a row lookup with the int as
        a tensor (negative counted from the end)."""
        items = index if isinstance(index, tuple) else (index,)
        if any(x is None or x is Ellipsis or isinstance(x, slice) and syms_in(x) for x in items):
            raise f.error("indexing with run-time ints supports ints and ':' (no run-time slice bounds, None or ...)",
                          node)
        static = tuple(slice(None) if is_sym(x) else x for x in items)
        out = base[static] if any(not (isinstance(x, slice) and x == slice(None)) for x in static) else base
        dims = []
        removed = 0
        for pos, x in enumerate(items):
            if is_sym(x):
                dims.append((pos - removed, x))
            elif not isinstance(x, slice):
                removed += 1
        for d, i in reversed(dims):
            n = out.shape[d]
            t = self.tracer.num_to_tensor(i, out)
            t = (t + n).where(t < 0, t).reshape(1)
            moved = out.movedim(d, 0)  # the row of an embedding lookup: its index is a graph input, not a constant
            out = embedding(t, moved.reshape(n, -1)).reshape(moved.shape[1:])
        return out

    def direct(self, fn, args: list, kwargs: dict, f: Frame, node) -> Any:
        """Call ``fn`` as Python under the tracer. A run-time scalar among the arguments that no recorded node
        reads was used as a plain number (a view's size, a creation op's shape): the graph is specialized on the
        user inputs it comes from (``Graph.guards``), and refused when it comes from a tensor or a loop."""
        syms = syms_in((args, kwargs))
        if not syms:
            return fn(*args, **kwargs)
        graph = self.tracer.graph
        start = len(graph.nodes)
        out = fn(*args, **kwargs)
        read = {v.id for n in graph.nodes[start:] for v in n.inputs}
        for s in syms:
            if s.jit_value.id not in read:
                self.specialize(s, f, node, getattr(fn, "__qualname__", None) or getattr(fn, "__name__", "a call"))
        return out

    def specialize(self, s, f: Frame, node, what: str) -> None:
        deps = self.tracer.input_deps(s.jit_value)
        root = self.tracer.root
        if deps is None:
            raise f.error(f"{what} uses a number computed at run time (from a tensor or inside a loop) as a "
                          "constant; pass it as an int argument or compute it with tensor ops", node)
        for i in deps:
            root.guards[i] = self.tracer.concrete[root.inputs[i].id]

    def ev_JoinedStr(self, node, f):
        parts = []
        for v in node.values:
            x = self.ev(v.value, f) if isinstance(v, ast.FormattedValue) else v.value
            if isinstance(x, Tensor) or is_sym(x):
                raise f.error("f-strings of run-time values aren't supported", node)
            parts.append(str(x))
        return "".join(parts)

    def ev_BinOp(self, node, f):
        return self.binop(type(node.op), self.ev(node.left, f), self.ev(node.right, f), f, node)

    def binop(self, kind, a, b, f, node):
        name, fn = _BINOPS[kind]
        if isinstance(a, Tensor) or isinstance(b, Tensor) or not (is_sym(a) or is_sym(b)):
            a, b = self.tensor_operands(a, b)
            return fn(a, b)
        if name is None:
            raise f.error(f"the operator {kind.__name__} on run-time scalars isn't supported", node)
        return self.tracer.prim(f"prim::{name}", [a, b], value=fn(_num(a), _num(b)))

    def tensor_operands(self, a, b):
        """A run-time scalar meeting a tensor in arithmetic becomes a 0-d tensor (dtorch's promotion then treats
        it as torch treats the Python number: the tensor's dtype wins within its category)."""
        if is_sym(a) and isinstance(b, Tensor):
            a = self.tracer.num_to_tensor(a, b)
        elif is_sym(b) and isinstance(a, Tensor):
            b = self.tracer.num_to_tensor(b, a)
        return a, b

    def ev_UnaryOp(self, node, f):
        x = self.ev(node.operand, f)
        op = type(node.op)
        if op is ast.Not:
            c = self.truth(x, f)
            return self.tracer.prim("prim::not", [c], "bool", not c) if is_sym(c) else not c
        if op is ast.UAdd:
            return x
        if is_sym(x):
            if op is not ast.USub:
                raise f.error("~ on run-time scalars isn't supported", node)
            return self.tracer.prim("prim::neg", [x], value=-_num(x))
        return -x if op is ast.USub else ~x

    def ev_Compare(self, node, f):
        left, result = self.ev(node.left, f), None
        for op, right_node in zip(node.ops, node.comparators):
            right = self.ev(right_node, f)
            r = self.compare(type(op), left, right, f, node)
            result = r if result is None else self.both(result, r, f)
            left = right
        return result

    def compare(self, kind, a, b, f, node):
        if kind in (ast.Is, ast.IsNot):
            if is_sym(a) or is_sym(b) or isinstance(a, Tensor) and isinstance(b, Tensor):
                raise f.error("'is' between run-time values isn't supported (use ==)", node)
            return (a is b) == (kind is ast.Is)
        if kind in (ast.In, ast.NotIn):
            if isinstance(b, Tensor) or is_sym(a):
                raise f.error("'in' on run-time values isn't supported", node)
            return (a in b) == (kind is ast.In)
        name, fn = _CMPOPS[kind]
        if isinstance(a, Tensor) or isinstance(b, Tensor) or not (is_sym(a) or is_sym(b)):
            a, b = self.tensor_operands(a, b)
            return fn(a, b)
        return self.tracer.prim(f"prim::{name}", [a, b], "bool", fn(_num(a), _num(b)))

    def both(self, a, b, f):
        a, b = self.truth(a, f), self.truth(b, f)
        if not is_sym(a) or not is_sym(b):
            static, other = (a, b) if not is_sym(a) else (b, a)
            return other if static else False
        return self.tracer.prim("prim::and", [a, b], "bool", bool(a) and bool(b))

    def ev_BoolOp(self, node, f):
        is_and = isinstance(node.op, ast.And)
        acc = self.truth(self.ev(node.values[0], f), f)
        for v in node.values[1:]:
            if not is_sym(acc) and bool(acc) != is_and:
                return acc  # short circuit on a constant
            nxt = self.truth(self.ev(v, f), f)
            if not is_sym(acc):
                acc = nxt
            elif not is_sym(nxt):
                acc = acc if bool(nxt) == is_and else nxt
            else:
                acc = self.tracer.prim("prim::and" if is_and else "prim::or", [acc, nxt], "bool",
                                       (bool(acc) and bool(nxt)) if is_and else (bool(acc) or bool(nxt)))
        return acc

    def ev_IfExp(self, node, f):
        cond = self.truth(self.ev(node.test, f), f)
        if not is_sym(cond):
            return self.ev(node.body if cond else node.orelse, f)
        return self.emit_if(f, cond, [lambda: self.ev(node.body, f), lambda: self.ev(node.orelse, f)])

    def truth(self, x, f, node=None):
        """A condition: a Python bool, or a Sym bool (a ``prim::Bool`` of a tensor or scalar)."""
        if isinstance(x, Tensor):
            if x.numel() != 1:
                raise RuntimeError("Boolean value of Tensor with more than one value is ambiguous")
            return self.tracer.prim("prim::Bool", [x], "bool", bool(x._data.reshape(-1)[0]))
        if is_sym(x):
            return x if x.kind == "bool" else self.tracer.prim("prim::Bool", [x], "bool", bool(x))
        return bool(x)

    # ---- calls ------------------------------------------------------------------------------------------
    def ev_Call(self, node, f):
        fn = self.ev(node.func, f)
        for a in node.args:
            if isinstance(a, ast.Starred):
                raise f.error("starred arguments aren't supported", a)
        args = [self.ev(a, f) for a in node.args]
        kwargs = {k.arg: self.ev(k.value, f) for k in node.keywords}
        return self.call(fn, args, kwargs, f, node)

    def call(self, fn, args: list, kwargs: dict, f: Frame, node) -> Any:
        handled, out = call_builtin(self, fn, args, kwargs, f, node)
        if handled:
            return out
        mod = modifier(fn)
        if mod == "unused":
            raise Raises(f"Exception: {getattr(fn, '__qualname__', fn)} was marked @dtorch.jit.unused and "
                         "cannot be called from scripted code")
        if mod == "ignore":
            return fn(*args, **kwargs)
        original = getattr(fn, "_dtorch_original", None)
        if original is not None:  # a scripted function called from scripted code: compile it inline
            return self.call_function(original, args, kwargs)
        source = getattr(fn, "_source", None) if isinstance(fn, Module) else None
        if isinstance(source, Module):  # a scripted module inside the one being compiled: its source, inline
            return self.call_module(source, args, kwargs, f, node)
        if isinstance(fn, types.MethodType) and is_user_module(fn.__self__) and is_user_function(fn.__func__):
            return self.call_function(fn.__func__, args, kwargs, fn.__self__)
        if is_user_module(fn):
            return self.call_module(fn, args, kwargs, f, node)
        if type(fn).__name__ == "Sequential" and isinstance(fn, Module) and not kwargs:
            out = args[0]
            for child in fn:
                out = self.call(child, [out], {}, f, node)
            return out
        if is_user_function(fn):
            return self.call_function(fn, args, kwargs)
        if isinstance(fn, type) and issubclass(fn, BaseException):
            return fn(*args)
        return self.direct(fn, args, kwargs, f, node)

    def call_module(self, m: Module, args, kwargs, f, node):
        if m._forward_pre_hooks or m._forward_hooks:
            raise f.error(f"forward hooks on {type(m).__name__} aren't supported by script", node)
        forward = type(m).forward
        if modifier(forward) == "ignore" or not is_user_function(forward):
            return m(*args, **kwargs)
        return self.call_function(forward, args, kwargs, m)


def syms_in(obj) -> list:
    """The run-time scalars inside ``obj`` (nested tuples, lists, dicts, slices)."""
    if is_sym(obj):
        return [obj]
    if isinstance(obj, slice):
        obj = (obj.start, obj.stop, obj.step)
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (tuple, list)):
        return [s for x in obj for s in syms_in(x)]
    return []


def _num(x):
    return float(x) if isinstance(x, float) else int(x)


def bind_arguments(ctx: SourceContext, args: list, kwargs: dict, self_obj) -> dict:
    """The locals of a call: parameters bound to the arguments (defaults evaluated by Python)."""
    import inspect

    sig = inspect.signature(ctx.fn)
    try:
        bound = sig.bind(*(([self_obj] if self_obj is not None else []) + list(args)), **kwargs)
    except TypeError as e:
        raise NotSupportedError(ctx.range(ctx.tree, 3), f"{ctx.name}(): {e}") from None
    bound.apply_defaults()
    return dict(bound.arguments)
