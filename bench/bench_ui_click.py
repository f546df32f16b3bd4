"""Click (or key) to the next item, measured in a real headless Chromium against the real server (issue 20):
the time from the Enter that submits a pairwise answer to the next item's conversation on screen.

    .venv/bin/python bench/bench_ui_click.py                 # 40 answers by key, 40 by mouse
    .venv/bin/python bench/bench_ui_click.py --answers 100

A fresh demo project (the tiny model; no model is loaded by the server), one annotator, one pairwise task.
The browser's own clock: `performance.now()` at the key press or click, and again when a MutationObserver sees
the conversation box change. Target: under 0.3 s. Results go in BENCHMARKS.md by hand, beside the 20-client
HTTP figure of bench_labeling.py.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WAIT_FOR_CHANGE = """() => new Promise((done) => {
  // Gradio first lays its pending overlay ("0.0s", "queue: 1/1 | 0.1s", "processing") over the box: that is
  // not the next item. Done when the conversation's own text (from its first turn) is another one and the
  // overlay is gone (the first version of this bench stopped at the overlay: 0.018 s).
  const box = document.getElementById('conversation');
  const talk = () => { const t = box.innerText; const i = t.indexOf('User'); return i < 0 ? t : t.slice(i); };
  const idle = () => !/^\\s*(queue|processing|[0-9.\\/]+s)/.test(box.innerText);
  const before = talk();
  const t0 = performance.now();
  const seen = new MutationObserver(() => {
    if (talk() !== before && idle()) { seen.disconnect(); done(performance.now() - t0); }
  });
  seen.observe(box, {childList: true, subtree: true, characterData: true, attributes: true});
  window.__go();
})"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=40, help="answers per way (key, mouse)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    from tests.test_app import BROWSER_ARGS, PASSWORD, start_server
    from tests.test_ui_bugs import signed_in
    from workbench.auth import add_user
    from workbench.cli import main as wb
    from workbench.demo import create_demo_project, default_data_dir
    from workbench.store import Store

    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    project, _ = create_demo_project(tmp / "demo", default_data_dir(), log=lambda *_: None)
    assert wb(["tasks", "add", "clicks", "--kind", "pairwise", "--source", "preferences.jsonl", "-p",
               str(project.root)]) == 0
    with Store.open(project.store_path) as store:
        add_user(store, "clicker", "annotator", PASSWORD)
    url, proc = start_server(project.root)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    times: dict[str, list[float]] = {"key": [], "mouse": []}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=BROWSER_ARGS)
            page = signed_in(browser, url, "clicker")
            page.locator("#task input").click()
            page.get_by_role("option", name="clicks (pairwise)").click()
            page.wait_for_timeout(2000)
            for way in ("key", "mouse"):
                for i in range(args.answers + 3):  # the first three warm up
                    page.locator("body").click(position={"x": 5, "y": 5})
                    page.keyboard.press("a" if i % 2 else "b")
                    go = ("() => document.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', bubbles: true}))"
                          if way == "key" else "() => document.getElementById('submit').click()")
                    page.evaluate(f"window.__go = {go}")
                    ms = page.evaluate(WAIT_FOR_CHANGE)
                    if i >= 3:
                        times[way].append(ms / 1000)
                    page.wait_for_timeout(100)
            browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    for way, got in times.items():
        got.sort()
        print(f"{way:5s}: {len(got)} answers, click to next item p50 {statistics.median(got):.3f} s, "
              f"p95 {got[int(0.95 * (len(got) - 1))]:.3f} s, max {got[-1]:.3f} s")


if __name__ == "__main__":
    main()
