"""Sign-in under a login flood (issue 17): a signed-in user's request latency, p50 and p95, with and without
10 threads flooding the sign-in route with wrong passwords, against the real server.

    .venv/bin/python bench/bench_security.py                                 # as shipped, about 1 minute
    .venv/bin/python bench/bench_security.py --modes shipped,no-throttle,no-throttle-2
    .venv/bin/python bench/bench_security.py --modes old --rounds 2           # as before issue 17, ~3 minutes

Modes, each in a fresh server process on the same project:
- `shipped`: the server `workbench serve` starts (guard, throttled sign-in, hash in a worker thread).
- `no-throttle[-N]`: the same with the backoff switched off, so every flood request really hashes: what the
  worker thread and the cap on concurrent hashes (N, default 1 as shipped) do alone.
- `old`: the sign-in before issue 17 (the hash checked synchronously on Gradio's event loop, no throttle),
  to reproduce the figure the issue reported.

The signed-in request is `GET /config` with the user's session cookie (what every page load fetches), one
at a time on a kept-alive connection. The flood runs in its own process (10 threads, each posting wrong
passwords back to back on its own connection), so it competes with the server for the 2 cores as a real
attacker's traffic would, without sharing the measuring client's GIL. Quiet and flooded phases alternate
(`--rounds` pairs); the quiet phases, split odd/even, give an A/A ratio that shows the machine's own noise.
Target: flooded / quiet p50 and p95 ratio <= 2.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-password"


def serve(args) -> None:
    """The server process of one mode."""
    from workbench.auth import Backoff, SignIn, check_password
    from workbench.config import load_project
    from workbench.store import Store
    from workbench.ui import guard
    from workbench.ui.app import build_app, launch

    project = load_project(args.dir)
    store = Store.open(project.store_path)
    app = build_app(project, store)
    if args.mode == "old":  # as before issue 17: a plain function, which Gradio calls on its event loop
        app.launch(server_port=args.port, auth=lambda n, p: check_password(store, n, p) is not None,
                   prevent_thread_lock=False, max_threads=64, quiet=True)
        return
    signin = None
    if args.mode.startswith("no-throttle"):  # no-throttle-N: N concurrent hashes (default 1, as shipped)
        concurrent = int(args.mode.rsplit("-", 1)[1]) if args.mode[-1].isdigit() else 1
        signin = SignIn(store, account=Backoff(free=10**9), address=Backoff(free=10**9), concurrent=concurrent)
    launch(app, store, title="bench", host="127.0.0.1", port=args.port, block=True,
           hosts=guard.allowed_hosts("127.0.0.1"), signin=signin)


def sign_in(port: int, name: str, password: str) -> str:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/login", urlencode({"username": name, "password": password}),
                 {"Content-Type": "application/x-www-form-urlencoded"})
    response = conn.getresponse()
    response.read()
    assert response.status == 200, response.status
    cookies = [v.split(";", 1)[0] for k, v in response.getheaders() if k.lower() == "set-cookie"]
    return "; ".join(cookies)


def timed_requests(port: int, cookie: str, n: int, budget_s: float = 60.0) -> list[float]:
    """n signed-in requests one after another (fewer if they take longer than budget_s in all)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    samples, deadline = [], time.perf_counter() + budget_s
    while len(samples) < n and (len(samples) < 20 or time.perf_counter() < deadline):
        t = time.perf_counter()
        conn.request("GET", "/config", headers={"Cookie": cookie})
        response = conn.getresponse()
        response.read()
        samples.append(time.perf_counter() - t)
        assert response.status == 200, response.status
    conn.close()
    return samples


def flood(port: int, threads: int, stop, counts) -> None:
    """The flooding process: `threads` threads posting wrong passwords until `stop` is set."""
    def one(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        k = 0
        while not stop.is_set():
            body = urlencode({"username": ["ann", "bob", f"guess{i}-{k}"][k % 3], "password": f"wrong-{i}-{k}"})
            try:
                conn.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
                response = conn.getresponse()
                response.read()
                with counts.get_lock():
                    counts[{429: 0, 400: 1}.get(response.status, 2)] += 1
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            k += 1

    workers = [threading.Thread(target=one, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()


def pct(samples: list[float], q: float) -> float:
    return statistics.quantiles(samples, n=100)[q - 1] * 1000 if q < 100 else max(samples) * 1000


def run_mode(root: Path, mode: str, n: int, threads: int, rounds: int) -> dict:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "serve", "--dir", str(root), "--port", str(port),
                               "--mode", mode], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, "the server exited"
                time.sleep(0.5)
        cookie = sign_in(port, "rev", PASSWORD)
        timed_requests(port, cookie, 20)  # warm up
        quiet, flooded, aa = [], [], []
        counts, flood_seconds = multiprocessing.Array("l", 3), 0.0
        for r in range(rounds):  # quiet and flooded phases alternate, so the machine's drift hits both
            phase = timed_requests(port, cookie, n)
            (aa if r % 2 else quiet).extend(phase)  # the quiet phases split in two: an A/A yardstick
            stop = multiprocessing.Event()
            flooder = multiprocessing.Process(target=flood, args=(port, threads, stop, counts))
            t0 = time.perf_counter()
            flooder.start()
            time.sleep(2.0)  # the flood under way (and, shipped, its throttle engaged)
            flooded.extend(timed_requests(port, cookie, n))
            stop.set()
            flood_seconds += time.perf_counter() - t0
            flooder.join(timeout=120)
        return {"mode": mode, "quiet": quiet, "aa": aa or quiet, "flooded": flooded, "refused": counts[0],
                "checked": counts[1], "other": counts[2], "seconds": flood_seconds}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    p = sub.add_parser("serve")
    p.add_argument("--dir", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--mode", default="shipped")
    parser.add_argument("--modes", default="shipped")
    parser.add_argument("--requests", type=int, default=300, help="signed-in requests per phase")
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=4, help="quiet + flooded phase pairs per mode")
    args = parser.parse_args()
    if args.cmd == "serve":
        serve(args)
        return

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from workbench.auth import add_user
    from workbench.projects import init_project
    from workbench.store import Store

    with tempfile.TemporaryDirectory() as tmp:
        project = init_project(Path(tmp) / "proj")
        with Store.open(project.store_path) as store:
            for name, role in (("rev", "reviewer"), ("ann", "annotator"), ("bob", "annotator")):
                add_user(store, name, role, PASSWORD)
        print(f"{'mode':14s} {'quiet p50':>9s} {'p95':>7s} {'flooded p50':>11s} {'p95':>7s} {'ratio p50':>9s} "
              f"{'p95':>5s} {'A/A p50':>7s} {'p95':>5s}  flood answers/s (429 / 400 / other)")
        for mode in args.modes.split(","):
            r = run_mode(project.root, mode, args.requests, args.threads, args.rounds)
            quiet = r["quiet"] + r["aa"]
            q50, q95, f50, f95 = pct(quiet, 50), pct(quiet, 95), pct(r["flooded"], 50), pct(r["flooded"], 95)
            aa50, aa95 = pct(r["aa"], 50) / pct(r["quiet"], 50), pct(r["aa"], 95) / pct(r["quiet"], 95)
            print(f"{mode:14s} {q50:7.1f}ms {q95:5.1f}ms {f50:9.1f}ms {f95:5.1f}ms {f50 / q50:9.2f} {f95 / q95:5.2f}"
                  f" {aa50:7.2f} {aa95:5.2f}  {r['refused'] / r['seconds']:.1f} / {r['checked'] / r['seconds']:.1f}"
                  f" / {r['other']}", flush=True)


if __name__ == "__main__":
    main()
