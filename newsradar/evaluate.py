"""Quality measures for ``newsradar eval``: term precision/recall and story grouping.

Terms: per canonical term and overall (micro), an item counts as a true hit
for a term when both the label and the prediction carry it. Stories: gold
clusters come from the ``story`` label (null = a story of its own); we report
pairwise precision/recall/F1 over item pairs and B-cubed precision/recall/F1,
and list the wrongly merged and wrongly split pairs with their titles.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any


@dataclass
class PRF:
    tp: int = 0
    fp: int = 0
    fn: int = 0

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


@dataclass
class TermReport:
    per_term: dict[str, PRF] = field(default_factory=dict)
    overall: PRF = field(default_factory=PRF)
    relevant: PRF = field(default_factory=PRF)
    false_hits: list[tuple[str, str, str]] = field(default_factory=list)  # (term, id, text)
    misses: list[tuple[str, str, str]] = field(default_factory=list)


def term_report(
    gold: Sequence[dict[str, Any]], predicted: Sequence[dict[str, Any]], terms: Sequence[str]
) -> TermReport:
    """Compare labelled ``terms``/``relevant`` with classify output, item by item (same order)."""
    report = TermReport(per_term={t: PRF() for t in terms})
    for item, pred in zip(gold, predicted, strict=True):
        want, got = set(item.get("terms") or []), set(pred.get("terms") or [])
        text = f"{item.get('title', '')} | {item.get('text', '')[:200]}"
        for term in set(terms) | want | got:
            prf = report.per_term.setdefault(term, PRF())
            if term in want and term in got:
                prf.tp += 1
                report.overall.tp += 1
            elif term in got:
                prf.fp += 1
                report.overall.fp += 1
                report.false_hits.append((term, str(item["id"]), text))
            elif term in want:
                prf.fn += 1
                report.overall.fn += 1
                report.misses.append((term, str(item["id"]), text))
        want_rel, got_rel = bool(item.get("relevant", bool(want))), bool(pred.get("relevant"))
        report.relevant.tp += want_rel and got_rel
        report.relevant.fp += got_rel and not want_rel
        report.relevant.fn += want_rel and not got_rel
    return report


@dataclass
class StoryReport:
    pairwise: PRF
    bcubed_precision: float
    bcubed_recall: float
    wrongly_merged: list[tuple[str, str]]
    wrongly_split: list[tuple[str, str]]
    gold_stories: int
    predicted_stories: int

    @property
    def bcubed_f1(self) -> float:
        p, r = self.bcubed_precision, self.bcubed_recall
        return 2 * p * r / (p + r) if p + r else 0.0


def _clusters(labels: Sequence[str]) -> dict[str, list[int]]:
    clusters: dict[str, list[int]] = defaultdict(list)
    for index, label in enumerate(labels):
        clusters[label].append(index)
    return clusters


def story_report(gold: Sequence[dict[str, Any]], predicted: Sequence[dict[str, Any]]) -> StoryReport:
    """Pairwise and B-cubed scores of predicted ``story`` ids against the gold ``story`` labels."""
    gold_labels = [str(g["story"]) if g.get("story") else f"__single__{i}" for i, g in enumerate(gold)]
    pred_labels = [str(p["story"]) for p in predicted]
    gold_of = {i: lab for i, lab in enumerate(gold_labels)}
    pred_of = {i: lab for i, lab in enumerate(pred_labels)}
    gold_clusters, pred_clusters = _clusters(gold_labels), _clusters(pred_labels)

    pairwise = PRF()
    merged: list[tuple[str, str]] = []
    split: list[tuple[str, str]] = []
    for members in pred_clusters.values():
        for a, b in combinations(members, 2):
            if gold_of[a] == gold_of[b]:
                pairwise.tp += 1
            else:
                pairwise.fp += 1
                merged.append((gold[a].get("title", ""), gold[b].get("title", "")))
    for members in gold_clusters.values():
        for a, b in combinations(members, 2):
            if pred_of[a] != pred_of[b]:
                pairwise.fn += 1
                split.append((gold[a].get("title", ""), gold[b].get("title", "")))

    precision = recall = 0.0
    for i in range(len(gold)):
        g = set(gold_clusters[gold_of[i]])
        p = set(pred_clusters[pred_of[i]])
        overlap = len(g & p)
        precision += overlap / len(p)
        recall += overlap / len(g)
    n = max(1, len(gold))
    return StoryReport(
        pairwise=pairwise,
        bcubed_precision=precision / n,
        bcubed_recall=recall / n,
        wrongly_merged=merged,
        wrongly_split=split,
        gold_stories=len(gold_clusters),
        predicted_stories=len(pred_clusters),
    )


def format_terms(report: TermReport, max_list: int) -> list[str]:
    lines = [f"{'term':<12} {'precision':>9} {'recall':>7} {'f1':>6} {'tp':>5} {'fp':>4} {'fn':>4}"]
    rows = sorted(report.per_term.items()) + [("(overall)", report.overall), ("(relevant)", report.relevant)]
    for term, prf in rows:
        lines.append(
            f"{term:<12} {prf.precision:>9.4f} {prf.recall:>7.4f} {prf.f1:>6.4f} {prf.tp:>5} {prf.fp:>4} {prf.fn:>4}"
        )
    for heading, items in (("false hits", report.false_hits), ("misses", report.misses)):
        lines.append(f"\n{heading} ({len(items)}):")
        for term, item_id, text in items[:max_list]:
            lines.append(f"  [{term}] {item_id}: {text}")
        if len(items) > max_list:
            lines.append(f"  … {len(items) - max_list} more (raise --max-list)")
    return lines


def format_stories(report: StoryReport, max_list: int) -> list[str]:
    pw = report.pairwise
    lines = [
        f"stories: gold {report.gold_stories}, predicted {report.predicted_stories}",
        f"pairwise  precision {pw.precision:.4f}  recall {pw.recall:.4f}  f1 {pw.f1:.4f}"
        f"  (tp {pw.tp}, fp {pw.fp}, fn {pw.fn})",
        f"B-cubed   precision {report.bcubed_precision:.4f}  recall {report.bcubed_recall:.4f}"
        f"  f1 {report.bcubed_f1:.4f}",
    ]
    kinds = (("wrongly merged pairs", report.wrongly_merged), ("wrongly split pairs", report.wrongly_split))
    for heading, pairs in kinds:
        lines.append(f"\n{heading} ({len(pairs)}):")
        for a, b in pairs[:max_list]:
            lines.append(f"  {a[:70]}\n    ≠/= {b[:70]}")
        if len(pairs) > max_list:
            lines.append(f"  … {len(pairs) - max_list} more (raise --max-list)")
    return lines
