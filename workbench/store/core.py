"""The store's core: one open DuckDB file, its one writer, the write lock and `transaction()`.

DuckDB lets one read-write process hold a file; a second gets a `StoreLocked` error that says who holds it.
Threads share the connection through their own cursors. Every domain module (records, tasks, queue,
answers, exports, runs, users, generation) builds on this class and nothing else.

Opening checks what would otherwise fail later with DuckDB's raw error: a folder the writer cannot write its
journal (`workbench.duckdb.wal`) into, a read-only file, a truncated or foreign file. A new store file is
created 0600 (it holds password hashes). A writer checkpoints (folds the journal into the file) at most a
minute after a commit and when it closes, also at interpreter exit if nobody closed it.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Self

import duckdb

from workbench.errors import WorkbenchError, check_text
from workbench.store.open_items import Annotator, Window
from workbench.store.rules import content_id
from workbench.store.schema import MIGRATIONS, SCHEMA_VERSION


class StoreError(WorkbenchError):
    """A store operation that cannot go ahead; the message says why and what to do."""


class StoreOutdated(StoreError):
    """A store opened read-only whose schema is older than this workbench: a read-write open migrates it."""


class StoreLocked(StoreError):
    """Another process holds the DuckDB file for writing (DuckDB allows one writer per file)."""


# A checkpoint after a commit at most this often: it bounds how far the .duckdb file lags its journal, i.e.
# what a backup that copies only the file misses and what a restart replays, whatever the write rate. DuckDB
# checkpoints by itself only when the journal passes 16 MiB, and skips that while other transactions run,
# so under steady load the journal kept growing (17.7 MB seen). A time rule costs one cheap CHECKPOINT a
# minute on a busy server and nothing on an idle one; a count of label writes would not bound the lag.
CHECKPOINT_SECONDS = 60.0
# DuckDB's file: three 4 KiB headers, then `total_blocks` blocks of `block_size` (PRAGMA database_size).
_HEADER_BYTES = 3 * 4096
_OPEN_WRITERS: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _close_writers_at_exit() -> None:
    """A server stopped with Ctrl-C (or a script that never closed its store) still checkpoints."""
    for store in list(_OPEN_WRITERS):
        store.close()


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _check_writable(path: Path) -> None:
    """A writer needs the folder too: DuckDB writes its journal beside the file on the first commit, so an
    unwritable folder opens fine and then fails every write. Probe with a real file (os.access says yes to
    root on a read-only mount's neighbours and no to some ACLs)."""
    folder = path.parent
    if not folder.is_dir():
        raise StoreError(f"cannot create the store {path}: no folder {folder}")
    if path.exists() and not os.access(path, os.W_OK):
        raise StoreError(f"the store {path} is read-only for this user: give it write permission (chmod u+w), "
                         "or only read it (`workbench stats` opens it read-only)")
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".workbench-write-check-")
    except OSError as exc:
        raise StoreError(f"the project folder {folder} is not writable ({exc.strerror}): the store writes its "
                         "journal there; give this user write permission on the folder, or only read the store "
                         "(`workbench stats` opens it read-only)") from None
    os.close(fd)
    os.unlink(probe)


def _open_error(path: Path, exc: duckdb.Error) -> StoreError:
    text = str(exc)
    if isinstance(exc, duckdb.IOException) and "lock" in text.lower():
        return StoreLocked(_lock_message(path, exc))
    if "not a valid DuckDB database file" in text or "Could not read enough bytes" in text:
        return StoreError(f"cannot open the store {path}: it is damaged or not a DuckDB file (a full disk or a "
                          "partial copy truncates one): restore it from a backup")
    if "Permission denied" in text:
        return StoreError(f"cannot open the store {path}: permission denied for this user")
    return StoreError(f"cannot open the store {path}: {_first_line(exc)}")


def _lock_message(path: Path, exc: Exception) -> str:
    pid = re.search(r"PID (\d+)", str(exc))
    holder = f" (process {pid.group(1)})" if pid else ""
    return (
        f"the project store {path} is in use by another process{holder}: DuckDB allows one writer per file. "
        "Stop the workbench server (or the other command) first, or do this from the running server."
    )


class StoreCore:
    """One open DuckDB file. Threads call `cursor()` and use their own cursor, never a shared one."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, read_only: bool):
        self._con = con
        self.path = path
        self.read_only = read_only
        self._local = threading.local()
        # Label writes check the client id and insert under one lock: with no unique index (see
        # _insert_new), this is what makes a double click or a retry from another thread store one row.
        self._label_lock = threading.Lock()
        # The open head of each task's queue and each annotator's skips, flags and drafts (open_items.py),
        # read and changed under _label_lock, after the commit of the write that changes them.
        self._windows: dict[str, Window] = {}
        self._annotators: dict[tuple[str, str], Annotator] = {}
        self._checkpointed_at = time.monotonic()
        self._checkpoint_lock = threading.Lock()

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False, create: bool = False) -> Self:
        path = Path(path)
        existed = path.exists()
        if not create and not existed:
            raise StoreError(f"no store at {path}: create the project with `workbench init`")
        if existed and not path.is_file():
            raise StoreError(f"the store {path} is not a file")
        if not read_only:
            _check_writable(path)
        try:
            con = duckdb.connect(str(path), read_only=read_only)
        except duckdb.Error as exc:
            raise _open_error(path, exc) from None
        if not existed:
            os.chmod(path, 0o600)
        store = cls(con, path, read_only)
        try:
            if existed:
                store._check_complete()
            if not read_only:
                store.migrate()
            elif (version := store.schema_version()) != SCHEMA_VERSION:
                raise (StoreOutdated if version < SCHEMA_VERSION else StoreError)(f"the store {path} is at schema version {version}, this workbench needs "
                                 f"{SCHEMA_VERSION}: open it once read-write to migrate")
        except duckdb.IOException as exc:  # a block the file should hold cannot be read
            con.close()
            raise _open_error(path, exc) from None
        except BaseException:
            con.close()  # let go of the file lock before reporting
            raise
        if not read_only:
            _OPEN_WRITERS.add(store)
        return store

    def _check_complete(self) -> None:
        """A file shorter than its own header says is truncated: refuse it at open, not with a traceback at
        whichever later query first reads a missing block. (With a journal left by a crash the blocks it
        replays are not in the file yet, so the check waits until that is folded in.)"""
        if Path(f"{self.path}.wal").exists():
            return
        # Used blocks, not total_blocks: a checkpoint cuts free blocks off the end of the file while the header
        # still counts them (a healthy store was refused), and the file holds every used block however the free
        # ones lie, so this bound never refuses a whole file.
        block_size, used_blocks = self.cursor().execute(
            "SELECT block_size, used_blocks FROM pragma_database_size()").fetchone()
        expected = _HEADER_BYTES + block_size * used_blocks
        size = self.path.stat().st_size
        if size < expected:
            raise StoreError(f"cannot open the store {self.path}: it is truncated ({size:,} bytes of the "
                             f"{expected:,} its header says it uses; a full disk or a partial copy does this): restore it "
                             "from a backup")

    def checkpoint(self) -> None:
        """Fold the journal into the file now (a writer only). DuckDB skips it while another thread's write
        is open; the next one catches up."""
        if self.read_only:
            return
        self._checkpointed_at = time.monotonic()
        # A closed connection, or a concurrent write: the journal stays and the next open replays it.
        with contextlib.suppress(duckdb.Error):
            self.cursor().execute("CHECKPOINT")

    def close(self) -> None:
        """Checkpoint (a writer) and close; closing twice is harmless."""
        _OPEN_WRITERS.discard(self)
        self.checkpoint()
        self._con.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's own cursor (DuckDB connections are not shared across threads)."""
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._local.cursor = self._con.cursor()
        return cur

    def schema_version(self) -> int:
        con = self.cursor()
        exists = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_version'"
        ).fetchone()[0]
        if not exists:
            return 0
        return con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def migrate(self) -> int:
        """Bring the file up to SCHEMA_VERSION, one transaction per step; returns the steps applied."""
        con = self.cursor()
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
                    "applied_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())")
        current = self.schema_version()
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store {self.path} has schema version {current}, newer than this "
                             f"workbench ({SCHEMA_VERSION}): upgrade alignment-workbench")
        for version in range(current, SCHEMA_VERSION):
            with self.transaction() as tx:
                for statement in MIGRATIONS[version]:
                    tx.execute(statement)
                tx.execute("INSERT INTO schema_version (version) VALUES (?)", [version + 1])
        return SCHEMA_VERSION - current

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self.cursor()
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        if time.monotonic() - self._checkpointed_at >= CHECKPOINT_SECONDS and self._checkpoint_lock.acquire(False):
            try:  # one thread checkpoints; the others go on
                self.checkpoint()
            finally:
                self._checkpoint_lock.release()

    def label_rows(self, sql: str, params: list) -> list[dict]:
        """Labels as dicts, their JSON payload read (every label query returns them this way)."""
        cur = self.cursor().execute(sql, params)
        names = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            label = dict(zip(names, row, strict=True))
            label["payload"] = json.loads(label["payload"] or "{}")
            label["created_at"] = str(label["created_at"])
            out.append(label)
        return out

    @staticmethod
    def _table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
        [row] = con.execute(  # fetchall: a result left open would block registering the next block's table
            "SELECT (SELECT count(*) FROM prompts), (SELECT count(*) FROM responses), (SELECT count(*) FROM labels)"
        ).fetchall()
        return {"prompts": row[0], "responses": row[1], "labels": row[2]}

    def table_counts(self) -> dict[str, int]:
        return self._table_counts(self.cursor())

    def dump(self) -> dict[str, list]:
        """Every row of the data tables, in a stable order: tests compare stores before and after."""
        con = self.cursor()
        return {
            t: con.execute(f"SELECT * {'' if t == 'task_items' else 'EXCLUDE (created_at)'} FROM {t} "
                           "ORDER BY ALL").fetchall()
            for t in ("imports", "prompts", "responses", "labels", "users", "runs", "model_versions", "tasks",
                      "task_items")
        }


def insert_new(con: duckdb.DuckDBPyConnection, table: str, columns: str, select: str, source: str, key: str,
                params: list) -> None:
    """Insert the rows of `source` whose `key` is not in `table` yet, each key once (its first line).

    Dedupe by anti-join instead of a PRIMARY KEY: at 1M rows an ART key index made inserts 2-3x slower
    (BENCHMARKS.md). The store is the only writer and every insert path skips ids already present, so
    ids stay unique. Within a file, duplicates are rare: a cheap distinct count decides whether the
    first-line semi-join (2.6x slower than a plain insert) is needed at all.
    """
    unique = con.execute(f"SELECT count({key}) = count(DISTINCT {key}) FROM {source}").fetchone()[0]
    first_only = "" if unique else (
        f"SEMI JOIN (SELECT {key} AS k, min(line) AS l FROM {source} GROUP BY 1) f ON f.k = s.{key} AND f.l = s.line")
    con.execute(
        f"""INSERT INTO {table} ({columns}) SELECT {select} FROM {source} s {first_only}
        WHERE s.{key} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM {table} t WHERE t.id = s.{key})""",
        params,
    )


def insert_person_response(con: duckdb.DuckDBPyConnection, prompt_id: str, text: str, annotator: str) -> str:
    """A person's reply as a response (its id hashes prompt and text, so the same reply is stored once).
    Checked here, where it is stored: a number or a list is refused, never kept as its repr, and so is
    text with a lone surrogate (DuckDB and the content hash cannot encode it)."""
    check_text(text, "the reply", StoreError)
    response_id = content_id(prompt_id, text)
    con.execute("INSERT INTO responses (id, prompt_id, text, origin, author, source) "
                "SELECT ?, ?, ?, 'person', ?, 'ui' WHERE ? NOT IN (SELECT id FROM responses)",
                [response_id, prompt_id, text, annotator, response_id])
    return response_id


def sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
