"""The real Gradio server on a free port, driven over HTTP with gradio_client and in headless Chromium:
sign-in, labeling with the keyboard, a reload mid-draft, scoping by role, and the store held by the server
so a second writer gets the clear message."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from tests.conftest import ARTIFACTS, DEMO_DATA
from workbench.cli import main
from workbench.ui.project import stats_markdown
from workbench.ui.stage_settings import CLI_FIELDS

# The Train tab's All settings fields, left empty (the stage's defaults), for API calls of /start_training
ALL_SETTINGS_EMPTY = (None,) * len(set(CLI_FIELDS.values()))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


PASSWORD = "test-password"
USERS = {"root": "admin", "ann": "annotator", "bob": "annotator"}


@pytest.fixture
def demo_project(project, load):
    from workbench.auth import add_user
    from workbench.store import Store

    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "sft.jsonl"), str(DEMO_DATA / "preferences.jsonl")]) == 0
    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "heldout_prompts.jsonl"), "--tag", "heldout"]) == 0
    with Store.open(project.store_path) as store:
        for name, role in USERS.items():
            add_user(store, name, role, PASSWORD)
    assert main(["tasks", "add", "write", "--kind", "demonstration", "--tag", "heldout", "-p", str(project.root),
                 "--guidelines", "Write the reply **Loki support** would send."]) == 0
    assert main(["tasks", "add", "compare", "--kind", "pairwise", "--overlap", "2", "--source", "preferences.jsonl",
                 "-p", str(project.root)]) == 0
    assert main(["tasks", "add", "order", "--kind", "ranking", "--max-responses", "3", "--source", "sft.jsonl",
                 "-p", str(project.root)]) == 0
    assert main(["tasks", "add", "thumbs", "--kind", "feedback", "--source", "preferences.jsonl",
                 "-p", str(project.root)]) == 0
    return project


def test_stats_handler_is_a_plain_function(store, load):
    load(DEMO_DATA / "preferences.jsonl")
    text = stats_markdown(store, "demo")
    assert "| prompts | 300 |" in text and "| labels: preference | 500 |" in text


def start_server(root, python_flags: tuple[str, ...] = (), stderr=subprocess.STDOUT) -> tuple[str, subprocess.Popen]:
    """`workbench serve ROOT` on a free port; returns once the port answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, *python_flags, "-m", "workbench.cli", "serve", str(root), "--port",
                             str(port)], stdout=subprocess.PIPE, stderr=stderr, text=True)
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return f"http://127.0.0.1:{port}", proc
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
            time.sleep(0.5)
    proc.kill()
    raise AssertionError("server did not start in 120 s")


@contextmanager
def serving(root):
    """`workbench serve ROOT` for a block of tests (a module's fixture); stopped at the end."""
    url, proc = start_server(root)
    try:
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)


@contextmanager
def chromium(shots):
    """Headless Debian Chromium for a module's browser tests; `shots` is where their screenshots go."""
    from playwright.sync_api import sync_playwright

    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def server(demo_project):
    """`workbench serve` in its own process, as a user runs it."""
    url, proc = start_server(demo_project.root)

    def stop():
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)

    yield url, demo_project, stop
    stop()


@pytest.mark.e2e
def test_server_serves_stats_and_holds_the_store(server, capsys, tmp_path):
    from gradio_client import Client

    url, project, _ = server
    stats = Client(url, auth=("root", PASSWORD), verbose=False).predict(api_name="/stats")
    assert "| prompts | 920 |" in stats and "| prompts tagged `heldout` | 120 |" in stats
    assert "| labels: demonstration | 1945 |" in stats
    # The server owns the store: a CLI write now fails with the clear message, not a stack trace.
    src = tmp_path / "x.jsonl"
    src.write_text('{"prompt": "a", "completion": "b"}\n')
    assert main(["import", "-p", str(project.root), str(src)]) == 2
    assert "in use by another process" in capsys.readouterr().err


@pytest.mark.e2e
def test_the_api_is_scoped_by_role(server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError, AuthenticationError

    url, _, _ = server
    with pytest.raises(AuthenticationError):
        Client(url, verbose=False)  # no anonymous access, not even to the API description
    with pytest.raises(Exception, match="(?i)incorrect|login|credentials"):
        Client(url, auth=("ann", "wrong-password"), verbose=False)
    ann = Client(url, auth=("ann", PASSWORD), verbose=False)
    whoami = ann.predict(api_name="/whoami")
    assert "Signed in as **ann** (annotator)" in whoami[0]
    # every admin endpoint refuses an annotator's session at the HTTP level
    for api_name, args in (("/stats", ()), ("/task_overview", ("task-compare",)),
                           ("/review_item", ("task-compare", "x")),
                           ("/adjudicate", ("task-compare", "x", "A", "", "")),
                           ("/create_task", ("sneaky", "pairwise", 1, None, "", "", "", "", "")),
                           ("/start_training", ("sft", "", "", 3, None, False, *ALL_SETTINGS_EMPTY)),
                           ("/cancel_training", ()),
                           ("/generate", (["base"], "heldout", None, 1, 0.8, 16, "", "", None, None))):
        with pytest.raises(AppError, match="needs the role admin"):
            ann.predict(*args, api_name=api_name)
    for api_name, args in (("/leaderboard", ([],)), ("/playground", ("base", None, 0.7, "", "hi", [], []))):
        with pytest.raises(AppError, match="needs the role reviewer or admin"):
            ann.predict(*args, api_name=api_name)
    # what an annotator sees of an item holds no one's labels: only the prompt and anonymous replies
    view = ann.predict("task-compare", api_name="/open_task")
    bob = Client(url, auth=("bob", PASSWORD), verbose=False)
    bob_view = bob.predict("task-compare", api_name="/open_task")
    item_id, client_id = view[-2], view[-1]
    assert bob_view[-2] == item_id  # overlap 2: both work on the same item
    after = ann.predict("task-compare", item_id, client_id, "", "A", "", "", None, None, None, None, None, None,
                        api_name="/submit")
    assert "Saved." in after[-3] and after[-2] != item_id
    again = ann.predict("task-compare", item_id, client_id, "", "A", "", "", None, None, None, None, None, None,
                        api_name="/submit")  # a network retry of the same submit
    assert "Already saved" in again[-3]
    bob_after = bob.predict("task-compare", api_name="/open_task")
    assert bob_after[-2] == item_id and "ann" not in str(bob_after)
    admin = Client(url, auth=("root", PASSWORD), verbose=False)
    progress, _ = admin.predict("task-compare", api_name="/task_overview")
    assert "1 of 600 answers" in progress and "| ann | 1 | 0 | 0 |" in progress


@pytest.mark.e2e
def test_the_server_process_never_imports_torch(demo_project, tmp_path):
    """Active selection scored by a model version, a Playground chat, a generation and a training job, through
    the real server: the models load in job processes and in the model worker, never in the server process. `-X
    importtime` logs every module the server imports (its child processes are not traced), so the log is that
    process's sys.modules, over time."""
    from gradio_client import Client

    from tests.test_jobs import register_version
    from workbench.store import Store

    root = str(demo_project.root)
    assert main(["tasks", "add", "few", "--kind", "pairwise", "--query", "Loki Watch", "-p", root]) == 0
    with Store.open(demo_project.store_path) as store:
        register_version(demo_project, store, "sft-1", demo_project.base_model_path())
    log = tmp_path / "imports.log"
    with log.open("w") as stderr:
        url, proc = start_server(root, ("-X", "importtime"), stderr=stderr)
    try:
        admin = Client(url, auth=("root", PASSWORD), verbose=False)
        admin.predict("task-few", "margin", "sft-1", api_name="/reorder_queue")
        deadline = time.time() + 300
        while "Queue position" not in (view := admin.predict("task-few", api_name="/open_task"))[-4]:
            assert time.time() < deadline, "the queue was not reordered in 300 s"
            time.sleep(1)
        assert "sft-1 margin" in view[-4]  # scored by the model version
        chat, _, _ = admin.predict("base", None, 0.0, "", "My Loki Watch strap broke.", [], [], api_name="/playground")
        assert len(chat) == 2 and "strap broke" in str(chat[0])  # the question and the version's reply
        before = admin.predict(api_name="/stats")
        # the Train tab's generation filters (issue 20): held-out prompts about the Loki Fold only, top-p, seed
        assert "Started **generate-1**" in admin.predict(["sft-1"], "heldout", 2, 1, 0.0, 8, "", "loki fold", 0.9,
                                                         3, api_name="/generate")
        while (after := admin.predict(api_name="/stats")) == before:  # until the job's replies are stored
            assert time.time() < deadline, "the generation job stored nothing in 300 s"
            time.sleep(1)
        assert "| responses (model) | 2 |" in after
        # a training job: its settings are checked in a short process of their own, the model in the job's
        assert "Started **sft-2**" in admin.predict("sft", "", "", 2, 0, False, *ALL_SETTINGS_EMPTY,
                                                      api_name="/start_training")
        while "| model versions | 2 |" not in admin.predict(api_name="/stats"):
            assert time.time() < deadline + 300, "the training job stored no version in 600 s"
            time.sleep(1)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    with Store.open(demo_project.store_path, read_only=True) as store:
        asked = store.cursor().execute(
            "SELECT p.messages, r.generation->'$.sampling' FROM responses r JOIN prompts p ON p.id = r.prompt_id "
            "WHERE r.origin = 'model'").fetchall()
    assert len(asked) == 2 and all("loki fold" in str(m).lower() for m, _ in asked)
    assert all(json.loads(s)["top_p"] == 0.9 and json.loads(s)["seed"] == 3 for _, s in asked)
    imported = {line.rsplit("|", 1)[-1].strip() for line in log.read_text().splitlines()
                if line.startswith("import time:")}
    assert {"gradio", "duckdb", "gradio_client"} <= imported  # the log is the server's own
    assert sorted(m for m in imported if m.split(".")[0] in ("torch", "transformers")) == []


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                    reason="Debian's chromium is not installed (make test installs it)")
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def sign_in(page, url, name):
    page.goto(url)
    page.fill("input[data-testid=textbox]", name)
    page.fill("input[type=password]", PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)


@pytest.mark.e2e
# Outside CI a missing browser skips; in CI (where `make test` installs it) a missing browser fails.
@needs_chromium
def test_annotator_labels_in_chromium_with_the_keyboard(server):
    """Sign in, write a demonstration (reload mid-draft), rank a pair with the keyboard, then check the store."""
    from playwright.sync_api import expect, sync_playwright

    from workbench.store import Store

    url, project, stop = server
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        page = browser.new_page()
        page.goto(url)
        page.wait_for_selector("input[type=password]")
        page.screenshot(path=str(ARTIFACTS / "sign-in.png"), full_page=True)
        sign_in(page, url, "ann")
        expect(page.get_by_role("tab", name="Tasks")).to_have_count(0)  # no admin tabs for an annotator
        expect(page.locator("#progress-text")).to_have_text("0 done · 120 left")
        expect(page.locator("#completion textarea")).to_be_visible()
        prompt = page.inner_text("#conversation")
        # a half-written reply survives a reload: it is saved server-side as it is typed
        page.locator("#completion textarea").press_sequentially("I'm sorry about that. Under our", delay=20)
        expect(page.locator("#label-status")).to_have_text("Draft saved.", timeout=15_000)
        page.reload()
        page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
        expect(page.locator("#completion textarea")).to_have_value("I'm sorry about that. Under our",
                                                                      timeout=15_000)
        assert page.inner_text("#conversation") == prompt  # the same item came back
        page.keyboard.press("g")  # guidelines one key away (focus is outside the text box here)
        expect(page.locator("#guidelines")).to_contain_text("Loki support")
        page.locator("#completion textarea").press_sequentially(" 2-year warranty we repair it free.", delay=5)
        page.screenshot(path=str(ARTIFACTS / "demonstration.png"), full_page=True)
        page.locator("#completion textarea").press("Control+Enter")
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
        expect(page.locator("#progress-text")).to_have_text("1 done · 119 left")
        assert page.inner_text("#conversation") != prompt  # the next item appeared at once

        page.locator("#task input").click()
        page.get_by_role("option", name="compare (pairwise)").click()
        expect(page.locator("#choice")).to_be_visible(timeout=15_000)
        expect(page.locator("#response-A")).to_contain_text("A")
        page.locator("body").click(position={"x": 5, "y": 5})  # focus outside any text box
        page.keyboard.press("b")
        expect(page.locator("#choice input[value=B]")).to_be_checked()
        for key in ("r", "a", "2", "r", "b", "5"):
            page.keyboard.press(key)
        expect(page.locator("#rating-A input[value='2']")).to_be_checked()
        expect(page.locator("#rating-B input[value='5']")).to_be_checked()
        page.screenshot(path=str(ARTIFACTS / "pairwise.png"), full_page=True)
        shown = [page.inner_text("#response-A"), page.inner_text("#response-B")]
        page.keyboard.press("Enter")
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
        expect(page.locator("#progress-text")).to_contain_text("1 done")

        page.locator("#task input").click()
        page.get_by_role("option", name="order (ranking)").click()
        expect(page.locator("#order")).to_be_visible(timeout=15_000)
        expect(page.locator("#response-C")).to_be_visible()
        page.locator("body").click(position={"x": 5, "y": 5})
        for key in ("c", "b", "Backspace", "a", "b"):  # a slip corrected with Backspace: C, A, B
            page.keyboard.press(key)
        expect(page.locator("#order textarea, #order input")).to_have_value("CAB")
        ranked = [page.inner_text(f"#response-{x}") for x in "CAB"]
        page.screenshot(path=str(ARTIFACTS / "ranking.png"), full_page=True)
        page.keyboard.press("Enter")
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)

        page.locator("#task input").click()
        page.get_by_role("option", name="thumbs (feedback)").click()
        expect(page.locator("#thumb")).to_be_visible(timeout=15_000)
        expect(page.locator("#response-B")).not_to_be_visible()  # one reply at a time
        expect(page.locator("#choice")).not_to_be_visible()
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("n")
        expect(page.locator("#thumb input[value=down]")).to_be_checked()
        judged = page.inner_text("#response-A")
        page.screenshot(path=str(ARTIFACTS / "feedback.png"), full_page=True)
        page.keyboard.press("Enter")
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)

        admin = browser.new_page()
        sign_in(admin, url, "root")
        admin.get_by_role("tab", name="Tasks").click()
        admin.locator("#admin-task input").click()
        admin.get_by_role("option", name="compare (pairwise)").click()
        expect(admin.locator("#task-progress")).to_contain_text("1 of 600 answers")
        admin.screenshot(path=str(ARTIFACTS / "tasks.png"), full_page=True)
        # active selection: order the open pairs by how different their replies are, then see why in Label
        admin.get_by_text("Queue order: label first").click()
        admin.locator("#order-by input").click()
        admin.get_by_role("option", name=re.compile("^variance")).click()
        admin.locator("#reorder").click()
        expect(admin.locator("#reorder-status")).to_contain_text("ordered by variance", timeout=30_000)
        admin.get_by_role("tab", name="Label").click()
        admin.locator("#task input").click()
        admin.get_by_role("option", name="compare (pairwise)").click()
        expect(admin.locator("#item-priority")).to_contain_text("Queue position", timeout=15_000)
        expect(admin.locator("#item-priority")).to_contain_text("responses share")
        expect(page.locator("#item-priority")).not_to_contain_text("Queue position")  # annotators never see it
        admin.get_by_role("tab", name="Tasks").click()
        admin.get_by_role("tab", name="Project").click()
        admin.wait_for_selector("#stats table", timeout=30_000)
        assert "920" in admin.inner_text("#stats")
        admin.screenshot(path=str(ARTIFACTS / "stats.png"), full_page=True)
        admin.get_by_role("tab", name="Train").click()
        admin.wait_for_selector("#start", state="visible")
        admin.screenshot(path=str(ARTIFACTS / "train.png"), full_page=True)
        browser.close()
    stop()  # the server holds the store: let go, then read what it stored
    with Store.open(project.store_path) as store:
        demo = store.task_answers("task-write")
        assert [(a["annotator"], a["kind"]) for a in demo] == [("ann", "demonstration")]
        assert store.response_text(demo[0]["response_id"]) == (
            "I'm sorry about that. Under our 2-year warranty we repair it free.")
        vote = store.task_answers("task-compare")
        assert len(vote) == 1 and vote[0]["outcome"] == "chosen"
        assert store.response_text(vote[0]["chosen_id"]) in shown[1] and store.response_text(vote[0]["rejected_id"]) in shown[0]
        ratings = vote[0]["payload"]["ratings"]
        assert ratings == {vote[0]["rejected_id"]: 2, vote[0]["chosen_id"]: 5}
        ranking = store.task_answers("task-order")
        assert len(ranking) == 1
        assert [store.response_text(r) for r in ranking[0]["ranking"]] == [t.split("\n", 1)[1].strip() for t in ranked]
        [thumb] = store.task_answers("task-thumbs")
        assert thumb["kind"] == "feedback" and thumb["payload"]["thumb"] == "down"
        assert store.response_text(thumb["response_id"]) == judged.split("\n", 1)[1].strip()


def test_a_busy_port_is_a_clear_error_and_frees_the_store(demo_project, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["serve", str(demo_project.root), "--port", str(port)]) == 2
    assert f"port {port} on 127.0.0.1 is in use" in capsys.readouterr().err
    assert main(["stats", str(demo_project.root)]) == 0  # the failed server let go of the store


@pytest.mark.slow
def test_train_tab_starts_follows_and_cancels_jobs(demo_project):
    """The Train tab's handlers, called as the UI calls them, against a real trainer process."""
    from workbench.jobs import JobRunner
    from workbench.store import Store
    from workbench.ui.train import cancel_job, job_view, start_job

    with Store.open(demo_project.store_path) as store:
        runner = JobRunner(demo_project, store)
        assert job_view(runner)[0] == "No training job yet."
        assert "Started **sft-1**" in start_job(runner, "sft", None, None, 3, None, False)
        assert "still running" in start_job(runner, "sft", None, None, 3, None, False)  # one job at a time
        job = runner.wait(timeout=300)
        assert job.state == "succeeded" and store.model_version("sft-1") is not None
        text, table = job_view(runner)
        assert "sft-1** (sft): succeeded" in text
        # A long job, cancelled: the run is marked cancelled and makes no version.
        assert "Started **sft-2**" in start_job(runner, "sft", None, None, 100000, None, False)
        deadline = time.time() + 120
        while not (demo_project.runs_dir / "sft-2" / "metrics.jsonl").exists() and time.time() < deadline:
            time.sleep(0.5)
        assert "sft-2**: cancelled" in cancel_job(runner)
        assert store.run("sft-2").status == "cancelled" and store.model_version("sft-2") is None
        assert "Not started" in start_job(runner, "ppo", "sft-1", None, 3, None, False)


@pytest.fixture
def review_server(demo_project):
    """The demo project with a short SFT version, replies generated from it and from the base, a blind
    review of the two, and a reviewer; served as a user runs it."""
    from workbench.auth import add_user
    from workbench.store import Store

    root = str(demo_project.root)
    assert main(["train", "sft", root, "--max-steps", "2", "--batch-size", "4", "--max-length", "96"]) == 0
    assert main(["generate", root, "--versions", "sft-1,base", "--tag", "heldout", "--limit", "4",
                 "--max-new-tokens", "16"]) == 0
    assert main(["tasks", "add", "ab", "--kind", "review", "--versions", "sft-1,base", "-p", root]) == 0
    with Store.open(demo_project.store_path) as store:
        add_user(store, "rev", "reviewer", PASSWORD)
    url, proc = start_server(root)
    yield url, demo_project
    proc.terminate()
    proc.wait(timeout=30)


PLAY_FIRST_TURN_SEEN = """(start) => {
  const box = document.getElementById('chat-a');
  box.querySelectorAll('*').forEach(el => { if (el.scrollHeight > el.clientHeight + 2) el.scrollTop = 0; });
  const walker = document.createTreeWalker(box, NodeFilter.SHOW_TEXT);
  let node = null;
  while (walker.nextNode()) { if (walker.currentNode.textContent.includes(start)) { node = walker.currentNode; break; } }
  if (!node) return 'missing';
  const range = document.createRange(); range.selectNodeContents(node);
  const rect = range.getClientRects()[0];
  const hit = document.elementFromPoint(rect.left + 3, rect.top + rect.height / 2);
  if (hit && (hit === node.parentElement || node.parentElement.contains(hit))) return 'seen';
  return 'covered by ' + (hit ? hit.tagName + ' ' + (hit.getAttribute('aria-label') || hit.className) : 'nothing');
}"""


@pytest.mark.e2e
@needs_chromium
def test_reviewer_votes_blind_then_sees_the_leaderboard_and_chats(review_server):
    """A/B review in Chromium: versions hidden until the vote, named after it; the leaderboard counts the
    vote; the playground answers with a version; an annotator never sees the review."""
    from playwright.sync_api import expect, sync_playwright

    url, _ = review_server
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=BROWSER_ARGS)
        ann = browser.new_page()
        sign_in(ann, url, "ann")
        ann.locator("#task input").click()
        expect(ann.get_by_role("option", name="compare (pairwise)")).to_be_visible()
        expect(ann.get_by_role("option", name="ab (review)")).to_have_count(0)
        expect(ann.get_by_role("tab", name="Leaderboard")).to_have_count(0)

        page = browser.new_page()
        sign_in(page, url, "rev")
        page.locator("#task input").click()
        page.get_by_role("option", name="ab (review)").click()
        expect(page.locator("#choice")).to_be_visible(timeout=15_000)
        expect(page.locator("#response-B")).to_be_visible()
        label_area = page.inner_text("#label-status") + page.inner_text("#response-A") + page.inner_text("#response-B")
        assert "sft-1" not in label_area and "base" not in label_area  # blind
        page.screenshot(path=str(ARTIFACTS / "review.png"), full_page=True)
        page.locator("body").click(position={"x": 5, "y": 5})
        page.keyboard.press("a")
        expect(page.locator("#choice input[value=A]")).to_be_checked()
        page.keyboard.press("Enter")
        expect(page.locator("#label-status")).to_contain_text("You voted on: A = ", timeout=15_000)
        status = page.inner_text("#label-status")
        assert "sft-1" in status and "base" in status

        page.get_by_role("tab", name="Leaderboard").click()
        expect(page.locator("#board-table")).to_contain_text("1 votes", timeout=30_000)
        expect(page.locator("#board-plot svg")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "leaderboard.png"), full_page=True)

        page.get_by_role("tab", name="Playground").click()
        page.locator("#play-message textarea, #play-message input").fill("My Loki Fold screen cracked.")
        page.locator("#play-send").click()
        expect(page.locator("#chat-a")).to_contain_text("My Loki Fold screen cracked.", timeout=60_000)
        expect(page.locator("#chat-a .bot-row")).not_to_have_count(0, timeout=60_000)  # the version replied
        page.locator("#play-message textarea, #play-message input").fill("And the back glass too.")
        page.locator("#play-send").click()
        expect(page.locator("#chat-a .bot-row")).to_have_count(2, timeout=60_000)
        # issue 20, bug 6: scrolled back up, the first turn shows, under no toolbar icon
        assert page.evaluate(PLAY_FIRST_TURN_SEEN, "My Loki Fold screen cracked.") == "seen"
        page.screenshot(path=str(ARTIFACTS / "playground.png"), full_page=True)
        browser.close()
