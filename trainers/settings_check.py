"""Whether a stage's settings can work here, checked by building TRL's own config for the stage (so an
unknown or bad field fails before any run folder is written) and, for QLoRA, by a real 4-bit round trip.

The CLI calls `problem` in its own process. The web server never imports torch or TRL, so it asks in a short
process of its own:

    echo '{"stage": "sft", "adapter": {}, "trl": {"max_steps": 5}, "has_parent": false}' | \
        python -m trainers.settings_check
"""

from __future__ import annotations

import dataclasses
import json
import sys
import tempfile

from trainers import models


def _config_class(stage: str):
    if stage == "sft":
        from trl import SFTConfig as Config
    elif stage == "reward":
        from trl import RewardConfig as Config
    elif stage == "ppo":
        from trl.experimental.ppo import PPOConfig as Config  # PPO lives only here; TRL 1.13 removed it
    elif stage == "rloo":
        from trl import RLOOConfig as Config
    elif stage == "kto":
        from trl import KTOConfig as Config
    else:
        from trl import DPOConfig as Config
    return Config


def problem(stage: str, adapter: dict, trl: dict, has_parent: bool) -> str | None:
    """Why these settings cannot train, in one line, or None when they can."""
    try:
        lora = models.Adapter(**adapter)
    except TypeError as exc:
        return f"adapter settings: {exc}"
    if lora.qlora and (why := models.qlora_problem()):  # looked up here: tests replace it
        return f"--qlora: {why}. Train without --qlora (LoRA) instead."
    if lora.full and (lora.qlora or has_parent):
        return "--full trains every weight of the base model: it cannot start from --parent or use --qlora"
    if stage == "reward" and has_parent:
        return "a reward model trains over the base model: it takes no --parent"
    if stage == "kto" and trl.get("per_device_train_batch_size", 8) < 2:
        return "kto estimates its KL term from other rows of the same batch: --batch-size must be 2 or more"
    config = _config_class(stage)
    try:
        config(output_dir=tempfile.gettempdir(), report_to="none", use_cpu=True, bf16=False, **trl)
    except (TypeError, ValueError) as exc:
        return f"TRL settings for {stage}: {exc}"
    except models.SettingsError as exc:
        return str(exc)
    return _outside_choices(stage, config, trl)


def _outside_choices(stage: str, config, trl: dict) -> str | None:
    """A field TRL lists choices for but checks only once its trainer starts (SFT's packing_strategy): the
    run folder would be written by then, so the choices are checked here."""
    for f in dataclasses.fields(config):
        choices = f.metadata.get("choices")
        if choices and f.name in trl and trl[f.name] is not None and trl[f.name] not in choices:
            return f"TRL settings for {stage}: {f.name} must be one of {', '.join(map(str, choices))}, not {trl[f.name]!r}"
    return None


def main() -> None:
    asked = json.loads(sys.stdin.read())
    print(json.dumps({"problem": problem(asked["stage"], asked["adapter"], asked["trl"], asked["has_parent"])}))


if __name__ == "__main__":
    main()
