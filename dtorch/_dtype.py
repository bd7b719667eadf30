"""dtype objects and torch's type-promotion rules."""
from __future__ import annotations

import numpy as np


class dtype:
    """A tensor element type (``dtorch.float32`` ...), mapping to a numpy dtype."""

    __slots__ = ("name", "np", "itemsize", "is_floating_point", "is_signed", "is_complex", "_category",
                 "scalar_name", "cpp_name")

    def __init__(self, name: str, np_dtype: type, category: int, scalar_name: str, cpp_name: str) -> None:
        self.name = name
        self.scalar_name = scalar_name  # torch's ScalarType word in messages: 'Float', 'Long'
        self.cpp_name = cpp_name  # the C++ type torch's messages print: 'float', 'long int', 'c10::Half'
        self.np = np.dtype(np_dtype)
        self.itemsize = self.np.itemsize
        self.is_floating_point = category == 2
        self.is_complex = category == 3
        self.is_signed = name != "uint8" and name != "bool"
        self._category = category  # 0 bool, 1 integer, 2 floating, 3 complex

    def __repr__(self) -> str:
        return f"dtorch.{self.name}"

    def __reduce__(self):
        return self.name

    def to_real(self) -> "dtype":
        return _TO_REAL.get(self, self)

    def to_complex(self) -> "dtype":
        if self.is_complex:
            return self
        if not self.is_floating_point:
            raise RuntimeError(f"to_complex is only supported for floating point types, got {self.scalar_name}")
        return complex128 if self is float64 else complex64


bool_ = dtype("bool", np.bool_, 0, "Bool", "bool")
uint8 = dtype("uint8", np.uint8, 1, "Byte", "unsigned char")
int8 = dtype("int8", np.int8, 1, "Char", "signed char")
int16 = dtype("int16", np.int16, 1, "Short", "short int")
int32 = dtype("int32", np.int32, 1, "Int", "int")
int64 = dtype("int64", np.int64, 1, "Long", "long int")
float16 = dtype("float16", np.float16, 2, "Half", "c10::Half")
float32 = dtype("float32", np.float32, 2, "Float", "float")
float64 = dtype("float64", np.float64, 2, "Double", "double")

complex64 = dtype("complex64", np.complex64, 3, "ComplexFloat", "c10::complex<float>")
complex128 = dtype("complex128", np.complex128, 3, "ComplexDouble", "c10::complex<double>")
_TO_REAL = {complex64: float32, complex128: float64}

ALL_DTYPES = (bool_, uint8, int8, int16, int32, int64, float16, float32, float64)
COMPLEX_DTYPES = (complex64, complex128)


class _LazyNumpyDtype(dtype):
    """bfloat16: numpy has none; ml_dtypes (JAX's) provides it, imported on first use (it takes ~1 s)."""

    __slots__ = ()

    def __init__(self) -> None:
        for slot, value in (("name", "bfloat16"), ("scalar_name", "BFloat16"), ("cpp_name", "c10::BFloat16"),
                            ("np", None), ("itemsize", 2), ("is_floating_point", True), ("is_complex", False),
                            ("is_signed", True), ("_category", 2)):
            getattr(dtype, slot).__set__(self, value)

    @property
    def np(self) -> np.dtype:
        value = dtype.np.__get__(self, dtype)
        if value is None:
            import ml_dtypes

            value = np.dtype(ml_dtypes.bfloat16)
            dtype.np.__set__(self, value)
            _FROM_NP[value] = self
        return value


bfloat16 = _LazyNumpyDtype()
# quantized element types: a quantized tensor (dtorch.ao.quantization) stores their integers in the numpy dtype
qint8 = dtype("qint8", np.int8, 1, "QInt8", "c10::qint8")
quint8 = dtype("quint8", np.uint8, 1, "QUInt8", "c10::quint8")
qint32 = dtype("qint32", np.int32, 1, "QInt32", "c10::qint32")
quint8.is_signed = False
QUANTIZED_DTYPES = (qint8, quint8, qint32)
_FROM_NP = {d.np: d for d in (*ALL_DTYPES, *COMPLEX_DTYPES)}  # bfloat16 joins when ml_dtypes is first imported
_BY_NAME = {d.name: d for d in (*ALL_DTYPES, *COMPLEX_DTYPES, bfloat16)}
_BY_NAME.update(float="float32", double="float64", half="float16", long="int64", int="int32", short="int16",
                cfloat="complex64", cdouble="complex128")

_default_float = [float32]


def get_default_dtype() -> dtype:
    """The dtype of Python floats turned into tensors (float32 unless changed)."""
    return _default_float[0]


def set_default_dtype(d: dtype) -> None:
    if not isinstance(d, dtype) or not d.is_floating_point:
        raise TypeError(f"only floating-point types are supported as the default type, got {d}")
    _default_float[0] = d


def from_numpy_dtype(np_dtype) -> dtype:
    if getattr(np_dtype, "name", None) == "bfloat16" or getattr(np_dtype, "__name__", None) == "bfloat16":
        bfloat16.np  # noqa: B018  (registers ml_dtypes' bfloat16)
    try:
        return _FROM_NP[np.dtype(np_dtype)]
    except KeyError:
        raise TypeError(
            f"can't convert np.ndarray of type {np.dtype(np_dtype)}. The only supported types are: "
            "float64, float32, float16, complex64, complex128, int64, int32, int16, int8, uint8, and bool."
        ) from None


def to_dtype(d) -> dtype:
    """Accept a dtorch dtype, a numpy dtype, a Python type or a name."""
    if isinstance(d, dtype):
        return d
    if d is float:
        return float64
    if d is int:
        return int64
    if d is bool:
        return bool_
    if d is complex:
        return default_complex()
    if isinstance(d, str) and d in _BY_NAME:
        v = _BY_NAME[d]
        return _BY_NAME[v] if isinstance(v, str) else v
    if isinstance(d, type) and isinstance(getattr(d, "dtype", None), dtype):  # a legacy type: dtorch.LongTensor
        return d.dtype
    return from_numpy_dtype(d)


def default_complex() -> dtype:
    """The complex dtype of Python complex numbers: it follows the default float dtype, as torch's."""
    return complex128 if _default_float[0] is float64 else complex64


def _promote_pair(a: dtype, b: dtype) -> dtype:
    if a is b:
        return a
    if a._category != b._category:
        hi, lo = (a, b) if a._category > b._category else (b, a)
        if hi._category == 3 and lo is float64:
            return complex128  # complex keeps the wider float's precision
        return hi  # complex beats floating beats integer beats bool, whatever the widths
    return _FROM_NP[np.promote_types(a.np, b.np)]


_PAIR_CACHE: dict = {}


def promote_types(a: dtype, b: dtype) -> dtype:
    """torch.promote_types: the smallest dtype both ``a`` and ``b`` convert to."""
    key = (a, b)
    r = _PAIR_CACHE.get(key)
    if r is None:
        r = _PAIR_CACHE[key] = _promote_pair(a, b)
    return r


def scalar_dtype(x) -> dtype:
    """The dtype a Python scalar takes on its own (torch's 'wrapped number')."""
    if isinstance(x, bool):
        return bool_
    if isinstance(x, int):
        return int64
    if isinstance(x, complex):
        return default_complex()
    return _default_float[0]


def combine_categories(higher: dtype | None, lower: dtype | None) -> dtype | None:
    """torch's rule: a lower-priority operand only matters when its category is higher."""
    if higher is None:
        return lower
    if lower is None:
        return higher
    if higher._category == 3:
        return higher
    if lower._category == 3:
        return higher.to_complex() if higher.is_floating_point else lower  # float keeps its precision
    if higher.is_floating_point:
        return higher
    if higher is bool_ or lower._category > higher._category:
        return promote_types(higher, lower)
    return higher


def result_type(*operands) -> dtype:
    """torch.result_type over tensors and Python scalars.

    Dimensioned tensors take precedence over zero-dim tensors, which take precedence
    over Python scalars; a lower group changes the result only by a higher category
    (int tensor * 2.5 -> default float; float16 tensor * float64 scalar tensor -> float16).
    """
    dim_r = zero_r = scalar_r = None
    for x in operands:
        d = getattr(x, "dtype", None)
        if isinstance(d, dtype):
            if x._data.ndim:
                dim_r = d if dim_r is None else promote_types(dim_r, d)
            else:
                zero_r = d if zero_r is None else promote_types(zero_r, d)
        else:
            d = scalar_dtype(x)
            scalar_r = d if scalar_r is None else promote_types(scalar_r, d)
    return combine_categories(dim_r, combine_categories(zero_r, scalar_r))


class finfo:
    """torch.finfo: the limits of a floating-point dtype (the default dtype when none is given)."""

    __slots__ = ("bits", "eps", "max", "min", "tiny", "smallest_normal", "resolution", "dtype")

    def __init__(self, type: dtype | None = None) -> None:
        d = get_default_dtype() if type is None else to_dtype(type).to_real()  # complex: its parts' limits
        if not d.is_floating_point:
            raise TypeError("dtorch.finfo() requires a floating point input type. Use dtorch.iinfo to handle "
                            "'dtorch.finfo'")
        f = np.finfo(d.np)
        self.bits, self.dtype = int(f.bits), d.name
        self.eps, self.max, self.min = float(f.eps), float(f.max), float(f.min)
        self.tiny = self.smallest_normal = float(f.smallest_normal)
        self.resolution = 10.0 ** -int(f.precision)

    def __repr__(self) -> str:
        return (f"finfo(resolution={self.resolution:g}, min={self.min:g}, max={self.max:g}, eps={self.eps:g}, "
                f"smallest_normal={self.smallest_normal:g}, tiny={self.tiny:g}, dtype={self.dtype})")


class iinfo:
    """torch.iinfo: the limits of an integer dtype."""

    __slots__ = ("bits", "max", "min", "dtype")

    def __init__(self, type: dtype) -> None:
        d = to_dtype(type)
        if d is bool_:
            raise TypeError("dtorch.bool is not supported by dtorch.iinfo")
        if d._category != 1:
            raise TypeError("dtorch.iinfo() requires an integer input type. Use dtorch.finfo to handle "
                            "'dtorch.iinfo'")
        i = np.iinfo(d.np)
        self.bits, self.max, self.min, self.dtype = int(i.bits), int(i.max), int(i.min), d.name

    def __repr__(self) -> str:
        return f"iinfo(min={self.min:g}, max={self.max:g}, dtype={self.dtype})"
