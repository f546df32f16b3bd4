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

from trainers.dpo import preference_checks
from trainers.driver import Stage, data_rows, run_stage, trainer_inputs, trl_config
from trainers.models import load_causal_lm, load_tokenizer
from trainers.run_config import RunConfig
from trainers.run_folder import load_snapshot


def balance_weights(labels: list[bool], trl: dict) -> dict:
    """desirable/undesirable weights that give both sides the same total weight, unless the run set them."""
    if "desirable_weight" in trl or "undesirable_weight" in trl:
        return {}
    good, bad = sum(labels), len(labels) - sum(labels)
    if not good or not bad:
        raise ValueError(f"kto needs both thumbs up and thumbs down feedback; the snapshot has {good} up and "
                         f"{bad} down")
    return {"desirable_weight": round(bad / good, 4)} if bad > good else {"undesirable_weight": round(good / bad, 4)}


def build(run: RunConfig, run_dir: Path) -> Stage:
    from trl import KTOConfig, KTOTrainer

    train, test = load_snapshot(run_dir)
    weights = balance_weights(list(train["label"]), run.trl)
    tokenizer = load_tokenizer(run.base_model)
    model, peft_config = load_causal_lm(run.base_model, run.lora(), run.parent_adapter)
    args = trl_config(KTOConfig, run, run_dir, evaluate=test is not None, **weights)
    trainer = KTOTrainer(model=model, args=args, **trainer_inputs(run_dir, tokenizer, peft_config, train, test))
    good = sum(train["label"])
    summary = {**data_rows(train, test), "desirable_rows": good, "undesirable_rows": len(train) - good,
               "desirable_weight": args.desirable_weight, "undesirable_weight": args.undesirable_weight}
    checks = preference_checks(trainer, tokenizer, run_dir, train, test, ["kto"], ("prompt", "completion"),
                               run.project_base_model or run.base_model)
    return Stage(trainer, tokenizer, checks, summary=summary)


def main(run_dir: str | Path) -> None:
    run_stage(run_dir, build)


if __name__ == "__main__":
    main(sys.argv[1])
