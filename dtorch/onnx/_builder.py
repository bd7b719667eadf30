"""The ONNX graph being built: node and initializer lists, names, and the opset-dependent forms of common nodes."""
from __future__ import annotations

import numpy as np

_ONNX_TYPES = {"float32": "FLOAT", "float64": "DOUBLE", "float16": "FLOAT16", "int64": "INT64", "int32": "INT32",
               "int16": "INT16", "int8": "INT8", "uint8": "UINT8", "bool": "BOOL", "bfloat16": "BFLOAT16"}


class Builder:
    def __init__(self, onnx, opset: int, dynamic: bool) -> None:
        self.onnx, self.helper, self.opset, self.dynamic = onnx, onnx.helper, opset, dynamic
        self.nodes: list = []
        self.initializers: list = []
        self.names: dict[int, str] = {}  # jit value id -> ONNX name
        self.python: dict[int, object] = {}  # jit value id -> Python constant
        self.values: dict[int, object] = {}  # jit value id -> jit Value (for dtypes)
        self._n = 0

    def fresh(self, hint: str = "t") -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def onnx_type(self, dtype: str) -> int:
        return getattr(self.onnx.TensorProto, _ONNX_TYPES[dtype])

    @staticmethod
    def dtype_of(value) -> np.dtype:
        return np.dtype(value.dtype or "float32")

    # ---- nodes ---------------------------------------------------------------------------------
    def op(self, kind: str, inputs: list[str], **attrs) -> str:
        return self.op_n(kind, inputs, 1, **attrs)[0]

    def op_n(self, kind: str, inputs: list[str], n: int, **attrs) -> list[str]:
        outs = [self.fresh(kind.lower()) for _ in range(n)]
        self.nodes.append(self.helper.make_node(kind, inputs, outs, name=self.fresh(kind), **attrs))
        return outs

    def const(self, array: np.ndarray, name: str | None = None) -> str:
        name = name or self.fresh("const")
        self.initializers.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def axes_op(self, kind: str, x: str, axes: list[int], input_from: int) -> str:
        """Unsqueeze/Squeeze and friends: ``axes`` an attribute before opset ``input_from``, an input from it."""
        if self.opset >= input_from:
            return self.op(kind, [x, self.const(np.asarray(axes, np.int64))])
        return self.op(kind, [x], axes=axes)

    def reduce(self, kind: str, x: str, axes: list[int], keepdims: int = 1) -> str:
        return self.axes_op_kw(kind, x, axes, 13 if kind == "ReduceSum" else 18, keepdims=keepdims)

    def axes_op_kw(self, kind: str, x: str, axes: list[int], input_from: int, **attrs) -> str:
        if self.opset >= input_from:
            return self.op(kind, [x, self.const(np.asarray(axes, np.int64))], **attrs)
        return self.op(kind, [x], axes=axes, **attrs)

    # ---- operands ------------------------------------------------------------------------------
    def operands(self, node, xs: list[str], first: int = 0) -> list[str]:
        """Names for a binary op's two operands; a Python scalar becomes a constant of the tensor operand's dtype."""
        ins = node.inputs[first:first + 2]
        tensor = next((v for v in ins if v.kind == "Tensor"), None)
        return [xs[i] if v.kind == "Tensor" else self.const(np.asarray(self.python[v.id], self.dtype_of(tensor)))
                for i, v in enumerate(ins)]

    def scalar_like(self, value, like, name: str) -> str:
        if value.kind == "Tensor":
            return name
        return self.const(np.asarray(self.python[value.id], self.dtype_of(like)))

    def shape_input(self, node, attr: str) -> str:
        """A target shape: constant, or assembled from the inputs' run-time sizes where the trace recorded them."""
        shape = list(node.attrs[attr])
        sym = node.sym.get(attr) if self.dynamic else None
        if not sym:
            return self.const(np.asarray(shape, np.int64))
        dynamic = {pos: (inp, dim) for pos, inp, dim in sym}
        pieces = []
        for pos, size in enumerate(shape):
            if pos in dynamic:
                inp, dim = dynamic[pos]
                src = self.names[node.inputs[inp].id]
                sizes = self.op("Shape", [src])
                pieces.append(self.op("Gather", [sizes, self.const(np.asarray([dim], np.int64))], axis=0))
            else:
                pieces.append(self.const(np.asarray([size], np.int64)))
        return self.op("Concat", pieces, axis=0)
