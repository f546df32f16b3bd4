"""Labeling benchmarks (issue 3): next-item and submit latency on a store of 1,000,000 labels, and HTTP
throughput of 20 concurrent clients submitting answers against the same app with a no-op handler.

    .venv/bin/python bench/bench_labeling.py latency            # builds the 1M-label store (~1 min), then times
    .venv/bin/python bench/bench_labeling.py http --seconds 60  # 20 clients, submit vs no-op, same run

The store is filled with SQL straight into the tables (a benchmark fixture, not a product path): 400k
prompts with two responses each, one pairwise task over them with overlap 2, 300k items fully answered
(600k labels), 100k items with one answer, and 300k imported labels outside the task: 1,000,000 labels.
Latency is measured server-side by calling the handlers the Gradio events call. Targets: p95 <= 50 ms;
throughput >= 0.85 of the no-op app; acknowledged submits == stored rows.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from annotation.labeling import Labeling, User  # noqa: E402
from workbench.store import Store  # noqa: E402

ANNOTATORS = [f"a{i:02d}" for i in range(20)]


def build_store(path: Path, *, prompts: int = 400_000, complete: int = 300_000, half: int = 100_000,
                outside: int = 300_000, kind: str = "pairwise", replies: int = 2) -> Store:
    store = Store.open(path, create=True)
    con = store.cursor()
    t0 = time.perf_counter()
    con.execute(f"""INSERT INTO prompts (id, messages, source, source_line)
        SELECT 'p' || i, [{{'role': 'user', 'content': 'Ticket ' || i || ': my phone will not charge.'}}],
               'bench.jsonl', i FROM range({prompts}) t(i)""")
    con.execute(f"""INSERT INTO responses (id, prompt_id, text, origin, source)
        SELECT 'r' || i || '-' || k, 'p' || i, 'Reply ' || k || ' to ticket ' || i, 'import', 'bench.jsonl'
        FROM range({prompts}) t(i), range({replies}) u(k)""")
    task = Labeling(store).create_task(User("admin", "admin"), name="bench", kind=kind, overlap=2)
    # answers: items in task order; the first `complete` items have two, the next `half` one
    con.execute(f"""CREATE TEMP TABLE ordered AS SELECT id, prompt_id, response_ids, position
                    FROM task_items WHERE task_id = '{task.id}' AND position <= {complete + half}""")
    con.execute(f"""INSERT INTO labels (id, kind, prompt_id, chosen_id, rejected_id, outcome, annotator, client_id,
                                        source, task_id, item_id, payload)
        SELECT 'lbl-' || o.position || '-' || k, 'preference', o.prompt_id, o.response_ids[1], o.response_ids[2],
               'chosen', '{ANNOTATORS[0]}'[:1] || lpad(((o.position * 2 + k) % {len(ANNOTATORS)})::VARCHAR, 2, '0'),
               'c-' || o.position || '-' || k, 'ui', o.task_id, o.id, '{{}}'
        FROM (SELECT *, '{task.id}' AS task_id FROM ordered) o, range(2) u(k)
        WHERE k = 0 OR o.position <= {complete}""")
    con.execute(f"""INSERT INTO labels (id, kind, prompt_id, chosen_id, rejected_id, outcome, annotator, source)
        SELECT 'imp-' || i, 'preference', 'p' || i, 'r' || i || '-0', 'r' || i || '-1', 'chosen', 'imported',
               'old.jsonl' FROM range({outside}) t(i)""")
    con.execute("DROP TABLE ordered")
    con.execute("""UPDATE task_items SET answers = s.n, annotators = s.who
                   FROM (SELECT item_id, count(*) AS n, list(annotator) AS who FROM labels
                         WHERE task_id IS NOT NULL GROUP BY item_id) s
                   WHERE task_items.id = s.item_id""")
    con.execute("CHECKPOINT")
    n = store.table_counts()["labels"]
    print(f"store: {n:,} labels, {prompts:,} prompts, task items {task.items:,}; built in "
          f"{time.perf_counter() - t0:.1f} s")
    return store


def percentiles(samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p = lambda q: ms[min(len(ms) - 1, int(q * len(ms)))]  # noqa: E731
    return f"p50 {p(0.50):6.1f} ms  p95 {p(0.95):6.1f} ms  max {ms[-1]:6.1f} ms  (n={len(ms)})"


def latency(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = build_store(Path(tmp) / "bench.duckdb")
        labeling = Labeling(store)
        users = [User(a, "annotator") for a in ANNOTATORS]
        nxt, sub = [], []
        views = {}
        for u in users:  # warm each annotator's first item
            views[u.name] = labeling.open_next(u, "task-bench")
        for i in range(args.ops):
            u = users[i % len(users)]
            view = views[u.name]
            t = time.perf_counter()
            labeling.store.add_answer(task_id="task-bench", item_id=view.item_id, annotator=u.name,
                                      client_id=view.client_id, kind="preference", chosen_id="x", rejected_id="y",
                                      outcome="chosen")
            labeling.leases.release("task-bench", u.name, view.item_id)
            sub.append(time.perf_counter() - t)
            t = time.perf_counter()
            views[u.name] = labeling.open_next(u, "task-bench")
            nxt.append(time.perf_counter() - t)
        print(f"submit (store the answer)   {percentiles(sub)}")
        print(f"next item (queue + render)  {percentiles(nxt)}")
        whole = []
        for i in range(args.ops // 2):  # the whole submit event as the app runs it: store, then next item
            u = users[i % len(users)]
            view = views[u.name]
            t = time.perf_counter()
            views[u.name] = labeling.submit_comparison(u, "task-bench", view.item_id, view.client_id, choice="A")
            whole.append(time.perf_counter() - t)
        print(f"submit event (store + next) {percentiles(whole)}")
        if args.profile:
            u = users[0]
            for name, fn in (("queue_candidates", lambda: store.queue_candidates("task-bench", u.name, 2, limit=64)),
                             ("annotator_progress", lambda: store.annotator_progress("task-bench", u.name)),
                             ("task_item", lambda: store.task_item("task-bench", views[u.name].item_id, u.name)),
                             ("task", lambda: store.task("task-bench"))):
                samples = []
                for _ in range(30):
                    t = time.perf_counter()
                    fn()
                    samples.append(time.perf_counter() - t)
                print(f"  {name:20s} {percentiles(samples)}")
        store.close()


PASSWORD = "bench-password"


def serve_for_bench(args) -> None:
    """The server process of the HTTP benchmark: the real app, or the same app whose submit does nothing."""

    from workbench.config import load_project
    from workbench.ui.app import authenticate, build_app

    project = load_project(args.dir)
    store = Store.open(project.store_path)
    app = build_app(project, store)
    if args.noop:
        canned = app.label_view.render(app.labeling.open_next(User(ANNOTATORS[0], "annotator"), "task-bench"))
        canned[-3] = "Saved."

        def noop(task, item_id, client_id, completion, choice, order, rationale, r1, r2, r3, r4, r5, thumb):
            return canned

        for block_fn in app.fns.values():
            if block_fn.api_name == "submit":
                block_fn.fn = noop
    app.launch(server_port=args.port, auth=authenticate(store), prevent_thread_lock=False, max_threads=64,
               quiet=True)


def submit_loop(client, i: int, deadline_box: list, start: threading.Barrier, acked: list, errors: list,
                follow: bool) -> None:
    """One client: open the task, then submit a ranking of the item shown until the deadline."""
    view = client.predict("task-bench", api_name="/open_task")
    start.wait()
    while time.perf_counter() < deadline_box[0]:
        try:
            out = client.predict("task-bench", view[-2], view[-1], "", None, "CAB", "", None, None, None, None, None, None,
                                 api_name="/submit")
        except Exception as exc:  # noqa: BLE001 - counted, the run goes on
            if not errors[i]:
                print(f"client {i}: {type(exc).__name__}: {exc}", file=sys.stderr)
            errors[i] += 1
            continue
        if "Saved." in str(out[-3]):
            acked[i] += 1
        if follow:  # the no-op handler returns the same canned item every time
            view = out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def http(args) -> None:
    import socket
    import subprocess

    from gradio_client import Client

    from workbench.auth import add_user
    from workbench.projects import init_project

    with tempfile.TemporaryDirectory() as tmp:
        project = init_project(Path(tmp) / "proj")
        project.store_path.unlink()
        store = build_store(project.store_path, kind="ranking", replies=3)
        for name in ANNOTATORS:
            add_user(store, name, "annotator", PASSWORD)
        before = store.table_counts()["labels"]
        store.close()
        results = {}
        for phase in args.phases.split(","):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            cmd = [sys.executable, __file__, "serve", "--dir", str(project.root), "--port", str(port)]
            server = subprocess.Popen(cmd + (["--noop"] if phase == "noop" else []))
            url = f"http://127.0.0.1:{port}"
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.5)
            clients = [Client(url, auth=(name, PASSWORD), verbose=False) for name in ANNOTATORS]
            acked, errors = [0] * len(clients), [0] * len(clients)
            start = threading.Barrier(len(clients) + 1)

            box = [float("inf")]
            threads = [threading.Thread(target=submit_loop,
                                        args=(clients[i], i, box, start, acked, errors, phase != "noop")) for i in range(len(clients))]
            for t in threads:
                t.start()
            start.wait()
            cpu0 = _cpu_seconds(server.pid)
            t0 = time.perf_counter()
            box[0] = t0 + args.seconds
            for t in threads:
                t.join()
            elapsed = time.perf_counter() - t0
            server_cpu = _cpu_seconds(server.pid) - cpu0
            server.terminate()
            server.wait()
            rate = sum(acked) / elapsed
            results.setdefault(phase, []).append(rate)
            line = (f"{phase:5s}: {sum(acked):6d} acknowledged in {elapsed:.1f} s = {rate:6.1f}/s, errors {sum(errors)}, "
                    f"server CPU {server_cpu / max(sum(acked), 1) * 1000:.1f} ms per submit")
            if phase != "noop":
                with Store.open(project.store_path) as check:
                    stored = check.table_counts()["labels"] - before
                    before += stored
                line += f"; stored {stored} (acknowledged == stored: {stored == sum(acked)})"
            print(line, flush=True)
        if "noop" in results and "real" in results:
            real, noop = (sum(results[k]) / len(results[k]) for k in ("real", "noop"))
            print(f"throughput ratio real / no-op (mean of each phase's runs): {real / noop:.2f} (target >= 0.85)")


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="mode", required=True)
    p = sub.add_parser("latency")
    p.add_argument("--ops", type=int, default=400)
    p.add_argument("--profile", action="store_true", help="also time each store query of next-item")
    p.set_defaults(func=latency)
    p = sub.add_parser("http")
    p.add_argument("--seconds", type=float, default=60)
    p.add_argument("--phases", default="noop,real", help="comma-separated: noop, real (in this order)")
    p.set_defaults(func=http)
    p = sub.add_parser("serve", help="(internal) the server process of the http benchmark")
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--noop", action="store_true")
    p.set_defaults(func=serve_for_bench)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
