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


def judges_markdown(report: dict) -> str:
    """annotation.judge_agreement.judge_report as Markdown: each judge against people, and the ceiling."""
    c = report["ceiling"]
    rows = [{"judge": j["judge"], "items": j["items"], "verdicts": j["verdicts"],
             "vs people (units)": j["units_with_humans"], "agreement": _pct(j["percent"]),
             "kappa": "n/a" if j["cohen_kappa"] is None else f"{j['cohen_kappa']:.3f}",
             "position bias": _pct(j["position_bias_rate"]), "abstained": j["abstained"],
             "accepted": j["accepted"]} for j in report["judges"]]
    return "\n\n".join([
        "**Model judges against people**",
        f"people: {report['human_majority_units']} units with a majority; their own agreement (the ceiling) "
        f"{_pct(c['percent'])}, mean Cohen's kappa {'n/a' if c['cohen_kappa'] is None else format(c['cohen_kappa'], '.3f')} "
        f"over {c['units_with_overlap']} units with two or more people",
        _md_table(rows)])


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def leaderboard_markdown(board: dict) -> str:
    """The leaderboard as tables: versions (best first) and head-to-head pairs."""
    if not board["versions"]:
        return "_No A/B votes yet: create a review task (kind review) and vote in the Label tab._"
    versions = [{"version": r["version"], "score (BT, Elo scale)": f"{r['score']:.0f}",
                 "95% interval": f"{r['score_low']:.0f} .. {r['score_high']:.0f}",
                 "win rate": _pct(r["win_rate"]), "win rate 95%": f"{_pct(r['win_low'])} .. {_pct(r['win_high'])}",
                 "wins": r["wins"], "losses": r["losses"], "ties": r["ties"], "both bad": r["both_bad"]}
                for r in board["versions"]]
    pairs = [{"A": p["a"], "B": p["b"], "A wins": p["a_wins"], "B wins": p["b_wins"], "ties": p["ties"],
              "both bad": p["both_bad"], "A win rate": _pct(p["a_win_rate"]), "95%": f"{_pct(p['low'])} .. {_pct(p['high'])}"}
             for p in board["pairs"]]
    return "\n\n".join([
        f"**{board['votes']} votes.** Win rates leave ties and 'both bad' out (Wilson 95% intervals); "
        f"Bradley-Terry scores count a tie as half a win each, with {board['rounds']} bootstrap rounds.",
        _md_table(versions), "**Head to head**", _md_table(pairs)])


def leaderboard_svg(board: dict, *, width: int = 560) -> str:
    """Bradley-Terry scores with their bootstrap intervals as a dot-and-whisker plot (inline SVG, so the
    UI needs no plotting library)."""
    rows = board["versions"]
    if not rows:
        return ""
    low = min(r["score_low"] for r in rows) - 20
    high = max(r["score_high"] for r in rows) + 20
    left, right, row_h = 140, 20, 28
    height = row_h * len(rows) + 40
    x = lambda v: left + (v - low) / (high - low) * (width - left - right)  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="leaderboard">']
    for i, r in enumerate(rows):
        y = 20 + i * row_h
        parts.append(f'<text x="{left - 8}" y="{y + 4}" text-anchor="end" font-size="13">'
                     f'{html.escape(r["version"])}</text>')
        parts.append(f'<line x1="{x(r["score_low"]):.1f}" x2="{x(r["score_high"]):.1f}" y1="{y}" y2="{y}" '
                     f'stroke="#888" stroke-width="2"/>')
        parts.append(f'<circle cx="{x(r["score"]):.1f}" cy="{y}" r="5" fill="#3b6fd8"/>')
        parts.append(f'<text x="{x(r["score"]):.1f}" y="{y - 8}" text-anchor="middle" font-size="11">'
                     f'{r["score"]:.0f}</text>')
    axis_y = height - 12
    for tick in (low + 20, (low + high) / 2, high - 20):
        parts.append(f'<text x="{x(tick):.1f}" y="{axis_y}" text-anchor="middle" font-size="11" fill="#666">'
                     f'{tick:.0f}</text>')
    parts.append("</svg>")
    return "".join(parts)
