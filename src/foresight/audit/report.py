"""``foresight audit report``: canned composition tables (CSV), plots (PNG) and checks, in one markdown file.

Every number comes from a SQL statement on the same sandboxed connection users query, reading only the columns
it needs (never ``text`` or ``tokens``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from foresight.audit import AuditConnection, AuditError, plots
from foresight.audit.checks import Check, run_checks
from foresight.formats.sql import quote_ident, quote_literal
from foresight.formats.taxonomy import LABEL_NAMES, score_column

LENGTH_BINS = 32
# Drop reasons of the dedup stages (pipeline/stages/dedup.py: exact_duplicate, near_duplicate); not the
# gopher repetition filters (dup_line_frac, duplicated_5_n_grams), which judge quality within one document.
DUPLICATE_REASON = r"(?i)(duplicate$|dedup)"
SCORE_BINS = 20


def composition_sql(labelled: bool = True) -> str:
    """Tokens and segments by source × label (multi-label: a segment counts under each of its labels).

    Reads the per-label boolean columns (``formats.schema.label_fields``; derived from ``labels`` by
    ``audit.views`` for older shards): grouped by (source, the six flags) first, so the unnest runs on the few
    distinct label sets. benchmarks/bench_audit.py times it against the plans over the ``labels`` list
    (DuckDB decodes Parquet lists slowly) and against polars.
    """
    if not labelled:
        return """SELECT source, 'unclassified' AS label, sum(n_tokens)::HUGEINT AS tokens,
                         count(*)::HUGEINT AS segments FROM segments GROUP BY source ORDER BY source, label"""
    flags = [quote_ident(name) for name in LABEL_NAMES]
    names = ", ".join(f"CASE WHEN {f} THEN {quote_literal(n)} END" for f, n in zip(flags, LABEL_NAMES, strict=True))
    return f"""
        WITH s AS (SELECT source, {', '.join(flags)}, sum(n_tokens) AS tokens, count(*) AS segments
                   FROM segments GROUP BY ALL)
        SELECT source, label, sum(tokens) AS tokens, sum(segments) AS segments
        FROM s, unnest(CASE WHEN NOT ({' OR '.join(flags)}) THEN ['none']
                            ELSE list_filter([{names}], lambda x: x IS NOT NULL) END) AS u(label)
        GROUP BY ALL ORDER BY source, label"""


@dataclass
class ReportSummary:
    out: Path
    files: list[Path] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)


def md_table(df: pl.DataFrame, max_rows: int = 40) -> str:
    """A markdown table (floats to 4 significant digits); longer frames are cut with a note."""
    if df.width == 0:
        return "_(no columns)_"
    head = "| " + " | ".join(df.columns) + " |\n|" + "---|" * df.width + "\n"
    rows = []
    for row in df.head(max_rows).iter_rows():
        cells = ["" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v) for v in row]
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    more = f"\n\n_{df.height - max_rows} more rows in the CSV._" if df.height > max_rows else ""
    return head + "\n".join(rows) + more if rows else head + "| " + " | ".join("" for _ in df.columns) + " |"


class Report:
    def __init__(self, audit: AuditConnection, out: Path) -> None:
        self.audit = audit
        self.out = out
        self.summary = ReportSummary(out)
        self.cols = {c for c, _ in audit.columns("segments")}
        self.labelled = "labels" in self.cols
        self.md: list[str] = []

    def q(self, sql: str, params: dict[str, Any] | None = None) -> pl.DataFrame:
        return self.audit.query(sql, params)

    def csv(self, df: pl.DataFrame, name: str) -> str:
        path = self.out / name
        df.write_csv(path)
        self.summary.files.append(path)
        return name

    def png(self, draw: Any, df: pl.DataFrame, name: str) -> str:
        path = draw(df, self.out / name)
        self.summary.files.append(path)
        return name

    # --- sections -------------------------------------------------------------------------------------------

    def overview(self) -> None:
        idx = self.audit.index
        totals = idx.totals
        tok = idx.tokenizer
        clf = idx.classifier or {}
        self.md += ["# foresight audit report", "",
                    f"- shards: `{self.audit.root}` — {totals.files} files, {totals.rows:,} "
                    f"segments, {totals.tokens:,} tokens",
                    f"- tokenizer: {tok.get('name', '?')} (sha256 {str(tok.get('sha256', ''))[:12]}…, "
                    f"vocab {tok.get('vocab_size', '?')})",
                    f"- classifier: {clf.get('kind', 'none')} {clf.get('id', '')}".rstrip(),
                    f"- manifests: {', '.join(m.name for m in self.audit.manifests) or 'none'}",
                    f"- foresight {idx.foresight_version}", ""]

    def composition(self) -> None:
        self.md += ["## Tokens by source × label", ""]
        long = self.q(composition_sql(self.labelled))
        flags = ("coalesce(sum(n_tokens) FILTER (WHERE reasoning), 0) AS reasoning_tokens, "
                 "coalesce(sum(n_tokens) FILTER (WHERE visual), 0) AS visual_tokens, "
                 "round(100.0 * count(*) FILTER (WHERE reasoning) / count(*), 1) AS reasoning_pct_segments, "
                 "round(100.0 * count(*) FILTER (WHERE visual) / count(*), 1) AS visual_pct_segments, "
                 if self.labelled else "")
        sources = self.q(f"""SELECT source, count(DISTINCT doc_id) AS documents, count(*) AS segments, {flags}
                             sum(n_tokens) AS tokens FROM segments GROUP BY source ORDER BY tokens DESC""")
        order = [lab for lab in (*LABEL_NAMES, "none", "unclassified") if lab in set(long["label"].to_list())]
        matrix = (long.pivot(on="label", index="source", values="tokens").fill_null(0)
                  .join(sources.select("source", "tokens"), on="source").sort("tokens", descending=True)
                  .select("source", *order, "tokens")) if long.height else pl.DataFrame()
        self.md += [f"Multi-label: a segment with two labels counts in both columns. CSV: "
                    f"[{self.csv(long, 'composition.csv')}](composition.csv), "
                    f"[{self.csv(sources, 'sources.csv')}](sources.csv).", ""]
        if matrix.height:
            heat = self.png(plots.composition_heatmap, matrix, "composition.png")
            self.md += [f"![tokens by source and label]({heat})", "", md_table(matrix), ""]
        self.md += ["Per source (the % columns count segments, comparable with LSBS Table 4):", "",
                    md_table(sources), ""]

    def manifest_shares(self) -> None:
        if not self.audit.manifests:
            return
        self.md += ["## Manifests: reasoning / visual share vs the spec", ""]
        achieved = self.q("""
            SELECT manifest, sum(n_tokens) AS tokens,
                   coalesce(sum(n_tokens) FILTER (WHERE reasoning), 0) / sum(n_tokens) AS reasoning_share,
                   coalesce(sum(n_tokens) FILTER (WHERE visual), 0) / sum(n_tokens) AS visual_share
            FROM entries GROUP BY manifest""") if self.labelled else pl.DataFrame()
        header = self.q("""SELECT manifest, total_tokens, reasoning_share AS header_reasoning_share,
                                  visual_share AS header_visual_share, target_reasoning_share,
                                  target_visual_share FROM manifests""")
        implied = pl.DataFrame([self.implied_targets(m.name) for m in self.audit.manifests],
                               schema={"manifest": pl.String, "implied_reasoning": pl.Float64,
                                       "implied_visual": pl.Float64}, orient="row")
        shares = header.join(implied, on="manifest", how="left")
        if achieved.height:
            shares = shares.join(achieved, on="manifest", how="left")
        for flag in ("reasoning", "visual"):
            if f"{flag}_share" not in shares.columns:
                shares = shares.with_columns(pl.lit(None, pl.Float64).alias(f"{flag}_share"))
        # The spec's own target when it states one, else what its pools imply on these shards.
        shares = shares.with_columns(
            pl.when(pl.col("target_reasoning_share").is_not_null() | pl.col("target_visual_share").is_not_null())
            .then(pl.lit("spec targets")).otherwise(pl.lit("pools")).alias("target_from"),
            *(pl.coalesce(f"target_{f}_share", f"implied_{f}").alias(f"target_{f}_share")
              for f in ("reasoning", "visual")))
        shares = shares.select("manifest", "total_tokens", "reasoning_share", "target_reasoning_share",
                               "visual_share", "target_visual_share", "target_from", "header_reasoning_share",
                               "header_visual_share").sort("manifest")
        pools = self.q("""
            SELECT p.manifest, p.pool, p."where", p.weight, p.target_tokens, p.achieved_tokens,
                   e.tokens AS entry_tokens, e.segments AS entry_segments, p.epochs, p.cut
            FROM pools p LEFT JOIN (SELECT manifest, pool, sum(n_tokens) AS tokens, count(*) AS segments
                                    FROM entries GROUP BY ALL) e USING (manifest, pool)
            ORDER BY p.manifest, p.pool""")
        self.md += ["Target = the spec's stated `targets` when present, otherwise the share its pools imply on "
                    "these shards (Σ pool target tokens × the pool's reasoning/visual token fraction).", "",
                    f"![shares]({self.png(plots.share_bars, shares, 'manifest_shares.png')})", "",
                    md_table(shares), "", f"CSV: [{self.csv(shares, 'manifest_shares.csv')}](manifest_shares.csv)",
                    "", "### Pools", "", md_table(pools), "", f"CSV: [{self.csv(pools, 'pools.csv')}](pools.csv)", ""]

    def implied_targets(self, manifest: str) -> tuple[str, float | None, float | None]:
        """Σ_pool (target/total) × (reasoning|visual token fraction of the rows the pool's ``where`` selects)."""
        if not self.labelled:
            return manifest, None, None
        pools = self.q("SELECT \"where\", target_tokens FROM pools WHERE manifest = $m", {"m": manifest})
        total = pools["target_tokens"].sum() if pools.height else 0
        if not total:
            return manifest, None, None
        acc = {"reasoning": 0.0, "visual": 0.0}
        for where, target in pools.iter_rows():
            if not where or re.search(r";", where):
                return manifest, None, None
            try:
                frac = self.q(f"""SELECT coalesce(sum(n_tokens) FILTER (WHERE reasoning), 0) / sum(n_tokens) AS r,
                                         coalesce(sum(n_tokens) FILTER (WHERE visual), 0) / sum(n_tokens) AS v
                                  FROM segments WHERE ({where})""")
            except AuditError:  # an expression over columns these shards lack: no implied target
                return manifest, None, None
            for key, col in (("reasoning", "r"), ("visual", "v")):
                acc[key] += (target / total) * float(frac[col][0] or 0.0)
        return manifest, acc["reasoning"], acc["visual"]

    def lengths(self) -> None:
        top = int(self.q("SELECT coalesce(max(n_tokens), 1) AS m FROM segments")["m"][0])
        width = max(1, -(-top // LENGTH_BINS))
        hist = self.q("""SELECT source, (n_tokens // $w) * $w AS bin_start, (n_tokens // $w + 1) * $w AS bin_end,
                                count(*) AS segments FROM segments GROUP BY ALL ORDER BY source, bin_start""",
                      {"w": width})
        stats = self.q("""SELECT source, count(*) AS segments, min(n_tokens) AS min, median(n_tokens) AS median,
                                 avg(n_tokens) AS mean, max(n_tokens) AS max FROM segments
                          GROUP BY source ORDER BY source""")
        self.md += ["## Segment length per source", ""]
        if hist.height:
            self.md += [f"![lengths]({self.png(plots.length_histograms, hist, 'token_lengths.png')})", ""]
        self.md += [md_table(stats), "", f"CSV: [{self.csv(hist, 'token_lengths.csv')}](token_lengths.csv)", ""]

    def scores(self) -> None:
        present = [lab for lab in LABEL_NAMES if score_column(lab) in self.cols]
        if not present:
            self.md += ["## Classifier scores", "", "_The shards were not classified (no score columns)._", ""]
            return
        parts = [f"""SELECT '{lab}' AS label, least(floor({score_column(lab)} * {SCORE_BINS}), {SCORE_BINS - 1})
                            / {SCORE_BINS} AS bin_start, {1 / SCORE_BINS} AS bin_width, count(*) AS segments,
                            count(*) FILTER (WHERE {quote_ident(lab)}) AS labelled
                     FROM segments WHERE {score_column(lab)} IS NOT NULL GROUP BY ALL""" for lab in present]
        hist = self.q(" UNION ALL ".join(parts) + " ORDER BY label, bin_start")
        summary = self.q(" UNION ALL ".join(
            f"""SELECT '{lab}' AS label, avg({score_column(lab)}) AS mean_score,
                       quantile_cont({score_column(lab)}, 0.5) AS median_score,
                       count(*) FILTER (WHERE {quote_ident(lab)}) AS labelled_segments,
                       count(*) AS segments FROM segments""" for lab in present))
        self.md += ["## Classifier score distributions per label", "",
                    f"![scores]({self.png(plots.score_histograms, hist, 'scores.png')})", "", md_table(summary), "",
                    f"CSV: [{self.csv(hist, 'scores.csv')}](scores.csv)", ""]

    def drops(self) -> None:
        acc = self.audit.index.accounting
        rows = [(kind, reason, n) for kind in ("dropped", "errored")
                for reason, n in sorted(getattr(acc, kind).items() if acc else ())]
        drops = pl.DataFrame(rows, schema={"kind": pl.String, "reason": pl.String, "documents": pl.Int64},
                             orient="row").sort("documents", descending=True)
        read = acc.read if acc else None
        dup_rows = drops.filter(pl.col("reason").str.contains(DUPLICATE_REASON)) if drops.height else drops
        dups = int(dup_rows["documents"].sum()) if dup_rows.height else 0
        kinds = ", ".join(f"{r}: {n:,}" for r, n in dup_rows.select("reason", "documents").rows())
        self.md += ["## Drop reasons and duplicates (index accounting)", "",
                    f"- documents read: {read if read is not None else 'n/a'}, kept: {acc.kept if acc else 'n/a'}",
                    f"- duplicates removed: {dups:,}" + (f" ({100 * dups / read:.2f} % of read)" if read else "")
                    + (f" — {kinds}" if kinds else ""), ""]
        if drops.height:
            self.md += [f"![drops]({self.png(plots.drop_bars, drops, 'drops.png')})", ""]
        self.md += [md_table(drops) if drops.height else "_No documents were dropped or errored._", "",
                    f"CSV: [{self.csv(drops, 'drops.csv')}](drops.csv)", ""]

    def checks(self) -> None:
        self.summary.checks = run_checks(self.audit)
        table = pl.DataFrame([(c.name, "pass" if c.passed else "FAIL", c.detail) for c in self.summary.checks],
                             schema={"check": pl.String, "result": pl.String, "detail": pl.String}, orient="row")
        self.md += ["## Checks", "", md_table(table), "", f"CSV: [{self.csv(table, 'checks.csv')}](checks.csv)", ""]

    def write(self) -> ReportSummary:
        self.out.mkdir(parents=True, exist_ok=True)
        # report.md is written last: an earlier one must not vouch for plots and tables this run left half done
        (self.out / "report.md").unlink(missing_ok=True)
        for section in (self.overview, self.composition, self.manifest_shares, self.lengths, self.scores,
                        self.drops, self.checks):
            section()
        path = self.out / "report.md"
        path.write_text("\n".join(self.md) + "\n", encoding="utf-8")
        self.summary.files.insert(0, path)
        return self.summary


def write_report(audit: AuditConnection, out: str | Path) -> ReportSummary:
    """Write report.md, PNG plots and CSV tables to ``out``; returns the files and the checks."""
    return Report(audit, Path(out)).write()
