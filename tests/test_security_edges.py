"""Edges a user (or a file they were handed) can reach: private project files, an unwritable or damaged store,
checkpoints, gzip bombs, symlinks out of the tree, huge or malformed input echoed back, config values, and
form values. Each failure is one line naming what and where (exit 2 on the CLI), never a traceback, and
quotes at most a short excerpt of the input."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO
from workbench.cli import main
from workbench.config import DEFAULT_MAX_FIELD_BYTES, ProjectError, load_project
from workbench.errors import excerpt
from workbench.generate import GenerateRequest, GenerationError, prepare_generation
from workbench.importers import ImportError_, read_records
from workbench.store import Store, StoreError

PAIR = {"prompt": "My screen cracked.", "chosen": "Sorry to hear that: here is how to get it fixed.",
        "rejected": "Buy a new phone."}


def one_line_error(capsys, command: str) -> str:
    """The CLI's stderr after a refused command: exactly one line, no traceback."""
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"workbench {command}: error: "), err[:500]
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err[:500]
    return err


def set_config(project, key: str, value: str) -> None:
    path = project.root / "workbench.toml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith(f"{key} =")]
    path.write_text("\n".join(lines) + f"\n{key} = {value}\n")


# ----------------------------------------------------------------- as another user
# Tests run as root here, and root writes anywhere: permission checks run in a child process as `nobody`.

def _can_drop_to_nobody() -> bool:
    return os.geteuid() == 0 and shutil.which("setpriv") is not None


def run_as_nobody(args: list[str]) -> subprocess.CompletedProcess:
    code = f"import sys; sys.path.insert(0, {str(REPO)!r}); from workbench.cli import main; sys.exit(main({args!r}))"
    env = {**os.environ, "HOME": "/tmp", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
                          capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def shared_tmp():
    """A folder `nobody` can reach (pytest's own tmp folder is root's alone)."""
    folder = Path(tempfile.mkdtemp(dir="/tmp", prefix="wb-edges-"))
    folder.chmod(0o755)
    yield folder
    for path in (folder, *folder.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    shutil.rmtree(folder)


needs_other_user = pytest.mark.skipif(not _can_drop_to_nobody(), reason="needs root and setpriv to act as nobody")


def readable_project(shared_tmp: Path, tiny_model) -> Path:
    from workbench.projects import init_project

    root = init_project(shared_tmp / "proj", base_model=str(tiny_model)).root
    src = shared_tmp / "pairs.jsonl"
    src.write_text(json.dumps(PAIR) + "\n")
    src.chmod(0o644)
    for path in root.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


# ----------------------------------------------------------------- private files

def test_a_new_project_folder_is_private_and_its_store_is_0600(tmp_path, tiny_model):
    from workbench.projects import init_project

    old_umask = os.umask(0o022)  # the usual umask, which made them 0755 / 0644
    try:
        project = init_project(tmp_path / "p", base_model=str(tiny_model))
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(project.root.stat().st_mode) == 0o700
    assert stat.S_IMODE(project.store_path.stat().st_mode) == 0o600


# ----------------------------------------------------------------- the store

@needs_other_user
def test_an_unwritable_project_folder_is_refused_when_the_store_opens(shared_tmp, tiny_model):
    """The folder read-only, the file writable: DuckDB opens it and then fails every commit (its journal
    goes beside the file), so the writer is refused at open, with one line, as `serve` is."""
    root = readable_project(shared_tmp, tiny_model)
    (root / "workbench.duckdb").chmod(0o666)
    root.chmod(0o555)
    done = run_as_nobody(["import", "-p", str(root), str(shared_tmp / "pairs.jsonl")])
    err = done.stderr.strip()
    assert done.returncode == 2, err[-2000:]
    assert len(err.splitlines()) == 1 and "is not writable" in err and str(root) in err


@needs_other_user
def test_stats_reads_a_store_it_cannot_write(shared_tmp, tiny_model):
    root = readable_project(shared_tmp, tiny_model)
    root.chmod(0o555)
    done = run_as_nobody(["stats", str(root), "--json"])
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["prompts"] == 0


def test_a_truncated_store_is_one_line(project, capsys):
    src = project.root / "pairs.jsonl"
    src.write_text("".join(json.dumps({**PAIR, "prompt": f"Question {i}? " * 20}) + "\n" for i in range(3000)))
    assert main(["import", "-p", str(project.root), str(src)]) == 0
    data = project.store_path.read_bytes()
    project.store_path.write_bytes(data[: len(data) // 3])
    capsys.readouterr()
    assert main(["stats", str(project.root)]) == 2
    assert "truncated" in one_line_error(capsys, "stats")


def test_a_store_left_open_checkpoints_at_exit(tmp_path):
    """A server stopped with Ctrl-C returns from launch() with its worker threads (each holding a cursor)
    still alive and never closes the store: the journal stayed behind. The exit handler checkpoints."""
    path = tmp_path / "s.duckdb"
    code = f"""
import sys, threading
sys.path.insert(0, {str(REPO)!r})
from workbench.store import Store
store = Store.open({str(path)!r}, create=True)
ready, hold = threading.Event(), threading.Event()
def worker():
    store.cursor().execute("SELECT 1")
    ready.set()
    hold.wait()
threading.Thread(target=worker, daemon=True).start()
ready.wait()
store.cursor().execute("CREATE TABLE scratch AS SELECT repeat('x', 100) AS t FROM range(20000)")
"""
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, capture_output=True)
    assert not Path(f"{path}.wal").exists()
    with Store.open(path, read_only=True) as store:
        assert store.cursor().execute("SELECT count(*) FROM scratch").fetchone()[0] == 20000


def test_a_busy_writer_checkpoints_periodically(tmp_path, monkeypatch):
    from workbench.store import core

    monkeypatch.setattr(core, "CHECKPOINT_SECONDS", 0.0)
    path = tmp_path / "s.duckdb"
    with Store.open(path, create=True) as store:
        with store.transaction() as con:
            con.execute("CREATE TABLE scratch AS SELECT repeat('x', 100) AS t FROM range(20000)")
        wal = Path(f"{path}.wal")
        assert not wal.exists() or wal.stat().st_size == 0  # folded in after the commit, the store still open


# ----------------------------------------------------------------- imports

def _zeros_bomb(path: Path, size: int) -> None:
    chunk = b"\0" * (1 << 20)
    with gzip.open(path, "wb", compresslevel=9) as fh:
        for _ in range(size // len(chunk)):
            fh.write(chunk)


def test_a_gzip_bomb_stops_at_max_file_bytes_without_inflating_it(project, tmp_path, capsys):
    """1 MB cap, 64 MiB of valid-looking JSON inside 65 KB: refused at the cap, with memory to match."""
    set_config(project, "max_file_bytes", "1000000")
    bomb = tmp_path / "bomb.jsonl.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        fh.write(b'{"prompt": "')
        for _ in range(64):
            fh.write(b"a" * (1 << 20))
        fh.write(b'", "completion": "x"}\n')
    assert bomb.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        assert main(["import", "-p", str(project.root), str(bomb)]) == 2
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    err = one_line_error(capsys, "import")
    assert "bomb.jsonl.gz" in err and "above the limit of 1,000,000 (max_file_bytes in workbench.toml" in err
    assert peak < 8 << 20, f"{peak:,} bytes traced"


def test_a_bomb_of_zeros_is_refused_at_its_first_chunk(tmp_path):
    """With the default cap (sized for real datasets) a bomb of zeros is still refused after one chunk."""
    bomb = tmp_path / "zeros.jsonl.gz"
    _zeros_bomb(bomb, 256 << 20)
    tracemalloc.start()
    try:
        with pytest.raises(ImportError_, match="zeros.jsonl.gz: line 1: invalid JSON") as err:
            read_records(bomb, max_field_bytes=DEFAULT_MAX_FIELD_BYTES)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"{peak:,} bytes traced"
    assert len(str(err.value)) < 300


def test_a_plain_file_above_max_file_bytes_is_refused_unread(project, tmp_path, capsys):
    set_config(project, "max_file_bytes", "1000000")
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps(PAIR) + "\n" + " " * 2_000_000)
    assert main(["import", "-p", str(project.root), str(big)]) == 2
    assert "2,000," in one_line_error(capsys, "import")


def test_a_symlink_to_a_system_file_is_not_followed_or_quoted(project, tmp_path, capsys):
    secret = Path("/etc/passwd")
    if not secret.is_file():
        pytest.skip("no /etc/passwd")
    first_line = secret.read_text().splitlines()[0]
    link = tmp_path / "train.csv"
    link.symlink_to(secret)
    assert main(["import", "-p", str(project.root), str(link)]) == 2
    err = one_line_error(capsys, "import")
    assert "symlink" in err and first_line[:20] not in err


def test_a_symlink_inside_its_folder_is_followed(tmp_path):
    real = tmp_path / "data" / "pairs.jsonl"
    real.parent.mkdir()
    real.write_text(json.dumps(PAIR) + "\n")
    link = tmp_path / "data" / "link.jsonl"
    link.symlink_to("pairs.jsonl")
    assert read_records(link, max_field_bytes=DEFAULT_MAX_FIELD_BYTES).table.num_rows == 1


def test_a_huge_field_name_is_quoted_only_as_an_excerpt(project, tmp_path, capsys):
    name = "q" * (10 << 20)
    src = tmp_path / "wide.csv"
    src.write_text(f"{name},completion\nHi,Hello\n")
    assert main(["import", "-p", str(project.root), str(src)]) == 2
    err = one_line_error(capsys, "import")
    assert "cannot tell the format" in err and len(err) < 2000


def test_text_that_is_not_utf8_in_parquet_names_row_and_field(tmp_path):
    bad = pa.array([b"fine", b"a\xed\xa0\x80b"], pa.binary()).view(pa.string())  # a CESU-8 lone surrogate
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"prompt": bad, "completion": ["x", "y"]}), path)
    with pytest.raises(ImportError_, match=r"bad.parquet: row 2: field 'prompt' is not valid UTF-8"):
        read_records(path, max_field_bytes=DEFAULT_MAX_FIELD_BYTES)


def test_lone_surrogates_are_one_line_from_a_file_or_the_command_line(project, tmp_path, capsys):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(PAIR) + "\n" + '{"prompt": "a\\ud800b", "completion": "x"}\n')
    with pytest.raises(ImportError_, match=r"s.jsonl: line 2: invalid JSON"):
        read_records(path, max_field_bytes=DEFAULT_MAX_FIELD_BYTES)
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(PAIR) + "\n")
    before = Store.open(project.store_path, read_only=True)
    dump = before.dump()
    before.close()
    assert main(["import", "-p", str(project.root), str(good), "--tag", "caf\udce9"]) == 2  # argv byte 0xe9
    assert "unpaired surrogate" in one_line_error(capsys, "import")
    with Store.open(project.store_path, read_only=True) as store:
        assert store.dump() == dump


# ----------------------------------------------------------------- answers and tasks in the store

@pytest.fixture
def prompt_id(store, load, tmp_path):
    src = tmp_path / "p.jsonl"
    src.write_text(json.dumps(PAIR) + "\n")
    load(src)
    return store.cursor().execute("SELECT id FROM prompts").fetchone()[0]


@pytest.mark.parametrize("text, message", [(42, "must be text, got a number"), (["a"], "must be text, got a list"),
                                           ("a\ud800b", "unpaired surrogate")])
def test_a_reply_that_is_not_text_is_refused_where_it_is_stored(store, prompt_id, text, message):
    before = store.dump()
    with pytest.raises(StoreError, match=message):
        store.add_demonstration(prompt_id=prompt_id, text=text, annotator="ann", client_id="c1")
    assert store.dump() == before


@pytest.mark.parametrize("settings, message", [
    ({"overlap": 0}, "overlap"), ({"overlap": -3}, "overlap"), ({"overlap": True}, "overlap"),
    ({"overlap": "2"}, "overlap"), ({"max_responses": 0}, "max responses"), ({"max_responses": 1}, "max responses"),
    ({"name": ""}, "task name"), ({"name": "a\nb"}, "task name"), ({"name": "t\ud800"}, "surrogate"),
    ({"kind": "nonsense"}, "task kind"), ({"tags": ["x\udcff"]}, "surrogate"),
])
def test_task_settings_are_checked_where_the_task_is_stored(store, prompt_id, settings, message):
    before = store.dump()
    with pytest.raises(StoreError, match=message):
        store.create_task(**({"name": "ok", "kind": "pairwise", "overlap": 1, "guidelines": "",
                              "created_by": "admin"} | settings))
    assert store.dump() == before


def test_a_10_mb_task_name_is_not_echoed(store, prompt_id):
    with pytest.raises(StoreError) as err:
        store.create_task(name="n" * (10 << 20), kind="pairwise", overlap=1, guidelines="", created_by="admin")
    assert len(str(err.value)) < 400 and "10,485,760 characters" in str(err.value)


def test_excerpt_is_short_escaped_and_one_line():
    quoted = excerpt("line one\nline two\ud800" + "x" * 1000)
    assert "\n" not in quoted and "\\n" in quoted and "\\ud800" in quoted and len(quoted) < 120
    quoted.encode("utf-8")  # printable anywhere


# ----------------------------------------------------------------- config values

@pytest.mark.parametrize("key, value, message", [
    ("max_field_bytes", '"big"', "max_field_bytes = 'big': must be a whole number"),
    ("max_field_bytes", "-5", "max_field_bytes = -5: must be between 1"),
    ("max_field_bytes", "0", "must be between 1"),
    ("max_field_bytes", "true", "must be a whole number"),
    ("max_file_bytes", "1.5", "must be a whole number"),
    ("tags", '"support"', "tags = 'support': must be a list"),
    ("name", '""', "name = '': must be a non-empty string"),
    ("max_feild_bytes", "10", "unknown setting 'max_feild_bytes'"),
])
def test_config_values_are_checked_at_load(project, capsys, key, value, message):
    set_config(project, key, value)
    with pytest.raises(ProjectError, match="workbench.toml"):
        load_project(project.root)
    assert main(["stats", str(project.root)]) == 2
    err = one_line_error(capsys, "stats")
    assert message in err and "workbench.toml" in err


def test_a_config_that_is_not_toml_is_one_line(project, capsys):
    (project.root / "workbench.toml").write_text("[project\nname = 1\n")
    assert main(["stats", str(project.root)]) == 2
    assert "not valid TOML" in one_line_error(capsys, "stats")


# ----------------------------------------------------------------- export --out

@pytest.fixture
def with_pairs(project, tmp_path):
    src = tmp_path / "pairs.jsonl"
    src.write_text(json.dumps(PAIR) + "\n")
    assert main(["import", "-p", str(project.root), str(src)]) == 0
    return project


def test_export_out_an_existing_file_is_one_line(with_pairs, tmp_path, capsys):
    target = tmp_path / "prefs.jsonl"
    target.write_text("keep me\n")
    capsys.readouterr()
    assert main(["export", "-p", str(with_pairs.root), "--kind", "preferences", "--out", str(target)]) == 2
    assert "is a file, not a folder" in one_line_error(capsys, "export")
    assert target.read_text() == "keep me\n"


def test_export_out_a_dangling_symlink_is_one_line(with_pairs, tmp_path, capsys):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "gone")
    capsys.readouterr()
    assert main(["export", "-p", str(with_pairs.root), "--kind", "preferences", "--out", str(link)]) == 2
    assert "symlink" in one_line_error(capsys, "export")


# ----------------------------------------------------------------- generation requests

@pytest.mark.parametrize("change, message", [
    ({"limit": -1}, "--limit -1: must be 1 or more"), ({"limit": 0}, "--limit 0: must be 1 or more"),
    ({"limit": "5"}, "--limit '5': give a whole number"), ({"batch_size": True}, "--batch-size"),
    ({"sampling": {"n": "2"}}, "n '2' is not a whole number"),
    ({"sampling": {"max_new_tokens": 2.5}}, "max_new_tokens 2.5 is not a whole number"),
    ({"sampling": {"top_k": -1}}, "top_k must be 0 or more"),
    ({"sampling": {"temperature": "hot"}}, "temperature 'hot' is not a number"),
])
def test_generation_requests_are_checked_before_anything_runs(project, change, message):
    with Store.open(project.store_path) as store, pytest.raises(GenerationError, match=message):
        prepare_generation(project, store, GenerateRequest(**({"versions": ["base"]} | change)))


def test_admin_forms_refuse_zero_instead_of_taking_a_default(project, load):
    """The Tasks tab's overlap 0 and the Train tab's 0 replies or 0 tokens are refused with one line, never
    turned into 1 or into the defaults."""
    from annotation.labeling import Labeling, LabelingError, User
    from tests.conftest import DEMO_DATA
    from workbench.jobs import JobRunner
    from workbench.store import Store
    from workbench.ui.tasks import _whole
    from workbench.ui.train import start_generation_job

    assert _whole(0.0) == 0 and _whole(2.0) == 2 and _whole(None) is None
    with Store.open(project.store_path) as store:
        from workbench.ingest import import_files

        import_files(store, [DEMO_DATA / "heldout_prompts.jsonl"], max_field_bytes=1_000_000, tags=["heldout"])
        with pytest.raises(LabelingError, match="overlap 0"):
            Labeling(store).create_task(User("root", "admin"), name="t", kind="demonstration",
                                        overlap=_whole(0.0))
        runner = JobRunner(project, store)
        for n, tokens, limit in ((0.0, 8.0, 2.0), (1.0, 0.0, 2.0), (1.0, 8.0, -1.0)):
            line = start_generation_job(runner, ["base"], "heldout", n, 0.0, tokens, limit)
            assert line.startswith("**Not started:**"), (n, tokens, limit, line)
        assert store.run("generate-1") is None


def test_a_killed_server_checkpoints_its_store(project):
    """`kill` (SIGTERM) ends `serve` as Ctrl-C does: exit status 0 and the journal folded into the file."""
    import signal

    from gradio_client import Client

    from tests.conftest import DEMO_DATA
    from tests.test_app import start_server
    from workbench.auth import add_user
    from workbench.ingest import import_files
    from workbench.store import Store

    with Store.open(project.store_path) as store:
        add_user(store, "root", "admin", "a-long-password")
        import_files(store, [DEMO_DATA / "heldout_prompts.jsonl"], max_field_bytes=1_000_000, tags=["heldout"])
    url, proc = start_server(project.root)
    wal = Path(f"{project.store_path}.wal")
    try:
        admin = Client(url, auth=("root", "a-long-password"), verbose=False)
        admin.predict("written", "demonstration", 1, None, "", "heldout", "", "", "", api_name="/create_task")
        assert wal.exists() and wal.stat().st_size > 0  # the task is in the journal, not yet in the file
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    assert not wal.exists() or wal.stat().st_size == 0
    with Store.open(project.store_path, read_only=True) as store:
        assert store.task("written") is not None
