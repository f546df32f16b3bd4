"""Progress and agreement as Markdown, for the admin's Tasks tab and `workbench tasks` alike (no Gradio
here: the CLI should not pay for importing it)."""

from __future__ import annotations

import html
import json


def _md_table(rows: list[dict]) -> str:
    if not rows:
        return "_none_"
    keys = list(rows[0])
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(_cell(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, list | dict):
        value = json.dumps(value)
    return html.escape(str(value)).replace("|", "\\|")


def progress_markdown(progress: dict) -> str:
    done_share = progress["answers"] / progress["needed"] if progress["needed"] else 0
    return "\n\n".join([
        f"### {progress['task']} ({progress['kind']}, {progress['overlap']} per item)",
        f"{progress['complete']} of {progress['items']} items complete · {progress['answers']} of "
        f"{progress['needed']} answers ({done_share:.0%})",
        _md_table(progress["annotators"]),
        "**Flagged items**\n\n" + _md_table(progress["flagged"]),
    ])


def agreement_markdown(report: dict) -> str:
    fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
    fleiss = report["fleiss_kappa"]
    lines = [
        f"**Units** {report['units']} ({report['units_with_overlap']} answered by two or more) · "
        f"**percent agreement** {fmt(report['percent_agreement'])} · **Krippendorff's alpha** "
        f"{fmt(report['krippendorff_alpha'])} · **Fleiss' kappa** {fmt(fleiss['kappa'])} "
        f"({fleiss['units']} units with {fleiss['raters']} annotators)",
        "**Cohen's kappa by pair**\n\n" + _md_table([{"annotators": " & ".join(p["annotators"]), "kappa": p["kappa"],
                                                      "units": p["units"]} for p in report["cohen_kappa"]]),
        "**Most disagreement** (adjudicate these first)\n\n" + _md_table(
            [{"item": d["unit"][0], "pair": " vs ".join(d["unit"][1:]) or "-", "majority": d["majority_share"],
              "votes": d["votes"]} for d in report["disagreements"]]),
    ]
    return "\n\n".join(lines)
