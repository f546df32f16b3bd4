"""DPO stage: TRL's DPOTrainer on a run folder's snapshot of curated preference pairs.

    workbench train dpo -p PROJECT --parent SFT_VERSION [--beta 0.1 --loss sigmoid,sft --loss-weights 1,1]
    workbench train dpo -p PROJECT --parent SFT_VERSION --vote-smoothing [--ties keep] [--pairs best_vs_rest]
    python -m trainers.dpo RUN_DIR

The reference is the policy's starting point, never the raw base and never a second full model: the
parent (SFT) adapter is loaded trainable and TRL keeps a frozen copy of it as the "ref" adapter (a few MB).
Without a parent, a fresh adapter trains over the base, and the base is the reference.

After training it reports what reward accuracy cannot: KL to the reference on the policy's own samples,
the chosen log-prob trend, and sampled replies on held-out prompts with the share that degenerated.
Status, phases, resume and the save are trainers/driver.py's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from trainers.driver import Stage, data_rows, run_stage, trainer_inputs, trl_config
from trainers.evaluation import (
    chosen_logp_trend,
    is_degenerate,
    kl_to_reference,
    probe_logp,
    sample_replies,
    vocabulary_of,
)
from trainers.models import load_causal_lm, load_tokenizer
from trainers.run_config import RunConfig
from trainers.run_folder import is_main_process, load_heldout, load_snapshot, read_metrics

SAMPLES = 16  # held-out prompts sampled after the run: enough to see a collapse, quick on a CPU


def health(model, tokenizer, run_dir: Path, heldout: list[list[dict]],
           loss_types: list[str], vocabulary: set[str] | None = None) -> tuple[dict, list[str]]:
    """Figures and warnings about a preference run, from its metrics and from fresh samples."""
    from peft import PeftModel

    report: dict = {}
    warnings: list[str] = []
    trend = chosen_logp_trend(read_metrics(run_dir))
    if trend:
        report["chosen_logp_first"], report["chosen_logp_last"] = trend
        if trend[1] < trend[0]:
            hint = "" if {"sft", "kto"} & set(loss_types) else " or add the SFT term (--loss sigmoid,sft)"
            warnings.append(f"chosen log-probs fell during training ({trend[0]:.2f} -> {trend[1]:.2f}): the policy "
                            f"is pushing both replies down; lower the learning rate{hint}")
    if heldout:
        replies = sample_replies(model, tokenizer, heldout)
        degenerate = sum(is_degenerate(r, vocabulary) for r in replies)
        report["samples"] = [{"prompt": p[-1]["content"], "reply": r} for p, r in zip(heldout, replies, strict=True)]
        report["degenerate_share"] = degenerate / len(replies)
        if isinstance(model, PeftModel):
            report["kl_to_reference"] = kl_to_reference(model, tokenizer, heldout, replies)
        if report["degenerate_share"] >= 0.1:
            warnings.append(f"{degenerate} of {len(replies)} sampled held-out replies look degenerate "
                            "(empty, punctuation, loops or word salad): the model may have collapsed")
    return report, warnings


def after_training(model, tokenizer, run_dir: Path, summary: dict, heldout: list[list[dict]],
                   loss_types: list[str], vocabulary: set[str]) -> None:
    """What every preference stage (DPO, KTO) reports once trained: health, the probe log-prob, and the
    reference's probe, which must be exactly the parent version's."""
    model.eval()
    report, warnings = health(model, tokenizer, run_dir, heldout, loss_types, vocabulary)
    summary["probe_logp"] = probe_logp(model, tokenizer)
    if "ref" in model.peft_config:
        model.set_adapter("ref")
        summary["reference_probe_logp"] = probe_logp(model, tokenizer)
        model.set_adapter("default")
    summary.update(report)
    summary["warnings"] = warnings


def preference_checks(trainer, tokenizer, run_dir: Path, train, test, loss_types: list[str],
                      text_columns: tuple[str, ...]) -> Callable[[dict], None]:
    """The checks of a preference stage (DPO, KTO), for the driver: the eval split's figures on every rank,
    then, on rank 0, what `after_training` reports, judging samples against the words of `text_columns`."""

    def checks(summary: dict) -> None:
        if test is not None:
            summary.update({k: v for k, v in trainer.evaluate().items() if k.startswith("eval_")})
        heldout = load_heldout(run_dir, SAMPLES)
        if is_main_process():
            vocabulary = vocabulary_of(m["content"] for row in train for key in text_columns for m in row[key])
            after_training(trainer.model, tokenizer, run_dir, summary, heldout, loss_types, vocabulary)

    return checks


def per_pair_smoothing(dpo_trainer: type, floor: float) -> type:
    """DPOTrainer whose label_smoothing is each pair's own (its vote split, a snapshot column) instead of one
    number for the run, so a 3-to-2 vote pulls its pair's odds to 0.6 and a 5-to-0 one to near 1. TRL's
    smoothing-aware losses (exo_pair, robust) compute elementwise, so a per-row tensor goes straight in."""
    import warnings

    import torch

    class PerPairSmoothingDPOTrainer(dpo_trainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            collate = self.data_collator

            def with_smoothing(examples: list[dict]) -> dict:
                batch = collate([{k: v for k, v in e.items() if k != "label_smoothing"} for e in examples])
                batch["label_smoothing"] = torch.tensor([e["label_smoothing"] for e in examples], dtype=torch.float32)
                return batch

            self.data_collator = with_smoothing

        def _set_signature_columns_if_needed(self):
            super()._set_signature_columns_if_needed()
            if "label_smoothing" not in self._signature_columns:
                self._signature_columns = [*self._signature_columns, "label_smoothing"]

        def _compute_loss(self, model, inputs, return_outputs):
            smoothing = inputs.pop("label_smoothing").clamp(min=floor)
            run_wide, self.label_smoothing = self.label_smoothing, smoothing
            try:
                with warnings.catch_warnings():  # exo_pair wraps the value in torch.tensor(); a tensor is fine
                    warnings.filterwarnings("ignore", message="To copy construct from a tensor")
                    return super()._compute_loss(model, inputs, return_outputs)
            finally:
                self.label_smoothing = run_wide

    return PerPairSmoothingDPOTrainer


def build(run: RunConfig, run_dir: Path) -> Stage:
    from trl import DPOConfig, DPOTrainer

    train, test = load_snapshot(run_dir)
    tokenizer = load_tokenizer(run.base_model)
    model, peft_config = load_causal_lm(run.base_model, run.lora(), run.parent_adapter)
    args = trl_config(DPOConfig, run, run_dir, evaluate=test is not None)
    trainer_class = DPOTrainer
    if "label_smoothing" in train.column_names:  # --vote-smoothing or --ties keep
        trainer_class = per_pair_smoothing(DPOTrainer, args.label_smoothing if "exo_pair" in args.loss_type else 0.0)
    trainer = trainer_class(model=model, args=args, **trainer_inputs(run_dir, tokenizer, peft_config, train, test))
    checks = preference_checks(trainer, tokenizer, run_dir, train, test, list(args.loss_type),
                               ("prompt", "chosen", "rejected"))
    return Stage(trainer, tokenizer, checks, summary=data_rows(train, test))


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
