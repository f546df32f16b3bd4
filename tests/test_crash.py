"""Kill the server with SIGKILL in the middle of a burst of submits, restart, and find every acknowledged
label in the store, with the per-item answer counts still matching the labels. Three rounds on one project."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import DEMO_DATA
from tests.test_app import free_port
from workbench.cli import main

PASSWORD = "crash-password"
ANNOTATORS = ["c1", "c2", "c3", "c4"]


def start_server(root, port):
    proc = subprocess.Popen([sys.executable, "-m", "workbench.cli", "serve", str(root), "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            assert proc.poll() is None, "the server exited"
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("server did not start")


def burst(client, stop: threading.Event, acked: list[str]) -> None:
    """Submit answers one after another until stopped or the server dies; keep the acknowledged client ids."""
    view = client.predict("task-crash", api_name="/open_task")
    while not stop.is_set():
        try:
            out = client.predict("task-crash", view[-2], view[-1], "", "A", "", "", None, None, None, None, None, None,
                                 api_name="/submit")
        except Exception:  # noqa: BLE001 - the server was killed under this request: not acknowledged
            return
        if "Saved." in str(out[-3]):
            acked.append(view[-1])  # the client id of the submit the server acknowledged
        view = out


@pytest.mark.e2e
def test_every_acknowledged_label_survives_sigkill(project):
    from gradio_client import Client

    from workbench.auth import add_user
    from workbench.store import Store

    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "preferences.jsonl")]) == 0
    with Store.open(project.store_path) as store:
        for name in ANNOTATORS:
            add_user(store, name, "annotator", PASSWORD)
    assert main(["tasks", "add", "crash", "--kind", "pairwise", "--overlap", "2", "-p", str(project.root)]) == 0
    acknowledged: list[str] = []
    for round_ in range(3):
        port = free_port()
        server = start_server(project.root, port)
        clients = [Client(f"http://127.0.0.1:{port}", auth=(name, PASSWORD), verbose=False) for name in ANNOTATORS]
        stop = threading.Event()
        acked_now: list[str] = []

        threads = [threading.Thread(target=burst, args=(c, stop, acked_now), daemon=True) for c in clients]
        for t in threads:
            t.start()
        deadline = time.time() + 60
        while len(acked_now) < 15 * (round_ + 1) and time.time() < deadline:
            time.sleep(0.05)
        os.kill(server.pid, signal.SIGKILL)  # mid-burst: the clients are still submitting
        server.wait()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        assert len(acked_now) >= 15, "the burst did not get going"
        acknowledged += acked_now
        with Store.open(project.store_path) as store:  # the restart: the store opens, nothing to repair
            con = store.cursor()
            stored = {r[0] for r in con.execute("SELECT client_id FROM labels WHERE task_id = 'task-crash'").fetchall()}
            missing = [c for c in acknowledged if c not in stored]
            assert missing == [], f"round {round_}: {len(missing)} acknowledged labels lost"
            duplicates = con.execute("SELECT count(*) - count(DISTINCT client_id) FROM labels "
                                     "WHERE task_id = 'task-crash'").fetchone()[0]
            assert duplicates == 0
            # the per-item answer counts changed in the same transactions as the labels: never half
            mismatched = con.execute(
                """SELECT count(*) FROM task_items i LEFT JOIN (
                       SELECT item_id, count(DISTINCT annotator) AS n FROM labels
                       WHERE task_id = 'task-crash' AND kind = 'preference' GROUP BY item_id) l ON l.item_id = i.id
                   WHERE i.task_id = 'task-crash' AND i.answers <> coalesce(l.n, 0)""").fetchone()[0]
            assert mismatched == 0
