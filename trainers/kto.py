"""KTO stage: TRL's KTOTrainer on a run folder's snapshot of thumbs up / thumbs down feedback.

    workbench train kto -p PROJECT --parent SFT_VERSION [--beta 0.1 --set desirable_weight=1.0]
    python -m trainers.kto RUN_DIR

KTO learns from single responses marked good or bad (TRL's unpaired format: prompt, completion, label), so
feedback that never came as pairs still aligns the model. As in DPO, the reference is the policy's start:
the parent (SFT) adapter is continued and TRL keeps a frozen copy of it as "ref".

TRL asks that desirable_weight * good rows and undesirable_weight * bad rows stay within 1 to 4/3 of each
other; unless the run sets either weight, the rarer side is weighted up to balance them (and said so).
"""

from __future__ import annotations

import sys
from pathlib import Path

from trainers.dpo import SAMPLES, after_training
from trainers.evaluation import vocabulary_of
from trainers.models import Adapter, hardware_args, load_causal_lm, load_tokenizer, save_trained
from trainers.run_folder import (
    MetricsLog,
    is_main_process,
    latest_checkpoint,
    load_heldout,
    load_snapshot,
    phase,
    read_run,
    stage_status,
)


def balance_weights(labels: list[bool], trl: dict) -> dict:
    """desirable/undesirable weights that give both sides the same total weight, unless the run set them."""
    if "desirable_weight" in trl or "undesirable_weight" in trl:
        return {}
    good, bad = sum(labels), len(labels) - sum(labels)
    if not good or not bad:
        raise ValueError(f"kto needs both thumbs up and thumbs down feedback; the snapshot has {good} up and "
                         f"{bad} down")
    return {"desirable_weight": round(bad / good, 4)} if bad > good else {"undesirable_weight": round(good / bad, 4)}


def main(run_dir: str | Path) -> None:
    from trl import KTOConfig, KTOTrainer

    run_dir = Path(run_dir)
    run = read_run(run_dir)
    with stage_status(run_dir) as summary:
        with phase(summary, "load"):
            train, test = load_snapshot(run_dir)
            weights = balance_weights(list(train["label"]), run["trl"])
            tokenizer = load_tokenizer(run["base_model"])
            model, peft_config = load_causal_lm(run["base_model"], Adapter(**run["adapter"]), run.get("parent_adapter"))
            args = KTOConfig(output_dir=str(run_dir / "checkpoints"), **hardware_args(), **run["trl"], **weights,
                             eval_strategy="epoch" if test is not None else "no")
            trainer = KTOTrainer(model=model, args=args, train_dataset=train, eval_dataset=test,
                                 processing_class=tokenizer, peft_config=peft_config, callbacks=[MetricsLog(run_dir)])
        with phase(summary, "train"):
            result = trainer.train(resume_from_checkpoint=latest_checkpoint(run_dir) if run.get("resume") else None)
        with phase(summary, "save"):
            if is_main_process():
                save_trained(trainer.model, run_dir / "adapter")
                tokenizer.save_pretrained(run_dir / "adapter")
        summary.update({"world_size": trainer.args.world_size, "train_loss": result.training_loss,
                        "steps": result.global_step, "train_rows": len(train),
                        "desirable_rows": sum(train["label"]), "undesirable_rows": len(train) - sum(train["label"]),
                        "desirable_weight": args.desirable_weight, "undesirable_weight": args.undesirable_weight,
                        "test_rows": len(test) if test is not None else 0})
        with phase(summary, "checks"):
            if test is not None:
                summary.update({k: v for k, v in trainer.evaluate().items() if k.startswith("eval_")})
            heldout = load_heldout(run_dir, SAMPLES)
            if not is_main_process():
                return
            after_training(trainer.model, tokenizer, run_dir, summary, heldout, ["kto"],
                           vocabulary_of(m["content"] for row in train for key in ("prompt", "completion")
                                         for m in row[key]))


if __name__ == "__main__":
    main(sys.argv[1])
