"""DPO stage: TRL's DPOTrainer on a run folder's snapshot of curated preference pairs.

    workbench train dpo -p PROJECT --parent SFT_VERSION [--beta 0.1 --loss sigmoid,sft --loss-weights 1,1]
    workbench train dpo -p PROJECT --parent SFT_VERSION --vote-smoothing [--ties keep] [--pairs best_vs_rest]
    python -m trainers.dpo RUN_DIR

The reference is the policy's starting point, never the raw base and never a second full model: the
parent (SFT) adapter is loaded trainable and TRL keeps a frozen copy of it as the "ref" adapter (a few MB).
Without a parent, a fresh adapter trains over the base, and the base is the reference.

After training it reports what reward accuracy cannot: the chosen log-prob trend and the collapse guard
(trainers/evaluation.py): sampled replies on held-out prompts beside the parent's own on the same prompts
(degenerate share, length, repetition, diversity) and the KL to the reference on the policy's samples. The
driver adds the forgetting check every stage gets.
Status, phases, resume and the save are trainers/driver.py's.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

from trainers.driver import Stage, data_rows, run_stage, trainer_inputs, trl_config
from trainers.evaluation import (
    CHOSEN_DROP_WARN,
    chosen_logp_trend,
    chosen_vs_reference,
    collapse_guard,
    is_tiny_model,
    probe_logp,
    vocabulary_of,
)
from trainers.models import load_causal_lm, load_tokenizer
from trainers.run_config import RunConfig
from trainers.run_folder import is_main_process, load_heldout, load_snapshot, read_metrics

SAMPLES = 16  # held-out prompts sampled after the run: enough to see a collapse, quick on a CPU


def health(model, tokenizer, run_dir: Path, heldout: list[list[dict]], loss_types: list[str],
           vocabulary: set[str] | None = None, reference=None, beta: float = 0.1) -> tuple[dict, list[str]]:
    """Figures and warnings about a preference run: the chosen log-prob trend from its metrics (against the
    reference on the same batches), and the collapse guard (the policy's samples beside the parent's on the same
    held-out prompts, KL to the reference)."""
    report: dict = {}
    warnings: list[str] = []
    metrics = read_metrics(run_dir)
    trend = chosen_logp_trend(metrics)
    if trend:
        report["chosen_logp_first"], report["chosen_logp_last"] = trend
    drop = chosen_vs_reference(metrics, beta)
    if drop is not None:
        report["chosen_logp_vs_reference"] = drop
        if drop < CHOSEN_DROP_WARN:
            hint = "" if {"sft", "kto"} & set(loss_types) else " or add the SFT term (--loss sigmoid,sft)"
            warnings.append(f"chosen log-probs fell during training: {drop:.2f} nats per chosen reply against the "
                            f"reference on the same batches (warned below {CHOSEN_DROP_WARN:.0f}); the policy is "
                            f"pushing both replies down; lower the learning rate{hint}")
    if heldout:
        guard, collapsed = collapse_guard(model, tokenizer, heldout, reference=reference, vocabulary=vocabulary)
        report.update(guard)
        warnings += collapsed
    return report, warnings


def after_training(model, tokenizer, run_dir: Path, summary: dict, heldout: list[list[dict]],
                   loss_types: list[str], vocabulary: set[str] | None, reference=None, beta: float = 0.1) -> None:
    """What every preference stage (DPO, KTO) reports once trained: health, the probe log-prob, and the
    reference's probe, which must be exactly the parent version's."""
    model.eval()
    report, warnings = health(model, tokenizer, run_dir, heldout, loss_types, vocabulary, reference, beta)
    summary["probe_logp"] = probe_logp(model, tokenizer)
    if reference is None and "ref" in getattr(model, "peft_config", {}):
        model.set_adapter("ref")
        summary["reference_probe_logp"] = probe_logp(model, tokenizer)
        model.set_adapter("default")
    summary.update(report)
    summary.setdefault("warnings", []).extend(warnings)


def preference_checks(trainer, tokenizer, run_dir: Path, train, test, loss_types: list[str],
                      text_columns: tuple[str, ...], base_model: str) -> Callable[[dict], None]:
    """The checks of a preference stage (DPO, KTO), for the driver: the eval split's figures on every rank,
    then, on rank 0, what `after_training` reports. Only over the tiny model (whose words are the project's)
    are samples also judged against the words of `text_columns`."""

    def checks(summary: dict) -> None:
        from peft import PeftModel

        if test is not None:
            summary.update({k: v for k, v in trainer.evaluate().items() if k.startswith("eval_")})
        heldout = load_heldout(run_dir, SAMPLES)
        if is_main_process():
            vocabulary = (vocabulary_of(m["content"] for row in train for key in text_columns for m in row[key])
                          if is_tiny_model(base_model) else None)
            # Full fine-tuning has no adapter to switch off: TRL keeps a separate reference model then.
            reference = None if isinstance(trainer.model, PeftModel) else getattr(trainer, "ref_model", None)
            after_training(trainer.model, tokenizer, run_dir, summary, heldout, loss_types, vocabulary, reference,
                           trainer.args.beta)

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
                               ("prompt", "chosen", "rejected"), run.project_base_model or run.base_model)
    return Stage(trainer, tokenizer, checks, summary=data_rows(train, test))


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
