"""The open head of each task's queue, kept in memory by the store.

Choosing an annotator's next item in SQL scans the task's items joined with that annotator's skips, flags
and drafts: about 4 ms at 1M labels, which over HTTP on 2 cores was a fifth of a whole submit. Every write
that changes the answer (answers, retractions, skips, flags, drafts) goes through the store, and DuckDB lets
one process write, so the store can keep the first open items of a task and each annotator's skips, flags
and drafts here, update them after each commit, and read only the next batch of items from SQL. No SQL and
no locking here: the store calls these under its write lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Annotator:
    """One annotator's events in one task: items skipped (how often), flagged, with a saved draft, and the
    items that show a reply they wrote themselves (never served to them)."""

    skips: dict[str, int] = field(default_factory=dict)
    flagged: set[str] = field(default_factory=set)
    own: set[str] = field(default_factory=set)
    drafts: dict[str, int] = field(default_factory=dict)  # item id -> position (-1: not known yet)


@dataclass
class Window:
    """Every item with fewer than `overlap` answers from the start of a task up to position `end`, in task
    order, with its answer count and who answered. Items leave when they have their answers."""

    overlap: int
    items: dict[str, list] = field(default_factory=dict)  # id -> [position, answers, set of annotators]
    end: int = -1
    exhausted: bool = False

    def extend(self, rows: list[tuple[str, int, int, list[str]]], batch: int) -> None:
        """Add the next `rows` (id, position, answers, annotators) read in task order after `end`."""
        for item_id, position, answers, annotators in rows:
            self.items[item_id] = [position, answers, set(annotators)]
            self.end = position
        self.exhausted = len(rows) < batch

    def answered(self, item_id: str, annotator: str) -> None:
        entry = self.items.get(item_id)
        if entry is None:  # already complete, or past `end` (read from the store when the window gets there)
            return
        entry[1] += 1
        entry[2].add(annotator)
        if entry[1] >= self.overlap:
            del self.items[item_id]

    def candidates(self, who: str, me: Annotator, limit: int) -> list[tuple[str, int]] | None:
        """Up to `limit` (item id, answers) this annotator may take, best first: items with their draft,
        then never-skipped before skipped ones, then task order. None when the items past `end` could change
        the answer (the store then reads the next batch)."""
        open_to_me = ((item_id, entry) for item_id, entry in self.items.items()
                      if who not in entry[2] and item_id not in me.flagged and item_id not in me.own)
        if not me.skips and not me.drafts:  # the usual case: task order
            picked = []
            for item_id, entry in open_to_me:
                picked.append((item_id, entry[1]))
                if len(picked) == limit:
                    return picked
            return picked if self.exhausted else None
        if not self.exhausted and any(position < 0 or position > self.end for position in me.drafts.values()):
            return None  # a draft further down the task comes first
        ranked = sorted(open_to_me, key=lambda it: (it[0] not in me.drafts, me.skips.get(it[0], 0), it[1][0]))
        picked = []
        for item_id, entry in ranked:
            if not self.exhausted and item_id not in me.drafts and me.skips.get(item_id, 0):
                return None  # an unskipped item past `end` comes before a skipped one
            picked.append((item_id, entry[1]))
            if len(picked) == limit:
                return picked
        return picked if self.exhausted else None
