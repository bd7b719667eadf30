"""The built-in hooks: ``hook(process_group, bucket) -> Future`` whose value is the reduced flat buffer."""
from __future__ import annotations

from ...collectives import all_reduce
from ...process_group import resolve
from ....futures import Future, work_future


def _allreduce_fut(process_group, tensor) -> Future:
    """Average ``tensor`` over the group: divide first, then sum (torch's order)."""
    pg = resolve(process_group)
    tensor.div_(pg.size())
    fut = work_future(all_reduce(tensor, group=pg, async_op=True))
    return fut.then(lambda f: f.value()[0])


def allreduce_hook(process_group, bucket) -> Future:
    """What DDP does without a hook: average the bucket's flat gradient buffer."""
    return _allreduce_fut(process_group, bucket.buffer())


def fp16_compress_hook(process_group, bucket) -> Future:
    """Send the bucket as float16 (half the bytes), write the average back into the float32 buffer."""
    from ...._dtype import float16

    pg = resolve(process_group)
    buffer = bucket.buffer()
    compressed = buffer.to(float16).div_(pg.size())
    fut = work_future(all_reduce(compressed, group=pg, async_op=True))

    def decompress(f: Future):
        buffer.copy_(f.value()[0])
        return buffer

    return fut.then(decompress)
