"""Training runs: snapshot the curated rows into a run folder, run one stage in its own process, and
ingest the result as a model version with its lineage.

The trainer process sees only the run folder (trainers/run_folder.py); this module, in the process that
owns the store, does every store write. A run that fails or is killed leaves the store consistent: the
run is marked failed with its error and no model version is created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from workbench import jobs
from workbench.config import Project
from workbench.exporters import ExportError, export
from workbench.jobs import RunError
from workbench.store import ExportFilters, ModelVersion, Store

STAGES = {"sft": "sft", "reward": "preferences", "dpo": "preferences", "kto": "unpaired", "ppo": "preferences",
          "rloo": "preferences"}  # stage -> what its snapshot holds

# Defaults sized for LoRA on small data; every TRL config field can be overridden with --set KEY=VALUE.
TRL_DEFAULTS = {
    "common": {"num_train_epochs": 1, "per_device_train_batch_size": 8, "logging_steps": 5,
               "save_strategy": "steps", "save_steps": 50, "save_total_limit": 2, "seed": 0, "max_length": 512},
    "sft": {"learning_rate": 2e-4},
    "dpo": {"learning_rate": 5e-5, "beta": 0.1},
    "reward": {"learning_rate": 1e-4},
    "kto": {"learning_rate": 5e-5, "beta": 0.1},
    # PPO (trl 1.12) on CPU: tokenized prompts, stop at eos, no sample generations during training.
    "ppo": {"learning_rate": 3e-5, "stop_token": "eos", "num_sample_generations": 0, "response_length": 48,
            "num_ppo_epochs": 1, "num_mini_batches": 1, "kl_coef": 0.05, "missing_eos_penalty": 1.0,
            "per_device_train_batch_size": 8, "total_episodes": 256},
}
TRL_DEFAULTS["rloo"] = {"learning_rate": 3e-5, "num_generations": 4, "max_completion_length": 48, "beta": 0.05,
                        "per_device_train_batch_size": 8, "max_steps": 32}
MAX_REPLAY = 0.5  # past half the rows are replays: the run is mostly about not changing
COMMON_EXCEPT = {"ppo": {"max_length", "save_strategy", "save_steps", "save_total_limit", "logging_steps"},
                 "rloo": {"max_length"}}


@dataclass
class TrainRequest:
    stage: str
    parent: str | None = None
    reward_model: str | None = None  # ppo: the reward model version
    adapter: dict = field(default_factory=dict)  # trainers.models.Adapter fields
    trl: dict = field(default_factory=dict)  # overrides of the stage's TRL config
    val_split: float = 0.0
    replay: float = 0.0  # sft: share of training rows that are the base model's replies to general questions
    filters: ExportFilters = field(default_factory=ExportFilters)
    accelerate_config: str | None = None  # run under `accelerate launch --config_file ...`
    resume: str | None = None  # a failed or cancelled run to continue from its last checkpoint
    # ppo/rloo: refuse to start when the reward model ranks fewer held-out human pairs right (0 turns it off)
    min_reward_accuracy: float = 0.6
    # The server sets this: it never imports torch, so the settings check runs in a short process of its own.
    isolated_checks: bool = False

    @classmethod
    def from_options(cls, stage: str, *, algorithm: str = "ppo", min_reward_accuracy: float | None = None,
                     epochs: float | None = None, lr: float | None = None, batch_size: int | None = None,
                     max_length: int | None = None, max_steps: int | None = None, seed: int | None = None,
                     lora_r: int | None = None, lora_alpha: int | None = None, lora_dropout: float | None = None,
                     target_modules: list[str] | None = None, layers: list[int] | None = None, qlora: bool = False,
                     full: bool = False, beta: float | None = None, loss: list[str] | None = None,
                     loss_weights: list[float] | None = None, settings: list[str] | None = None,
                     **request) -> TrainRequest:
        """A request from the options a person gives (the CLI's flags, the Train tab's fields): each maps to
        the TRL config field it means for this stage, and `settings` (KEY=VALUE, values read as JSON where
        they parse) to any field of it. Options left None keep the stage's defaults."""
        if algorithm == "rloo" and stage != "ppo":
            raise RunError("--algorithm rloo applies to `train ppo`")
        if min_reward_accuracy is not None and stage != "ppo":
            raise RunError("--min-reward-accuracy applies to `train ppo` (the reward gate)")
        adapter = {"r": lora_r, "alpha": lora_alpha, "dropout": lora_dropout, "target_modules": target_modules,
                   "layers_to_transform": layers, "qlora": qlora or None, "full": full or None}
        trl = {"num_train_epochs": epochs, "learning_rate": lr, "per_device_train_batch_size": batch_size,
               "max_length": max_length, "max_steps": max_steps, "seed": seed}
        if stage == "ppo":  # PPO and RLOO call the reply's length by their own names
            trl["response_length" if algorithm == "ppo" else "max_completion_length"] = trl.pop("max_length")
        if stage == "dpo":
            trl |= {"beta": beta, "loss_type": loss, "loss_weights": loss_weights}
        if stage == "kto":
            trl["beta"] = beta
        trl = {k: v for k, v in trl.items() if v is not None} | _key_values(settings)
        if min_reward_accuracy is not None:
            request["min_reward_accuracy"] = min_reward_accuracy
        return cls(stage="rloo" if stage == "ppo" and algorithm == "rloo" else stage,
                   adapter={k: v for k, v in adapter.items() if v is not None}, trl=trl, **request)


def _key_values(items: list[str] | None) -> dict:
    """KEY=VALUE pairs, values read as JSON where they parse (numbers, true, lists) else as text."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise RunError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


@dataclass
class RunResult:
    run_id: str
    status: str
    run_dir: Path
    version: ModelVersion | None = None
    error: str | None = None
    warnings: list[str] = field(default_factory=list)


def _check_settings(request: TrainRequest, trl: dict) -> None:
    """Refuse settings the stage cannot train with (trainers/settings_check.py builds TRL's own config), before
    anything is written; in a short process of its own where the caller must not import torch (the server)."""
    asked = {"stage": request.stage, "adapter": request.adapter, "trl": trl, "has_parent": bool(request.parent)}
    if request.isolated_checks:
        import subprocess
        import sys

        done = subprocess.run([sys.executable, "-m", "trainers.settings_check"], input=json.dumps(asked),
                              capture_output=True, text=True, env=jobs.job_env(), timeout=600)
        if done.returncode != 0:
            tail = " | ".join(done.stderr.strip().splitlines()[-3:])
            raise RunError(f"the settings check exited with code {done.returncode}: {tail}")
        problem = json.loads(done.stdout.strip().splitlines()[-1])["problem"]
    else:
        from trainers.settings_check import problem as settings_problem

        problem = settings_problem(**asked)
    if problem:
        raise RunError(problem)


# DPO losses that read label_smoothing (TRL 1.12's sigmoid no longer does): exo_pair drives a pair's odds to
# 1 - smoothing, the optimum of conservative DPO; robust is unbiased under that flip rate and needs it below 0.5.
SMOOTHING_LOSSES = ("exo_pair", "robust")
EXO_FLOOR = 1e-3  # exo_pair takes log(smoothing): a unanimous pair gets this, the EXO paper's value


def _check_pair_options(request: TrainRequest, trl: dict) -> None:
    """Refuse pair options a stage cannot use; with per-pair smoothing, pick (or check) a loss that reads it."""
    f = request.filters
    try:
        f.check()
    except ValueError as exc:
        raise RunError(str(exc)) from None
    if STAGES[request.stage] != "preferences" and f.pair_options:
        what = "thumbs up/down feedback" if request.stage == "kto" else "demonstrations"
        raise RunError(f"{request.stage} trains on {what}: the preference-pair options do not apply")
    per_pair = f.smoothing or f.ties == "keep"
    if per_pair and request.stage != "dpo":
        raise RunError("--vote-smoothing and --ties keep apply to dpo: a reward model's pair loss has no tie or "
                       "smoothing term (drop ties, or filter with --min-agreement)")
    if not per_pair:
        return
    losses = trl.get("loss_type") or ["exo_pair"]
    losses = [losses] if isinstance(losses, str) else list(losses)
    if not set(losses) & set(SMOOTHING_LOSSES):
        raise RunError(f"--vote-smoothing / --ties keep need a DPO loss that reads label smoothing: "
                       f"{' or '.join(SMOOTHING_LOSSES)} (got {','.join(losses)}; TRL 1.12's sigmoid has none). "
                       f"Try --loss exo_pair")
    if f.ties == "keep" and "robust" in losses:
        raise RunError("--ties keep gives tied pairs label_smoothing 0.5, which the robust loss cannot take "
                       "(it needs less than 0.5): use --loss exo_pair")
    trl["loss_type"] = losses
    if "exo_pair" in losses:
        trl["label_smoothing"] = max(float(trl.get("label_smoothing", 0.0)), EXO_FLOOR)


def prepare_run(project: Project, store: Store, request: TrainRequest) -> tuple[str, Path, dict]:
    """Check everything, then write the run folder (config + snapshot) and record the run as running."""
    from trainers.models import SettingsError, check_base_model

    if request.stage not in STAGES:
        raise RunError(f"unknown stage {request.stage!r}; choose one of {', '.join(STAGES)}")
    if request.replay and request.stage != "sft":
        raise RunError("--replay applies to `train sft` (it mixes general replies into demonstrations)")
    if not 0 <= request.replay <= MAX_REPLAY:
        raise RunError(f"--replay {request.replay}: choose 0 to {MAX_REPLAY} (the share of training rows that "
                       "are general replays)")
    base_model = project.base_model_path()
    try:
        check_base_model(base_model)
    except SettingsError as exc:
        raise RunError(str(exc)) from None
    parent = None
    if request.parent:
        parent = store.model_version(request.parent)
        if parent is None:
            raise RunError(f"--parent {request.parent}: no such model version (see `workbench stats`)")
        if parent.project_base_model != base_model:
            raise RunError(f"--parent {request.parent} was trained on {parent.base_model}, not this project's "
                           f"base model {base_model}")
    reward = None
    if request.stage in ("ppo", "rloo"):
        if not request.reward_model:
            raise RunError("ppo needs --reward-model VERSION: train one with `workbench train reward`")
        reward = store.model_version(request.reward_model)
        if reward is None or reward.stage != "reward":
            raise RunError(f"--reward-model {request.reward_model}: no reward model version of that name")
    elif request.reward_model:
        raise RunError("--reward-model applies to ppo (and --algorithm rloo) only")
    common = {k: v for k, v in TRL_DEFAULTS["common"].items() if k not in COMMON_EXCEPT.get(request.stage, ())}
    trl = {**common, **TRL_DEFAULTS[request.stage], **request.trl}
    _check_pair_options(request, trl)
    _check_settings(request, trl)
    if request.accelerate_config and not Path(request.accelerate_config).is_file():
        raise RunError(f"--accelerate-config {request.accelerate_config}: no such file")

    run_id = store.next_run_id(request.stage)
    run_dir = project.runs_dir / run_id
    if run_dir.exists():
        raise RunError(f"{run_dir} already exists: remove it or let the workbench number the run")
    try:
        snapshot = export(store, kind=STAGES[request.stage], out_dir=run_dir / "data", fmt="parquet",
                          style="conversational", split=request.val_split, seed=trl["seed"],
                          filters=request.filters, project_name=project.config.name)
    except ExportError as exc:
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        raise RunError(f"nothing to train {request.stage} on: {exc}") from None
    gate = None
    if reward is not None and request.min_reward_accuracy > 0:
        try:
            gate = _write_gate_pairs(run_dir / "data", Path(store.run(reward.run_id).dir) / "data",
                                     request.reward_model, request.min_reward_accuracy)
        except RunError:
            import shutil

            shutil.rmtree(run_dir)
            raise
    heldout = store.heldout_conversations(limit=64)
    (run_dir / "data" / "heldout.jsonl").write_text("".join(json.dumps({"prompt": p}) + "\n" for p in heldout))
    # A --full parent is a whole model: the run starts from it as its base (with a fresh adapter, whose
    # disabled state, the reference, is then exactly the parent).
    parent_is_full = bool(parent and parent.full)
    run_base = parent.path if parent_is_full else base_model
    from trainers.run_config import RunConfig, RunConfigError

    try:
        config = RunConfig(
            run_id=run_id, stage=request.stage, base_model=run_base, project_base_model=base_model,
            parent_version=request.parent, parent_adapter=parent.path if parent and not parent_is_full else None,
            reward_version=request.reward_model, reward_adapter=reward.path if reward else None,
            reward_base_model=reward.base_model if reward else None, reward_gate=gate,
            adapter=request.adapter, trl=trl, val_split=request.val_split, replay=request.replay,
            filters=json.loads(json.dumps(asdict(request.filters), default=str)),
            dataset_hash=snapshot.content_hash, rows=snapshot.counts)
    except RunConfigError as exc:  # the checks above missed something: leave no half-made run behind
        import shutil

        shutil.rmtree(run_dir)
        raise RunError(str(exc)) from None
    config.write(run_dir)
    store.create_run(run_id=run_id, stage=request.stage, parent_version_id=request.parent, config=config.to_dict(),
                     dataset_hash=snapshot.content_hash, run_dir=str(run_dir))
    return run_id, run_dir, config.to_dict()


GATE_PAIRS = 200  # held-out pairs the reward gate scores at most: a second or two on a CPU for a small model


def _write_gate_pairs(data: Path, reward_data: Path, reward_version: str, min_accuracy: float) -> dict:
    """Write the human pairs the reward model never trained on (their prompt is not in its training
    snapshot) to data/gate.parquet, for the RL stage to score the reward model on before it starts."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    seen = {json.dumps(p) for p in pq.read_table(reward_data / "train.parquet", columns=["prompt"])
            .column("prompt").to_pylist()}
    tables = [pq.read_table(f, columns=["prompt", "chosen", "rejected"]) for f in sorted(data.glob("*.parquet"))]
    rows = [r for t in tables for r in t.to_pylist() if json.dumps(r["prompt"]) not in seen][:GATE_PAIRS]
    if not rows:
        raise RunError(f"reward gate: every curated pair trained {reward_version}, so none is left to check it on. "
                       f"Train the reward model with --val-split 0.1, label more pairs, or pass "
                       f"--min-reward-accuracy 0 to start without the check")
    pq.write_table(pa.Table.from_pylist(rows, schema=tables[0].schema), data / "gate.parquet")
    return {"min_accuracy": min_accuracy, "pairs": len(rows)}


def resume_run(store: Store, run_id: str) -> tuple[str, Path, dict]:
    """Make a failed or cancelled run go on from its last checkpoint, in its own folder, on its snapshot."""
    run = store.run(run_id)
    if run is None:
        raise RunError(f"--resume {run_id}: no such run")
    if run.status not in ("failed", "cancelled"):
        raise RunError(f"--resume {run_id}: the run is {run.status}; only a failed or cancelled run resumes")
    run_dir = Path(run.dir)
    from trainers.run_folder import latest_checkpoint

    if latest_checkpoint(run_dir) is None:
        raise RunError(f"--resume {run_id}: no complete checkpoint in {run_dir / 'checkpoints'} (the run ended "
                       f"before its first save; lower --set save_steps=N next time)")
    from trainers.run_config import RunConfig, RunConfigError

    try:  # every stage that checkpoints resumes, PPO and RLOO included (trainers/driver.py, trainers/ppo.py)
        config = replace(RunConfig.from_file(run_dir / "run.json"), resume=True)
    except RunConfigError as exc:
        raise RunError(f"--resume {run_id}: {exc}") from None
    config.write(run_dir)
    (run_dir / "status.json").unlink(missing_ok=True)
    store.restart_run(run_id)
    return run_id, run_dir, config.to_dict()


def _prepare(project: Project, store: Store, request: TrainRequest) -> jobs.Prepared:
    """A new run folder, or a failed or cancelled run's own folder to resume: the stage module runs on it."""
    if request.resume:
        run_id, run_dir, config = resume_run(store, request.resume)
        request.stage = config["stage"]
    else:
        run_id, run_dir, _ = prepare_run(project, store, request)
    return jobs.Prepared(run_id, request.stage, run_dir, request.stage, request.accelerate_config)


def _ingest(store: Store, job: jobs.Prepared, status: dict) -> RunResult:
    """A succeeded run becomes a model version with its lineage, in the same transaction that ends the run."""
    config = json.loads((job.job_dir / "run.json").read_text())
    summary = {k: v for k, v in status["summary"].items() if k != "traceback"}
    version = ModelVersion(id=job.job_id, run_id=job.job_id, stage=config["stage"], base_model=config["base_model"],
                           parent_id=config["parent_version"], dataset_hash=config["dataset_hash"],
                           path=str(job.job_dir / "adapter"), config=config, metrics=summary)
    store.finish_run(job.job_id, status="succeeded", version=version)
    return RunResult(job.job_id, "succeeded", job.job_dir, version, warnings=summary.get("warnings", []))


def _view(run_dir: Path, result: RunResult | None) -> dict:
    """The live loss curve and the last logged figures, from metrics.jsonl as the trainer writes it."""
    metrics = jobs.read_jsonl(run_dir / "metrics.jsonl")
    config = run_dir / "run.json"
    parent = json.loads(config.read_text()).get("parent_version") if config.exists() else None
    return {"losses": [(m["step"], m["loss"]) for m in metrics if "loss" in m], "last": metrics[-1] if metrics else None,
            "warnings": result.warnings if result else [], "parent": parent or "base"}


TRAINING = jobs.JobKind(name="training", prepare=_prepare, ingest=_ingest, result=RunResult, view=_view)


def ingest(store: Store, run_id: str, run_dir: Path, returncode: int) -> RunResult:
    """Record how a run's process ended: a model version, or a failed run with its error."""
    stage = json.loads((run_dir / "run.json").read_text())["stage"]
    return jobs.ingest(TRAINING, store, jobs.Prepared(run_id, stage, run_dir, stage), returncode)


def train(project: Project, store: Store, request: TrainRequest,
          on_metrics: Callable[[dict], None] | None = None) -> RunResult:
    """Prepare (or resume), run to the end (following metrics.jsonl), ingest. Ctrl-C cancels cleanly."""
    return jobs.run(TRAINING, project, store, request, jobs.metrics_follower(on_metrics) if on_metrics else None)
