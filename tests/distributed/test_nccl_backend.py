"""The NCCL backend's CPU-checkable parts: dtype/op tables, the AVG fallback, and CPU tensors under 'nccl'.

The tables are checked against a stand-in for ``cupy.cuda.nccl``'s constants (no NCCL call is made or
pretended); what runs NCCL is in tests/cuda/test_nccl.py.
"""
from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest

from dtorch.distributed import ReduceOp
from dtorch.distributed import nccl

ROOT = pathlib.Path(__file__).resolve().parents[2]
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))

NAMES = ["NCCL_FLOAT16", "NCCL_BFLOAT16", "NCCL_FLOAT32", "NCCL_FLOAT64", "NCCL_INT8", "NCCL_UINT8", "NCCL_INT32",
         "NCCL_UINT32", "NCCL_INT64", "NCCL_UINT64", "NCCL_SUM", "NCCL_PROD", "NCCL_MIN", "NCCL_MAX", "NCCL_AVG"]


def _lib(without=(), version=21800):
    """Constants named as cupy.cuda.nccl's (values are the names, so a wrong lookup shows)."""
    lib = types.SimpleNamespace(**{n: n for n in NAMES if n not in without})
    lib.get_version = lambda: version
    return lib


@pytest.mark.parametrize("dtype,const", [
    (np.float16, "NCCL_FLOAT16"), (np.float32, "NCCL_FLOAT32"), (np.float64, "NCCL_FLOAT64"),
    (np.int8, "NCCL_INT8"), (np.uint8, "NCCL_UINT8"), (np.int32, "NCCL_INT32"), (np.uint32, "NCCL_UINT32"),
    (np.int64, "NCCL_INT64"), (np.uint64, "NCCL_UINT64"), (np.bool_, "NCCL_UINT8"),
], ids=lambda v: getattr(v, "__name__", str(v)))
def test_dtype_table(dtype, const):
    assert nccl.nccl_dtype(_lib(), dtype) == const


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.complex64])
def test_unsupported_dtype_is_named(dtype):
    name = np.dtype(dtype).name
    with pytest.raises(TypeError, match=f"dtype {name} is not supported by NCCL reductions"):
        nccl.nccl_dtype(_lib(), dtype)


def test_bfloat16_needs_the_constant():
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert nccl.nccl_dtype(_lib(), ml_dtypes.bfloat16) == "NCCL_BFLOAT16"
    with pytest.raises(TypeError, match="dtype bfloat16 is not supported"):
        nccl.nccl_dtype(_lib(without=("NCCL_BFLOAT16",)), ml_dtypes.bfloat16)


@pytest.mark.parametrize("op,const", [(ReduceOp.SUM, "NCCL_SUM"), (ReduceOp.PRODUCT, "NCCL_PROD"),
                                      (ReduceOp.MIN, "NCCL_MIN"), (ReduceOp.MAX, "NCCL_MAX"),
                                      (ReduceOp.AVG, "NCCL_AVG")], ids=str)
def test_op_table(op, const):
    assert nccl.nccl_op(_lib(), op, np.float32, has_avg=True) == (const, False)


def test_avg_falls_back_to_sum_then_divide():
    assert nccl.nccl_op(_lib(), ReduceOp.AVG, np.float16, has_avg=False) == ("NCCL_SUM", True)
    assert nccl.nccl_op(_lib(), ReduceOp.SUM, np.float16, has_avg=False) == ("NCCL_SUM", False)


def test_has_avg_needs_constant_and_nccl_2_10():
    assert nccl.has_avg(_lib(version=21000))
    assert not nccl.has_avg(_lib(version=20907))
    assert not nccl.has_avg(_lib(without=("NCCL_AVG",)))


@pytest.mark.parametrize("op,const", [(ReduceOp.SUM, "NCCL_MAX"), (ReduceOp.MAX, "NCCL_MAX"),
                                      (ReduceOp.BOR, "NCCL_MAX"), (ReduceOp.PRODUCT, "NCCL_MIN"),
                                      (ReduceOp.MIN, "NCCL_MIN"), (ReduceOp.BAND, "NCCL_MIN")], ids=str)
def test_bool_reduces_as_or_and(op, const):
    assert nccl.nccl_op(_lib(), op, np.bool_, has_avg=True) == (const, False)


@pytest.mark.parametrize("op,dtype", [(ReduceOp.BAND, np.int32), (ReduceOp.BXOR, np.int64),
                                      (ReduceOp.BXOR, np.bool_)], ids=str)
def test_ops_nccl_lacks_are_refused(op, dtype):
    with pytest.raises(ValueError, match=f"ReduceOp.{op.name} is not supported"):
        nccl.nccl_op(_lib(), op, dtype, has_avg=True)


SCRIPT = """
import sys
import numpy as np
import dtorch, dtorch.distributed as dist
dist.init_process_group("nccl")
assert dist.get_backend() == "nccl"
r, n = dist.get_rank(), dist.get_world_size()
t = dtorch.tensor([1.0, 2.0]) * (r + 1)
dist.all_reduce(t, op=dist.ReduceOp.AVG)
assert t.tolist() == [sum(i + 1 for i in range(n)) / n * v for v in (1.0, 2.0)], t
b = dtorch.full((3,), float(r))
dist.broadcast(b, src=1)
assert b.tolist() == [1.0] * 3
out = dtorch.zeros(2 * n)
dist.all_gather_into_tensor(out, dtorch.tensor([r, r], dtype=dtorch.float32))
assert out.tolist() == [float(i) for i in range(n) for _ in (0, 1)]
rs = dtorch.zeros(1)
dist.reduce_scatter_tensor(rs, dtorch.arange(float(n)))
assert rs.tolist() == [float(r * n)]
if not dtorch.cuda.is_available():  # with a GPU, 'nccl' barriers run on it (as torch's)
    dist.barrier()
    assert "dtorch.distributed.nccl" not in sys.modules, "CPU tensors must not load the NCCL backend"
assert dist.GroupMember.WORLD.nccl is None
sys.stdout.write(f"OK-{r}\\n")  # one write: ranks' lines interleave by writes
"""


@pytest.mark.skipif(MPIEXEC is None or not __import__("importlib").util.find_spec("mpi4py"),
                    reason="needs mpi4py and mpiexec (pip install 'dtorch[mpi]')")
def test_cpu_tensors_under_nccl_go_through_mpi(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(SCRIPT))
    p = subprocess.run([MPIEXEC, "-n", "2", sys.executable, str(script)], capture_output=True, text=True,
                       timeout=120, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert "OK-0" in out and "OK-1" in out


# ---- the unique id: CuPy >= 13 hands out bytes, older CuPy a tuple of C chars ------------------------
def test_unique_id_bytes_from_bytes_and_from_signed_or_unsigned_chars():
    raw = bytes(range(128))[::-1]
    want = np.frombuffer(raw, np.uint8)
    signed = tuple(int(v) for v in want.view(np.int8))           # x86's char
    unsigned = tuple(int(v) for v in want)                         # ARM's char
    for made in (raw, bytearray(raw), signed, unsigned):
        assert np.array_equal(nccl.unique_id_bytes(made), want)
    with pytest.raises(RuntimeError, match="127 bytes, expected 128"):
        nccl.unique_id_bytes(raw[:127])


def test_communicator_gets_the_id_form_its_cupy_takes():
    uid = np.frombuffer(bytes(range(128, 256)), np.uint8)
    calls = []

    def binding(accepts):
        def make(size, comm_id, rank):
            calls.append(type(comm_id).__name__)
            if not accepts(comm_id):
                raise TypeError("wrong id type")
            return (size, comm_id, rank)
        return types.SimpleNamespace(NcclCommunicator=make)

    assert nccl._communicator(binding(lambda c: isinstance(c, bytes)), 2, uid, 1) == (2, bytes(uid), 1)
    calls.clear()
    size, got, rank = nccl._communicator(binding(lambda c: isinstance(c, tuple) and min(c) < 0), 2, uid, 0)
    assert calls == ["bytes", "tuple"] and got[0] == -128 and bytes(np.array(got, np.int8).view(np.uint8)) == bytes(uid)


def test_the_installed_cupy_unique_id_and_communicator_signature():
    """With CuPy and an NCCL library installed (no GPU needed): the id converts, and the binding's
    documented id type is one our forms cover."""
    lib = pytest.importorskip("cupy.cuda.nccl")
    if not getattr(lib, "available", False):
        pytest.skip("CuPy found no NCCL library (pip install nvidia-nccl-cu12)")
    made = lib.get_unique_id()
    assert nccl.unique_id_bytes(made).size == nccl.UNIQUE_ID_BYTES
    doc = lib.NcclCommunicator.__doc__ or ""
    assert "bytes commId" in doc or "tuple commId" in doc, doc[:200]
