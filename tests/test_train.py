"""Training stages end to end on the tiny model: a run folder, a real TRL process, a model version that
loads back the same, DPO's reference equal to its SFT parent, and bad settings refused before anything
is written."""

from __future__ import annotations

import json
import re
import signal

import pyarrow.parquet as pq
import pytest
import torch

from tests.conftest import DEMO_DATA
from trainers.evaluation import is_degenerate, probe_logp
from trainers.models import load_tokenizer, load_version
from workbench.cli import main
from workbench.jobs import launch
from workbench.runs import RunError, TrainRequest, ingest, prepare_run
from workbench.store import Store

pytestmark = pytest.mark.slow
FAST = ["--max-steps", "4", "--batch-size", "4", "--max-length", "128", "--set", "logging_steps=1"]


@pytest.fixture
def trained(project):
    """A project with the demo data and an SFT version trained for a few steps."""
    for name, tag in (("sft.jsonl", None), ("preferences.jsonl", None), ("heldout_prompts.jsonl", "heldout")):
        assert main(["import", "-p", str(project.root), str(DEMO_DATA / name)] + (["--tag", tag] if tag else [])) == 0
    assert main(["train", "sft", str(project.root), *FAST, "--val-split", "0.05"]) == 0
    return project


def version(project, version_id):
    with Store.open(project.store_path) as store:
        return store.model_version(version_id)


def test_sft_makes_a_version_that_loads_back_the_same(trained):
    v = version(trained, "sft-1")
    assert v.stage == "sft" and v.parent_id is None and len(v.dataset_hash) == 64
    run_dir = trained.runs_dir / "sft-1"
    assert (run_dir / "data/train.parquet").exists() and (run_dir / "data/test.parquet").exists()
    assert json.loads((run_dir / "run.json").read_text())["dataset_hash"] == v.dataset_hash
    metrics = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in m for m in metrics)
    # Training changed the adapter (LoRA's B matrices start at zero) ...
    from safetensors.torch import load_file

    weights = load_file(run_dir / "adapter/adapter_model.safetensors")
    assert any(torch.count_nonzero(w) for n, w in weights.items() if "lora_B" in n)
    # ... and the saved version, loaded with plain transformers + peft, gives what training ended with.
    model = load_version(v.base_model, v.path)
    assert probe_logp(model, load_tokenizer(v.base_model)) == pytest.approx(v.metrics["probe_logp"], abs=1e-3)
    base = load_version(v.base_model, None)
    assert probe_logp(base, load_tokenizer(v.base_model)) != pytest.approx(v.metrics["probe_logp"], abs=1e-3)


def test_trls_wrapped_packing_fills_every_row_and_the_run_counts_the_tokens_it_trained(project, capsys):
    """The README's packing settings reach TRL through `--set`: packed, every step carries batch x max-length
    real tokens; TRL's default pads each batch to its longest row, so the same steps carry fewer. The run
    reports the count (padding not counted), which is how a user sees what packing bought."""
    assert main(["import", "-p", str(project.root), str(DEMO_DATA / "sft.jsonl")]) == 0
    steps = ["--max-steps", "3", "--batch-size", "4", "--max-length", "256"]
    assert main(["train", "sft", str(project.root), *steps]) == 0
    assert main(["train", "sft", str(project.root), *steps, "--set", "packing=true",
                 "--set", "packing_strategy=wrapped"]) == 0
    padded, packed = (version(project, v).metrics["train_tokens"] for v in ("sft-1", "sft-2"))
    assert packed == 3 * 4 * 256
    assert padded < packed * 0.8
    assert "train_tokens: 3,072" in capsys.readouterr().out


def test_dpo_reference_is_the_sft_parent_and_health_is_reported(trained, capsys):
    capsys.readouterr()
    assert main(["train", "dpo", str(trained.root), "--parent", "sft-1", *FAST, "--loss", "sigmoid,sft",
                 "--loss-weights", "1,1"]) == 0
    out = capsys.readouterr().out
    assert "model version dpo-1" in out and "kl_to_reference" in out
    sft, dpo = version(trained, "sft-1"), version(trained, "dpo-1")
    assert dpo.parent_id == "sft-1"
    m = dpo.metrics
    assert m["reference_probe_logp"] == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)
    assert m["probe_logp"] != pytest.approx(m["reference_probe_logp"], abs=1e-4)  # the policy moved
    assert len(m["samples"]) == 16 and 0.0 <= m["degenerate_share"] <= 1.0
    assert "chosen_logp_first" in m and "kl_to_reference" in m
    assert "rewards/accuracies" in (trained.runs_dir / "dpo-1/metrics.jsonl").read_text()


def test_dpo_trains_each_pair_by_its_vote_split_and_keeps_ties_at_even_odds(trained, capsys):
    with Store.open(trained.store_path) as store:
        pairs = store.cursor().execute("SELECT prompt_id, chosen_id, rejected_id FROM labels "
                                       "WHERE kind = 'preference' ORDER BY id LIMIT 5").fetchall()
        for n, (pid, chosen, rejected) in enumerate(pairs):
            outcomes = ["tie", "both_bad"] if n < 3 else ["chosen", "chosen"]  # 3 ties; 2 pairs won 3-0
            for who, outcome in zip(("ann", "bob"), outcomes, strict=True):
                store.add_preference(prompt_id=pid, chosen_id=chosen, rejected_id=rejected, annotator=who,
                                     client_id=f"{who}-{n}", outcome=outcome)
    capsys.readouterr()
    assert main(["train", "dpo", str(trained.root), "--parent", "sft-1", *FAST, "--vote-smoothing",
                 "--ties", "keep"]) == 0
    assert "model version dpo-1" in capsys.readouterr().out
    run = json.loads((trained.runs_dir / "dpo-1/run.json").read_text())
    assert run["trl"]["loss_type"] == ["exo_pair"] and run["trl"]["label_smoothing"] == 1e-3
    assert run["filters"]["smoothing"] and run["filters"]["ties"] == "keep"
    snapshot = pq.read_table(trained.runs_dir / "dpo-1/data/train.parquet").to_pylist()
    assert sorted(r["label_smoothing"] for r in snapshot if r["tie"]) == [0.5] * 3
    assert {r["label_smoothing"] for r in snapshot if not r["tie"]} == {0.0}
    assert "kept as ties" in (trained.runs_dir / "dpo-1/data/README.md").read_text()
    assert version(trained, "dpo-1").metrics["steps"] == 4


def test_bad_settings_are_refused_before_anything_is_written(trained, capsys, monkeypatch):
    root = str(trained.root)
    cases = [
        (["train", "dpo", root, "--parent", "sft-9"], "no such model version"),
        (["train", "sft", root, "--set", "no_such_field=1"], "no_such_field"),
        (["train", "sft", root, "--set", "packing=true", "--set", "packing_strategy=bogus"],
         "packing_strategy must be one of bfd, bfd_split, wrapped, not 'bogus'"),
        (["train", "sft", root, "--full", "--parent", "sft-1"], "--full"),
        (["train", "sft", root, "--source", "nothing-like-this"], "nothing to train sft on"),
        (["train", "dpo", root, "--vote-smoothing", "--loss", "sigmoid"], "a DPO loss that reads label smoothing"),
        (["train", "dpo", root, "--ties", "keep", "--loss", "robust"], "use --loss exo_pair"),
        (["train", "reward", root, "--ties", "keep"], "apply to dpo"),
        (["train", "sft", root, "--pairs", "best_vs_rest"], "preference-pair options do not apply"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        assert message in capsys.readouterr().err, argv
    import trainers.models

    monkeypatch.setattr(trainers.models, "qlora_problem", lambda: "no 4-bit kernels on this machine")
    assert main(["train", "sft", root, "--qlora"]) == 2
    assert "--qlora: no 4-bit kernels on this machine" in capsys.readouterr().err
    config = trained.root / "workbench.toml"
    config.write_text(config.read_text().replace(str(trained.config.base_model), "/nowhere/model"))
    assert main(["train", "sft", root]) == 2
    assert "no such model folder" in capsys.readouterr().err
    with Store.open(trained.store_path) as store:
        assert [r[0] for r in store.cursor().execute("SELECT id FROM runs ORDER BY id").fetchall()] == ["sft-1"]
        assert [r[0] for r in store.cursor().execute("SELECT id FROM model_versions").fetchall()] == ["sft-1"]
    assert sorted(p.name for p in trained.runs_dir.iterdir()) == ["sft-1"]


def test_a_killed_run_is_marked_failed_and_makes_no_version(trained):
    from workbench.config import load_project

    project = load_project(trained.root)
    with Store.open(project.store_path) as store:
        run_id, run_dir, _ = prepare_run(project, store, TrainRequest(stage="sft", trl={"max_steps": 500}))
        proc = launch(run_dir, "sft")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        result = ingest(store, run_id, run_dir, proc.returncode)
        assert result.status == "failed" and "exited with code -9" in result.error
        assert store.run(run_id).status == "failed"
        assert store.model_version(run_id) is None


def test_an_empty_project_has_nothing_to_train(project, capsys):
    assert main(["train", "sft", str(project.root)]) == 2
    assert "nothing to train sft on" in capsys.readouterr().err
    with Store.open(project.store_path) as store, pytest.raises(RunError):
        prepare_run(project, store, TrainRequest(stage="ppo"))


def test_resume_skips_a_half_written_checkpoint(tmp_path):
    from trainers.run_folder import latest_checkpoint

    ck = tmp_path / "checkpoints"
    (ck / "checkpoint-2").mkdir(parents=True)
    (ck / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (ck / "checkpoint-10").mkdir()  # no state yet: killed while saving
    (ck / "checkpoint-4").mkdir()
    (ck / "checkpoint-4" / "trainer_state.json").write_text('{"global_st')  # cut mid-write
    assert latest_checkpoint(tmp_path) == str(ck / "checkpoint-2")
    (ck / "checkpoint-10" / "trainer_state.json").write_text('{"global_step": 10}')
    assert latest_checkpoint(tmp_path) == str(ck / "checkpoint-10")  # numeric order, not text order


@pytest.mark.parametrize("text,bad", [
    ("I'm so sorry to hear that. Under our Screen Care promise, repairs are free.", False),
    ("....", True), ("", True), ("sorry sorry sorry sorry sorry sorry sorry sorry sorry", True),
    ("pl\ufffd sent k\ufffdmot\ufffdfter reflashif", True), ("aaaaaaaaaaaaaaaa", True),
])
def test_degenerate_replies(text, bad):
    assert is_degenerate(text) is bad


def test_word_salad_is_degenerate_given_the_training_vocabulary():
    """Real-looking tokens that are few real words (what the untrained tiny model writes) pass the shape
    checks; against the words of the training data they do not."""
    from trainers.evaluation import vocabulary_of

    rows = [json.loads(line) for line in (DEMO_DATA / "sft.jsonl").read_text().splitlines()[:300]]
    vocabulary = vocabulary_of(m["content"] for r in rows for m in r["prompt"] + r["completion"])
    salad = "cyion willrectly turing 7 hold > thirtyQ for addiziv seeion confirmation"
    good = "I'm so sorry to hear that. Your phone is covered, and we will repair it for free."
    assert not is_degenerate(salad)  # the shape checks alone miss it
    assert is_degenerate(salad, vocabulary) and not is_degenerate(good, vocabulary)
    assert not is_degenerate("Thanks!", vocabulary)  # too short to judge by words


def test_reward_model_reports_pairwise_accuracy_and_scores_the_same_reloaded(trained):
    import datasets

    from trainers.models import load_reward_version, reward_scores

    assert main(["train", "reward", str(trained.root), *FAST, "--val-split", "0.1"]) == 0
    v = version(trained, "reward-1")
    m = v.metrics
    assert 0.0 <= m["pairwise_accuracy"] <= 1.0 and m["scored_pairs"] > 0 and m["held_out_is_test_split"]
    test = datasets.load_dataset("parquet", data_files=str(trained.runs_dir / "reward-1/data/test.parquet"),
                                 split="train")
    model, tokenizer = load_reward_version(v.base_model, v.path)
    again = reward_scores(model, tokenizer, [list(test[0]["prompt"])], [test[0]["chosen"][0]["content"]])
    assert again == pytest.approx(m["probe_scores"], abs=1e-4)
    assert main(["train", "reward", str(trained.root), "--parent", "sft-1"]) == 2


def test_ppo_needs_a_reward_model_and_trains_over_the_sft_version(trained, capsys):
    root = str(trained.root)
    assert main(["train", "ppo", root, "--parent", "sft-1"]) == 2
    assert "ppo needs --reward-model" in capsys.readouterr().err
    assert main(["train", "ppo", root, "--parent", "sft-1", "--reward-model", "sft-1"]) == 2
    assert "no reward model version" in capsys.readouterr().err
    assert main(["train", "reward", root, *FAST]) == 0
    assert main(["train", "ppo", root, "--parent", "sft-1", "--reward-model", "reward-1",
                 "--set", "total_episodes=16"]) == 2  # every pair trained reward-1: nothing held out to check it on
    assert "none is left to check it on" in capsys.readouterr().err
    assert main(["train", "ppo", root, "--parent", "sft-1", "--reward-model", "reward-1", "--min-reward-accuracy", "0",
                 "--set", "total_episodes=16", "--set", "response_length=16"]) == 0
    v = version(trained, "ppo-1")
    sft = version(trained, "sft-1")
    m = v.metrics
    assert v.parent_id == "sft-1" and m["stacked_on"] == [sft.path]
    assert {"heldout_reward_before", "heldout_reward_after", "heldout_reward_gain"} <= set(m)
    assert "objective/scores" in (trained.runs_dir / "ppo-1/metrics.jsonl").read_text()
    # The version loads as base + SFT merged + PPO adapter; with the PPO adapter off it is the SFT version.
    model = load_version(v.base_model, v.path, stacked_on=m["stacked_on"])
    tokenizer = load_tokenizer(v.base_model)
    with model.disable_adapter():
        assert probe_logp(model, tokenizer) == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)


def test_versions_export_as_adapter_or_merged_model_and_load_with_plain_libraries(trained, tmp_path, capsys):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root = str(trained.root)
    sft = version(trained, "sft-1")
    assert main(["export-version", "sft-1", "-p", root, "--out", str(tmp_path / "adapter")]) == 0
    assert main(["export-version", "sft-1", "-p", root, "--out", str(tmp_path / "merged"), "--merge"]) == 0
    tokenizer = load_tokenizer(sft.base_model)
    adapter_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sft.base_model),
                                              str(tmp_path / "adapter"))
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    assert not (tmp_path / "merged" / "adapter_config.json").exists()
    for model in (adapter_model, merged):
        assert probe_logp(model, tokenizer) == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)
    assert main(["export-version", "sft-1", "-p", root, "--out", str(tmp_path / "merged")]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["export-version", "nope", "-p", root, "--out", str(tmp_path / "x")]) == 2


def test_the_same_stage_runs_under_accelerate_with_two_processes(trained):
    """The multi-GPU launch path (accelerate launch), tested with two CPU processes."""
    from tests.conftest import REPO

    config = REPO / "trainers" / "accelerate" / "cpu_2proc.yaml"
    assert main(["train", "sft", str(trained.root), *FAST, "--accelerate-config", str(config)]) == 0
    v = version(trained, "sft-2")
    assert v is not None and (trained.runs_dir / "sft-2/adapter/adapter_model.safetensors").exists()
    assert v.metrics["world_size"] == 2 and version(trained, "sft-1").metrics["world_size"] == 1
    stderr = (trained.runs_dir / "sft-2/stderr.log").read_text()
    model = load_version(v.base_model, v.path)
    assert probe_logp(model, load_tokenizer(v.base_model)) == pytest.approx(v.metrics["probe_logp"], abs=1e-3)
    assert "Traceback" not in stderr


def test_shipped_accelerate_configs_parse():
    import yaml

    from tests.conftest import REPO

    for name in ("deepspeed_zero3.yaml", "fsdp.yaml", "cpu_2proc.yaml"):
        config = yaml.safe_load((REPO / "trainers" / "accelerate" / name).read_text())
        assert config["distributed_type"] in {"DEEPSPEED", "FSDP", "MULTI_GPU"} and config["num_processes"] >= 2


def test_a_cancelled_run_resumes_from_its_last_checkpoint(trained, capsys):
    import time

    from workbench.config import load_project

    project = load_project(trained.root)
    with Store.open(project.store_path) as store:
        run_id, run_dir, _ = prepare_run(project, store, TrainRequest(
            stage="sft", trl={"max_steps": 8, "save_steps": 2, "logging_steps": 1,
                              "per_device_train_batch_size": 4, "max_length": 128}))
        proc = launch(run_dir, "sft")
        deadline = time.time() + 240
        # Killed as soon as checkpoint-4 appears, possibly half-written: resuming must skip an incomplete one.
        while not list((run_dir / "checkpoints").glob("checkpoint-4")) and time.time() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert ingest(store, run_id, run_dir, proc.returncode).status == "failed"
    assert main(["train", "sft", str(trained.root), "--resume", "sft-1"]) == 2  # succeeded runs do not resume
    assert "only a failed or cancelled run resumes" in capsys.readouterr().err
    assert main(["train", "sft", str(trained.root), "--resume", run_id]) == 0
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    v = version(trained, run_id)
    assert v.metrics["steps"] == 8 and steps[-1] == 8
    assert steps.count(1) == 1 and steps.count(2) == 1  # it went on from a checkpoint, not from step 1
    with Store.open(trained.store_path) as store:
        assert store.run(run_id).status == "succeeded"


def test_qlora_trains_where_bitsandbytes_quantizes(trained):
    """QLoRA on this machine's CPU (bitsandbytes 0.50 quantizes there); refused elsewhere (see bad settings)."""
    from trainers.models import qlora_problem

    if qlora_problem() is not None:
        pytest.skip(f"QLoRA unsupported here: {qlora_problem()}")
    assert main(["train", "sft", str(trained.root), *FAST, "--qlora"]) == 0
    v = version(trained, "sft-2")
    assert v.config["adapter"]["qlora"] is True
    model = load_version(v.base_model, v.path)  # the adapter also loads over the unquantized base
    assert probe_logp(model, load_tokenizer(v.base_model)) == pytest.approx(v.metrics["probe_logp"], abs=0.5)


def test_demo_loop_plumbing_with_tiny_settings(tmp_path, monkeypatch):
    """The demo loop's wiring (the real figures take 5 minutes and live in BENCHMARKS.md)."""
    import re

    from workbench import demo

    monkeypatch.setattr(demo, "DEMO_SFT", {"adapter": {"full": True},
                                           "trl": {"max_steps": 2, "per_device_train_batch_size": 4, "max_length": 128}})
    monkeypatch.setattr(demo, "DEMO_DPO", {"trl": {"max_steps": 2, "per_device_train_batch_size": 4,
                                                   "max_length": 128, "beta": 4.0}})
    lines = []
    results = demo.demo_loop(tmp_path / "loop", samples_per_prompt=1, log=lines.append)
    assert results["sft"]["version"] == "sft-1" and results["dpo"]["version"] == "dpo-1"
    for stage in ("sft", "dpo"):
        assert results[stage]["samples"] == 120 and 0.0 <= results[stage]["trait_share"] <= 1.0
        # The tiny base starts random: the figure is there, with the note that it carries no warning.
        assert re.fullmatch(r"general text [+-]\d\.\d{3}, general replies [+-]\d\.\d{3} nats/token against the base "
                            r"\(the base knows no general text: no warning\)", results[stage]["forgetting"])
    assert any(line.startswith("dpo (dpo-1): trait") for line in lines)


def test_demo_loop_command_prints_both_shares(tmp_path, monkeypatch, capsys):
    import re

    from workbench import demo

    fake = {"sft": {"version": "sft-1", "trait_share": 0.2, "degenerate_share": 0.0, "samples": 240, "examples": [],
                    "forgetting": "general text -0.010"},
            "dpo": {"version": "dpo-1", "trait_share": 0.6, "degenerate_share": 0.05, "samples": 240,
                    "forgetting": "general text -0.020", "examples": [{"prompt": "Hi", "reply": "I'm so sorry"}]},
            "seconds": 12.0}
    monkeypatch.setattr(demo, "demo_loop", lambda *a, **k: fake)
    assert main(["demo-loop", str(tmp_path / "loop")]) == 0
    out = capsys.readouterr().out
    assert re.search(r"after SFT \(sft-1\): 20\.0%\s+degenerate 0\.0%\s+forgetting: general text -0\.010", out)
    assert re.search(r"after DPO \(dpo-1\): 60\.0%\s+degenerate 5\.0%\s+forgetting: general text -0\.020", out)
    assert "whole loop: 12 s" in out


def test_rloo_is_the_maintained_alternative_with_the_same_reward_model(trained, capsys):
    root = str(trained.root)
    assert main(["train", "reward", root, *FAST]) == 0
    assert main(["train", "dpo", root, "--algorithm", "rloo"]) == 2
    assert "--algorithm rloo applies to `train ppo`" in capsys.readouterr().err
    assert main(["train", "ppo", root, "--algorithm", "rloo", "--parent", "sft-1", "--reward-model", "reward-1",
                 "--min-reward-accuracy", "0", "--max-steps", "2", "--max-length", "16", "--set", "num_generations=2",
                 "--set", "per_device_train_batch_size=4", "--set", "logging_steps=1"]) == 0
    v = version(trained, "rloo-1")
    assert v.stage == "rloo" and v.parent_id == "sft-1" and v.metrics["steps"] == 2
    assert {"heldout_reward_before", "heldout_reward_after"} <= set(v.metrics)
    model = load_version(v.base_model, v.path, stacked_on=v.metrics["stacked_on"])
    with model.disable_adapter():
        assert probe_logp(model, load_tokenizer(v.base_model)) == pytest.approx(
            version(trained, "sft-1").metrics["probe_logp"], abs=1e-3)


def test_the_reward_gate_refuses_a_random_reward_model_with_its_figure(trained, capsys):
    root = str(trained.root)
    # learning rate 0: the score head stays at its random start, a reward model that learned nothing. On the
    # demo's pairs (the chosen reply is the longer in 91%) such a head can still rank most pairs right from
    # length alone, so the gate is set above what it scores, and the message gives the length baseline.
    assert main(["train", "reward", root, *FAST, "--val-split", "0.2", "--set", "learning_rate=0"]) == 0
    capsys.readouterr()
    ppo = ["train", "ppo", root, "--parent", "sft-1", "--reward-model", "reward-1", "--set", "total_episodes=8",
           "--set", "response_length=8"]
    assert main([*ppo, "--min-reward-accuracy", "1"]) == 1
    err = capsys.readouterr().err
    found = re.search(r"reward model reward-1 ranks (\d\.\d\d) of (\d+) held-out human pairs right, below the gate "
                      r"of 1\.00 \(preferring the longer reply alone ranks (\d\.\d\d)\): .* pass "
                      r"--min-reward-accuracy ([\d.]+) \(0 turns the check off\)", err)
    assert found, err
    accuracy, pairs, longer = float(found[1]), int(found[2]), float(found[3])
    with Store.open(trained.store_path) as store:
        assert store.run("ppo-1").status == "failed" and store.model_version("ppo-1") is None
    gate_pairs = pq.read_table(trained.runs_dir / "ppo-1/data/gate.parquet").to_pylist()
    assert pairs == len(gate_pairs)
    assert longer == pytest.approx(sum(len(r["chosen"][0]["content"]) > len(r["rejected"][0]["content"])
                                       for r in gate_pairs) / pairs, abs=0.005)
    assert accuracy < 1.0
    # The figure the message suggests lets the run go on, and the version records what the gate measured.
    assert main([*ppo, "--min-reward-accuracy", found[4]]) == 0
    gate = version(trained, "ppo-2").metrics["reward_gate"]
    assert gate["accuracy"] == pytest.approx(accuracy, abs=0.005) and gate["pairs"] == pairs
    assert gate["longer_reply_accuracy"] == pytest.approx(longer, abs=0.005)


def test_a_runs_seed_fixes_the_weights_it_starts_from(project):
    """Same settings, same start: the fresh score head (trained at learning rate 0, so it stays as initialized)
    is the same in two runs with one seed and differs with another."""
    root = str(project.root)
    assert main(["import", "-p", root, str(DEMO_DATA / "preferences.jsonl")]) == 0
    for seed in ("0", "0", "1"):
        assert main(["train", "reward", root, *FAST, "--val-split", "0.1", "--set", "learning_rate=0",
                     "--seed", seed]) == 0
    first, again, other = (version(project, f"reward-{n}").metrics["probe_scores"] for n in (1, 2, 3))
    assert first == again and first != other


def test_kto_trains_on_thumbs_over_the_sft_version(trained, capsys):
    from annotation.labeling import Labeling, User

    admin, ann = User("root", "admin"), User("ann", "annotator")
    with Store.open(trained.store_path) as store:
        labeling = Labeling(store)
        task = labeling.create_task(admin, name="thumbs", kind="feedback", overlap=1, max_responses=1)
        for n in range(12):  # 4 up, 8 down: the up side is weighted 2x to balance
            view = labeling.open_next(ann, task.id)
            labeling.submit(ann, task.id, view.item_id, view.client_id, thumb="up" if n % 3 == 0 else "down")
    assert main(["train", "kto", str(trained.root), "--parent", "sft-1", "--pairs", "best_vs_rest"]) == 2
    assert "kto trains on thumbs up/down feedback" in capsys.readouterr().err
    assert main(["train", "kto", str(trained.root), "--parent", "sft-1", *FAST, "--beta", "0.2"]) == 0
    assert "model version kto-1" in capsys.readouterr().out
    kto, sft = version(trained, "kto-1"), version(trained, "sft-1")
    m = kto.metrics
    assert kto.parent_id == "sft-1" and m["steps"] == 4
    assert (m["desirable_rows"], m["undesirable_rows"], m["desirable_weight"]) == (4, 8, 2.0)
    assert m["reference_probe_logp"] == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)
    assert m["probe_logp"] != pytest.approx(m["reference_probe_logp"], abs=1e-4)
    logged = (trained.runs_dir / "kto-1/metrics.jsonl").read_text()
    assert "rewards/chosen" in logged and '"kl"' in logged
