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


def _smoothing_trainer(tiny_model, tmp_path, rows, *, per_pair: bool, label_smoothing: float = 1e-3):
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    from trainers.dpo import per_pair_smoothing

    torch.manual_seed(0)
    cls = per_pair_smoothing(DPOTrainer, 1e-3) if per_pair else DPOTrainer
    data = datasets.Dataset.from_list(rows if per_pair else [{k: v for k, v in r.items() if k != "label_smoothing"}
                                                             for r in rows])
    return cls(model=AutoModelForCausalLM.from_pretrained(tiny_model),
               processing_class=AutoTokenizer.from_pretrained(tiny_model),
               args=DPOConfig(output_dir=str(tmp_path / "dpo"), max_length=128, loss_type=["exo_pair"],
                              label_smoothing=label_smoothing, **CPU),
               train_dataset=data, peft_config=_lora())


def _loss_and_grad(trainer) -> tuple[float, float]:
    batch = trainer._prepare_inputs(trainer.data_collator([trainer.train_dataset[i]
                                                           for i in range(len(trainer.train_dataset))]))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, batch)
    loss.backward()
    grads = [p.grad.norm() ** 2 for p in trainer.model.parameters() if p.grad is not None]
    return loss.item(), float(torch.stack(grads).sum().sqrt())


PAIR = {"prompt": "Which is the capital of France?", "chosen": "Paris is the capital.", "rejected": "Lyon, I think."}


@pytest.mark.slow
def test_per_pair_smoothing_is_trls_own_loss_row_by_row(tiny_model, tmp_path):
    # A batch whose rows all carry 0.4 gives exactly TRL's loss with label_smoothing=0.4 for the run ...
    per_pair = _smoothing_trainer(tiny_model, tmp_path, [PAIR | {"label_smoothing": 0.4}] * 2, per_pair=True)
    run_wide = _smoothing_trainer(tiny_model, tmp_path, [PAIR] * 2, per_pair=False, label_smoothing=0.4)
    assert _loss_and_grad(per_pair)[0] == pytest.approx(_loss_and_grad(run_wide)[0], rel=1e-5)
    assert per_pair.label_smoothing == 1e-3  # the run-wide value is back after the step


@pytest.mark.slow
def test_a_split_vote_trains_less_hard_than_a_unanimous_one_and_a_tie_not_at_all(tiny_model, tmp_path):
    grads = {}
    for name, eps in (("5-0", 0.0), ("3-2", 0.4), ("tie", 0.5)):
        grads[name] = _loss_and_grad(_smoothing_trainer(tiny_model, tmp_path, [PAIR | {"label_smoothing": eps}],
                                                        per_pair=True))[1]
    # At the start the policy is its reference (even odds): the pull is log((1-eps)/eps), 6.9 against 0.41.
    assert grads["3-2"] < grads["5-0"] / 10
    assert grads["tie"] < grads["3-2"] / 100
