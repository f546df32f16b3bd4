"""An exported set trains with TRL's own trainers, unchanged: the export is the contract with TRL."""

from __future__ import annotations

import datasets
import pytest
import torch

from tests.conftest import DEMO_DATA
from workbench.exporters import export

CPU = dict(bf16=False, use_cpu=True, activation_checkpointing=False, report_to="none", dataloader_num_workers=0,
           dataloader_pin_memory=False, per_device_train_batch_size=2, max_steps=1, logging_steps=1,
           save_strategy="no", learning_rate=1e-3)


def _lora():
    from peft import LoraConfig

    return LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")


def _changed(before: dict[str, torch.Tensor], model) -> list[str]:
    return [n for n, p in model.named_parameters() if n in before and not torch.equal(before[n], p.detach())]


@pytest.mark.slow
def test_exported_preferences_train_one_dpo_step(store, load, tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    load(DEMO_DATA / "preferences.jsonl")
    export(store, kind="preferences", out_dir=tmp_path / "prefs", fmt="parquet")
    train = datasets.load_dataset(str(tmp_path / "prefs"), split="train").select(range(8))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
    trainer = DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model), processing_class=tokenizer,
        args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=256, **CPU),
        train_dataset=train, peft_config=_lora(),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert trainer.state.global_step == 1
    assert _changed(before, trainer.model), "DPO changed no trainable parameter"


@pytest.mark.slow
def test_exported_sft_trains_one_step_with_assistant_only_loss(store, load, tmp_path, tiny_model):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    load(DEMO_DATA / "sft.jsonl")
    export(store, kind="sft", out_dir=tmp_path / "sft", style="messages")
    train = datasets.load_dataset(str(tmp_path / "sft"), split="train").select(range(8))
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model),
        processing_class=AutoTokenizer.from_pretrained(tiny_model),
        args=SFTConfig(output_dir=str(tmp_path / "out"), max_length=256, assistant_only_loss=True, **CPU),
        train_dataset=train, peft_config=_lora(),
    )
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters() if p.requires_grad}
    trainer.train()
    assert _changed(before, trainer.model)
