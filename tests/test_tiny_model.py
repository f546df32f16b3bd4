"""The tiny offline model: loads with plain transformers, offline, with a chat template TRL can train on."""

from __future__ import annotations

import json

from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

from trainers.tiny_model import TinyModelSpec, build_tiny_model

CHAT = [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "My screen cracked."},
        {"role": "assistant", "content": "I'm so sorry to hear that."}]


def test_loads_and_generates_offline(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    meta = json.loads((tiny_model / "workbench_tiny_model.json").read_text())
    assert 1_000_000 < meta["parameters"] < 4_000_000  # the ~2M model DESIGN.md measured
    ids = tok.apply_chat_template(CHAT[:2], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    out = model.generate(**ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id


def test_chat_template_marks_only_assistant_tokens(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    enc = tok.apply_chat_template(CHAT, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    masked = [t for t, m in zip(enc["input_ids"], enc["assistant_masks"], strict=True) if m]
    assert tok.decode(masked) == "I'm so sorry to hear that.<|im_end|>"
    text = tok.apply_chat_template(CHAT[:2], tokenize=False, add_generation_prompt=True)
    assert text.endswith("<|im_start|>assistant\n") and text.startswith("<|im_start|>system\nBe kind.<|im_end|>")


def test_text_round_trips_through_the_tokenizer(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = "Under our Screen Care promise, repairs are free. Ünïcödé ✓ 😀"
    assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text


def test_reward_model_loads_from_the_same_folder(tiny_model):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    assert model.config.pad_token_id is not None and model.score.out_features == 1


def test_tokenizer_learns_the_corpus(tmp_path):
    corpus = ["Loki Phones Screen Care promise"] * 50
    path = build_tiny_model(tmp_path / "m", corpus, TinyModelSpec(hidden_size=32, num_hidden_layers=1,
                                                                 num_attention_heads=2, intermediate_size=64))
    tok = AutoTokenizer.from_pretrained(path)
    assert len(tok("Loki Phones Screen Care promise")["input_ids"]) <= 5  # whole words became tokens
