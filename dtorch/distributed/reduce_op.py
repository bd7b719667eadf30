"""ReduceOp: SUM, AVG, PRODUCT, MIN, MAX (and bitwise ops), as torch.distributed.ReduceOp."""
from __future__ import annotations

import enum

from ._mpi import mpi


class ReduceOp(enum.Enum):
    SUM = "sum"
    AVG = "avg"
    PRODUCT = "product"
    MIN = "min"
    MAX = "max"
    BAND = "band"
    BOR = "bor"
    BXOR = "bxor"

    def __repr__(self) -> str:
        return f"<ReduceOp.{self.name}>"


_TABLES: dict = {}


def mpi_op(op: ReduceOp, is_bool: bool):
    """The MPI.Op for ``op`` (tables built once: this runs on every collective)."""
    table = _TABLES.get(is_bool)
    if table is None:
        table = _TABLES[is_bool] = _build(is_bool)
    return table[op]


def _build(is_bool: bool) -> dict:
    MPI = mpi()
    if is_bool:  # torch treats bool sums as logical or, products as logical and
        return {ReduceOp.SUM: MPI.LOR, ReduceOp.MAX: MPI.LOR, ReduceOp.BOR: MPI.LOR, ReduceOp.PRODUCT: MPI.LAND,
                ReduceOp.MIN: MPI.LAND, ReduceOp.BAND: MPI.LAND, ReduceOp.BXOR: MPI.LXOR}
    return {ReduceOp.SUM: MPI.SUM, ReduceOp.AVG: MPI.SUM, ReduceOp.PRODUCT: MPI.PROD, ReduceOp.MIN: MPI.MIN,
            ReduceOp.MAX: MPI.MAX, ReduceOp.BAND: MPI.BAND, ReduceOp.BOR: MPI.BOR, ReduceOp.BXOR: MPI.BXOR}
