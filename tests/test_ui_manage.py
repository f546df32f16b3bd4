"""What an admin manages in the browser (issue 20: people, tasks, versions, jobs), each action done in headless
Chromium against the real server as an admin does it, with a screenshot per test in test-artifacts/ui-manage/.
One server for the module; each test works on its own users and tasks. Nothing is trained: the runs, versions
and logs the Versions and jobs tab shows are stored the way the job runner stores them (tests/test_manage.py);
a reward model trained for 4 steps judges a six-item task as the one job that runs."""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import ARTIFACTS, DEMO_DATA
from tests.test_app import PASSWORD, chromium, needs_chromium, serving
from tests.test_manage import add_run, running_training
from workbench.cli import main

pytestmark = [pytest.mark.e2e, needs_chromium]
SHOTS = ARTIFACTS / "ui-manage"
ANNOTATORS = ("ann", "bob", "cy", "dan", "eli")


@pytest.fixture(scope="module")
def manage_root(tmp_path_factory, tiny_model):
    """Demo pairs, two admins and five annotators, a task per test (`keep` answered twice on its first item),
    and runs: sft-1, dpo-1 from it, a generation job, and sft-2 still running with a log that quotes markup."""
    from annotation.labeling import Labeling, User
    from workbench.auth import add_user
    from workbench.projects import init_project
    from workbench.store import Store

    project = init_project(tmp_path_factory.mktemp("manage") / "proj", base_model=str(tiny_model))
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    for name, overlap in (("keep", "2"), ("guide", "1"), ("shelf", "1"), ("spare", "1")):
        assert main(["tasks", "add", name, "--kind", "pairwise", "--overlap", overlap, "-p", root]) == 0
    judged = project.root / "judged.jsonl"  # six pairs for the judges' test, judged by a reward model
    judged.write_text("".join(json.dumps({"prompt": f"My Loki Phone {i} will not charge.",
                                          "chosen": f"Sorry! Try another cable, then the reset {i}.",
                                          "rejected": "No."}) + "\n" for i in range(6)))
    assert main(["import", "-p", root, str(judged)]) == 0
    assert main(["tasks", "add", "judged", "--kind", "pairwise", "--source", "judged.jsonl", "-p", root]) == 0
    assert main(["train", "reward", root, "--source", "judged.jsonl", "--max-steps", "4", "--batch-size", "4",
                 "--max-length", "128"]) == 0  # reward-1: the judge (a reward model never abstains or flips)
    assert main(["judges", "add", "rm", "-p", root, "--reward-model", "reward-1"]) == 0
    with Store.open(project.store_path) as store:
        for name in ("root", "boss"):
            add_user(store, name, "admin", PASSWORD)
        for name in ANNOTATORS:
            add_user(store, name, "annotator", PASSWORD)
        labeling = Labeling(store)
        for name in ("ann", "cy"):  # overlap 2: both answer the first item
            view = labeling.open_next(User(name, "annotator"), "task-keep")
            labeling.submit_comparison(User(name, "annotator"), "task-keep", view.item_id, view.client_id, choice="A")
        add_run(store, project, "sft-1", "sft", metrics={"steps": 50, "train_loss": 1.25})
        add_run(store, project, "dpo-1", "dpo", parent="sft-1", metrics={"eval_rewards/accuracies": 0.75})
        add_run(store, project, "generate-1", "generate")
        running_training(store, project)
    return project


@pytest.fixture(scope="module")
def manage_server(manage_root):
    with serving(manage_root.root) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with chromium(SHOTS) as b:
        yield b


def try_sign_in(browser, url: str, name: str, password: str = PASSWORD, *, wait_ms: int = 60_000):
    """A page of its own browser context after a sign-in try; (page, signed in?)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(url)
    page.fill("input[data-testid=textbox]", name)
    page.fill("input[type=password]", password)
    page.get_by_role("button", name="Login").click()
    try:
        page.wait_for_selector("#whoami :text('Signed in as')", timeout=wait_ms)
        return page, True
    except PlaywrightTimeout:  # still on the sign-in form
        return page, False


def signed_in(browser, url: str, name: str, password: str = PASSWORD):
    page, ok = try_sign_in(browser, url, name, password)
    assert ok, f"{name} could not sign in"
    return page


def refused(browser, url: str, name: str, password: str = PASSWORD):
    page, ok = try_sign_in(browser, url, name, password, wait_ms=8_000)
    assert not ok, f"{name} signed in"
    assert page.locator("input[type=password]").is_visible()
    return page


def users_tab(page):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Users").click()
    expect(page.locator("#users-table table")).to_be_visible(timeout=15_000)
    return page


def user_row(page, name: str) -> list[str]:
    for row in page.locator("#users-table tbody tr").all():
        cells = [td.inner_text().strip() for td in row.locator("td").all()]
        if cells and cells[0] == name:
            return cells
    return []


def user_action(page, name: str, button: str, expected: str, *, role: str | None = None,
                password: str | None = None) -> str:
    """Fill the form, press the button, wait for the line that says what happened (`expected` in it)."""
    from playwright.sync_api import expect

    page.locator("#user-name input, #user-name textarea").fill(name)
    if role:
        page.locator("#user-role input").click()
        page.get_by_role("option", name=role, exact=True).click()
    if password is not None:
        page.locator("#user-password input").fill(password)
    page.locator(button).click()
    expect(page.locator("#user-status")).to_contain_text(expected, timeout=15_000)
    page.wait_for_timeout(300)  # the table is an output of the same event
    return page.inner_text("#user-status").strip()


def admin_task(page, option: str):
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Tasks").click()
    page.locator("#admin-task input").click()
    page.get_by_role("option", name=option, exact=True).click()
    expect(page.locator("#admin-task input")).to_have_value(option, timeout=15_000)
    settings = page.locator("#task-settings")
    if not page.locator("#task-save").is_visible():
        settings.get_by_text("Change this task").click()
    expect(page.locator("#task-save")).to_be_visible(timeout=5_000)


def task_action(page, button: str, expected: str):
    from playwright.sync_api import expect

    page.locator(button).click()
    expect(page.locator("#task-change-status")).to_contain_text(expected, timeout=15_000)


def options_of(page, dropdown: str) -> list[str]:
    """The choices a dropdown offers, read from its open list."""
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option").first.wait_for(timeout=10_000)
    options = [o.inner_text().strip() for o in page.get_by_role("option").all()]
    page.keyboard.press("Escape")
    return options


def label_options(page) -> list[str]:
    return options_of(page, "#task")


# ------------------------------------------------------------------ people
def test_admin_adds_a_user_who_then_signs_in(manage_server, browser):
    admin = users_tab(signed_in(browser, manage_server, "root"))
    assert user_row(admin, "root")[:3] == ["root", "admin", "active"]
    user_action(admin, "newbie", "#user-add", "Added newbie (reviewer)", role="reviewer", password="newbie-pass-1")
    assert user_row(admin, "newbie")[:3] == ["newbie", "reviewer", "active"]
    assert admin.locator("#user-password input").input_value() == ""  # the password does not stay on the page
    admin.screenshot(path=str(SHOTS / "user-added.png"), full_page=True)
    newbie = signed_in(browser, manage_server, "newbie", "newbie-pass-1")
    assert "(reviewer)" in newbie.inner_text("#whoami")
    user_action(admin, "shorty", "#user-add", "at least 8 characters", role="annotator", password="short")
    assert user_row(admin, "shorty") == []


def test_admin_changes_a_role(manage_server, browser):
    admin = users_tab(signed_in(browser, manage_server, "root"))
    user_action(admin, "eli", "#user-set-role", "eli: annotator → reviewer", role="reviewer")
    assert user_row(admin, "eli")[1] == "reviewer"
    admin.screenshot(path=str(SHOTS / "user-role-changed.png"), full_page=True)
    eli = signed_in(browser, manage_server, "eli")
    assert "(reviewer)" in eli.inner_text("#whoami")
    assert eli.get_by_role("tab", name="Leaderboard").is_visible()  # what a reviewer gets
    assert not eli.get_by_role("tab", name="Users").is_visible()


def test_admin_resets_a_password(manage_server, browser):
    admin = users_tab(signed_in(browser, manage_server, "root"))
    before = signed_in(browser, manage_server, "dan")  # signed in with the old password
    user_action(admin, "dan", "#user-reset-password", "New password for dan", password="dans-new-password")
    admin.screenshot(path=str(SHOTS / "user-password-reset.png"), full_page=True)
    refused(browser, manage_server, "dan", PASSWORD)
    signed_in(browser, manage_server, "dan", "dans-new-password")
    before.reload()  # the session signed in with the old password has ended
    before.wait_for_selector("input[type=password]", timeout=30_000)


def test_admin_deactivates_a_user_whose_session_ends_and_labels_stay(manage_server, browser):
    """cy is signed in; once deactivated, her next request is refused and a reload shows the sign-in form; her
    password no longer signs her in; the users table still counts her label. Reactivated, she signs in again."""
    from gradio_client import Client
    from playwright.sync_api import expect

    cy = signed_in(browser, manage_server, "cy")
    cy.locator("#task input").click()
    cy.get_by_role("option", name="guide (pairwise)").click()
    expect(cy.locator("#choice")).to_be_visible(timeout=15_000)
    admin = users_tab(signed_in(browser, manage_server, "root"))
    labels = user_row(admin, "cy")[4]
    assert labels == "1"
    user_action(admin, "cy", "#user-deactivate", "cy is deactivated: signed out, and their labels stay")
    row = user_row(admin, "cy")
    assert row[2].startswith("deactivated 20") and row[4] == labels
    admin.screenshot(path=str(SHOTS / "user-deactivated.png"), full_page=True)
    cy.locator("#choice input[value=A]").click()  # her next request: an answer on the item she has open
    cy.locator("#submit").click()
    cy.wait_for_timeout(3000)
    assert "Saved." not in cy.inner_text("#label-status")
    progress = Client(manage_server, auth=("root", PASSWORD), verbose=False).predict("task-guide",
                                                                                     api_name="/task_overview")[0]
    assert re.search(r"· 0 of \d+ answers", progress), progress  # not stored
    cy.reload()
    cy.wait_for_selector("input[type=password]", timeout=30_000)
    cy.screenshot(path=str(SHOTS / "user-deactivated-session.png"), full_page=True)
    refused(browser, manage_server, "cy")
    user_action(admin, "cy", "#user-activate", "cy can sign in again")
    assert user_row(admin, "cy")[2] == "active"
    signed_in(browser, manage_server, "cy")


def test_an_admin_cannot_demote_or_deactivate_themselves(manage_server, browser):
    admin = users_tab(signed_in(browser, manage_server, "root"))
    status = user_action(admin, "root", "#user-deactivate", "Not done: you cannot deactivate yourself")
    assert status == "Not done: you cannot deactivate yourself: another admin can", status
    user_action(admin, "root", "#user-set-role", "Not done: you cannot take the admin role from yourself",
                role="annotator")
    admin.screenshot(path=str(SHOTS / "user-self-refused.png"), full_page=True)
    assert user_row(admin, "root")[:3] == ["root", "admin", "active"]


def test_only_admins_manage_people_tasks_and_jobs_through_the_api(manage_server):
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    ann = Client(manage_server, auth=("ann", PASSWORD), verbose=False)
    for api_name, args in (("/user_deactivate", ("root", "admin", "")), ("/user_add", ("x1", "admin", "long-pass-1")),
                           ("/user_password", ("root", "admin", "long-pass-1")), ("/users", ()),
                           ("/task_delete", ("task-spare", "", None, "spare")),
                           ("/task_archive", ("task-keep", "", None, "")), ("/task_edit", ("task-keep", "new", 1, "")),
                           ("/versions_and_jobs", ()), ("/job", ("sft-2",))):
        with pytest.raises(AppError, match="needs the role admin"):
            ann.predict(*args, api_name=api_name)


# ------------------------------------------------------------------ tasks
def test_admin_edits_guidelines_and_overlap(manage_server, browser):
    """New guidelines reach the annotator's Label tab; an overlap below an item's answers is refused."""
    from playwright.sync_api import expect

    admin = signed_in(browser, manage_server, "root")
    admin_task(admin, "guide (pairwise)")
    expect(admin.locator("#edit-overlap input")).to_have_value("1", timeout=15_000)
    admin.locator("#edit-guidelines textarea").fill("Prefer the reply that **names the policy**.")
    admin.locator("#edit-overlap input").fill("3")
    task_action(admin, "#task-save", "Saved guide: 3 per item, guidelines updated.")
    admin.screenshot(path=str(SHOTS / "task-edited.png"), full_page=True)
    ann = signed_in(browser, manage_server, "ann")
    ann.locator("#task input").click()
    ann.get_by_role("option", name="guide (pairwise)").click()
    ann.locator("#guidelines-box").get_by_text("Guidelines").first.click()
    expect(ann.locator("#guidelines")).to_contain_text("Prefer the reply that names the policy.", timeout=15_000)

    admin_task(admin, "keep (pairwise)")
    expect(admin.locator("#edit-overlap input")).to_have_value("2", timeout=15_000)
    admin.locator("#edit-overlap input").fill("1")
    task_action(admin, "#task-save", "Not done: task keep: an item already has 2 answers, so the overlap can go no "
                                     "lower than 2")
    admin.screenshot(path=str(SHOTS / "task-overlap-refused.png"), full_page=True)


def test_admin_archives_and_unarchives_a_task(manage_server, browser):
    """An archived task leaves the annotators' task lists (and queues); its admin entry says archived."""
    from playwright.sync_api import expect

    admin = signed_in(browser, manage_server, "root")
    bob = signed_in(browser, manage_server, "bob")
    assert "shelf (pairwise)" in label_options(bob)
    admin_task(admin, "shelf (pairwise)")
    task_action(admin, "#task-archive", "Archived shelf: it left annotators' lists and queues")
    admin.screenshot(path=str(SHOTS / "task-archived.png"), full_page=True)
    bob.reload()
    bob.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
    assert "shelf (pairwise)" not in label_options(bob)
    expect(admin.locator("#admin-task input")).to_have_value("shelf (pairwise, archived)", timeout=10_000)
    task_action(admin, "#task-unarchive", "shelf is back in annotators' lists.")
    bob.reload()
    bob.wait_for_selector("#whoami :text('Signed in as')", timeout=60_000)
    assert "shelf (pairwise)" in label_options(bob)


def test_admin_deletes_an_unanswered_task_only(manage_server, browser):
    admin = signed_in(browser, manage_server, "root")
    admin_task(admin, "keep (pairwise)")
    admin.locator("#task-delete-confirm input, #task-delete-confirm textarea").fill("keep")
    task_action(admin, "#task-delete", "Not done: task keep has 2 answers (labels, votes or verdicts): it cannot be "
                                       "deleted; archive it instead")
    admin_task(admin, "spare (pairwise)")
    task_action(admin, "#task-delete", "Not deleted: type the task's name (spare) in the box to confirm.")
    admin.locator("#task-delete-confirm input, #task-delete-confirm textarea").fill("spare")
    task_action(admin, "#task-delete", "Deleted spare and its")
    admin.screenshot(path=str(SHOTS / "task-deleted.png"), full_page=True)
    options = options_of(admin, "#admin-task")
    assert "keep (pairwise)" in options and not [o for o in options if o.startswith("spare")], options


# ------------------------------------------------------------------ versions and jobs
def test_versions_table_shows_lineage_and_figures(manage_server, browser):
    from playwright.sync_api import expect

    admin = signed_in(browser, manage_server, "root")
    admin.get_by_role("tab", name="Versions and jobs").click()
    expect(admin.locator("#versions-table table")).to_be_visible(timeout=15_000)
    rows = {r.locator("td").first.inner_text().strip(): [td.inner_text().strip() for td in r.locator("td").all()]
            for r in admin.locator("#versions-table tbody tr").all()}
    assert rows["dpo-1"][:4] == ["dpo-1", "dpo", "base → sft-1 → dpo-1", "model"], rows
    assert "reward accuracy 0.75" in rows["dpo-1"][4] and "train loss 1.25" in rows["sft-1"][4]
    assert rows["dpo-1"][6] == "dpo-1"
    admin.screenshot(path=str(SHOTS / "versions.png"), full_page=True)


def test_jobs_list_and_a_job_with_its_log_and_loss_plot(manage_server, browser):
    """Every job with its state; the running one says its step of all and an ETA; opening it shows its loss
    plot and its log's tail as text (markup in the log stays text)."""
    from playwright.sync_api import expect

    admin = signed_in(browser, manage_server, "root")
    admin.get_by_role("tab", name="Versions and jobs").click()
    expect(admin.locator("#jobs-table table")).to_be_visible(timeout=15_000)
    table = admin.inner_text("#jobs-table")
    for job in ("sft-1", "dpo-1", "generate-1", "sft-2"):
        assert job in table
    assert re.search(r"sft-2\s+training \(sft\)\s+running\s+.*step 20/100, ETA 32 s", table), table
    admin.locator("#job-choice input").click()
    admin.get_by_role("option", name="sft-2", exact=True).click()
    expect(admin.locator("#job-detail")).to_contain_text("sft-2: training (sft), running", timeout=15_000)
    expect(admin.locator("#job-loss-plot circle")).to_have_count(4, timeout=15_000)
    expect(admin.locator("#job-log")).to_contain_text("loading <script>alert('x')</script> **bold**")
    log = admin.inner_text("#job-log")
    assert "20/100" in log and "10/100" not in log
    assert admin.locator("#job-log script").count() == 0
    admin.screenshot(path=str(SHOTS / "job-log.png"), full_page=True)


def test_admin_runs_a_judge_shows_its_verdicts_orders_the_queue_and_accepts_sure_ones(manage_server, browser):
    """Issue 21 in the Tasks tab: a reward-model judge judges the task as a job (progress, then what it stored;
    this line stood still before the job timer moved out of the Train tab), its verdicts are pre-selected for
    annotators, the queue is ordered by judge doubt, and sure verdicts are accepted in bulk, recorded as the
    admin's acceptance and never as a person's vote."""
    from gradio_client import Client
    from playwright.sync_api import expect

    admin = signed_in(browser, manage_server, "root")
    admin_task(admin, "judged (pairwise)")
    admin.locator("#judges-section").get_by_text("Model judges").click()
    expect(admin.locator("#judge-name input")).to_have_value("rm", timeout=15_000)  # the only judge
    admin.locator("#judge-run").click()
    status = admin.locator("#judge-status")
    expect(status).to_contain_text("judge rm stored 6 items (6 preference)", timeout=120_000)
    admin.screenshot(path=str(SHOTS / "judge-run.png"), full_page=True)

    admin.get_by_text("pre-selected for annotators before they answer").click()
    admin.locator("#judge-shown-save").click()
    result = admin.locator("#judge-result")
    expect(result).to_contain_text("Task judged: judges' verdicts are pre-selected for annotators before they answer",
                                   timeout=15_000)
    admin.locator("#judge-prioritize").click()
    expect(result).to_contain_text("Task judged: 6 open items ordered by judge doubt. First in the queue:",
                                   timeout=15_000)
    assert "judge:rm p=" in result.inner_text()  # the least sure verdict first, with its probability
    eli = signed_in(browser, manage_server, "eli")  # before the accept: an accepted item goes to the back
    eli.locator("#task input").click()
    eli.get_by_role("option", name="judged (pairwise)").click()
    expect(eli.locator("#judge-suggestion")).to_contain_text("Judges suggest: rm:", timeout=15_000)
    assert eli.locator("#choice input:checked").count() == 1  # the judge's pick, chosen for her
    eli.screenshot(path=str(SHOTS / "judge-preselected.png"), full_page=True)

    admin.locator("#judge-min-probability input").fill("0")
    admin.locator("#judge-accept").click()
    expect(result).to_contain_text("accepted 6 of 6 verdicts of judge:rm with probability at least 0", timeout=15_000)
    admin.screenshot(path=str(SHOTS / "judge-accepted.png"), full_page=True)
    admin.locator("#admin-refresh").click()
    agreement = admin.locator("#task-agreement")
    expect(agreement).to_contain_text("Model judges against people", timeout=15_000)
    assert "judge:rm" in agreement.inner_text()

    # the job is over: the page's job timer has stopped, so an idle admin page sends the server nothing
    events = []
    admin.on("request", lambda r: events.append(r.url) if "/queue/join" in r.url else None)
    admin.wait_for_timeout(3500)
    assert events == [], events

    client = Client(manage_server, auth=("eli", PASSWORD), verbose=False)  # an annotator's script is refused
    for args, api in ((("task-judged", "rm", False), "/run_judge"), (("task-judged", "after"), "/judge_suggestions"),
                      (("task-judged", "rm", 0.0), "/judge_accept"), (("task-judged",), "/judge_prioritize")):
        with pytest.raises(Exception, match="needs the role admin"):
            client.predict(*args, api_name=api)
