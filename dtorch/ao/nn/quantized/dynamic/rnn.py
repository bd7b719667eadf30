"""torch.ao.nn.quantized.dynamic's LSTM, GRU, LSTMCell, GRUCell and RNNCell: int8 (or float16) weights.

Each layer and direction keeps its input and hidden weights as two ``LinearPackedParams`` (int8 values
plus scale and zero point per tensor or per output channel, or float16; float32 bias), so the
state_dict holds the small weights. Activations are quantized per call as torch's fbgemm path does
(``_rnn_layer.py``). Like torch's: no ``proj_size``, batched (3-D) input only, and the float module
needs biases. Beyond torch, a cell's ``bias_ih``/``bias_hh`` are the biases it runs with. As with the
dynamic Linear (numpy has no int8 GEMM), these layers save memory, not time: bench/deploy.py's ``lstm_lm``.
"""
from __future__ import annotations

from ..... import _creation
from ....._dtype import dtype, float16, qint8
from ....._ops.sampling import randn
from .....nn.modules.container import ModuleList
from .....nn.modules.module import Module
from .....nn.modules.rnn import GRU as _FloatGRU
from .....nn.modules.rnn import LSTM as _FloatLSTM
from .....nn.modules.rnn import GRUCell as _FloatGRUCell
from .....nn.modules.rnn import LSTMCell as _FloatLSTMCell
from .....nn.modules.rnn import RNNBase as _FloatRNNBase
from .....nn.modules.rnn import RNNCell as _FloatRNNCell
from .....nn.modules.rnn import RNNCellBase as _FloatRNNCellBase
from .....nn.modules.rnn import _check_config
from .....nn.utils.rnn import PackedSequence
from .....tensor import Tensor
from ....quantization._qtensor import quantize_per_tensor
from ....quantization.qconfig import default_dynamic_qconfig
from ._rnn_layer import quantized_rnn_layer
from .linear import LinearPackedParams, _quantize_weight

__all__ = ["PackedParameter", "RNNBase", "LSTM", "GRU", "RNNCellBase", "RNNCell", "LSTMCell", "GRUCell",
           "pack_weight_bias"]

_GATES = {"LSTM": 4, "GRU": 3}


def pack_weight_bias(qweight: Tensor, bias: Tensor | None, dtype: dtype) -> LinearPackedParams:
    """One weight (a qint8 QTensor, or float for float16) and its bias, packed as the layers store them."""
    packed = LinearPackedParams(dtype)
    packed.set_weight_bias(qweight, bias)
    return packed


def _arrays(p: LinearPackedParams) -> tuple:
    """(weight, scale, zero_point, bias) Tensors (scale, zero_point None for float16) for the layer op."""
    if p.dtype is qint8:
        return p.weight, p.scale, p.zero_point, p.bias
    return p.weight, None, None, p.bias


def _weight_dtype(qconfig) -> tuple:
    """(observer factory, dtype) of a float module's qconfig, as torch's from_float picks them."""
    method = qconfig.weight if qconfig is not None and qconfig.weight is not None else default_dynamic_qconfig.weight
    dt = method().dtype
    if dt not in (qint8, float16):
        raise RuntimeError(f"Unsupported dtype for dynamic RNN quantization: {dt}")
    return method, dt


def _quantize(weight: Tensor, method, dt: dtype) -> Tensor:
    if dt is not qint8:
        return weight.detach().float()
    observer = method()
    observer(weight)
    return _quantize_weight(weight.detach().float(), observer)


def _random_packed(rows: int, cols: int, dtype: dtype, scale: float) -> LinearPackedParams:
    """torch's placeholder weights of a fresh module (random, quantized with a fixed scale)."""
    w = randn(rows, cols)
    if dtype is qint8:
        w = quantize_per_tensor(w, scale, 0, qint8)
    return pack_weight_bias(w, randn(rows), dtype)


def _short_repr(module: Module, hidden: tuple) -> str:
    """Module.__repr__ without the packed-weight children, as torch prints its quantized RNNs."""
    lines = module.extra_repr().split("\n") if module.extra_repr() else []
    for name, child in module._modules.items():
        if not isinstance(child, hidden):
            lines.append(f"({name}): " + repr(child).replace("\n", "\n  "))
    if not lines:
        return module._get_name() + "()"
    if len(lines) == 1:
        return f"{module._get_name()}({lines[0]})"
    return module._get_name() + "(\n  " + "\n  ".join(lines) + "\n)"


class CellParams(Module):
    """One layer and direction: the packed input weight ``ih`` and hidden weight ``hh`` (with their biases)."""

    def __init__(self, ih: LinearPackedParams, hh: LinearPackedParams) -> None:
        super().__init__()
        self.ih, self.hh = ih, hh


class PackedParameter(Module):
    """torch's holder of one layer and direction's cell parameters (``param``)."""

    def __init__(self, param: CellParams) -> None:
        super().__init__()
        self.param = param


class RNNBase(Module):
    """The stacked, optionally bidirectional dynamic quantized LSTM/GRU (the float RNNBase's shape checks)."""

    _FLOAT_MODULE = (_FloatLSTM, _FloatGRU)
    _version = 2
    extra_repr = _FloatRNNBase.extra_repr
    get_expected_hidden_size = _FloatRNNBase.get_expected_hidden_size
    check_hidden_size = _FloatRNNBase.check_hidden_size
    check_forward_args = _FloatRNNBase.check_forward_args
    permute_hidden = _FloatRNNBase.permute_hidden

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: dtype = qint8) -> None:
        super().__init__()
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.dtype = float(dropout), bidirectional, dtype
        self.proj_size = 0
        self.version = 2
        self.training = False
        _check_config(input_size, hidden_size, num_layers, bias, batch_first, dropout, 0)
        if mode not in _GATES:
            raise ValueError("Unrecognized RNN mode: " + mode)
        if dtype not in (qint8, float16):
            raise RuntimeError("Unsupported dtype specified for dynamic quantized LSTM!")
        gates, nd = _GATES[mode] * hidden_size, 2 if bidirectional else 1
        self._all_weight_values = ModuleList([
            PackedParameter(CellParams(_random_packed(gates, input_size if layer == 0 else hidden_size * nd, dtype,
                                                      0.1), _random_packed(gates, hidden_size, dtype, 0.1)))
            for layer in range(num_layers) for _ in range(nd)])

    def _get_name(self) -> str:
        return "DynamicQuantizedRNN"

    def __repr__(self) -> str:
        return _short_repr(self, (PackedParameter, ModuleList))

    check_input = _FloatRNNBase._check_input_shape  # int8 weights: no dtype match to check

    # ---- weights ----
    def _cells(self) -> list:
        return [m.param for m in self._all_weight_values]

    def _names(self):
        for layer in range(self.num_layers):
            for direction in range(2 if self.bidirectional else 1):
                yield layer, "_reverse" if direction == 1 else ""

    def _weight_bias(self) -> dict:
        """{"weight": {"weight_ih_l0": ..., ...}, "bias": {"bias_ih_l0": ..., ...}}, as torch's."""
        out: dict = {"weight": {}, "bias": {}}
        for (layer, suffix), cell in zip(self._names(), self._cells()):
            for part, packed in (("ih", cell.ih), ("hh", cell.hh)):
                out["weight"][f"weight_{part}_l{layer}{suffix}"] = packed.qweight()
                out["bias"][f"bias_{part}_l{layer}{suffix}"] = packed.bias
        return out

    def get_weight(self) -> dict:
        return self._weight_bias()["weight"]

    def get_bias(self) -> dict:
        return self._weight_bias()["bias"]

    def set_weight_bias(self, weight_bias_dict: dict) -> None:
        """Repack from flat ``weight_ih_l0``/``bias_ih_l0``... entries (QTensors for qint8, floats for float16)."""
        cells = []
        for layer, suffix in self._names():
            packed = []
            for part in ("ih", "hh"):
                w = weight_bias_dict[f"weight_{part}_l{layer}{suffix}"]
                packed.append(pack_weight_bias(w, weight_bias_dict[f"bias_{part}_l{layer}{suffix}"],
                                               qint8 if w.dtype is qint8 else float16))
            cells.append(PackedParameter(CellParams(*packed)))
        self._all_weight_values = ModuleList(cells)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> "RNNBase":
        """The dynamic quantized twin of a float ``nn.LSTM``/``nn.GRU`` carrying a ``qconfig``."""
        if type(mod) not in (_FloatLSTM, _FloatGRU):
            raise AssertionError("nn.quantized.dynamic.RNNBase.from_float only works for nn.LSTM and nn.GRU")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined")
        method, dt = _weight_dtype(mod.qconfig)
        if getattr(mod, "proj_size", 0):
            raise RuntimeError("quantized LSTM with projections is not supported")
        if not mod.bias:
            raise AssertionError("mod.bias must be True")
        qcls = LSTM if mod.mode == "LSTM" else GRU
        q = qcls(mod.input_size, mod.hidden_size, mod.num_layers, mod.bias, mod.batch_first, mod.dropout,
                 mod.bidirectional, dt)
        flat = {}
        for layer, suffix in q._names():
            for part in ("ih", "hh"):
                flat[f"weight_{part}_l{layer}{suffix}"] = _quantize(getattr(mod, f"weight_{part}_l{layer}{suffix}"),
                                                                    method, dt)
                flat[f"bias_{part}_l{layer}{suffix}"] = getattr(mod, f"bias_{part}_l{layer}{suffix}")
        q.set_weight_bias(flat)
        return q

    # ---- forward: the float RNNBase's stack and batch_first handling, with quantized layers ----
    _layers = _FloatRNNBase._layers
    _run = _FloatRNNBase._run

    def _layer(self, k: int, x: Tensor, h: Tensor, c: Tensor | None, batch_sizes, reverse: bool) -> tuple:
        cell = self._cells()[k]
        return quantized_rnn_layer(self.mode, x, h, c, _arrays(cell.ih), _arrays(cell.hh), batch_sizes, reverse)

    def _forward(self, input, hx, zeros: int):
        """Shared LSTM/GRU forward; ``zeros``: how many zero states make the default ``hx``."""
        packed = isinstance(input, PackedSequence)
        if packed:
            data, batch_sizes, sorted_indices, unsorted_indices = input
            max_batch = int(batch_sizes[0])
        else:
            data, batch_sizes, sorted_indices, unsorted_indices = input, None, None, None
            max_batch = input.size(0) if self.batch_first else input.size(1)
        if hx is None:
            z = _creation.zeros(self.num_layers * (2 if self.bidirectional else 1), max_batch, self.hidden_size,
                                dtype=data.dtype, device=data.device)
            hx = (z, z) if zeros == 2 else z
        else:
            hx = self.permute_hidden(hx, sorted_indices)
        self.check_forward_args(data, hx, batch_sizes)
        out, hidden = self._run(data, tuple(hx) if zeros == 2 else hx, batch_sizes)
        hidden = self.permute_hidden(hidden, unsorted_indices)
        if packed:
            return PackedSequence(out, batch_sizes, sorted_indices, unsorted_indices), hidden
        return out, hidden


class LSTM(RNNBase):
    """A dynamic quantized LSTM: float in, float out; ``(output, (h_n, c_n))`` as ``nn.LSTM``."""

    _FLOAT_MODULE = _FloatLSTM
    permute_hidden = _FloatLSTM.permute_hidden
    get_expected_cell_size = _FloatLSTM.get_expected_cell_size
    check_forward_args = _FloatLSTM.check_forward_args

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def _get_name(self) -> str:
        return "DynamicQuantizedLSTM"

    def forward(self, input, hx: tuple | None = None):
        return self._forward(input, hx, 2)


class GRU(RNNBase):
    """A dynamic quantized GRU: float in, float out; ``(output, h_n)`` as ``nn.GRU``."""

    _FLOAT_MODULE = _FloatGRU

    def __init__(self, *args, **kwargs) -> None:
        super().__init__("GRU", *args, **kwargs)

    def _get_name(self) -> str:
        return "DynamicQuantizedGRU"

    def forward(self, input, hx: Tensor | None = None):
        return self._forward(input, hx, 1)


class RNNCellBase(Module):
    """One dynamic quantized recurrent step: packed ``_packed_weight_ih``/``_packed_weight_hh`` with biases."""

    __constants__ = ["input_size", "hidden_size", "bias"]
    _FLOAT_MODULE = (_FloatLSTMCell, _FloatGRUCell, _FloatRNNCell)
    extra_repr = _FloatRNNCellBase.extra_repr

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, num_chunks: int = 4,
                 dtype: dtype = qint8) -> None:
        super().__init__()
        if dtype not in (qint8, float16):
            raise RuntimeError("Unsupported dtype specified for dynamic quantized RNN cell!")
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        self.weight_dtype = dtype
        self._packed_weight_ih = _random_packed(num_chunks * hidden_size, input_size, dtype, 1.0)
        self._packed_weight_hh = _random_packed(num_chunks * hidden_size, hidden_size, dtype, 1.0)

    def _get_name(self) -> str:
        return "DynamicQuantizedRNNBase"

    def __repr__(self) -> str:
        return _short_repr(self, (LinearPackedParams,))

    @property
    def bias_ih(self) -> Tensor | None:
        return self._packed_weight_ih.bias

    @property
    def bias_hh(self) -> Tensor | None:
        return self._packed_weight_hh.bias

    def check_forward_input(self, input: Tensor) -> None:
        if input.dim() != 2:
            raise RuntimeError(f"{self._get_name()}: expected a 2-D (batch, input_size) input, got {input.dim()}-D")
        if input.size(1) != self.input_size:
            raise RuntimeError(f"input has inconsistent input_size: got {input.size(1)}, expected {self.input_size}")

    def check_forward_hidden(self, input: Tensor, hx: Tensor, hidden_label: str = "") -> None:
        if input.size(0) != hx.size(0):
            raise RuntimeError(f"Input batch size {input.size(0)} doesn't match hidden{hidden_label} batch size "
                               f"{hx.size(0)}")
        if hx.size(1) != self.hidden_size:
            raise RuntimeError(f"hidden{hidden_label} has inconsistent hidden_size: got {hx.size(1)}, expected "
                               f"{self.hidden_size}")

    def _zeros(self, input: Tensor) -> Tensor:
        return _creation.zeros(input.size(0), self.hidden_size, dtype=input.dtype, device=input.device)

    def _step(self, mode: str, input: Tensor, h: Tensor, c: Tensor | None = None) -> tuple:
        res = quantized_rnn_layer(mode, input.unsqueeze(0), h, c, _arrays(self._packed_weight_ih),
                                  _arrays(self._packed_weight_hh))
        return res[1:]

    def _weight_bias(self) -> dict:
        ih, hh = self._packed_weight_ih, self._packed_weight_hh
        return {"weight": {"weight_ih": ih.qweight(), "weight_hh": hh.qweight()},
                "bias": {"bias_ih": ih.bias, "bias_hh": hh.bias}}

    def get_weight(self) -> dict:
        return self._weight_bias()["weight"]

    def get_bias(self) -> dict:
        return self._weight_bias()["bias"]

    def set_weight_bias(self, weight_bias_dict: dict) -> None:
        w, b = weight_bias_dict["weight"], weight_bias_dict["bias"]
        self._packed_weight_ih = pack_weight_bias(w["weight_ih"], b["bias_ih"], self.weight_dtype)
        self._packed_weight_hh = pack_weight_bias(w["weight_hh"], b["bias_hh"], self.weight_dtype)

    @classmethod
    def from_float(cls, mod: Module, use_precomputed_fake_quant: bool = False) -> "RNNCellBase":
        """The dynamic quantized twin of a float ``nn.LSTMCell``/``nn.GRUCell``/``nn.RNNCell`` with a ``qconfig``."""
        if type(mod) not in RNNCellBase._FLOAT_MODULE:
            raise AssertionError("nn.quantized.dynamic.RNNCellBase.from_float only works for nn.LSTMCell, "
                                 "nn.GRUCell and nn.RNNCell")
        if not hasattr(mod, "qconfig"):
            raise AssertionError("Input float module must have qconfig defined")
        method, dt = _weight_dtype(mod.qconfig)
        if type(mod) is _FloatRNNCell:
            q = RNNCell(mod.input_size, mod.hidden_size, bias=mod.bias, nonlinearity=mod.nonlinearity, dtype=dt)
        else:
            q = (LSTMCell if type(mod) is _FloatLSTMCell else GRUCell)(mod.input_size, mod.hidden_size,
                                                                       bias=mod.bias, dtype=dt)
        if not mod.bias:
            raise AssertionError("mod.bias must be True")
        q.set_weight_bias({"weight": {"weight_ih": _quantize(mod.weight_ih, method, dt),
                                      "weight_hh": _quantize(mod.weight_hh, method, dt)},
                           "bias": {"bias_ih": mod.bias_ih, "bias_hh": mod.bias_hh}})
        return q


class RNNCell(RNNCellBase):
    """A dynamic quantized Elman RNN step (tanh or ReLU)."""

    __constants__ = ["input_size", "hidden_size", "bias", "nonlinearity"]

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: dtype = qint8) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=1, dtype=dtype)
        self.nonlinearity = nonlinearity

    def _get_name(self) -> str:
        return "DynamicQuantizedRNNCell"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        self.check_forward_input(input)
        hx = self._zeros(input) if hx is None else hx
        self.check_forward_hidden(input, hx, "")
        if self.nonlinearity not in ("tanh", "relu"):
            raise RuntimeError(f"Unknown nonlinearity: {self.nonlinearity}")
        return self._step("RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU", input, hx)[0]


class LSTMCell(RNNCellBase):
    """A dynamic quantized LSTM step: ``(h_1, c_1)``."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, num_chunks=4, **kwargs)

    def _get_name(self) -> str:
        return "DynamicQuantizedLSTMCell"

    def forward(self, input: Tensor, hx: tuple | None = None) -> tuple:
        self.check_forward_input(input)
        hx = (self._zeros(input), self._zeros(input)) if hx is None else hx
        self.check_forward_hidden(input, hx[0], "[0]")
        self.check_forward_hidden(input, hx[1], "[1]")
        h, c = self._step("LSTM", input, hx[0], hx[1])
        return h, c


class GRUCell(RNNCellBase):
    """A dynamic quantized GRU step."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: dtype = qint8) -> None:
        super().__init__(input_size, hidden_size, bias, num_chunks=3, dtype=dtype)

    def _get_name(self) -> str:
        return "DynamicQuantizedGRUCell"

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        self.check_forward_input(input)
        hx = self._zeros(input) if hx is None else hx
        self.check_forward_hidden(input, hx, "")
        return self._step("GRU", input, hx)[0]

