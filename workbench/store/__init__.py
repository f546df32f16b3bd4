"""The project's DuckDB store: every SQL statement the workbench runs, a module per domain over one core.

`Store` is the one object callers hold: it owns the file's one writer connection, the write lock and the
in-memory queue heads, so the domains are mixins over that core (`core.py`) rather than separate objects
that would each need the same connection and lock handed to them. Each domain's SQL lives in its own
module; the rules every domain shares (which labels stand, content ids, prompts as chats) in `rules.py`;
the schema's migrations in `schema.py`.
"""

from __future__ import annotations

from workbench.store.answers import Answers
from workbench.store.core import StoreCore, StoreError, StoreLocked
from workbench.store.exports import PAIR_RULES, TIE_RULES, ExportFilters, Exports, StagedExport
from workbench.store.generation import Generation
from workbench.store.history import HISTORY_STATES, History
from workbench.store.judges import JUDGE_MODES, JUDGE_PREFIX, SUGGESTION_MODES, Judges
from workbench.store.queue import Queue
from workbench.store.records import ImportCounts, ImportItem, Records
from workbench.store.rules import ANSWER_KINDS, as_chat
from workbench.store.runs import ModelVersion, Run, Runs
from workbench.store.schema import MIGRATIONS, SCHEMA_VERSION
from workbench.store.tasks import Task, Tasks
from workbench.store.users import Users


class Store(Records, Tasks, Queue, Answers, Exports, Runs, Users, Generation, Judges, History, StoreCore):
    """One open DuckDB file. Threads call `cursor()` and use their own cursor, never a shared one."""


__all__ = ["ANSWER_KINDS", "HISTORY_STATES", "JUDGE_MODES", "JUDGE_PREFIX", "MIGRATIONS", "PAIR_RULES", "SCHEMA_VERSION", "SUGGESTION_MODES", "TIE_RULES",
           "ExportFilters", "ImportCounts", "ImportItem", "ModelVersion", "Run", "StagedExport", "Store", "StoreError",
           "StoreLocked", "Task", "as_chat"]
