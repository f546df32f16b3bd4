"""Export queries: which labels a filter keeps, how votes and rankings become pairs (pair and tie rules),
and staging an export's rows once for its card, its checks and its files."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from workbench.store.core import StoreCore, sql_path
from workbench.store.judges import judge_labels_sql
from workbench.store.rules import standing


@dataclass
class ExportFilters:
    """Which labels an export keeps. Vote and agreement filters apply to preference pairs only."""

    min_votes: int = 1
    min_agreement: float = 0.0
    exclude_ties: bool = False
    annotators: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    since: datetime | None = None
    until: datetime | None = None
    review_votes: bool = True  # votes from A/B reviews of model versions count as preference pairs
    # How rankings (and rated pairs) become pairs, and what happens to ties: see PAIR_RULES and TIE_RULES.
    pairs: str = "all"
    # False while --pairs was not given: a ranking that names its own default rule (an imported UltraFeedback
    # row: best_vs_worst, as before all its completions were kept) then follows it instead of "all".
    pairs_chosen: bool = False
    min_margin: float = 1.0  # pairs="margin": keep pairs whose score margin (or, unscored, rank gap) is this or more
    ties: str = "drop"
    smoothing: bool = False  # write each pair's label_smoothing: the share of its votes against the winner
    # Judge verdicts are left out unless asked: include (people's and judges'), only (judges'), accepted
    # (people's and the verdicts an admin accepted).
    judges: str = "exclude"

    def check(self) -> None:
        if self.pairs not in PAIR_RULES:
            raise ValueError(f"unknown pair rule {self.pairs!r}; choose one of {', '.join(PAIR_RULES)}")
        if self.ties not in TIE_RULES:
            raise ValueError(f"unknown tie rule {self.ties!r}; choose one of {', '.join(TIE_RULES)}")
        if self.ties == "keep" and self.exclude_ties:
            raise ValueError("--ties keep and --exclude-ties contradict each other: choose one")
        judge_labels_sql(self.judges)  # refuses an unknown --judges
        if self.pairs == "margin" and self.min_margin <= 0:
            raise ValueError(f"--min-margin must be above 0, got {self.min_margin}")

    @property
    def pair_options(self) -> bool:
        """True where a preference-only option was changed from its default."""
        return (self.min_votes > 1 or self.min_agreement > 0 or self.exclude_ties or self.pairs != "all"
                or self.ties != "drop" or self.smoothing)


# An N-way ranking (best first) holds N*(N-1)/2 pairs; which of them become training pairs:
PAIR_RULES = {
    "all": "every ordered pair of the ranking",
    "best_vs_rest": "the best response against each of the others",
    "best_vs_worst": "the best response against the worst only",
    "margin": "pairs whose score margin (scored pairs and rankings) or rank gap is at least --min-margin",
}
# A pair whose votes (or adjudication) say tie or 'both bad' is dropped, or kept as a row with tie=true and
# label_smoothing 0.5 for losses that read per-pair smoothing (DPO's exo_pair drives such a pair to even odds).
TIE_RULES = ("drop", "keep")


class Exports(StoreCore):
    @staticmethod
    def _label_filter_sql(filters: ExportFilters) -> tuple[str, list]:
        clauses = [standing()]
        params: list = []
        if filters.annotators:
            clauses.append("l.annotator IN (SELECT unnest(?::VARCHAR[]))")
            params.append(list(filters.annotators))
        if filters.sources:
            # A label's source is its import file path or 'ui'; match by glob on the path or its file name.
            clauses.append("(len(list_filter(?::VARCHAR[], lambda g: l.source GLOB g OR "
                           "regexp_extract(l.source, '[^/]*$') GLOB g)) > 0)")
            params.append(list(filters.sources))
        if not filters.review_votes:
            clauses.append("NOT coalesce(l.task_id IN (SELECT id FROM tasks WHERE kind = 'review'), false)")
        if filters.since:
            clauses.append("l.created_at >= ?")
            params.append(filters.since)
        if filters.until:
            clauses.append("l.created_at < ?")
            params.append(filters.until)
        return " AND ".join(clauses), params

    def sft_rows_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """One row per distinct (prompt, demonstration): system, prompt turns, completion."""
        where, params = self._label_filter_sql(filters)
        sql = f"""
            SELECT l.prompt_id, l.response_id, any_value(p.system) AS system, any_value(p.messages) AS messages,
                   any_value(r.text) AS completion
            FROM {judge_labels_sql(filters.judges)} l JOIN responses r ON r.id = l.response_id JOIN prompts p ON p.id = l.prompt_id
            WHERE l.kind = 'demonstration' AND {where}
            GROUP BY l.prompt_id, l.response_id"""
        return sql, params

    def unpaired_rows_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """One row per (prompt, response) with feedback votes: label true where thumbs up outnumber thumbs down,
        false where down outnumber up; an even split says nothing and is left out (TRL's unpaired format)."""
        where, params = self._label_filter_sql(filters)
        sql = f"""
            SELECT l.prompt_id, l.response_id, any_value(p.system) AS system, any_value(p.messages) AS messages,
                   any_value(r.text) AS completion, count(*) AS votes,
                   count(*) FILTER (WHERE (l.payload->>'$.thumb') = 'up') AS ups,
                   count(*) FILTER (WHERE (l.payload->>'$.thumb') = 'down') AS downs, ups > downs AS label
            FROM {judge_labels_sql(filters.judges)} l JOIN responses r ON r.id = l.response_id JOIN prompts p ON p.id = l.prompt_id
            WHERE l.kind = 'feedback' AND {where}
            GROUP BY l.prompt_id, l.response_id
            HAVING ups <> downs"""
        return sql, params

    def _pairs_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """Every candidate pair with its pooled votes and its fate: 'kept', 'tie', or why it was left out.

        Votes on a pair are pooled whichever way round it was shown. Rankings give one vote per pair the
        pair rule takes (equal ranks are a tie vote); a pair no rule took is fated 'pair rule'. An admin's
        adjudication (`final`) decides its pair outright, whatever the votes and filters say.
        """
        where, params = self._label_filter_sql(filters)
        labels = judge_labels_sql(filters.judges)

        def rank(i: str) -> str:  # a ranking position's rank: payload.ranks where given (ties), else its place
            return f"coalesce(TRY_CAST((l.payload->'$.ranks'->>({i} - 1)) AS DOUBLE), {i}::DOUBLE)"

        def score(i: str) -> str:
            return f"TRY_CAST((l.payload->'$.scores'->>({i} - 1)) AS DOUBLE)"

        pair_margin = ("TRY_CAST((l.payload->>'$.chosen_score') AS DOUBLE) - "
                       "TRY_CAST((l.payload->>'$.rejected_score') AS DOUBLE)")
        ranking_rule = {
            "all": "true",
            "best_vs_rest": f"{rank('i')} = {rank('1')}",
            "best_vs_worst": f"{rank('i')} = {rank('1')} AND {rank('j')} = {rank('len(l.ranking)')}",
            "margin": f"coalesce({score('i')} - {score('j')}, {rank('j')} - {rank('i')}) >= ?",
        }[filters.pairs]
        if filters.pairs == "all" and not filters.pairs_chosen:
            best_vs_worst = f"{rank('i')} = {rank('1')} AND {rank('j')} = {rank('len(l.ranking)')}"
            ranking_rule = f"CASE WHEN (l.payload->>'$.default_pairs') = 'best_vs_worst' THEN {best_vs_worst} ELSE true END"
        pair_rule = f"coalesce({pair_margin} >= ?, false)" if filters.pairs == "margin" else "true"
        sql = f"""
            WITH votes_in AS (
                SELECT l.prompt_id, l.chosen_id AS w, l.rejected_id AS lo, l.outcome,
                       coalesce(l.final, false) AS final, l.created_at, {pair_rule} AS in_rule
                FROM {labels} l WHERE l.kind = 'preference' AND {where}
                UNION ALL
                SELECT l.prompt_id, l.ranking[i], l.ranking[j],
                       CASE WHEN {rank('i')} = {rank('j')} THEN 'tie' ELSE 'chosen' END,
                       coalesce(l.final, false), l.created_at, {ranking_rule}
                FROM {labels} l, range(1, len(l.ranking) + 1) t(i), range(i + 1, len(l.ranking) + 1) u(j)
                WHERE l.kind = 'ranking' AND {where}),
            active AS (SELECT *, least(w, lo) AS a, greatest(w, lo) AS b FROM votes_in),
            votes AS (
                SELECT prompt_id, a, b, bool_or(in_rule) AS considered,
                    count(*) FILTER (WHERE in_rule AND NOT final) AS votes,
                    count(*) FILTER (WHERE in_rule AND NOT final AND outcome = 'chosen' AND w = a) AS wins_a,
                    count(*) FILTER (WHERE in_rule AND NOT final AND outcome = 'chosen' AND w = b) AS wins_b,
                    count(*) FILTER (WHERE in_rule AND NOT final AND outcome <> 'chosen') AS ties,
                    coalesce(bool_or(in_rule AND final), false) AS has_final,
                    arg_max(outcome, created_at) FILTER (WHERE in_rule AND final) AS final_outcome,
                    arg_max(w, created_at) FILTER (WHERE in_rule AND final) AS final_w
                FROM active GROUP BY prompt_id, a, b),
            scored AS (
                SELECT *, CASE WHEN votes > 0 THEN greatest(wins_a, wins_b, ties) / votes ELSE 1.0 END AS agreement,
                    CASE WHEN has_final THEN (CASE WHEN final_outcome = 'chosen' THEN final_w END)
                         WHEN wins_a > wins_b AND wins_a > ties THEN a
                         WHEN wins_b > wins_a AND wins_b > ties THEN b END AS winner
                FROM votes),
            decided AS (
                SELECT *, CASE WHEN NOT considered THEN 'pair rule'
                    WHEN has_final THEN (CASE WHEN winner IS NOT NULL THEN 'kept' ELSE 'tie' END)
                    WHEN votes < ? THEN 'too few votes'
                    WHEN agreement < ? THEN 'low agreement'
                    WHEN ? AND ties > 0 THEN 'tie votes'
                    WHEN winner IS NOT NULL THEN 'kept'
                    WHEN ties > wins_a AND ties > wins_b THEN 'tie'
                    ELSE 'split' END AS fate
                FROM scored)"""
        rule_params = [filters.min_margin] if filters.pairs == "margin" else []
        params = [*rule_params, *params, *rule_params, *params,
                  filters.min_votes, filters.min_agreement, filters.exclude_ties]
        return sql, params

    def preference_rows_sql(self, filters: ExportFilters) -> tuple[str, list]:
        """One row per pair with a majority winner (and, with ties='keep', per tied pair), after the pair
        rule and the vote and agreement filters.

        A pair whose votes split evenly has no winner and is left out; so is a majority of 'tie' or 'both
        bad' unless ties are kept (TRL's pair formats have no tie: a kept tie is a row with tie=true,
        chosen/rejected in id order and label_smoothing 0.5). label_smoothing is the share of the pair's
        votes against its winner (3 votes to 2: 0.4; 5 to 0, or adjudicated: 0).
        """
        pairs_sql, params = self._pairs_sql(filters)
        sql = f"""{pairs_sql}
            SELECT d.prompt_id, d.a, d.b, p.system, p.messages, w.text AS chosen, r.text AS rejected,
                   d.votes, d.agreement, d.ties, d.fate = 'tie' AS tie,
                   CASE WHEN d.fate = 'tie' THEN 0.5 WHEN d.has_final OR d.votes = 0 THEN 0.0
                        ELSE 1.0 - greatest(d.wins_a, d.wins_b) / d.votes END AS label_smoothing
            FROM decided d
            JOIN prompts p ON p.id = d.prompt_id
            JOIN responses w ON w.id = coalesce(d.winner, d.a)
            JOIN responses r ON r.id = CASE WHEN coalesce(d.winner, d.a) = d.a THEN d.b ELSE d.a END
            WHERE d.fate = 'kept' OR (d.fate = 'tie' AND ?)"""
        return sql, [*params, filters.ties == "keep"]

    def pair_fates(self, filters: ExportFilters) -> dict[str, int]:
        """How many candidate pairs each rule kept or left out, for the dataset card and the CLI."""
        pairs_sql, params = self._pairs_sql(filters)
        rows = self.cursor().execute(f"{pairs_sql} SELECT fate, count(*) FROM decided GROUP BY fate ORDER BY fate",
                                     params).fetchall()
        return dict(rows)

    # Rows of one export are staged in this order: test-split prompts first, then by a seeded prompt hash,
    # then by response ids, so the same store, filters and seed give byte-identical files.
    _EXPORT_ORDER = {"sft": "rows.response_id", "unpaired": "rows.response_id", "preferences": "rows.a, rows.b"}
    # Which labels stand behind an exported row, for the card's sources and annotators.
    _EXPORT_LABELS = {
        "sft": "l.kind = 'demonstration' AND (l.prompt_id, l.response_id) IN "
               "(SELECT (prompt_id, response_id) FROM export_rows)",
        "unpaired": "l.kind = 'feedback' AND (l.prompt_id, l.response_id) IN "
                    "(SELECT (prompt_id, response_id) FROM export_rows)",
        "preferences": "((l.kind = 'preference' AND (l.prompt_id, least(l.chosen_id, l.rejected_id), "
                       "greatest(l.chosen_id, l.rejected_id)) IN (SELECT (prompt_id, a, b) FROM export_rows)) "
                       "OR (l.kind = 'ranking' AND EXISTS (SELECT 1 FROM export_rows e WHERE e.prompt_id = "
                       "l.prompt_id AND list_contains(l.ranking, e.a) AND list_contains(l.ranking, e.b))))",
    }

    @contextmanager
    def staged_export(self, kind: str, filters: ExportFilters, *, split: float,
                      seed: int) -> Iterator[StagedExport]:
        """Run the export query once into a temp table with each row's split, for the card's counts, the
        checks and the file writes to share; the table is dropped on leaving.

        The test split takes whole prompts (no prompt in both splits): prompts are ordered by a seeded
        hash and the first round(split * prompts) go to test, so the same seed gives the same split.
        """
        rows_sql, params = {"sft": self.sft_rows_sql, "unpaired": self.unpaired_rows_sql,
                            "preferences": self.preference_rows_sql}[kind](filters)
        con = self.cursor()
        if split > 0:
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE export_rows AS
                WITH rows AS ({rows_sql}),
                ranked AS (SELECT prompt_id, row_number() OVER (ORDER BY md5(?::VARCHAR || prompt_id)) AS rk,
                                  count(*) OVER () AS n
                           FROM (SELECT DISTINCT prompt_id FROM rows))
                SELECT rows.*, CASE WHEN ranked.rk <= round(? * ranked.n) THEN 'test' ELSE 'train' END AS __split
                FROM rows JOIN ranked USING (prompt_id)
                ORDER BY ranked.rk, {self._EXPORT_ORDER[kind]}""",
                [*params, str(seed), split],
            )
        else:  # the same order without ranking prompts for a split: 0.5 s less at 1M rows
            con.execute(
                f"""CREATE OR REPLACE TEMP TABLE export_rows AS
                WITH rows AS ({rows_sql})
                SELECT rows.*, 'train' AS __split FROM rows
                ORDER BY md5(?::VARCHAR || rows.prompt_id), {self._EXPORT_ORDER[kind]}""",
                [*params, str(seed)],
            )
        where, label_params = self._label_filter_sql(filters)
        try:
            yield StagedExport(con, f"{self._EXPORT_LABELS[kind]} AND {where}", label_params,
                               judge_labels_sql(filters.judges))
        finally:
            con.execute("DROP TABLE IF EXISTS export_rows")


class StagedExport:
    """The rows of one export, staged by `Store.staged_export`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, labels_where: str, labels_params: list, labels: str):
        self._con = con
        self._labels = labels
        self._labels_where = labels_where
        self._labels_params = labels_params

    def counts(self) -> dict[str, int]:
        counts = dict(self._con.execute("SELECT __split, count(*) FROM export_rows GROUP BY 1").fetchall())
        return {s: counts[s] for s in ("train", "test") if counts.get(s)}

    def provenance(self) -> dict:
        """Counts behind a dataset card: rows, prompts, label sources and annotators."""
        row = self._con.execute(
            f"""SELECT (SELECT count(*) FROM export_rows), (SELECT count(DISTINCT prompt_id) FROM export_rows),
                   list(DISTINCT l.source ORDER BY l.source), list(DISTINCT l.annotator ORDER BY l.annotator)
            FROM {self._labels} l WHERE {self._labels_where}""",
            self._labels_params,
        ).fetchone()
        return {"rows": row[0], "prompts": row[1], "sources": row[2] or [], "annotators": row[3] or []}

    def pairs_per_prompt(self) -> dict[int, int]:
        """How many prompts gave 1, 2, 3... rows: what a pair rule made of each item, for the card."""
        rows = self._con.execute("SELECT n, count(*) FROM (SELECT count(*) AS n FROM export_rows GROUP BY prompt_id) "
                                 "GROUP BY n ORDER BY n").fetchall()
        return dict(rows)

    def multi_turn_or_system_count(self) -> int:
        """Rows that cannot be written in TRL's standard (plain-string) style."""
        return self._con.execute(
            "SELECT count(*) FROM export_rows WHERE system IS NOT NULL OR len(messages) > 1").fetchone()[0]

    def write(self, *, columns_sql: str, out_dir: Path, fmt: str) -> None:
        """Write train (and test) files with `columns_sql` as their columns, in the staged order."""
        out_dir.mkdir(parents=True, exist_ok=True)
        splits = list(self.counts())
        # No ORDER BY: the table was filled in export order and DuckDB keeps insertion order
        # (preserve_insertion_order is on by default); a sort here would cost a second at 1M rows.
        select = "SELECT {columns} FROM export_rows WHERE __split = '{split}'"
        if fmt == "hf":
            import datasets

            datasets.DatasetDict({
                s: datasets.Dataset(self._con.sql(select.format(columns=columns_sql, split=s)).to_arrow_table())
                for s in splits
            }).save_to_disk(str(out_dir))
            return
        copy_format = {"jsonl": "FORMAT json", "parquet": "FORMAT parquet, COMPRESSION zstd"}[fmt]
        for s in splits:
            target = out_dir / f"{s}.{fmt}"
            self._con.execute(f"COPY ({select.format(columns=columns_sql, split=s)}) "
                              f"TO '{sql_path(target)}' ({copy_format})")
