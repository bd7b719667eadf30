"""Rank, world size and the few collectives a save/load needs (none when there is no process group)."""
from __future__ import annotations

import uuid

from .. import collectives, objects, process_group as pg


def rank_world(group=None) -> tuple[int, int]:
    if group is None and not pg.is_initialized():
        return 0, 1
    return pg.get_rank(group), pg.get_world_size(group)


def shared_nonce(group=None) -> str:
    """A name for this save's temporary directory, the same on every rank (rank 0 draws it)."""
    _, world = rank_world(group)
    mine = [uuid.uuid4().hex]
    if world > 1:
        src = pg.get_process_group_ranks(group)[0] if group is not None else 0
        objects.broadcast_object_list(mine, src=src, group=group)
    return mine[0]


def barrier(group=None) -> None:
    _, world = rank_world(group)
    if world > 1:
        collectives.barrier(group)
