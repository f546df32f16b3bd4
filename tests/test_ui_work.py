"""Issue 20's everyday features met in headless Chromium against the real server: an annotator's own history
with any past answer edited; judges' verdicts pre-selected for an annotator (issue 21) and shown to the admin;
the Train tab starting a run with settings only the CLI had. Screenshots in test-artifacts/ui-work/."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ARTIFACTS, DEMO_DATA
from tests.test_app import PASSWORD, chromium, needs_chromium, serving
from tests.test_ui_bugs import choose_task, outside_text, signed_in
from workbench.cli import main

pytestmark = [pytest.mark.e2e, needs_chromium]
SHOTS = ARTIFACTS / "ui-work"


@pytest.fixture(scope="module")
def work_root(tmp_path_factory, tiny_model):
    from annotation.judging import verdicts
    from workbench.auth import add_user
    from workbench.projects import init_project
    from workbench.store import Store

    project = init_project(tmp_path_factory.mktemp("work") / "proj", base_model=str(tiny_model))
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "sft.jsonl"), str(DEMO_DATA / "preferences.jsonl")]) == 0
    for name in ("mine", "judged"):
        assert main(["tasks", "add", name, "--kind", "pairwise", "--source", "preferences.jsonl", "-p", root]) == 0
    assert main(["tasks", "add", "rank", "--kind", "ranking", "--max-responses", "3", "--source", "sft.jsonl",
                 "-p", root]) == 0
    with Store.open(project.store_path) as store:
        add_user(store, "root", "admin", PASSWORD)
        for name in ("rae", "sam"):
            add_user(store, name, "annotator", PASSWORD)
        task = store.task("judged")
        items = store.items_to_judge(task.id, "judge:rm", "h", every=True)[:40]
        # the judge picks each item's first response, both ways round
        replies = {}
        for item in items:
            replies |= {f"{item['id']}|0|1": {"reply": "A"}, f"{item['id']}|1|0": {"reply": "B"}}
        rows = verdicts({"kind": "http", "config": {}}, "pairwise", items, replies, name="rm", hash_="h", job_id="j-1")
        store.add_judgements(task.id, rows, job_id="j-1")
        store.set_task_suggestions(task.id, "preselect")
    return project


@pytest.fixture(scope="module")
def work_server(work_root):
    with serving(work_root.root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(SHOTS) as b:
        yield b


def answer(page, key: str) -> str:
    """Press a choice key and Enter; returns the conversation text of the item answered."""
    from playwright.sync_api import expect

    text = page.inner_text("#conversation")
    outside_text(page)
    page.keyboard.press(key)
    expect(page.locator(f"#choice input[value={key.upper()}]")).to_be_checked()
    page.keyboard.press("Enter")
    expect(page.locator("#label-status")).to_contain_text("Saved.", timeout=15_000)
    page.wait_for_timeout(300)
    return text


def test_my_work_lists_the_answers_and_edits_an_older_one(work_server, browser):
    from playwright.sync_api import expect

    page = signed_in(browser, work_server, "rae")
    choose_task(page, "mine (pairwise)")
    expect(page.locator("#choice")).to_be_visible(timeout=15_000)
    first = answer(page, "a")
    answer(page, "b")
    page.locator("#my-work").get_by_text("My work").click()
    expect(page.locator("#history-table")).to_contain_text("submitted", timeout=15_000)
    assert page.inner_text("#history-table").count("submitted") == 2
    page.screenshot(path=str(SHOTS / "my-work.png"), full_page=True)

    page.locator("#history-pick input").click()
    options = page.get_by_role("option")
    expect(options).to_have_count(2)
    options.nth(1).click()  # the older answer (newest first)
    page.locator("#history-edit").click()
    expect(page.locator("#label-status")).to_have_text("Editing your answer.", timeout=15_000)
    assert page.inner_text("#conversation") == first
    expect(page.locator("#choice input[value=A]")).to_be_checked()  # the answer it had
    outside_text(page)
    page.keyboard.press("b")
    page.keyboard.press("Enter")
    expect(page.locator("#label-status")).to_contain_text("Saved.", timeout=15_000)
    page.locator("#history-show").click()
    expect(page.locator("#history-table")).to_contain_text("edited", timeout=15_000)
    page.screenshot(path=str(SHOTS / "my-work-edited.png"), full_page=True)
    assert page.locator("#progress-text").inner_text().startswith("2 done")  # an edit is not another item


def test_judges_verdict_is_preselected_for_the_annotator_and_shown_to_the_admin(work_server, browser):
    from playwright.sync_api import expect

    page = signed_in(browser, work_server, "sam")
    choose_task(page, "judged (pairwise)")
    expect(page.locator("#judge-suggestion")).to_contain_text("Judges suggest: rm:", timeout=15_000)
    said = page.inner_text("#judge-suggestion")
    letter = said.split("rm:")[1].strip()[0]
    expect(page.locator(f"#choice input[value={letter}]")).to_be_checked()  # pre-selected, in sam's letters
    page.screenshot(path=str(SHOTS / "suggestion-preselected.png"), full_page=True)
    outside_text(page)
    page.keyboard.press("Enter")  # he agrees
    expect(page.locator("#label-status")).to_contain_text("Saved.", timeout=15_000)
    admin = signed_in(browser, work_server, "root")
    choose_task(admin, "judged (pairwise)")
    expect(admin.locator("#judge-suggestion")).to_contain_text(
        "Judges (annotators get the agreed verdict pre-selected): rm:", timeout=15_000)
    admin.screenshot(path=str(SHOTS / "suggestion-admin.png"), full_page=True)


def test_the_train_tab_starts_a_run_with_settings_only_the_cli_had(work_server, browser, work_root):
    from playwright.sync_api import expect

    page = signed_in(browser, work_server, "root")
    page.get_by_role("tab", name="Train").click()
    page.locator("#max-steps input").fill("2")
    page.locator("#stage-settings").get_by_text("All settings").click()
    page.locator("#set-lora-r input").fill("4")
    page.locator("#set-seed input").fill("11")
    page.locator("#set-trl textarea").fill("warmup_steps=1")
    page.screenshot(path=str(SHOTS / "train-all-settings.png"), full_page=True)
    page.locator("#start").click()
    # the start line, then the live view of the job the timer refreshes: either names the run
    expect(page.locator("#job-status")).to_contain_text("sft-1", timeout=60_000)
    run = json.loads((work_root.runs_dir / "sft-1" / "run.json").read_text())
    assert run["adapter"]["r"] == 4 and run["trl"]["seed"] == 11 and run["trl"]["warmup_steps"] == 1, run
    page.locator("#cancel").click()
    expect(page.locator("#job-status")).to_contain_text("cancelled", timeout=60_000)


def test_a_ranking_is_made_by_clicking_the_replies_best_first_with_rank_badges(work_server, browser):
    from playwright.sync_api import expect

    page = signed_in(browser, work_server, "rae")
    choose_task(page, "rank (ranking)")
    expect(page.locator("#response-C")).to_be_visible(timeout=15_000)
    order = page.locator("#order textarea, #order input").first
    for letter in "CAB":
        page.locator(f"#response-{letter}").click()
    expect(order).to_have_value("CAB")
    expect(page.locator("#response-C")).to_have_attribute("data-rank", "1")
    expect(page.locator("#response-B")).to_have_attribute("data-rank", "3")
    page.screenshot(path=str(SHOTS / "ranking-by-click.png"), full_page=True)
    page.locator("#response-A").click()  # a ranked reply clicked again: it and those after it go back
    expect(order).to_have_value("C")
    expect(page.locator("#response-A")).not_to_have_attribute("data-rank", "2")
    outside_text(page)
    page.keyboard.press("b")  # keys still rank too
    page.locator("#response-A").click()
    expect(order).to_have_value("CBA")
    page.locator("#submit").click()
    expect(page.locator("#label-status")).to_contain_text("Saved.", timeout=15_000)
    expect(order).to_have_value("")  # the next item starts unranked, badges gone
    expect(page.locator("#response-C")).not_to_have_attribute("data-rank", "1")
