"""shopdesk.heap: the server's one-time settling of the cyclic garbage collector."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import pytest

from shopdesk import heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


def _collected_sees(obj: object) -> bool:
    return any(o is obj for o in gc.get_objects())


def test_settle_freezes_what_lives_and_raises_the_young_threshold(restored_gc: None) -> None:
    kept = [object()]  # a container: tracked by the collector
    assert _collected_sees(kept)
    frozen = heap.settle()
    assert frozen == gc.get_freeze_count() > 0
    assert not _collected_sees(kept)  # in the permanent generation: no collection walks it
    assert gc.get_threshold() == (heap.YOUNG_THRESHOLD, *heap.OLDER_THRESHOLDS)
    later = [object()]  # what comes after the settling is collected as usual
    assert _collected_sees(later)


def test_a_garbage_cycle_made_after_settling_is_still_collected(restored_gc: None) -> None:
    heap.settle()

    class Node:
        pass

    import weakref

    a, b = Node(), Node()
    a.other, b.other = b, a  # type: ignore[attr-defined]
    alive = weakref.ref(a)
    del a, b
    assert alive() is not None  # reference counting alone cannot free a cycle
    gc.collect()
    assert alive() is None


async def test_settle_when_waits_for_the_models(restored_gc: None) -> None:
    ready = asyncio.Event()
    task = asyncio.create_task(heap.settle_when(ready))
    await asyncio.sleep(0.05)
    assert not task.done() and gc.get_freeze_count() == 0
    ready.set()
    await asyncio.wait_for(task, 10)
    assert gc.get_freeze_count() > 0
