"""The Train tab takes every setting `workbench train` takes (issue 20), and means by each what the CLI does:
the same flags given both ways build the same TrainRequest."""

from __future__ import annotations

import pytest

from workbench.cli import make_parser
from workbench.cli.training import cmd_train  # noqa: F401 - the command whose flags are compared
from workbench.jobs import RunError
from workbench.runs import TrainRequest
from workbench.store import ExportFilters
from workbench.ui.stage_settings import CLI_FIELDS, CLI_ONLY, ON_FIRST_ROW, request_options


def train_parser():
    sub = next(a for a in make_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sub.choices["train"]


def test_every_train_option_of_the_cli_has_its_field_in_the_train_tab():
    options = {o for a in train_parser()._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    missing = options - set(CLI_FIELDS) - set(ON_FIRST_ROW) - set(CLI_ONLY)
    assert not missing, f"`workbench train` options with no field in the Train tab: {sorted(missing)}"


def from_cli(argv: list[str]) -> TrainRequest:
    from workbench.cli import options

    args = train_parser().parse_args(argv)
    return TrainRequest.from_options(
        args.stage, algorithm=args.algorithm, min_reward_accuracy=args.min_reward_accuracy, epochs=args.epochs,
        batch_size=args.batch_size, max_length=args.max_length, seed=args.seed, val_split=args.val_split,
        lora_r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=args.target_modules, layers=args.layers, qlora=args.qlora, beta=args.beta, loss=args.loss,
        loss_weights=args.loss_weights, settings=args.set, filters=options.filters(args))


def from_tab(stage: str, values: dict) -> TrainRequest:
    request, filters = request_options(values)
    return TrainRequest.from_options(stage, filters=ExportFilters(**filters), **request)


@pytest.mark.parametrize(("argv", "values"), [
    (["dpo"], {}),
    (["dpo", "--epochs", "2", "--batch-size", "4", "--max-length", "256", "--seed", "7", "--beta", "0.2",
      "--loss", "sigmoid,sft", "--loss-weights", "1,0.5", "--set", "warmup_ratio=0.1", "--set", "lr_scheduler_type=cosine",
      "--val-split", "0.1", "--lora-r", "32", "--lora-alpha", "64", "--lora-dropout", "0.1",
      "--target-modules", "q_proj", "v_proj", "--layers", "0", "1", "--pairs", "best_vs_rest", "--ties", "keep",
      "--min-votes", "2", "--min-agreement", "0.6", "--exclude-ties", "--vote-smoothing", "--annotator", "ann",
      "--annotator", "bob", "--source", "ui", "--no-review-votes", "--judges", "accepted"],
     {"epochs": 2, "batch_size": 4, "max_length": 256, "seed": 7, "beta": 0.2, "loss": ["sigmoid", "sft"],
      "loss_weights": "1, 0.5", "settings": "warmup_ratio=0.1\nlr_scheduler_type=cosine\n", "val_split": 0.1,
      "lora_r": 32, "lora_alpha": 64, "lora_dropout": 0.1, "target_modules": "q_proj v_proj", "layers": "0 1",
      "pairs": "best_vs_rest", "ties": "keep", "min_votes": 2, "min_agreement": 0.6, "exclude_ties": True,
      "smoothing": True, "annotators": "ann, bob", "sources": "ui", "no_review_votes": True, "judges": "accepted"}),
    (["ppo", "--algorithm", "rloo", "--min-reward-accuracy", "0", "--max-length", "64", "--qlora"],
     {"algorithm": "rloo", "min_reward_accuracy": 0, "max_length": 64, "qlora": True}),
    (["sft", "--pairs", "margin", "--min-margin", "2"], {"pairs": "margin", "min_margin": 2}),
])
def test_the_same_settings_in_the_tab_and_the_cli_build_the_same_request(argv, values):
    assert from_tab(argv[0], values) == from_cli(argv)


@pytest.mark.parametrize(("values", "says"), [
    ({"batch_size": 2.5}, "batch size 2.5: give a whole number"),
    ({"loss_weights": "1,heavy"}, "DPO loss weights '1,heavy': give numbers"),
    ({"layers": "first"}, "layers 'first': give whole numbers"),
    ({"settings": "<b>warmup</b>"}, "write KEY=VALUE"),
    ({"val_split": 0.9}, "choose 0 to 0.5"),
])
def test_a_setting_the_cli_would_refuse_is_refused_in_one_line(values, says):
    with pytest.raises(RunError, match=says.replace("(", r"\(")):
        request_options(values)
