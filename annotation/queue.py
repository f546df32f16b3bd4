"""Who labels what next. Items are leased so two annotators do not take the same slot: a lease is an
in-memory claim that expires, so an abandoned item goes back to the pool by itself and a server restart
frees every lease (the labels, the drafts and the skips are in the store; leases need not survive).

Leases are enforced, not advisory: the store asks `holds` inside the transaction that stores each answer or
draft, under its write lock, and refuses one on an item the annotator does not hold."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable

from workbench.store import Store, Task

DEFAULT_LEASE_SECONDS = 15 * 60


class Leases:
    """Claims on (task, item) by annotators. One lease per annotator per task: taking a new item lets go of
    the one held before."""

    def __init__(self, ttl_s: float = DEFAULT_LEASE_SECONDS, clock: Callable[[], float] = time.monotonic):
        self.ttl_s = ttl_s
        self.clock = clock
        self._held: dict[tuple[str, str], tuple[str, float]] = {}  # (task, annotator) -> (item, expiry)
        self._task_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def task_lock(self, task_id: str) -> threading.Lock:
        """Held while an item is chosen and claimed, so two annotators never claim the last free slot."""
        with self._lock:
            return self._task_locks.setdefault(task_id, threading.Lock())

    def held(self, task_id: str, annotator: str) -> str | None:
        with self._lock:
            entry = self._held.get((task_id, annotator))
            return entry[0] if entry and entry[1] > self.clock() else None

    def any_task(self, annotator: str) -> str | None:
        """The task where this annotator last took or renewed a lease (typing a draft renews it), unexpired:
        where a reload should take them back, not the first task they happened to open."""
        now = self.clock()
        with self._lock:
            live = [(expiry, task) for (task, who), (_, expiry) in self._held.items() if who == annotator and expiry > now]
            return max(live)[1] if live else None

    def others(self, task_id: str, item_id: str, annotator: str) -> int:
        """How many other annotators hold an unexpired lease on the item."""
        now = self.clock()
        with self._lock:
            return self._others(task_id, item_id, annotator, now)

    def _others(self, task_id: str, item_id: str, annotator: str, now: float) -> int:
        return sum(1 for (task, who), (item, expiry) in self._held.items()
                   if task == task_id and item == item_id and who != annotator and expiry > now)

    def holds(self, task_id: str, item_id: str, annotator: str, free: int) -> bool:
        """Whether this annotator may fill one of the item's `free` open slots now, renewing their lease if so.

        The store asks this inside the transaction that stores an answer or a draft. The item must be the one
        the annotator last took; a lease that ran out still counts while no one else has taken the slot it
        held (other annotators' live leases fewer than `free`), so a slow answer is not thrown away."""
        now = self.clock()
        with self._lock:
            entry = self._held.get((task_id, annotator))
            if entry is None or entry[0] != item_id:
                return False
            if entry[1] <= now and self._others(task_id, item_id, annotator, now) >= free:
                return False
            self._held[(task_id, annotator)] = (item_id, now + self.ttl_s)
            return True

    def take(self, task_id: str, item_id: str, annotator: str) -> None:
        with self._lock:
            self._held[(task_id, annotator)] = (item_id, self.clock() + self.ttl_s)

    def release_task(self, task_id: str) -> None:
        """Let go of every lease in a task: an admin archived or deleted it, so a reload must not return there."""
        with self._lock:
            for key in [k for k in self._held if k[0] == task_id]:
                del self._held[key]

    def release(self, task_id: str, annotator: str, item_id: str | None = None) -> None:
        with self._lock:
            entry = self._held.get((task_id, annotator))
            if entry and (item_id is None or entry[0] == item_id):
                del self._held[(task_id, annotator)]


def next_item(store: Store, leases: Leases, task: Task, annotator: str, *, batch: int = 64) -> str | None:
    """Claim and return the next item for this annotator, or None when nothing is left for them.

    The item they hold (or have a draft on) comes first, so a reload shows the same item; then items that
    still need answers, in task order, with items they skipped last. An item is free while its answers
    plus other annotators' leases are fewer than the task's overlap.
    """
    task_id, overlap = task.id, task.overlap
    with leases.task_lock(task_id):
        own = leases.held(task_id, annotator)
        if own is not None:  # a lease is only held on an item the annotator has not answered
            leases.take(task_id, own, annotator)
            return own
        offset_batch = batch
        while True:
            candidates = store.queue_candidates(task_id, annotator, overlap, limit=offset_batch)
            for item_id, answers in candidates:
                if answers + leases.others(task_id, item_id, annotator) < overlap:
                    leases.take(task_id, item_id, annotator)
                    return item_id
            if len(candidates) < offset_batch:
                leases.release(task_id, annotator)
                return None
            offset_batch *= 4  # every candidate so far is leased by others: look further down the queue


LETTERS = "ABCDE"  # what a person calls the responses of an item, in their display order


def display_order(annotator: str, item: dict) -> list[str]:
    """Response ids in the order this annotator sees them: shuffled, but the same on every reload."""
    ids = [r["id"] for r in item["responses"]]
    random.Random(f"{annotator}/{item['id']}").shuffle(ids)
    return ids
