"""DDP's intra-node gradient averaging through an MPI shared-memory window (``DTORCH_DDP_COMM=shm``).

One row per rank and a flag area in one window (``distributed/_node.py``); every parameter's range is
split into one part per rank. A rank copies the parts others own into its row and sets a ready flag;
each owner averages its part once all flags are set (eagerly, from later gradient hooks) and sets an
averaged flag; the others copy it back. No barriers: flags with a sequence number make rows reusable
across steps, and ``finish`` waits with the group's deadline. The protocol, why rows need no barrier,
and the measurements: docs/distributed.md, "DDP shared-memory averaging".

Used only where it can be: CPU (numpy) parameters of one dtype, a group of more than one rank
all on this node, and no communication hook (``Reducer`` checks the hook per step).
"""
from __future__ import annotations

import time

import numpy as np

from ...distributed._mpi import mpi
from ...distributed._node import SharedWindow, split_nodes
from ...distributed._run import enter, missing
from ...distributed.work import wait_until
from ...tensor import _make
from ._buckets import Bucket
from ._shm_clock import AveragingClock

COMM_MODES = ("mpi", "shm")
BLOCK = 32 * 1024   # elements per pass: sums, scale and copies of a block stay in the L2 cache
LINE = 64           # part bounds on cache lines: ranks never write the same line


def _up(x: int, a: int) -> int:
    return -(-x // a) * a


class ShmAllreduce:
    """One shared window: ``table[r]`` is rank r's flat gradient row, ``flags[r]`` its ready/averaged flags."""

    def __init__(self, pg, node, params: list, names: list[str], everywhere: bool) -> None:
        self.pg, self.node, self.names = pg, node, names
        n, me = node.Get_size(), node.Get_rank()
        self.n, self.me, self.P = n, me, len(params)
        self.others = [q for q in range(n) if q != me]
        self.everywhere = everywhere  # some rank's gradients are views of its row: owners write every row
        dtype = params[0]._data.dtype
        self.numel = sum(p._data.size for p in params)
        self.align = max(LINE // dtype.itemsize, 1)
        stride = _up(max(self.numel, 1), self.align)
        data = _up(n * stride * dtype.itemsize, LINE)
        fl = _up(2 * self.P, 8)  # int64s per rank: each rank's flags on their own cache lines
        self.window = SharedWindow(node, data + n * fl * 8)
        self.win = self.window.win
        self.table = self.window.array(dtype, (n, stride))[:, :self.numel]
        self.flags = self.window.array(np.int64, (n, fl), offset=data)
        self.row = self.table[me]
        self.row.fill(0)  # window memory is not promised to be zeroed
        self.flags[me] = 0
        self.win.Lock_all()  # one passive-target epoch for the window's life: Win_sync orders the flags
        node.Barrier()       # every rank's flags are zero before anyone reads them
        self.step = 0
        self.seq = 0
        self.g: list = [None] * self.P          # this step's gradient of each parameter, flat
        self.res: list = [None] * self.P        # where the average goes: the gradient or its row view
        self.avg_todo: list[int] = []
        self.out_todo: list[tuple] = []
        self.back: list[tuple] = []
        self.tmp = np.empty(BLOCK, dtype)
        self.clock = AveragingClock()
        self.stats = self.clock.stats

    def place(self, buckets: list[Bucket]) -> None:
        """Make each bucket's buffer and views slices of this rank's row (bucket order, contiguous), and split
        every parameter's range into the ranks' parts.

        Gradients that are views of the old layout (of this row) are copied out first, so the
        caller's ``fill_slot`` can put them back into the new one without overlapping copies."""
        for b in buckets:
            for p in b.params:
                g = p._grad
                if g is not None and np.shares_memory(g._data, self.row):
                    p._grad = _make(g._data.copy())
        self.off = [0] * self.P
        self.size = [0] * self.P
        self.own = [(0, 0)] * self.P     # this rank's part of each parameter (relative bounds)
        self.parts: list[list] = [[] for _ in range(self.P)]  # the other ranks' non-empty parts: (q, lo, hi)
        off = 0
        for b in buckets:
            flat = self.row[off:off + b.offsets[-1]]
            b.buffer = _make(flat)
            b.views = [flat[o:e].reshape(p._data.shape) for o, e, p in zip(b.offsets, b.offsets[1:], b.params)]
            for j, o, e in zip(b.indices, b.offsets, b.offsets[1:]):
                self._split(j, off + o, e - o)
            off += b.offsets[-1]

    def _split(self, j: int, o: int, size: int) -> None:
        per = -(-size // self.n)
        cuts = [o] + [min(o + size, _up(o + q * per, self.align)) for q in range(1, self.n)] + [o + size]
        self.off[j], self.size[j] = o, size
        self.own[j] = (cuts[self.me] - o, cuts[self.me + 1] - o)
        self.parts[j] = [(q, cuts[q] - o, cuts[q + 1] - o) for q in self.others if cuts[q + 1] > cuts[q]]

    # ---- one step ---------------------------------------------------------------------------------
    def begin(self) -> None:
        """A new step (every rank calls it once per synchronised backward, or shadow iteration)."""
        self.step += 1
        self.seq = enter(self.pg, "ddp_shm_average")
        self.avg_todo, self.out_todo, self.back = [], [], []
        self.clock.begin_step()

    def contribute(self, j: int, grad, view=None, copy_out: bool = True) -> None:
        """This rank's gradient of parameter j is final: share the other ranks' parts, publish ready.

        ``grad``: this rank's gradient array, or None for zeros. Without ``view`` it is private and receives
        the average (a None one: a fresh array, see ``result``); ``view``: this rank's row range of j (bucket
        views), which receives the average instead (``grad`` may be it). ``copy_out=False``: only contribute
        (a shadow iteration under Join)."""
        t0 = time.perf_counter()
        self.clock.hook_start(t0)
        if grad is None:
            flat = np.zeros(self.size[j], self.table.dtype)
        elif grad.flags.c_contiguous:
            flat = grad.reshape(-1)
        else:
            flat = np.ascontiguousarray(grad).reshape(-1)
            if view is None:
                self.back.append((grad, flat))
        if view is not None and not self.everywhere:
            raise RuntimeError("DDP shm: a bucket-view gradient needs every row written (set at construction)")
        self.g[j] = flat
        self.res[j] = flat if view is None else view
        o = self.off[j]
        if not np.may_share_memory(flat, self.row):
            for _, lo, hi in self.parts[j]:
                np.copyto(self.row[o + lo:o + hi], flat[lo:hi])
        self.win.Sync()
        self.flags[self.me, j] = self.step
        lo, hi = self.own[j]
        if hi > lo:
            self.avg_todo.append(j)
        copy = copy_out and view is None  # with views the owners write every row
        for q, lo, hi in self.parts[j]:
            self.out_todo.append((j, q, lo, hi, copy))
        t1 = time.perf_counter()
        self.clock.work("copy_in_s", t1 - t0, t1)

    def progress(self) -> bool:
        """Do whatever the flags allow (average own parts, copy out others'); True when the step is complete."""
        step, flags = self.step, self.flags
        if self.avg_todo:
            t0 = time.perf_counter()
            left = []
            for j in self.avg_todo:
                if all(flags[q, j] >= step for q in self.others):
                    self.win.Sync()
                    self._average(j)
                else:
                    left.append(j)
            if len(left) < len(self.avg_todo):
                t1 = time.perf_counter()
                self.clock.work("average_s", t1 - t0, t1)
            self.avg_todo = left
        if self.out_todo:
            t0 = time.perf_counter()
            left = []
            P = self.P
            for item in self.out_todo:
                j, q, lo, hi, copy = item
                if flags[q, P + j] >= step:
                    if copy:
                        self.win.Sync()
                        o = self.off[j]
                        src = self.row if self.everywhere else self.table[q]  # everywhere: owners wrote every row
                        np.copyto(self.g[j][lo:hi], src[o + lo:o + hi])
                else:
                    left.append(item)
            if len(left) < len(self.out_todo):
                t1 = time.perf_counter()
                self.clock.work("copy_out_s", t1 - t0, t1)
            self.out_todo = left
        return not self.avg_todo and not self.out_todo

    def _average(self, j: int) -> None:
        """Part ``own[j]`` := (rows[0] + rows[1] + ...) * (1/world), this rank's gradient standing for its row;
        into this rank's row (every row when ``everywhere``) and, if private, its gradient."""
        lo, hi = self.own[j]
        o, g, me, rows = self.off[j], self.g[j], self.me, self.table
        res = self.res[j]
        targets = [rows[q, o:o + self.size[j]] for q in (range(self.n) if self.everywhere else [me]) if q != me]
        if not np.may_share_memory(res, self.row):
            targets.append(res)
        mine = self.row[o:o + self.size[j]]
        scale = 1.0 / self.n
        for s in range(lo, hi, BLOCK):
            e = min(s + BLOCK, hi)
            srcs = [g[s:e] if q == me else rows[q, o + s:o + e] for q in range(self.n)]
            acc = mine[s:e] if me <= 1 else self.tmp[:e - s]  # own contribution is consumed by the first add
            np.add(srcs[0], srcs[1], out=acc)
            for src in srcs[2:]:
                np.add(acc, src, out=acc)
            np.multiply(acc, scale, out=acc)
            if me > 1:
                np.copyto(mine[s:e], acc)
            for t in targets:
                np.copyto(t[s:e], acc)
        self.win.Sync()
        self.flags[me, self.P + j] = self.step

    def finish(self) -> None:
        """Wait (deadline: the group's timeout) until every part is averaged and copied out."""
        t0 = time.perf_counter()
        self.clock.finish_start()
        wait_until(self.progress, self.pg.timeout, self._describe)
        for grad, flat in self.back:
            grad[...] = flat.reshape(grad.shape)
        self.back = []
        self.clock.finish_end(time.perf_counter() - t0)

    def result(self, j: int, shape: tuple):
        """Parameter j's averaged gradient this step (where it was contributed as zeros: ``grad=None``)."""
        return self.res[j].reshape(shape)

    def _describe(self) -> str:
        """Which rank's flags never came: '... rank 1 has not published its gradient (ready flag) of parameters
        2.weight, 2.bias (its last: step 5); ranks not arrived: [1]; ...'."""
        step, flags, P = self.step, self.flags, self.P
        late: dict = {}  # (rank, what) -> (parameter names, its last step)
        for j in self.avg_todo:
            for q in self.others:
                if flags[q, j] < step:
                    late.setdefault((q, "gradient (ready flag)"), ([], int(flags[q, j])))[0].append(self.names[j])
        for j, q, *_ in self.out_todo:
            if flags[q, P + j] < step:
                late.setdefault((q, "average (averaged flag)"), ([], int(flags[q, P + j])))[0].append(self.names[j])
        what = "; ".join(f"rank {self.pg.ranks[q]} has not published its {kind} of parameters {', '.join(names)} "
                         f"(its last: step {last})" for (q, kind), (names, last) in late.items())
        return (f"DDP gradient averaging in shared memory (seq {self.seq}, step {step}, group {self.pg.name}): "
                f"{what}; {missing(self.pg, self.seq)}")

    def free(self) -> None:
        try:
            self.win.Unlock_all()
        except Exception:  # MPI already finalised
            pass
        self.window.free()
        try:
            self.node.Free()
        except Exception:
            pass


def make_shm_allreduce(pg, params: list, names: list[str], as_view: bool) -> ShmAllreduce | None:
    """The shared window for ``params``, or None where the shm path does not apply (every rank decides alike:
    parameters are the same on all ranks, and the node split is collective)."""
    if pg.size() < 2:
        return None
    kinds = {(type(p._data), p._data.dtype) for p in params}
    if len(kinds) != 1 or next(iter(kinds))[0] is not np.ndarray:
        return None  # CUDA tensors, or several dtypes
    node = split_nodes(pg)
    if node.Get_size() != pg.size():
        node.Free()
        return None  # the group spans nodes
    everywhere = bool(node.allreduce(int(as_view), op=mpi().MAX))
    return ShmAllreduce(pg, node, params, names, everywhere)
