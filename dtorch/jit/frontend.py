"""torch.jit.frontend: the source of a scripted function as an ``ast`` tree, its errors and the syntax check.

Errors name the construct, the file and line, and show the line with a ``~~~ <--- HERE`` marker, as torch does.
"""
from __future__ import annotations

import ast
import inspect
import linecache
import textwrap
from typing import Callable

PRETTY_NODE_NAMES = {
    ast.FunctionDef: "function definitions", ast.AsyncFunctionDef: "async function definitions",
    ast.For: "for loops", ast.AsyncFor: "async for loops", ast.Delete: "del statements",
    ast.ClassDef: "class definitions", ast.With: "with statements", ast.AsyncWith: "async with statements",
    ast.Import: "import statements", ast.ImportFrom: "import statements", ast.Global: "global variables",
    ast.Nonlocal: "nonlocal variables", ast.Break: "break statements", ast.Continue: "continue statements",
    ast.Try: "try blocks", ast.Lambda: "lambdas", ast.ListComp: "list comprehensions",
    ast.DictComp: "dict comprehensions", ast.SetComp: "set comprehensions", ast.GeneratorExp: "generator expressions",
    ast.Yield: "yield expressions", ast.YieldFrom: "yield expressions", ast.Await: "await expressions",
    ast.Set: "set literals", ast.NamedExpr: "assignment expressions", ast.Starred: "starred expressions",
}
_START_TOKENS = {ast.FunctionDef: "def", ast.For: "for", ast.Delete: "del", ast.ClassDef: "class", ast.With: "with",
                 ast.Import: "import", ast.ImportFrom: "from", ast.Global: "global", ast.Break: "break",
                 ast.Continue: "continue", ast.Try: "try", ast.Nonlocal: "nonlocal", ast.Lambda: "lambda"}
_UNSUPPORTED = tuple(t for t in PRETTY_NODE_NAMES if t not in (ast.For, ast.Break, ast.Continue))
if hasattr(ast, "TryStar"):
    _UNSUPPORTED += (ast.TryStar,)


class SourceRange:
    """Where a construct is: file, line (1-based), column, the source line."""

    def __init__(self, filename: str, line: int, col: int = 0, length: int = 1) -> None:
        self.filename, self.line, self.col, self.length = filename, line, col, max(1, length)

    def highlight(self) -> str:
        text = linecache.getline(self.filename, self.line).rstrip("\n")
        marker = " " * self.col + "~" * self.length + " <--- HERE"
        return f'  File "{self.filename}", line {self.line}\n{text}\n{marker}\n'


class FrontendError(Exception):
    """torch.jit.frontend.FrontendError: a scripted function's source cannot be compiled; names file and line."""

    def __init__(self, source_range: SourceRange | None, msg: str) -> None:
        self.source_range, self.msg = source_range, msg
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.source_range.highlight() if self.source_range is not None else ""
        return f"{self.msg}:\n{where}" if where else self.msg


class NotSupportedError(FrontendError):
    """torch.jit.frontend.NotSupportedError."""


class UnsupportedNodeError(NotSupportedError):
    """torch.jit.frontend.UnsupportedNodeError: a Python construct script does not compile."""

    def __init__(self, ctx: "SourceContext", node: ast.AST, reason: str = "") -> None:
        name = PRETTY_NODE_NAMES.get(type(node), type(node).__name__)
        length = len(_START_TOKENS.get(type(node), " "))
        super().__init__(ctx.range(node, length), f"{name} {reason + ' ' if reason else ''}aren't supported")


class SourceContext:
    """A function's parsed source: its ``ast.FunctionDef`` with line numbers of the file, and the file name."""

    def __init__(self, fn: Callable) -> None:
        try:
            lines, first = inspect.getsourcelines(fn)
            self.filename = inspect.getsourcefile(fn) or "<unknown>"
        except (OSError, TypeError) as e:
            raise OSError(f"could not get source code of {getattr(fn, '__qualname__', fn)!r}: dtorch.jit.script "
                          "compiles Python source (define the function in a file)") from e
        tree = ast.parse(textwrap.dedent("".join(lines)))
        ast.increment_lineno(tree, first - 1)
        indent = len(lines[0]) - len(lines[0].lstrip())
        for node in ast.walk(tree):
            if hasattr(node, "col_offset"):
                node.col_offset += indent
        defs = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
        if not defs:
            raise NotSupportedError(SourceRange(self.filename, first), "expected a function definition")
        self.fn, self.tree = fn, defs[0]
        self.name = self.tree.name

    def range(self, node: ast.AST, length: int = 1) -> SourceRange:
        return SourceRange(self.filename, getattr(node, "lineno", 0), getattr(node, "col_offset", 0), length)

    def error(self, node: ast.AST, msg: str, cls=NotSupportedError) -> FrontendError:
        return cls(self.range(node, max(1, getattr(node, "end_col_offset", 1) - getattr(node, "col_offset", 0))
                              if getattr(node, "end_lineno", None) == getattr(node, "lineno", None) else 1), msg)


def check(ctx: SourceContext) -> None:
    """Refuse what script does not compile, before anything runs (torch's NotSupportedError wording)."""
    fdef = ctx.tree
    if isinstance(fdef, ast.AsyncFunctionDef):
        raise UnsupportedNodeError(ctx, fdef)
    a = fdef.args
    if a.vararg or a.kwarg or a.kw_defaults and any(d is not None for d in a.kw_defaults):
        raise NotSupportedError(ctx.range(fdef, 3), "Compiled functions can't take variable number of arguments or "
                                "use keyword-only arguments with defaults")
    for stmt in fdef.body:
        for node in ast.walk(stmt):
            if isinstance(node, _UNSUPPORTED):
                raise UnsupportedNodeError(ctx, node)
            if isinstance(node, ast.For) and node.orelse:
                raise NotSupportedError(ctx.range(node, 3), "else branches of for loops aren't supported")
            if isinstance(node, ast.While) and node.orelse:
                raise NotSupportedError(ctx.range(node, 5), "else branches of while loops aren't supported")
            if isinstance(node, ast.Call) and any(k.arg is None for k in node.keywords):
                raise NotSupportedError(ctx.range(node), "keyword-arg expansion (**kwargs) isn't supported")
            if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for t in targets:
                    if isinstance(t, ast.Attribute):
                        raise NotSupportedError(ctx.range(t), "assigning to module attributes isn't supported")
