"""The store: schema migrations, one writer per file, idempotent and append-only labels."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import duckdb
import pytest

from workbench.cli import main
from workbench.store import SCHEMA_VERSION, Store, StoreError, StoreLocked


def test_new_store_is_at_the_current_schema_and_reopening_migrates_nothing(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path, create=True) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.migrate() == 0
    with Store.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        tables = {r[0] for r in store.cursor().execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert {"prompts", "responses", "labels", "users", "runs", "model_versions", "imports",
            "schema_version"} <= tables


def test_a_store_from_an_older_workbench_is_migrated_forward(tmp_path):
    """A file with only the version table (schema 0) gets every migration, recorded one row per step."""
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP)")
    con.close()
    with Store.open(path) as store:
        versions = store.cursor().execute("SELECT version FROM schema_version ORDER BY 1").fetchall()
    assert [v[0] for v in versions] == list(range(1, SCHEMA_VERSION + 1))


def test_a_schema_2_store_keeps_its_tasks_when_reviews_arrive(tmp_path):
    """Schema 3 rebuilds the tasks table (DuckDB cannot change its CHECK in place): nothing may be lost."""
    from workbench.store import MIGRATIONS

    path = tmp_path / "v2.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE schema_version (version INTEGER NOT NULL, applied_at TIMESTAMP)")
    for version in (0, 1):
        for statement in MIGRATIONS[version]:
            con.execute(statement)
        con.execute("INSERT INTO schema_version (version) VALUES (?)", [version + 1])
    con.execute("INSERT INTO tasks (id, name, kind, overlap, guidelines, created_by) VALUES "
                "('task-old', 'old', 'ranking', 2, 'Best first.', 'admin')")
    con.close()
    with Store.open(path) as store:
        task = store.task("old")
        assert (task.kind, task.overlap, task.guidelines, task.versions) == ("ranking", 2, "Best first.", [])
        store.cursor().execute("INSERT INTO tasks (id, name, kind, overlap, versions) VALUES "
                               "('task-ab', 'ab', 'review', 1, ['dpo-1', 'sft-1'])")
        assert store.task("ab").versions == ["dpo-1", "sft-1"]
        with pytest.raises(duckdb.ConstraintException):
            store.cursor().execute("INSERT INTO tasks (id, name, kind, overlap) VALUES ('t', 't', 'essay', 1)")


def test_a_store_from_a_newer_workbench_is_refused(tmp_path):
    path = tmp_path / "new.duckdb"
    Store.open(path, create=True).close()
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version (version) VALUES (?)", [SCHEMA_VERSION + 5])
    con.close()
    with pytest.raises(StoreError, match="newer than this workbench"):
        Store.open(path)
    duckdb.connect(str(path)).close()  # the refusal let go of the file


def test_a_file_that_is_not_a_store_is_a_clear_error(tmp_path):
    path = tmp_path / "notes.duckdb"
    path.write_text("these are my notes, not a database\n" * 100)
    with pytest.raises(StoreError, match="cannot open the store"):
        Store.open(path)


def test_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="no store at"):
        Store.open(tmp_path / "nope.duckdb")


@pytest.fixture
def holder(project):
    """Another process holding the project's store read-write, as the server does."""
    code = textwrap.dedent(f"""
        import sys, time
        from workbench.store import Store
        s = Store.open({str(project.store_path)!r})
        print("ready", flush=True)
        sys.stdin.read()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    yield proc
    proc.stdin.close()
    proc.wait(timeout=30)


def test_second_writer_gets_a_clear_message_naming_the_holder(project, holder, tmp_path, capsys):
    with pytest.raises(StoreLocked) as err:
        Store.open(project.store_path)
    assert f"process {holder.pid}" in str(err.value) and "one writer per file" in str(err.value)
    src = tmp_path / "x.jsonl"
    src.write_text('{"prompt": "a", "completion": "b"}\n')
    assert main(["import", "-p", str(project.root), str(src)]) == 2
    err_text = capsys.readouterr().err
    assert "in use by another process" in err_text and "Traceback" not in err_text


def _prompt(store: Store) -> str:
    store.cursor().execute(
        "INSERT INTO prompts (id, messages, source) VALUES ('p1', [{'role': 'user', 'content': 'Hi'}], 'test')")
    return "p1"


def test_a_retried_submit_is_stored_once(store):
    pid = _prompt(store)
    first = store.add_demonstration(prompt_id=pid, text="Hello!", annotator="ann", client_id="c-1")
    again = store.add_demonstration(prompt_id=pid, text="Hello!", annotator="ann", client_id="c-1")
    assert first == again
    assert store.table_counts() == {"prompts": 1, "responses": 1, "labels": 1}


def test_an_edit_supersedes_and_both_events_stay(store, tmp_path):
    from workbench.exporters import export

    pid = _prompt(store)
    old = store.add_demonstration(prompt_id=pid, text="Helo", annotator="ann", client_id="c-1")
    store.add_demonstration(prompt_id=pid, text="Hello!", annotator="ann", client_id="c-2", supersedes=old)
    assert store.table_counts()["labels"] == 2  # append-only: the old event is kept
    out = tmp_path / "sft"
    export(store, kind="sft", out_dir=out, style="standard")
    assert (out / "train.jsonl").read_text().strip() == '{"prompt":"Hi","completion":"Hello!"}'


def test_a_failed_transaction_leaves_nothing(store):
    pid = _prompt(store)
    before = store.dump()
    with pytest.raises(duckdb.Error), store.transaction() as con:
        con.execute("INSERT INTO responses (id, prompt_id, text, origin, source) VALUES ('r', ?, 't', 'person', 'x')",
                    [pid])
        con.execute("INSERT INTO responses (id, prompt_id, text, origin, source) VALUES ('r2', ?, 't', 'alien', 'x')",
                    [pid])
    assert store.dump() == before


def test_content_ids_are_the_same_from_python_and_from_sql(store, load):
    """Ids are written once (store/rules.py) and used from SQL (imports) and Python (Argilla rows, a person's
    reply): both must name the same prompt, response and item, or a re-import would duplicate them."""
    from tests.conftest import DEMO_DATA
    from workbench.store.rules import content_id, item_id

    load(DEMO_DATA / "preferences.jsonl")
    con = store.cursor()
    prompt_id, system, messages = con.execute("SELECT id, system, messages FROM prompts LIMIT 1").fetchone()
    assert store.prompt_ids([(system, messages)]) == [prompt_id]
    texts = dict(con.execute("SELECT id, text FROM responses WHERE prompt_id = ?", [prompt_id]).fetchall())
    assert texts and all(content_id(prompt_id, text) == rid for rid, text in texts.items())
    task = store.create_task(name="ids", kind="pairwise", overlap=1, guidelines="", created_by="admin")
    for task_item_id, item_prompt, response_ids in con.execute(
            "SELECT id, prompt_id, response_ids FROM task_items WHERE task_id = ?", [task.id]).fetchall():
        assert item_id(task.id, item_prompt, list(response_ids)) == task_item_id
