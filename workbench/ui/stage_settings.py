"""Every setting `workbench train` takes, in the Train tab: the same names, the same meaning, the same checks.

The components are laid out once (inside the tab's Blocks) and read back in one order; `request_options` turns
their values into the keyword arguments of `TrainRequest.from_options` and `ExportFilters`, exactly what the
CLI builds from its flags (workbench/cli/training.py), so the browser and the shell cannot drift apart: a test
walks the CLI's `train` options and finds each one here. Empty fields keep the stage's defaults.
"""

from __future__ import annotations

import json

import gradio as gr

from workbench.errors import excerpt
from workbench.jobs import RunError
from workbench.store import JUDGE_MODES, PAIR_RULES, TIE_RULES

# The CLI's `train` options and the field that holds each here (the test of that promise reads this map).
CLI_FIELDS = {
    "--algorithm": "algorithm", "--min-reward-accuracy": "min_reward_accuracy", "--epochs": "epochs",
    "--batch-size": "batch_size", "--max-length": "max_length", "--seed": "seed", "--beta": "beta",
    "--loss": "loss", "--loss-weights": "loss_weights", "--set": "settings", "--val-split": "val_split",
    "--replay": "replay",
    "--lora-r": "lora_r", "--lora-alpha": "lora_alpha", "--lora-dropout": "lora_dropout",
    "--target-modules": "target_modules", "--layers": "layers", "--qlora": "qlora", "--min-votes": "min_votes",
    "--min-agreement": "min_agreement", "--exclude-ties": "exclude_ties", "--pairs": "pairs",
    "--min-margin": "min_margin", "--ties": "ties", "--vote-smoothing": "smoothing", "--annotator": "annotators",
    "--source": "sources", "--no-review-votes": "no_review_votes", "--judges": "judges",
}
# On the tab's first row, not here: stage, --parent, --reward-model, --max-steps, --lr, --full. CLI only:
# --resume (the jobs list continues a run), --accelerate-config (a machine's launch file).
ON_FIRST_ROW = ("--parent", "--reward-model", "--max-steps", "--lr", "--full")
CLI_ONLY = ("--resume", "--accelerate-config", "--project")
DPO_LOSSES = ["sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down",
              "sft"]


class StageSettings:
    """The settings accordion of the Train tab."""

    def __init__(self):
        with gr.Accordion("All settings (the CLI's `workbench train` options)", open=False, elem_id="stage-settings"):
            with gr.Row():
                self.epochs = gr.Number(value=None, label="Epochs", elem_id="set-epochs")
                self.batch_size = gr.Number(value=None, precision=0, label="Batch size", elem_id="set-batch-size")
                self.max_length = gr.Number(value=None, precision=0, label="Max length (tokens)",
                                            elem_id="set-max-length")
                self.seed = gr.Number(value=None, precision=0, label="Seed", elem_id="set-seed")
                self.val_split = gr.Number(value=0.0, label="Held out for evaluation (0-0.5)", elem_id="set-val-split")
                self.replay = gr.Number(value=0.0, label="sft: general replay share (0-0.5)", elem_id="set-replay")
            with gr.Row():
                self.beta = gr.Number(value=None, label="Beta (dpo, kto: KL strength)", elem_id="set-beta")
                self.loss = gr.Dropdown(DPO_LOSSES, multiselect=True, label="DPO loss types", elem_id="set-loss")
                self.loss_weights = gr.Textbox(label="DPO loss weights (e.g. 1,1)", elem_id="set-loss-weights")
                self.algorithm = gr.Radio(["ppo", "rloo"], value="ppo", label="ppo stage: algorithm",
                                          elem_id="set-algorithm")
                self.min_reward_accuracy = gr.Number(value=None, label="ppo: reward gate (default 0.6; 0 off)",
                                                     elem_id="set-reward-gate")
            with gr.Row():
                self.lora_r = gr.Number(value=None, precision=0, label="LoRA rank", elem_id="set-lora-r")
                self.lora_alpha = gr.Number(value=None, precision=0, label="LoRA alpha", elem_id="set-lora-alpha")
                self.lora_dropout = gr.Number(value=None, label="LoRA dropout", elem_id="set-lora-dropout")
                self.target_modules = gr.Textbox(label="Target modules (space separated)",
                                                 elem_id="set-target-modules")
                self.layers = gr.Textbox(label="Only these layers (e.g. 0 1 2)", elem_id="set-layers")
                self.qlora = gr.Checkbox(label="QLoRA (4-bit base; needs a CUDA GPU)", elem_id="set-qlora")
            with gr.Row():
                self.pairs = gr.Dropdown(["", *PAIR_RULES], value="", label="Pairs from rankings (empty: each "
                                         "ranking's default)", elem_id="set-pairs")
                self.min_margin = gr.Number(value=1.0, label="Pairs 'margin': least margin", elem_id="set-min-margin")
                self.ties = gr.Dropdown(list(TIE_RULES), value="drop", label="Ties", elem_id="set-ties")
                self.min_votes = gr.Number(value=1, precision=0, label="Min votes per pair", elem_id="set-min-votes")
                self.min_agreement = gr.Number(value=0.0, label="Min agreement (0-1)", elem_id="set-min-agreement")
            with gr.Row():
                self.exclude_ties = gr.Checkbox(label="Drop pairs with any tie vote", elem_id="set-exclude-ties")
                self.smoothing = gr.Checkbox(label="Vote smoothing (label smoothing from agreement)",
                                             elem_id="set-smoothing")
                self.no_review_votes = gr.Checkbox(label="Leave out A/B review votes", elem_id="set-no-review-votes")
                self.judges = gr.Dropdown(list(JUDGE_MODES), value="exclude", label="Judge labels",
                                          elem_id="set-judges")
            with gr.Row():
                self.annotators = gr.Textbox(label="Only labels by (names, comma separated)", elem_id="set-annotators")
                self.sources = gr.Textbox(label="Only labels from files matching (globs, comma separated)",
                                          elem_id="set-sources")
                self.settings = gr.Textbox(label="Any TRL config field (KEY=VALUE, one a line)", lines=2,
                                           elem_id="set-trl")
        self.fields = {name: getattr(self, name) for name in sorted(set(CLI_FIELDS.values()))}

    @property
    def components(self) -> list:
        return list(self.fields.values())


def _whole(value, what: str) -> int | None:
    if value in (None, ""):
        return None
    if float(value) != int(value):
        raise RunError(f"{what} {excerpt(value)}: give a whole number")
    return int(value)


def _list(text: str | None, sep: str | None = ",") -> list[str]:
    return [t.strip() for t in (text or "").split(sep) if t.strip()]


def request_options(values: dict) -> tuple[dict, dict]:
    """(TrainRequest.from_options keyword arguments, ExportFilters keyword arguments) from the fields' values
    by name; a value the CLI would refuse is refused here with the same kind of one-line message."""
    v = values  # an empty Number field may arrive as 0: where 0 is no valid setting it means "the default"
    try:
        weights = [float(x) for x in _list(v.get("loss_weights"))] or None
    except ValueError:
        raise RunError(f"DPO loss weights {excerpt(v.get('loss_weights'))}: give numbers, e.g. 1,1") from None
    try:
        layers = [int(x) for x in _list(v.get("layers"), None)] or None
    except ValueError:
        raise RunError(f"layers {excerpt(v.get('layers'))}: give whole numbers, e.g. 0 1 2") from None
    settings = [line.strip() for line in (v.get("settings") or "").splitlines() if line.strip()]
    for line in settings:
        key, sep, _ = line.partition("=")
        if not sep or not key.strip().isidentifier():
            raise RunError(f"TRL setting {excerpt(line)}: write KEY=VALUE, one a line (e.g. warmup_ratio=0.1)")
    number = lambda x: None if x in (None, "") else float(x)  # noqa: E731
    request = {
        "algorithm": v.get("algorithm") or "ppo", "min_reward_accuracy": number(v.get("min_reward_accuracy")),
        "epochs": number(v.get("epochs")) or None, "batch_size": _whole(v.get("batch_size"), "batch size") or None,
        "max_length": _whole(v.get("max_length"), "max length") or None, "seed": _whole(v.get("seed"), "seed"),
        "beta": number(v.get("beta")) or None, "loss": list(v.get("loss") or []) or None, "loss_weights": weights,
        "settings": settings or None, "val_split": number(v.get("val_split")) or 0.0,
        "replay": number(v.get("replay")) or 0.0,
        "lora_r": _whole(v.get("lora_r"), "LoRA rank") or None,
        "lora_alpha": _whole(v.get("lora_alpha"), "LoRA alpha") or None,
        "lora_dropout": number(v.get("lora_dropout")), "target_modules": _list(v.get("target_modules"), None) or None,
        "layers": layers, "qlora": bool(v.get("qlora")),
    }
    if not 0.0 <= request["val_split"] <= 0.5:
        raise RunError(f"held out for evaluation {excerpt(request['val_split'])}: choose 0 to 0.5")
    filters = {
        "min_votes": _whole(v.get("min_votes"), "min votes") or 1, "min_agreement": number(v.get("min_agreement"))
        or 0.0, "exclude_ties": bool(v.get("exclude_ties")), "pairs": v.get("pairs") or "all",
        "pairs_chosen": bool(v.get("pairs")), "min_margin": number(v.get("min_margin")) or 1.0,
        "ties": v.get("ties") or "drop", "smoothing": bool(v.get("smoothing")),
        "annotators": _list(v.get("annotators")), "sources": _list(v.get("sources")),
        "review_votes": not v.get("no_review_votes"), "judges": v.get("judges") or "exclude",
    }
    return request, filters


def describe(request: dict, filters: dict) -> str:
    """The settings that differ from the defaults, for the job's start line (JSON: numbers as typed)."""
    changed = {k: x for k, x in request.items() if x not in (None, False, 0.0, "ppo")}
    defaults = {"min_votes": 1, "min_agreement": 0.0, "exclude_ties": False, "pairs": "all", "pairs_chosen": False,
                "min_margin": 1.0, "ties": "drop", "smoothing": False, "annotators": [], "sources": [],
                "review_votes": True, "judges": "exclude"}
    changed |= {k: x for k, x in filters.items() if defaults.get(k) != x and k != "pairs_chosen"}
    return json.dumps(changed, sort_keys=True) if changed else ""
