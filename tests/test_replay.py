"""General replay in SFT (`workbench train sft --replay SHARE`): the base model's own replies to general
questions become that share of the training rows, made once per run folder, and refused where they mean
nothing."""

from __future__ import annotations

import json

import pytest

from trainers.evaluation import GENERAL_CHAT, general_text
from trainers.replay import (
    PER_QUESTION,
    REPLY_TOKENS,
    finished,
    general_prompts,
    replay_count,
    samples_per_question,
)
from workbench.cli import main
from workbench.store import Store


def demonstrations(path, n: int):
    rows = [{"prompt": [{"role": "user", "content": f"My Loki phone number {i} will not charge."}],
             "completion": [{"role": "assistant", "content": f"I'm sorry to hear that. Try cable {i}."}]}
            for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def steps_trained(run_dir) -> int:
    state = sorted(run_dir.glob("checkpoints/checkpoint-*/trainer_state.json"))[-1]
    return json.loads(state.read_text())["global_step"]


@pytest.fixture
def answering_project(tiny_model, tmp_path):
    """A project whose base knows some general text and answers a question with a whole sentence: the tiny model
    after 40 Adam steps on one chat and the general passage (a few seconds). The tiny model itself starts from
    random weights and knows nothing, so it has nothing to replay
    (`test_a_base_with_nothing_general_to_keep_fails_the_run_and_says_why`)."""
    import torch
    from transformers import AutoModelForCausalLM

    from trainers.models import load_tokenizer
    from workbench.projects import init_project

    model, tokenizer = AutoModelForCausalLM.from_pretrained(tiny_model), load_tokenizer(str(tiny_model))
    chat = [{"role": "user", "content": "What is a glacier?"}, {"role": "assistant", "content": "It is ice."}]
    texts = [tokenizer.apply_chat_template(chat, tokenize=False), general_text()]
    batches = [tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :512] for text in texts]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(40):
        for ids in batches:
            model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path / "answering"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return init_project(tmp_path / "proj", base_model=str(folder))


@pytest.mark.slow
def test_replay_makes_its_share_of_the_rows_and_the_trainer_sees_them_all(answering_project, tmp_path):
    project = answering_project
    root = str(project.root)
    assert main(["import", "-p", root, str(demonstrations(tmp_path / "demos.jsonl", 12))]) == 0
    common = ["--epochs", "1", "--batch-size", "4", "--max-length", "96", "--set", "save_strategy=epoch"]
    assert main(["train", "sft", root, *common]) == 0
    assert main(["train", "sft", root, *common, "--replay", "0.5"]) == 0
    plain, mixed = project.runs_dir / "sft-1", project.runs_dir / "sft-2"
    assert steps_trained(plain) == 3  # 12 rows, 4 a step
    assert steps_trained(mixed) == 6  # and as many replays again
    assert not (plain / "data/replay.jsonl").exists()
    replays = [json.loads(line) for line in (mixed / "data/replay.jsonl").read_text().splitlines()]
    questions = set(general_prompts())
    assert replays and all(r["prompt"][0]["content"] in questions for r in replays)
    assert all(r["completion"][0]["role"] == "assistant" and r["completion"][0]["content"] for r in replays)
    with Store.open(project.store_path) as store:
        metrics = store.model_version("sft-2").metrics
    assert metrics["train_rows"] == 12 and metrics["replay_rows"] == 12
    assert metrics["replay_distinct"] == len(replays)
    assert json.loads((mixed / "run.json").read_text())["replay"] == 0.5


@pytest.mark.slow
def test_a_base_with_nothing_general_to_keep_fails_the_run_and_says_why(project, tmp_path, capsys):
    """The tiny model starts from random weights: its samples are word salad that sometimes stops, and it
    predicts the general passage no better than chance, so replaying it would keep nothing."""
    root = str(project.root)
    assert main(["import", "-p", root, str(demonstrations(tmp_path / "demos.jsonl", 4))]) == 0
    assert main(["train", "sft", root, "--max-steps", "1", "--replay", "0.2"]) == 1
    err = capsys.readouterr().err
    assert "predicts general text no better than chance" in err
    assert "it has nothing general to keep; train without --replay" in err
    assert err.splitlines()[0].startswith("workbench train: run sft-1 failed: RuntimeError: general replay:")


def test_replay_is_refused_outside_sft_and_past_half_in_one_line(project, capsys):
    root = str(project.root)
    assert main(["train", "dpo", root, "--replay", "0.2"]) == 2
    assert main(["train", "sft", root, "--replay", "0.8"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].endswith("--replay applies to `train sft` (it mixes general replies into demonstrations)")
    assert "--replay 0.8: choose 0 to 0.5" in err[1]
    assert not project.runs_dir.exists() or not any(project.runs_dir.iterdir())


def test_a_reply_cut_off_at_the_token_limit_ends_at_its_last_whole_sentence():
    assert finished("Paris is big. It has a river", REPLY_TOKENS) == "Paris is big."
    assert finished("no sentence ever ends here", REPLY_TOKENS) is None
    assert finished("  A short reply with no full stop  ", 12) == "A short reply with no full stop"
    assert finished("   ", 3) is None
    assert replay_count(0.2, 1945) == 486 and replay_count(0.0, 100) == 0


def test_a_run_that_needs_more_replays_than_questions_samples_each_question_several_times():
    """Each reply is then seen about once (a greedy reply cycled seven times is learned by heart), up to the
    cap that bounds the time spent writing them."""
    assert samples_per_question(12, 119) == 1
    assert samples_per_question(486, 119) == PER_QUESTION == 4  # ceil(486 / 119) = 5, capped
    assert samples_per_question(238, 119) == 2 and samples_per_question(239, 119) == 3
    assert samples_per_question(0, 119) == 1


def test_the_replay_questions_share_nothing_with_what_the_forgetting_check_reads():
    """The check must measure text the run never trained on: not its four questions, nor the passage's
    subjects."""
    questions = [q.lower() for q in general_prompts()]
    assert len(questions) >= 100 and len(set(questions)) == len(questions)
    for conversation, _ in GENERAL_CHAT:
        assert conversation[0]["content"].lower() not in questions
    for subject in ("river", "bread", "moon", "music", "france", "sky", "spider", "foreign"):
        assert subject in general_text().lower() + " ".join(c[0]["content"].lower() for c, _ in GENERAL_CHAT)
        assert not [q for q in questions if subject in q], subject
