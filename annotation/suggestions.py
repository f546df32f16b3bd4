"""Judges' verdicts as suggestions to the person answering an item, in that person's own letters.

A task says whether annotators see them (`workbench judges suggestions TASK --show MODE`): 'hidden' (the
default: a judge's opinion is not allowed to steer the people it is measured against), 'after' their own
answer (they learn where the judge differed, as Argilla shows suggestions beside a submitted record), or
'preselect' before it (the judge's answer is filled in and the person confirms or changes it, as Label Studio's
predictions; fast, and biased towards the judge, which the agreement report then measures too). Admins always
see which way every judge went on an item they open. Suggestions are only shown: what a person submits is
their own answer, stored as theirs, and judge labels stay labels of their own kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from annotation.queue import LETTERS
from workbench.store.judges import JUDGE_PREFIX, SUGGESTION_MODES

__all__ = ["SHOWN", "SUGGESTION_MODES", "Suggestion", "preselection", "suggestions", "summary"]

# Each mode in words, for the CLI's and the Tasks tab's lines.
SHOWN = {"hidden": "hidden from annotators (admins see them on each item)",
         "after": "shown to annotators after their own answer",
         "preselect": "pre-selected for annotators before they answer (when the judges agree)"}


@dataclass(frozen=True)
class Suggestion:
    judge: str  # the judge's name (without the 'judge:' prefix)
    says: str  # 'A', 'tie', 'CAB' (best first), 'up', or 'inconsistent' / 'abstain' when there is no verdict
    probability: float | None
    accepted: bool
    prefill: dict  # what the Label tab fills in for 'preselect' ({} when the judge gave no verdict)

    def line(self) -> str:
        sure = f" (p = {self.probability:.2f})" if self.probability is not None else ""
        if self.says == "inconsistent":
            return f"{self.judge}: no verdict, it changed its answer when the replies swapped places"
        if self.says == "abstain":
            return f"{self.judge}: no verdict (its reply could not be read)"
        accepted = ", accepted by an admin" if self.accepted else ""
        return f"{self.judge}: {self.says}{sure}{accepted}"


def suggestions(judgements: list[dict], shown: list[str]) -> list[Suggestion]:
    """Each judge's standing verdict on an item, named by the letters of `shown` (the response ids in the
    order this person sees them), most confident first."""
    letter = {rid: LETTERS[i] for i, rid in enumerate(shown)}
    out = []
    for j in judgements:
        payload = j.get("payload") or {}
        kind = payload.get("as")
        says, prefill = kind or "abstain", {}
        if kind == "preference" and j.get("chosen_id") in letter:
            outcome = j.get("outcome") or "chosen"
            says = letter[j["chosen_id"]] if outcome == "chosen" else {"tie": "tie", "both_bad": "both bad"}.get(
                outcome, outcome)
            prefill = {"choice": says}
        elif kind == "ranking" and j.get("ranking") and all(r in letter for r in j["ranking"]):
            says = "".join(letter[r] for r in j["ranking"])
            prefill = {"order": says}
        elif kind == "feedback" and payload.get("thumb") in ("up", "down"):
            says = f"thumbs {payload['thumb']}"
            prefill = {"thumb": payload["thumb"]}
        elif kind not in ("inconsistent", "abstain"):
            says = "abstain"
        out.append(Suggestion(judge=j["annotator"].removeprefix(JUDGE_PREFIX), says=says,
                              probability=payload.get("probability"), accepted=bool(payload.get("accepted_by")),
                              prefill=prefill))
    return sorted(out, key=lambda s: (not s.prefill, -(s.probability if s.probability is not None else 0.0),
                                      s.judge))


def preselection(found: list[Suggestion]) -> dict:
    """What 'preselect' fills in: the most confident verdict; none when the judges with a verdict disagree
    (a pre-selection that picks a side between them would hide that they are unsure)."""
    verdicts = [s for s in found if s.prefill]
    if not verdicts or len({s.says for s in verdicts}) > 1:
        return {}
    return dict(verdicts[0].prefill)


def summary(found: list[Suggestion], *, prefix: str) -> str:
    return f"{prefix} " + "; ".join(s.line() for s in found) + "." if found else ""


JUDGED_KINDS = ("pairwise", "ranking", "feedback")  # the task kinds a judge answers


def for_view(store, task_id: str, item_id: str, shown: list[str], *, admin: bool) -> tuple[str, dict]:
    """The suggestion line the Label tab shows before an answer, and what it pre-selects: for an admin every
    judge's verdict whatever the task's setting (saying what annotators see), for others only with
    'preselect'. One point query for the setting; the item's judgements only when something will show."""
    mode = store.task_suggestions(task_id)
    if mode != "preselect" and not admin:
        return "", {}
    found = suggestions(store.item_judgements(task_id, item_id), shown)
    if not found:
        return ("No judge has answered this item." if admin and mode != "hidden" else ""), {}
    preset = preselection(found) if mode == "preselect" else {}
    if admin:
        seen = {"hidden": "annotators do not see them", "after": "annotators see them after answering",
                "preselect": "annotators get the agreed verdict pre-selected"}[mode]
        return summary(found, prefix=f"Judges ({seen}):"), preset
    note = " (pre-selected: change it if you see it otherwise)" if preset else ""
    return summary(found, prefix="Judges suggest:") + note, preset


def after_answer(store, task_id: str, item_id: str, shown: list[str]) -> str:
    """With 'after': what the judges said on the item just answered, in the letters the person saw."""
    if store.task_suggestions(task_id) != "after":
        return ""
    return summary(suggestions(store.item_judgements(task_id, item_id), shown),
                   prefix="On the item you just answered, judges said:")
