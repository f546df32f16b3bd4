"""One whole round of the loop, headless, on the tiny model: SFT, generate candidates, rank them, DPO,
generate again, a blind A/B review of DPO against SFT, the leaderboard, and the votes back in the data."""

from __future__ import annotations

import json

import pytest

from annotation.labeling import LETTERS, AccessDenied, Labeling, LabelingError, User
from tests.test_train import FAST, trained  # noqa: F401 - the fixture
from workbench.cli import main
from workbench.store import Store

pytestmark = pytest.mark.slow
ADMIN, REV, ANN = User("root", "admin"), User("rev", "reviewer"), User("ann", "annotator")


def vote_for(labeling: Labeling, user: User, task: str, favourite: str, *, tie_every: int = 0) -> list[str]:
    """A scripted reviewer: picks the reply of `favourite` (a tie every `tie_every` votes); the messages."""
    messages, n = [], 0
    view = labeling.open_next(user, task)
    while view.item_id:
        n += 1
        item = labeling._content_of(view.task_id, view.item_id)
        from annotation.labeling import display_order

        shown = display_order(user.name, item)
        versions = labeling.store.response_versions(shown)
        choice = "tie" if tie_every and n % tie_every == 0 else LETTERS[[versions[r] for r in shown].index(favourite)]
        view = labeling.submit(user, task, view.item_id, f"vote-{user.name}-{n}", choice=choice)
        messages.append(view.message)
    return messages


def test_one_round_of_the_loop(trained, capsys):  # noqa: F811
    root = str(trained.root)
    gen = ["--tag", "heldout", "--limit", "8", "--max-new-tokens", "24"]
    assert main(["generate", root, "--versions", "base,sft-1", "--n", "2", *gen]) == 0
    assert "32 replies" in capsys.readouterr().out  # 8 prompts x 2 versions x 2 replies
    with Store.open(trained.store_path) as store:
        rows = store.cursor().execute(
            "SELECT model_version_id, count(DISTINCT prompt_id), any_value(generation), any_value(source) "
            "FROM responses WHERE origin = 'model' GROUP BY 1 ORDER BY 1").fetchall()
    assert [(r[0], r[1]) for r in rows] == [("base", 8), ("sft-1", 8)]
    settings = json.loads(rows[1][2])
    assert settings["sampling"]["n"] == 2 and settings["sampling"]["max_new_tokens"] == 24
    assert settings["sample"] in (0, 1) and settings["backend"] == "hf" and rows[1][3].startswith("generate:")
    # asking again for what exists generates nothing and says so
    assert main(["generate", root, "--versions", "base,sft-1", "--skip-existing", *gen]) == 2
    assert "nothing to generate" in capsys.readouterr().err
    assert main(["generate", root, "--versions", "sft-9", *gen]) == 2
    assert "no model version 'sft-9'" in capsys.readouterr().err

    with Store.open(trained.store_path) as store:
        labeling = Labeling(store)
        # on-policy preference data: rank the candidates (a person's ranking, best first)
        task = labeling.create_task(ADMIN, name="rank-candidates", kind="ranking", overlap=1, tags=["heldout"],
                                    max_responses=4)
        assert task.items == 8
        view, n = labeling.open_next(ANN, task.id), 0
        while view.item_id:
            n += 1
            view = labeling.submit(ANN, task.id, view.item_id, f"rank-item-{n}", order="ABCD")
        assert n == 8
    assert main(["train", "dpo", root, "--parent", "sft-1", *FAST]) == 0
    assert main(["generate", root, "--versions", "dpo-1", *gen]) == 0
    capsys.readouterr()

    assert main(["tasks", "add", "ab", "--kind", "review", "--versions", "dpo-1,sft-1", "--overlap", "2",
                 "-p", root]) == 0
    assert "8 items" in capsys.readouterr().out  # held-out prompts by default
    with Store.open(trained.store_path) as store:
        labeling = Labeling(store)
        review = store.task("ab").id
        with pytest.raises(AccessDenied):
            labeling.open_next(ANN, review)  # reviews are for reviewers
        assert all("review" not in label for label, _ in labeling.task_choices(ANN))
        messages = vote_for(labeling, REV, review, "dpo-1", tie_every=4)
        assert len(messages) == 8
        assert all("dpo-1" in m and "sft-1" in m for m in messages)  # revealed once the vote is in
        vote_for(labeling, ADMIN, review, "dpo-1")
        votes = store.review_votes()
        assert len(votes) == 16 and sum(v["winner"] == "dpo-1" for v in votes) == 14
        with pytest.raises(LabelingError, match="two different model versions"):
            labeling.create_task(ADMIN, name="self", kind="review", overlap=1, versions=["sft-1", "sft-1"])
        with pytest.raises(LabelingError, match="generate them first"):
            labeling.create_task(ADMIN, name="none", kind="review", overlap=1, versions=["dpo-1", "base"],
                                 tags=["no-such-tag"])

    assert main(["leaderboard", root, "--json", "--rounds", "200"]) == 0
    board = json.loads(capsys.readouterr().out)
    top = board["versions"][0]
    assert top["version"] == "dpo-1" and (top["wins"], top["losses"], top["ties"]) == (14, 0, 2)
    assert top["win_low"] > 0.5 and board["versions"][1]["version"] == "sft-1"
    assert main(["leaderboard", root]) == 0
    assert "| dpo-1 |" in capsys.readouterr().out
    assert main(["leaderboard", root, "--review", "rank-candidates"]) == 2  # a ranking task, not a review
    assert "no review task of that name" in capsys.readouterr().err

    # the votes are preference pairs for the next DPO run, unless left out
    counts = {}
    for flag in ([], ["--no-review-votes"]):
        out = trained.root / f"prefs{len(flag)}"
        assert main(["export", "-p", root, "--kind", "preferences", "--out", str(out), *flag]) == 0
        counts[bool(flag)] = sum(1 for _ in (out / "train.jsonl").open())
    # 8 pairs with 2 votes each; the 2 pairs where one reviewer said 'tie' have no majority and stay out
    assert counts[False] - counts[True] == 6
