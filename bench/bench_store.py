"""Store benchmarks: import 1M preference rows (JSONL and Parquet) and export 1M pairs, with peak memory.

    .venv/bin/python bench/bench_store.py            # 1,000,000 rows (about 2 minutes on 2 cores)
    .venv/bin/python bench/bench_store.py --rows 100000
    .venv/bin/python bench/bench_store.py --only import,skip   # some phases only (import, csv, skip, naive, export)

Each phase runs in its own process so its peak RSS is its own. The baseline is the obvious alternative,
measured in the same run on a slice: parse the same file and insert row by row with `executemany`.
Targets (issue 2): import >= 100k rows/s end to end including validation and dedupe; Parquet export <= 5 s.
Issue 19: peak RSS of a streamed import stays flat as the file grows (1M rows < 1.2 GiB, 5M < 2 GiB); the
`skip` phase imports the JSONL file with 1% of its lines broken (every 100th: invalid JSON, an empty reply,
a missing field in turn) with --on-error skip.
Results are recorded by hand in BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORDS = ["phone", "screen", "battery", "charge", "refund", "order", "delivery", "cracked", "update", "store", "repair", "warranty", "policy", "sorry", "understand", "frustrating", "help", "please", "thanks", "account", "billing", "return", "label", "courier", "days", "free", "replace", "settings", "backup", "restart", "care", "plan", "water", "damage", "missing", "cable", "box"]


def make_rows(n: int, seed: int = 0):
    rng = random.Random(seed)
    for i in range(n):
        prompt = f"Ticket {i}: " + " ".join(rng.choices(WORDS, k=18)) + "?"
        chosen = "I'm so sorry to hear that. " + " ".join(rng.choices(WORDS, k=40)) + "."
        rejected = " ".join(rng.choices(WORDS, k=12)) + "."
        yield {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def conversational(row: dict) -> dict:
    return {"prompt": [{"role": "user", "content": row["prompt"]}],
            "chosen": [{"role": "assistant", "content": row["chosen"]}],
            "rejected": [{"role": "assistant", "content": row["rejected"]}]}


def write_inputs(n: int, folder: Path) -> tuple[Path, Path, Path]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    jsonl = folder / f"prefs-{n}.jsonl"
    conv = folder / f"conv-{n}.jsonl"
    parquet = folder / f"prefs-{n}.parquet"
    for path, shape in ((jsonl, dict), (conv, conversational)):
        if not path.exists():
            with path.open("w", encoding="utf-8") as fh:
                for row in make_rows(n):
                    fh.write(json.dumps(shape(row)) + "\n")
    if not parquet.exists():
        rows = list(make_rows(n))
        pq.write_table(pa.Table.from_pylist(rows), parquet)
    return jsonl, conv, parquet


def write_bad(jsonl: Path, folder: Path) -> Path:
    """The JSONL input with every 100th line broken, three ways in turn."""
    bad = folder / f"{jsonl.stem}-1pct-bad.jsonl"
    if not bad.exists():
        with jsonl.open(encoding="utf-8") as src, bad.open("w", encoding="utf-8") as out:
            for n, line in enumerate(src, start=1):
                if n % 100 == 0:
                    row = json.loads(line)
                    line = [line[: len(line) // 2] + "\n", json.dumps({**row, "chosen": ""}) + "\n",
                            json.dumps({"prompt": row["prompt"], "chosen": row["chosen"]}) + "\n"][n // 100 % 3]
                out.write(line)
    return bad


def write_csv(jsonl: Path, folder: Path) -> Path:
    """The standard JSONL input as CSV (prompt, chosen, rejected)."""
    import csv

    out_path = folder / f"{jsonl.stem}.csv"
    if not out_path.exists():
        with jsonl.open(encoding="utf-8") as src, out_path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["prompt", "chosen", "rejected"])
            for line in src:
                row = json.loads(line)
                writer.writerow([row["prompt"], row["chosen"], row["rejected"]])
    return out_path


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def phase_import(path: str, store_path: str) -> dict:
    from workbench.config import DEFAULT_MAX_FIELD_BYTES
    from workbench.ingest import import_files
    from workbench.store import Store

    t0 = time.perf_counter()
    with Store.open(store_path, create=True) as store:
        [report] = import_files(store, [Path(path)], max_field_bytes=DEFAULT_MAX_FIELD_BYTES)
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": report.counts.rows_read, "labels": report.counts.labels_added,
            "peak_mib": peak_mib()}


def phase_skip(path: str, store_path: str) -> dict:
    from workbench.config import DEFAULT_MAX_FIELD_BYTES
    from workbench.ingest import import_files
    from workbench.store import Store

    t0 = time.perf_counter()
    with Store.open(store_path, create=True) as store:
        [report] = import_files(store, [Path(path)], max_field_bytes=DEFAULT_MAX_FIELD_BYTES, on_error="skip",
                                max_rejects="2%", rejects_dir=Path(store_path).parent / "rejects")
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": report.read.rows_seen, "labels": report.counts.labels_added,
            "rejects": len(report.read.rejects), "peak_mib": peak_mib()}


def phase_reimport(path: str, store_path: str) -> dict:
    """The same file again: everything is a duplicate, so this measures dedupe against a full store."""
    return phase_import(path, store_path)


def phase_naive(path: str, store_path: str, slice_rows: int) -> dict:
    """The obvious alternative: parse each line with json, hash it, insert with executemany into the same
    tables (without the dedupe and validation the real path does)."""
    import duckdb

    from workbench.store import Store

    Store.open(store_path, create=True).close()
    con = duckdb.connect(store_path)
    t0 = time.perf_counter()
    prompts, responses, labels = [], [], []
    import hashlib

    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, start=1):
            if n > slice_rows:
                break
            row = json.loads(line)
            messages = [{"role": "user", "content": row["prompt"]}]
            pid = hashlib.md5(json.dumps(messages).encode()).hexdigest()
            cid = hashlib.md5((pid + row["chosen"]).encode()).hexdigest()
            rid = hashlib.md5((pid + row["rejected"]).encode()).hexdigest()
            prompts.append((pid, messages, path, n))
            responses += [(cid, pid, row["chosen"], path, n), (rid, pid, row["rejected"], path, n)]
            labels.append((hashlib.md5((cid + rid).encode()).hexdigest(), pid, cid, rid, path, n))
    con.execute("BEGIN")
    # No dedupe at all: the baseline gets the benefit of the doubt.
    con.executemany("INSERT INTO prompts (id, messages, source, source_line) VALUES (?, ?, ?, ?)", prompts)
    con.executemany("INSERT INTO responses (id, prompt_id, text, origin, source, source_line) "
                    "VALUES (?, ?, ?, 'import', ?, ?)", responses)
    con.executemany("INSERT INTO labels (id, kind, prompt_id, chosen_id, rejected_id, outcome, annotator, source, "
                    "source_line) VALUES (?, 'preference', ?, ?, ?, 'chosen', 'import', ?, ?)", labels)
    con.execute("COMMIT")
    seconds = time.perf_counter() - t0
    con.close()
    return {"seconds": seconds, "rows": min(slice_rows, n), "peak_mib": peak_mib()}


def phase_export(store_path: str, fmt: str, out: str) -> dict:
    from workbench.exporters import export
    from workbench.store import Store

    with Store.open(store_path) as store:
        t0 = time.perf_counter()
        result = export(store, kind="preferences", out_dir=out, fmt=fmt)
        seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in Path(out).iterdir())
    return {"seconds": seconds, "rows": result.counts["train"], "mib": size / 2**20, "peak_mib": peak_mib(),
            "sha256": result.content_hash}


def run_phase(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--phase", *args], check=True, capture_output=True, text=True,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive-slice", type=int, default=20_000)
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--phase", nargs="+")
    parser.add_argument("--only", default="import,csv,skip,naive,export", help="comma-separated phases to run")
    args = parser.parse_args()
    if args.phase:
        name, *rest = args.phase
        fn = {"import": phase_import, "reimport": phase_reimport, "export": phase_export, "skip": phase_skip,
              "naive": lambda p, s, k: phase_naive(p, s, int(k))}[name]
        print(json.dumps(fn(*rest)))
        return

    args.workdir.mkdir(parents=True, exist_ok=True)
    jsonl, conv, parquet = write_inputs(args.rows, args.workdir)
    print(f"{args.rows:,} preference rows: {jsonl.stat().st_size / 2**20:.0f} MiB JSONL (standard), "
          f"{conv.stat().st_size / 2**20:.0f} MiB JSONL (conversational), "
          f"{parquet.stat().st_size / 2**20:.0f} MiB Parquet (standard)")
    only = set(args.only.split(","))
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        tmp = Path(tmp)
        results = {}
        for label, src in (("jsonl", jsonl), ("conv", conv), ("parquet", parquet)):
            if "import" not in only and not (label == "jsonl" and "export" in only):
                continue
            store = str(tmp / f"{label}.duckdb")
            results[label] = r = run_phase("import", str(src), store)
            print(f"import {label:8s}: {r['seconds']:6.2f} s  {r['rows'] / r['seconds']:9,.0f} rows/s  "
                  f"peak {r['peak_mib']:6.0f} MiB  ({r['labels']:,} labels)")
        if "import" in only:
            r = run_phase("reimport", str(jsonl), str(tmp / "jsonl.duckdb"))
            print(f"re-import jsonl: {r['seconds']:6.2f} s  {r['rows'] / r['seconds']:9,.0f} rows/s  "
                  f"peak {r['peak_mib']:6.0f} MiB  ({r['labels']:,} labels added)")
        if "csv" in only:  # issue 19: a CSV streams from disk too (it was read whole, about 3x its size)
            csv_path = write_csv(jsonl, args.workdir)
            r = run_phase("import", str(csv_path), str(tmp / "csv.duckdb"))
            print(f"import csv     : {r['seconds']:6.2f} s  {r['rows'] / r['seconds']:9,.0f} rows/s  "
                  f"peak {r['peak_mib']:6.0f} MiB  ({r['labels']:,} labels; file "
                  f"{csv_path.stat().st_size / 2**20:.0f} MiB)")
        if "skip" in only:
            bad = write_bad(jsonl, args.workdir)
            r = run_phase("skip", str(bad), str(tmp / "skip.duckdb"))
            print(f"import 1% bad, --on-error skip: {r['seconds']:6.2f} s  {r['rows'] / r['seconds']:9,.0f} rows/s  "
                  f"peak {r['peak_mib']:6.0f} MiB  ({r['labels']:,} labels, {r['rejects']:,} rejects)")
        if "naive" in only:
            naive = run_phase("naive", str(jsonl), str(tmp / "naive.duckdb"), str(args.naive_slice))
            naive_rate = naive["rows"] / naive["seconds"]
            print(f"naive executemany on {naive['rows']:,} rows: {naive['seconds']:6.2f} s  {naive_rate:9,.0f} "
                  f"rows/s (1M rows would take {args.rows / naive_rate / 60:.1f} min)")
            for label in results:
                rate = results[label]["rows"] / results[label]["seconds"]
                print(f"ratio import {label} / naive: {rate / naive_rate:.1f}x")
        if "export" in only:
            hashes = []
            for fmt, run in (("parquet", 1), ("jsonl", 1), ("parquet", 2)):
                r = run_phase("export", str(tmp / "jsonl.duckdb"), fmt, str(tmp / f"export-{fmt}-{run}"))
                hashes += [r["sha256"]] if fmt == "parquet" else []
                print(f"export {fmt:8s}: {r['seconds']:6.2f} s  {r['rows'] / r['seconds']:9,.0f} rows/s  "
                      f"{r['mib']:6.0f} MiB  peak {r['peak_mib']:6.0f} MiB")
            print(f"two Parquet exports of the same store are byte-identical: {hashes[0] == hashes[1]}")


if __name__ == "__main__":
    main()
