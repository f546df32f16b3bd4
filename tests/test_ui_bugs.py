"""The browser UI's bugs of issue 20, each met in headless Chromium against the real server as a user meets
it, with a screenshot per test in test-artifacts/ui-bugs/. One server for the module; each test signs in as
its own annotator and works in its own task, so the tests do not lean on each other's answers."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ARTIFACTS, DEMO_DATA
from tests.test_app import PASSWORD, chromium, needs_chromium, serving
from workbench.cli import main

pytestmark = [pytest.mark.e2e, needs_chromium]
SHOTS = ARTIFACTS / "ui-bugs"
ANNOTATORS = ("dana", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lee", "max", "ned", "ola", "pat", "quin")


@pytest.fixture(scope="module")
def ui_root(tmp_path_factory, tiny_model):
    """The demo data, an admin and an annotator per test, and a task per test, all before the server takes
    the store (it is the one writer)."""
    from workbench.auth import add_user
    from workbench.projects import init_project
    from workbench.store import Store

    project = init_project(tmp_path_factory.mktemp("ui") / "proj", base_model=str(tiny_model))
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "sft.jsonl"), str(DEMO_DATA / "preferences.jsonl")]) == 0
    assert main(["import", "-p", root, str(DEMO_DATA / "heldout_prompts.jsonl"), "--tag", "heldout"]) == 0
    with Store.open(project.store_path) as store:
        add_user(store, "root", "admin", PASSWORD)
        for name in ANNOTATORS:
            add_user(store, name, "annotator", PASSWORD)
        for name in ("rev", "rev2"):
            add_user(store, name, "reviewer", PASSWORD)
        add_replies_of_a_version(store, project, "sft-1")
    for name, kind, extra in (("write", "demonstration", ["--tag", "heldout"]),
                              ("write2", "demonstration", ["--tag", "heldout", "--overlap", "2"]),
                              ("pick", "pairwise", ["--source", "preferences.jsonl"]),
                              ("pick2", "pairwise", ["--source", "preferences.jsonl", "--overlap", "2"]),
                              ("order", "ranking", ["--max-responses", "3", "--source", "sft.jsonl"])):
        assert main(["tasks", "add", name, "--kind", kind, "-p", root, *extra]) == 0
    assert main(["tasks", "add", "ab", "--kind", "review", "--versions", "sft-1,base", "-p", root]) == 0
    assert main(["tasks", "add", "ab-later", "--kind", "review", "--versions", "sft-1,base", "-p", root]) == 0
    long = project.root / "long.jsonl"
    prompt = [{"role": "user", "content": "FIRST TURN: my Loki Fold screen flickers after the update. " * 12},
              {"role": "assistant", "content": "Sorry to hear that. Which update did you install? " * 12},
              {"role": "user", "content": "The one from Monday. What now?"}]
    replies = ["Sorry about the flicker. " * 120, "Try this page: https://loki.example/" + "x" * 400,
               "Restart it. " * 30]
    long.write_text("".join(json.dumps({"prompt": prompt, "chosen": [{"role": "assistant", "content": replies[0]}],
                                        "rejected": [{"role": "assistant", "content": r}]}) + "\n"
                            for r in replies[1:]))
    assert main(["import", "-p", root, str(long)]) == 0
    assert main(["tasks", "add", "long", "--kind", "ranking", "--max-responses", "3", "--source", "long.jsonl",
                 "--overlap", "3", "-p", root]) == 0
    return project


def add_replies_of_a_version(store, project, version: str) -> None:
    """A model version and its replies (and the base model's) to four held-out prompts, stored the way a
    generation job's results are: what a review and the leaderboard read. No model is trained or loaded here
    (tests/test_app.py's review test does that); these tests are about what the page shows."""
    from workbench.store import ModelVersion

    run_dir = project.runs_dir / version
    store.create_run(run_id=version, stage="sft", parent_version_id=None, config={}, dataset_hash="test",
                     run_dir=str(run_dir))
    store.finish_run(version, status="succeeded", version=ModelVersion(
        id=version, run_id=version, stage="sft", base_model="base", parent_id=None, dataset_hash="test",
        path=str(run_dir / "adapter")))
    prompts = store.selected_prompts(tags=["heldout"])[-4:]  # the last ones: the demonstration tasks start at the top
    rows = [{"prompt_id": p["prompt_id"], "version": v, "sample": 0,
             "text": f"{'Kind' if v == version else 'Plain'} reply {k}: we can help."}
            for k, p in enumerate(prompts) for v in (version, "base")]
    assert store.add_generated(rows, job_id="generate-test", sampling={"n": 1}, backend="test") == 8


@pytest.fixture(scope="module")
def ui_server(ui_root):
    with serving(ui_root.root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(SHOTS) as b:
        yield b


def signed_in(browser, url: str, name: str, *, height: int = 900):
    """A page of its own browser context (its own session cookie), signed in as `name`."""
    page = browser.new_context(viewport={"width": 1280, "height": height}).new_page()
    page.goto(url)
    page.fill("input[data-testid=textbox]", name)
    page.fill("input[type=password]", PASSWORD)
    page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
    return page


def choose_task(page, option: str):
    from playwright.sync_api import expect

    page.locator("#task input").click()
    page.get_by_role("option", name=option).click()
    expect(page.locator("#task input")).to_have_value(option, timeout=15_000)
    page.wait_for_timeout(1500)  # the task's item replaces the one shown before (no spinner to wait for)


def outside_text(page):
    page.locator("body").click(position={"x": 5, "y": 5})


def slow_network(page, latency_ms: int = 150) -> None:
    """Chromium's own network emulation: every request and reply `latency_ms` late."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", {"offline": False, "latency": latency_ms,
                                                   "downloadThroughput": -1, "uploadThroughput": -1})


def admin_predict(url: str, *args, api_name: str):
    from gradio_client import Client

    return Client(url, auth=("root", PASSWORD), verbose=False).predict(*args, api_name=api_name)


# ------------------------------------------------------------------ bug 2
def test_ctrl_enter_saves_the_demonstration_once_and_serves_the_next_item(ui_server, browser):
    """Bug 2: a reply typed fast and sent with Ctrl+Enter is "Saved.", never left as a draft: a reload serves
    the next item (not the answered one with its text), and the answer is stored once."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "dana")
    slow_network(page)  # a team's server is a few tens of milliseconds away, not on the same machine
    choose_task(page, "write (demonstration)")
    expect(page.locator("#completion textarea")).to_be_visible(timeout=15_000)
    prompt = page.inner_text("#conversation")
    box = page.locator("#completion textarea")
    box.fill("")
    box.press_sequentially("Sorry about the screen; we repair it free under warranty.", delay=0)
    box.press("Control+Enter")
    expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
    page.wait_for_timeout(1500)  # any draft save still on its way would land now
    expect(page.locator("#label-status")).to_have_text("Saved.")
    page.screenshot(path=str(SHOTS / "bug2-ctrl-enter-saved.png"), full_page=True)
    page.reload()
    page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
    choose_task(page, "write (demonstration)")
    expect(page.locator("#completion textarea")).to_be_visible(timeout=15_000)
    page.wait_for_timeout(500)
    assert page.inner_text("#conversation") != prompt  # the next item, not the answered one again
    assert "repair it free under warranty" not in page.locator("#completion textarea").input_value()
    page.screenshot(path=str(SHOTS / "bug2-after-reload.png"), full_page=True)
    progress = admin_predict(ui_server, "task-write", api_name="/task_overview")[0]
    assert "1 of 120 answers" in progress, progress


# ------------------------------------------------------------------ bug 1
def no_error_pills(page):
    """Gradio marks each output of a failed event with a red "Error" status; none may stay on the page."""
    from playwright.sync_api import expect

    expect(page.locator(".wrap .error:visible")).to_have_count(0, timeout=5_000)


def test_a_refused_answer_says_why_and_leaves_the_item_usable(ui_server, browser):
    """Bug 1: Enter with nothing chosen, or a ranking naming too few letters: the reason is shown, and the
    conversation, responses and radios stay as they were, usable with the mouse (no red Error pills)."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "eve")
    choose_task(page, "pick (pairwise)")
    expect(page.locator("#choice")).to_be_visible(timeout=15_000)
    shown = page.inner_text("#response-A")
    outside_text(page)
    page.keyboard.press("Enter")
    expect(page.get_by_text("choose A, B, tie or both bad before submitting").first).to_be_visible(timeout=15_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "bug1-refused-pairwise.png"), full_page=True)
    no_error_pills(page)
    assert page.inner_text("#response-A") == shown
    page.locator("#choice input[value=A]").click(timeout=5_000)  # the mouse still reaches the radios
    page.locator("#submit").click(timeout=5_000)
    expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)

    choose_task(page, "order (ranking)")
    expect(page.locator("#order")).to_be_visible(timeout=15_000)
    outside_text(page)
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(page.get_by_text("order all 3 responses").first).to_be_visible(timeout=15_000)
    page.wait_for_timeout(500)
    no_error_pills(page)
    page.screenshot(path=str(SHOTS / "bug1-refused-ranking.png"), full_page=True)

    admin = signed_in(browser, ui_server, "root")
    admin.get_by_role("tab", name="Tasks").click()
    admin.locator("#new-task-name input, #new-task-name textarea").fill("bad name with spaces")
    admin.locator("#create-task").click()
    expect(admin.get_by_text("use 1-64 letters, digits").first).to_be_visible(timeout=15_000)
    admin.wait_for_timeout(500)
    no_error_pills(admin)
    expect(admin.locator("#admin-task input")).to_be_visible()  # the task list is still there
    admin.screenshot(path=str(SHOTS / "bug1-refused-create.png"), full_page=True)


# ------------------------------------------------------------------ bug 3
def test_the_done_counter_counts_items_not_edits(ui_server, browser):
    """Bug 3: editing the last answer and submitting it again leaves "1 done" as it was, also after a reload,
    and the admin's count agrees."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "fay")
    choose_task(page, "pick (pairwise)")
    expect(page.locator("#choice")).to_be_visible(timeout=15_000)
    before = int(page.inner_text("#progress-text").split(" done")[0])
    outside_text(page)
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
    expect(page.locator("#progress-text")).to_contain_text(f"{before + 1} done")
    for choice in ("b", "t", "a"):
        outside_text(page)
        page.keyboard.press("p")
        expect(page.locator("#label-status")).to_have_text("Editing your last answer.", timeout=15_000)
        page.keyboard.press(choice)
        page.keyboard.press("Enter")
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
        expect(page.locator("#progress-text")).to_contain_text(f"{before + 1} done")
    page.screenshot(path=str(SHOTS / "bug3-after-edits.png"), full_page=True)
    page.reload()
    page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
    choose_task(page, "pick (pairwise)")
    expect(page.locator("#progress-text")).to_contain_text(f"{before + 1} done", timeout=15_000)


# ------------------------------------------------------------------ bug 16
def test_an_annotator_never_ranks_her_own_demonstration(ui_server, browser):
    """Bug 16: two annotators write replies to one prompt; a ranking of that prompt's replies is served to a
    third annotator, never to either author."""
    from playwright.sync_api import expect

    writers = {name: signed_in(browser, ui_server, name) for name in ("gus", "hal")}
    prompts = set()
    for name, page in writers.items():
        choose_task(page, "write2 (demonstration)")
        expect(page.locator("#completion textarea")).to_be_visible(timeout=15_000)
        prompts.add(page.inner_text("#conversation"))
        page.locator("#completion textarea").fill(f"{name} says: we repair it free under warranty.")
        page.locator("#submit").click()
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
    assert len(prompts) == 1  # overlap 2: both wrote on the first prompt
    words = max(prompts.pop().splitlines(), key=len).strip()[:40]
    created = admin_predict(ui_server, "theirs", "ranking", 1, 5, "", "heldout", words, "", "",
                            api_name="/create_task")[0]  # one item: every reply to that prompt, theirs among them
    assert "1 items" in created, created
    for name, page in writers.items():
        page.reload()
        page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
        choose_task(page, "theirs (ranking)")
        page.screenshot(path=str(SHOTS / f"bug16-author-{name}.png"), full_page=True)
        expect(page.locator("#label-status")).to_contain_text("Nothing left for you", timeout=15_000)
    third = signed_in(browser, ui_server, "ivy")
    choose_task(third, "theirs (ranking)")
    expect(third.locator("#order")).to_be_visible(timeout=15_000)
    shown = " ".join(third.inner_text(f"#response-{x}") for x in "ABC")
    assert "gus says: we repair it free" in shown and "hal says: we repair it free" in shown, shown
    third.screenshot(path=str(SHOTS / "bug16-third-annotator.png"), full_page=True)


# ------------------------------------------------------------------ bug 5
def test_the_label_tab_cannot_erase_the_prompt(ui_server, browser):
    """Bug 5: nothing in the Label tab's conversation erases the prompt the annotator judges."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "jon")
    choose_task(page, "pick (pairwise)")
    expect(page.locator("#choice")).to_be_visible(timeout=15_000)
    prompt = page.inner_text("#conversation")
    assert prompt.strip()
    for button in page.locator("#conversation button").all():  # whatever a toolbar offers, none erases it
        if button.is_visible():
            button.click()
    page.wait_for_timeout(500)
    assert page.inner_text("#conversation") == prompt
    page.screenshot(path=str(SHOTS / "bug5-prompt-kept.png"), full_page=True)


# ------------------------------------------------------------------ bug 4
def test_a_reload_mid_draft_returns_to_that_task_and_draft(ui_server, browser):
    """Bug 4: half a reply typed in the second task in the list, then a reload: the same task and draft."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "kim")  # the page opens the first task in the list ("write")
    expect(page.locator("#task input")).to_have_value("write (demonstration)", timeout=15_000)
    choose_task(page, "write2 (demonstration)")
    box = page.locator("#completion textarea")
    expect(box).to_be_visible(timeout=15_000)
    box.fill("")
    box.press_sequentially("Half a reply", delay=20)
    expect(page.locator("#label-status")).to_have_text("Draft saved.", timeout=15_000)
    page.reload()
    page.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
    expect(page.locator("#task input")).to_have_value("write2 (demonstration)", timeout=15_000)
    expect(page.locator("#completion textarea")).to_have_value("Half a reply", timeout=15_000)
    page.screenshot(path=str(SHOTS / "bug4-after-reload.png"), full_page=True)


# ------------------------------------------------------------------ bug 7
def test_sign_out_signs_out_this_tab(ui_server, browser):
    """Bug 7: "sign out" ends the session in the same tab (no second tab left signed in)."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "lee")
    page.get_by_text("sign out", exact=False).first.click()
    expect(page.locator("input[type=password]")).to_be_visible(timeout=15_000)
    assert len(page.context.pages) == 1
    page.screenshot(path=str(SHOTS / "bug7-signed-out.png"), full_page=True)
    page.goto(ui_server)
    expect(page.locator("input[type=password]")).to_be_visible(timeout=15_000)  # the session is gone


# ------------------------------------------------------------------ bug 15 and bug 12
def test_review_reveals_the_versions_in_the_panes_then_next(ui_server, browser):
    """Bug 15: after a blind vote the panes name the version behind each reply, on the item voted on; Enter
    (or Next) then brings the next item, still blind."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "rev")
    choose_task(page, "ab (review)")
    expect(page.locator("#choice")).to_be_visible(timeout=15_000)
    voted = page.inner_text("#response-A")
    assert "sft-1" not in page.locator("#response-A").locator("strong").first.inner_text()
    outside_text(page)
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    expect(page.locator("#label-status")).to_contain_text("You voted on: A = ", timeout=15_000)
    panes = page.inner_text("#response-A") + page.inner_text("#response-B")
    assert voted.split("\n", 1)[1].strip() in page.inner_text("#response-A")  # the same item, not the next
    assert "· sft-1" in panes and "· base" in panes
    page.screenshot(path=str(SHOTS / "bug15-revealed.png"), full_page=True)
    outside_text(page)
    page.keyboard.press("Enter")  # Next
    expect(page.locator("#submit")).to_be_visible(timeout=15_000)
    panes = page.inner_text("#response-A") + page.inner_text("#response-B")
    assert "sft-1" not in panes and "base" not in panes  # blind again
    page.screenshot(path=str(SHOTS / "bug15-next-blind.png"), full_page=True)


def test_the_head_to_head_counts_ties_and_both_bad_apart(ui_server, browser):
    """Bug 12: a tie and a "both bad" vote read as ties 1, both bad 1 in both of the leaderboard's tables."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "rev2")
    choose_task(page, "ab (review)")
    for key in ("t", "x"):
        expect(page.locator("#choice")).to_be_visible(timeout=15_000)
        outside_text(page)
        page.keyboard.press(key)
        page.locator("#submit").click()
        expect(page.locator("#label-status")).to_contain_text("You voted on", timeout=15_000)
        if page.locator("#next").is_visible():
            page.locator("#next").click()
    page.get_by_role("tab", name="Leaderboard").click()
    expect(page.locator("#board-table")).to_contain_text("Head to head", timeout=30_000)
    tables = page.locator("#board-table table").all()
    assert len(tables) == 2
    heads = [[th.inner_text().strip() for th in t.locator("th").all()] for t in tables]
    cells = [[td.inner_text().strip() for td in t.locator("tbody tr").first.locator("td").all()] for t in tables]
    page.screenshot(path=str(SHOTS / "bug12-leaderboard.png"), full_page=True)
    for head, row in zip(heads, cells, strict=True):
        assert "both bad" in head, head
        ties, both_bad = int(row[head.index("ties")]), int(row[head.index("both bad")])
        assert both_bad >= 1 and ties >= 1, (head, row)
    version_row = dict(zip(heads[0], cells[0], strict=True))
    pair_row = dict(zip(heads[1], cells[1], strict=True))
    assert (pair_row["ties"], pair_row["both bad"]) == (version_row["ties"], version_row["both bad"])

    # the leaderboard of one review (issue 20): the other review has no votes, and a made-up review is refused
    page.locator("#board-reviews input").click()
    page.get_by_role("option", name="ab-later").click()
    expect(page.locator("#board-table")).not_to_contain_text("Head to head", timeout=30_000)
    page.screenshot(path=str(SHOTS / "leaderboard-one-review.png"), full_page=True)
    assert "both bad" in admin_predict(ui_server, ["task-ab"], api_name="/leaderboard")[1]
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="no review 'task-nope'"):
        admin_predict(ui_server, ["task-nope"], api_name="/leaderboard")


# ------------------------------------------------------------------ bug 14
def test_long_replies_keep_the_ranking_columns_equal_and_aligned(ui_server, browser):
    """Bug 14: three replies, one very long and one a 400-character address: the columns stay equal, each
    reply scrolls inside a pane of the same height, and the ratings line up."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "max")
    choose_task(page, "long (ranking)")
    expect(page.locator("#response-C")).to_be_visible(timeout=15_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "bug14-long-replies.png"), full_page=True)
    boxes = [page.locator(f"#response-{x}").bounding_box() for x in "ABC"]
    widths, heights = [b["width"] for b in boxes], [b["height"] for b in boxes]
    assert max(widths) - min(widths) < 4, widths
    assert max(heights) - min(heights) < 4 and max(heights) < 400, heights
    assert sum(widths) < 1280, widths  # nothing wider than the window
    ratings = [page.locator(f"#rating-{x}").bounding_box()["y"] for x in "ABC"]
    assert max(ratings) - min(ratings) < 4, ratings


# ------------------------------------------------------------------ bug 9 and bug 10
def test_the_train_tab_says_what_a_run_starts_from_and_shows_it_plainly(ui_server, browser):
    """Bug 9: DPO with no parent says it starts on the base model. Bug 10: a 5-step run's plot shows its points
    with whole-number steps, the status names a few figures (no raw metrics dump), and a cancelled run reads as
    cancelled, not as an error."""
    import re

    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "root")
    page.get_by_role("tab", name="Train").click()
    page.locator("#stage input").click()
    page.get_by_role("option", name="dpo", exact=True).click()
    page.locator("#max-steps input").fill("5")
    page.locator("#start").click()
    expect(page.locator("#job-status")).to_contain_text("from the base model", timeout=30_000)
    expect(page.locator("#job-status")).to_contain_text("no parent version chosen")
    expect(page.locator("#job-status")).to_contain_text("succeeded", timeout=300_000)
    expect(page.locator("#loss-plot circle").first).to_be_visible(timeout=15_000)
    page.screenshot(path=str(SHOTS / "bug10-five-steps.png"), full_page=True)
    status = page.inner_text("#job-status")
    assert "total_flos" not in status and "train_runtime" not in status, status
    assert re.search(r"step 5 · (mean )?loss \d", status), status
    ticks = page.eval_on_selector_all("#loss-plot text", "els => els.map(e => e.textContent)")  # the timer redraws it
    assert "5" in ticks and not any(re.fullmatch(r"\d+\.0+", t) for t in ticks), ticks

    page.locator("#stage input").click()
    page.get_by_role("option", name="sft", exact=True).click()
    page.locator("#max-steps input").fill("100000")
    page.locator("#start").click()
    expect(page.locator("#job-status")).to_contain_text("running", timeout=60_000)
    page.locator("#cancel").click()
    expect(page.locator("#job-status")).to_contain_text("Cancelled", timeout=60_000)
    page.wait_for_timeout(2500)  # the timer's next reads
    assert "Error" not in page.inner_text("#job-status")
    page.screenshot(path=str(SHOTS / "bug10-cancelled.png"), full_page=True)


# ------------------------------------------------------------------ bug 13
def test_no_translation_key_reaches_the_page(ui_server, browser):
    """Bug 13: Gradio's untranslated "common.complete" never shows in the page's text (its screen-reader status
    line included) after a submit or an admin's overview."""
    page = signed_in(browser, ui_server, "ned")
    choose_task(page, "pick (pairwise)")
    seen = []

    def watch(rounds: int = 25):
        for _ in range(rounds):
            seen.append(page.evaluate("document.body.innerText"))
            page.wait_for_timeout(120)

    outside_text(page)
    page.keyboard.press("a")
    page.keyboard.press("Enter")
    watch()
    admin = signed_in(browser, ui_server, "root")
    admin.get_by_role("tab", name="Tasks").click()
    admin.locator("#admin-task input").click()
    admin.get_by_role("option", name="pick (pairwise)").click()
    for _ in range(25):
        seen.append(admin.evaluate("document.body.innerText"))
        admin.wait_for_timeout(120)
    page.screenshot(path=str(SHOTS / "bug13-after-submit.png"), full_page=True)
    assert not [text for text in seen if "common." in text]


# ------------------------------------------------------------------ bug 11
def test_adjudication_shows_the_prompt_and_votes_in_letters_from_a_list(ui_server, browser):
    """Bug 11: two annotators disagree; the admin sees the disagreement in words (prompt, letters, no response
    hashes), picks the item from a list, sees its prompt and votes, and a bad id says what to do."""
    import re

    from playwright.sync_api import expect

    prompts = []
    for name, key in (("ola", "a"), ("pat", "t")):
        page = signed_in(browser, ui_server, name)
        choose_task(page, "pick2 (pairwise)")
        expect(page.locator("#choice")).to_be_visible(timeout=15_000)
        prompts.append(page.inner_text("#conversation"))
        outside_text(page)
        page.keyboard.press(key)
        page.keyboard.press("Enter")
        expect(page.locator("#label-status")).to_have_text("Saved.", timeout=15_000)
    assert prompts[0] == prompts[1]  # overlap 2: the same first item
    asked = max(prompts[0].splitlines(), key=len).strip()

    admin = signed_in(browser, ui_server, "root")
    admin.get_by_role("tab", name="Tasks").click()
    admin.locator("#admin-task input").click()
    admin.get_by_role("option", name="pick2 (pairwise)").click()
    expect(admin.locator("#task-agreement")).to_contain_text("pat: tie", timeout=30_000)
    table = admin.inner_text("#task-agreement")
    assert not re.search(r"\b[0-9a-f]{16,}\b", table.split("Most disagreement")[1]), table  # no hashes
    assert asked[:30] in table
    admin.get_by_text("Adjudicate an item").click()
    admin.locator("#adjudicate-item input").click()
    admin.get_by_role("option", name=re.compile("pat: tie")).click()
    admin.locator("#adjudicate-show").click()
    expect(admin.locator("#adjudicate-review")).to_contain_text("pat: tie", timeout=15_000)
    assert asked in admin.inner_text("#adjudicate-review")  # the prompt, not only the replies
    admin.screenshot(path=str(SHOTS / "bug11-adjudicate.png"), full_page=True)
    admin.locator("#adjudicate-item input").fill("no-such-item")
    admin.locator("#adjudicate-item input").press("Enter")
    admin.locator("#adjudicate-show").click()
    expect(admin.get_by_text("choose one from the list").first).to_be_visible(timeout=15_000)


# ------------------------------------------------------------------ bug 6
FIRST_TURN_SEEN = """(start) => {
  const box = document.getElementById('conversation');
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


def test_a_multi_turn_prompt_shows_from_its_first_turn(ui_server, browser):
    """Bug 6: a three-turn prompt in the Label tab opens at its first turn, which no toolbar covers."""
    from playwright.sync_api import expect

    page = signed_in(browser, ui_server, "quin")
    choose_task(page, "long (ranking)")
    expect(page.locator("#conversation")).to_contain_text("FIRST TURN", timeout=15_000)
    page.locator("#conversation").scroll_into_view_if_needed()
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "bug6-multi-turn.png"), full_page=True)
    assert page.evaluate(FIRST_TURN_SEEN, "FIRST TURN") == "seen"


# ------------------------------------------------------------------ bug 8
def test_the_task_form_says_what_each_number_takes(ui_server, browser):
    """Bug 8: 0 annotators per item is refused, never made 1; "responses per prompt" shows the number the
    chosen kind will use and its range (feedback takes 1-5), never a 0 that silently means the default."""
    from playwright.sync_api import expect

    admin = signed_in(browser, ui_server, "root")
    admin.get_by_role("tab", name="Tasks").click()
    field = admin.locator("#new-task-max-responses")
    assert field.locator("input").input_value() == "2"
    expect(field).to_contain_text("paired (2-5)")
    admin.locator("#new-task-kind").get_by_text("feedback", exact=True).click()
    expect(field).to_contain_text("to rate (1-5)", timeout=10_000)
    expect(field.locator("input")).to_have_value("1")
    admin.locator("#new-task-name input, #new-task-name textarea").fill("zero")
    admin.locator("#new-task-overlap input").fill("0")
    admin.locator("#create-task").click()
    expect(admin.get_by_text("annotators per item must be a whole number 1-50").first).to_be_visible(timeout=15_000)
    admin.screenshot(path=str(SHOTS / "bug8-task-form.png"), full_page=True)
    assert "Created" not in admin.inner_text("#create-status")
