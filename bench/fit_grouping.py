"""Fit grouping's two logistic models on labelled sets and say honestly how well they do on unseen data.

What it does, exactly:
1. Teacher-forced replay of each labelled set (its items in time order): for each item,
   ``Grouper.explain`` gives the evidence of every candidate story (evidence.PAIR per member compared,
   the story-level signals per story), and the item is then indexed under its *labelled* story
   (``Grouper.record``), so the samples show the index as it would be if every earlier decision had
   been right.
2. Two L2-penalised logistic regressions (Newton steps; the penalties are fixed, nothing is searched):
   the pair model on every member compared (label: the member's story is the item's story), then the
   story model on decision.story_features of each candidate story (label: the item belongs to it).
   One model for all the sets given: the samples of every set are pooled.
3. Figures, always from the real online ``Grouper.assign`` (decisions made once, in time order, with
   story merging as configured in decision.py), per set:
   - in-sample: weights fitted on every set whole, run on each set whole;
   - grouped k-fold: each set's stories (and copy-less items) dealt into k folds by a hash of their
     label; fit on the other folds of every set, run on the held-out fold's items only;
   - time split: fit on the first half of every set (by publication time), run on each whole stream,
     score the second half's items; and the reverse.
   Also the weights currently in decision.py, for comparison.
   With ``--fit-thresholds`` the join thresholds (decision.JOIN_AT, SINGLE_JOIN_AT), chosen once by
   reading dev errors, are fitted too, inside each training split: a coordinate search over a small grid
   for the best mean B-cubed F1 of the online run on the training items among settings with pairwise
   precision of at least 0.97 there (``--precision-floor``; 0: B-cubed alone), so that the held-out
   figures owe nothing to the held-out items (a minute more).
4. Prints the fitted weights as the two Python lines to paste into processors/grouping/decision.py.

The stream the daemon groups mixes full texts with search-API entries (a headline and a snippet of a
few passages around the query word, Naver's shape) of the same stories; neither dev set has that mix.
With ``--entries`` a third set derived from fulltext_news joins them (``entries``): every third
article (by a hash of its id) recast as its entry (``as_entry``), the rest as they are, labels kept,
fitted and scored like the others: how a mixed stream fares (a snippet against full texts). It is
not part of the weights in decision.py: it lowers precision on the real sets (README, grouping).

Run: ``.venv/bin/python bench/fit_grouping.py [LABELS.jsonl ...] [--folds 3] [--fit-thresholds
[--precision-floor 0.97]]`` (seconds on both dev sets; a minute and a half with --fit-thresholds).
"""

from __future__ import annotations

import argparse
import json
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from newsradar.evaluate import story_report  # noqa: E402
from newsradar.events import Article  # noqa: E402
from processors.grouping import Grouper, decision  # noqa: E402
from processors.grouping.evidence import PAIR, STORY, Evidence  # noqa: E402

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"
DEV = [CORPUS / "battery_news" / "dev.jsonl", CORPUS / "fulltext_news" / "dev.jsonl"]
PAIR_L2, STORY_L2 = 1.0, 0.1  # ridge penalties (intercepts unpenalised); fixed, not searched


@dataclass
class Sample:
    """The candidate stories of one item in the teacher-forced replay."""

    evidence: Evidence
    joins: np.ndarray  # per candidate story: the item's label is this story


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["label"] = row.get("story") or f"single-{i}-{row['id']}"
    rows.sort(key=lambda r: r.get("published") or "")
    return rows


ENTRY_PASSAGE = 70  # characters of each snippet passage, as Naver's descriptions run (about 60-90 each)


def as_entry(row: dict[str, Any]) -> dict[str, Any]:
    """A full-text row recast as a search-API entry: the headline, and two passages of its text (one
    from the lead, one further on, chosen by a hash of the id) joined by "...", as the API cuts them."""
    body = " ".join((row.get("text") or "").split())
    h = zlib.crc32(row["id"].encode("utf-8"))
    first = (h >> 8) % max(1, min(len(body), 200) - ENTRY_PASSAGE) if len(body) > ENTRY_PASSAGE else 0
    second = first + ENTRY_PASSAGE + (h >> 16) % max(1, len(body) - first - 2 * ENTRY_PASSAGE)
    passages = [body[first : first + ENTRY_PASSAGE], body[second : second + ENTRY_PASSAGE]]
    return {**row, "id": f"entry-{row['id']}", "text": "... ".join(p for p in passages if p) + "... "}


def with_entries(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` with every third (by a hash of its id) recast as its search-API entry (``as_entry``)."""
    return [as_entry(row) if zlib.crc32(row["id"].encode("utf-8")) % 3 == 0 else row for row in rows]


def article(row: dict[str, Any]) -> Article:
    published = datetime.fromisoformat(row["published"]) if row.get("published") else None
    return Article(id=row["id"], source=row.get("source") or "", outlet=row.get("outlet") or "",
                   url=row.get("url") or "", title=row.get("title") or "", text=row.get("text") or "",
                   published_at=published)  # fmt: skip


def collect(rows: list[dict[str, Any]]) -> list[Sample]:
    """Evidence of every candidate story of every item, with the index holding the labelled stories."""
    grouper = Grouper()
    samples = []
    for row in rows:
        art = article(row)
        ev, ids = grouper.explain(art)
        if ev is not None:
            samples.append(Sample(ev, np.array([story_id == row["label"] for story_id in ids])))
        grouper.record(art, row["label"])
    return samples


def logistic(x: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    """L2-penalised logistic regression by Newton's method (column 0 is the intercept)."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 1e-6
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (p - y) + penalty * w
        hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


Weights = dict[str, tuple[tuple[float, ...], tuple[float, ...]]]


def fit(samples: list[Sample]) -> Weights:
    """Pair and story weights of each regime (decision.regime), each fitted on its own samples."""
    out = {}
    for name in decision.WEIGHTS:
        own = [s for s in samples if decision.regime(s.evidence) == name]
        out[name] = fit_regime(own) if own else decision.WEIGHTS[name]
    return out


def fit_regime(samples: list[Sample]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Pair weights, then story weights on story features computed with those pair weights."""
    x = np.concatenate([s.evidence.pairs for s in samples])
    y = np.concatenate([s.joins[s.evidence.owner] for s in samples]).astype(np.float64)
    pair = tuple(round(float(v), 3) for v in logistic(x, y, PAIR_L2))
    # For long texts, stories of two or more members only: one of one member is scored by the pair model.
    several = np.concatenate([(s.evidence.size > 1) | (not s.evidence.long) for s in samples])
    sx = np.concatenate([decision.story_features(s.evidence, pair) for s in samples])[several]
    sy = np.concatenate([s.joins for s in samples]).astype(np.float64)[several]
    return pair, tuple(round(float(v), 3) for v in logistic(sx, sy, STORY_L2))


@contextmanager
def weights(fitted: Weights) -> Iterator[None]:
    """Run the real grouping code with other weights for a while."""
    saved = decision.WEIGHTS
    decision.WEIGHTS = fitted
    try:
        yield
    finally:
        decision.WEIGHTS = saved


Thresholds = tuple[float, float, float]  # JOIN_AT["short"], JOIN_AT["long"], SINGLE_JOIN_AT
JOIN_GRID = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
SINGLE_GRID = (0.6, 0.7, 0.8, 0.85, 0.9, 0.95)
# Thresholds are chosen for B-cubed F1 among those whose pairwise precision on every training stream reaches this
# (the bar: two events must not hide each other), else for precision alone; --precision-floor 0: B-cubed alone.
PRECISION_FLOOR = 0.97


def current_thresholds() -> Thresholds:
    return decision.JOIN_AT["short"], decision.JOIN_AT["long"], decision.SINGLE_JOIN_AT


@contextmanager
def thresholds(chosen: Thresholds) -> Iterator[None]:
    """Run the real grouping code with other join thresholds for a while."""
    saved = decision.JOIN_AT, decision.SINGLE_JOIN_AT
    decision.JOIN_AT, decision.SINGLE_JOIN_AT = {"short": chosen[0], "long": chosen[1]}, chosen[2]
    try:
        yield
    finally:
        decision.JOIN_AT, decision.SINGLE_JOIN_AT = saved


def fit_thresholds(train: dict[str, list[dict[str, Any]]], floor: float = PRECISION_FLOOR) -> Thresholds:
    """The join thresholds with the best mean B-cubed F1 of the online run over the training streams among those
    precise enough on each (``floor``; the weights in use as fitted on them): each threshold in turn over its
    grid, the others held, twice round."""

    def score(chosen: Thresholds) -> tuple[bool, float]:
        with thresholds(chosen):
            runs = [figures(rows, assign(rows), list(range(len(rows)))) for rows in train.values()]
        precise = all(run["pair_precision"] >= floor for run in runs)
        return precise, sum(run["bcubed_f1" if precise else "pair_precision"] for run in runs) / len(runs)

    best = current_thresholds()
    best_score = score(best)
    for _ in range(2):
        moved = False
        for at, grid in enumerate((JOIN_GRID, JOIN_GRID, SINGLE_GRID)):
            for value in grid:
                values = list(best)
                values[at] = value
                trial: Thresholds = (values[0], values[1], values[2])
                if trial != best and (trial_score := score(trial)) > best_score:
                    best, best_score, moved = trial, trial_score, True
        if not moved:
            break
    return best


@contextmanager
def fitted_on(train_rows: dict[str, list[dict[str, Any]]], fitted: Weights, tune: float | None
              ) -> Iterator[Thresholds]:  # fmt: skip
    """Weights ``fitted`` on the training streams and, unless ``tune`` is None, thresholds fitted on them with
    ``tune`` as their precision floor, in force."""
    with weights(fitted):
        chosen = current_thresholds() if tune is None else fit_thresholds(train_rows, tune)
        with thresholds(chosen):
            yield chosen


def assign(rows: list[dict[str, Any]]) -> list[str]:
    """The online decisions, each item named by the story it is part of at the end (after merges)."""
    grouper = Grouper()
    stories = [grouper.assign(article(row)) for row in rows]
    return [grouper.resolve(story) for story in stories]


def figures(rows: list[dict[str, Any]], pred: list[str], keep: list[int]) -> dict[str, float]:
    """Pairwise and B-cubed figures over the items ``keep`` (pairs among them only)."""
    gold = [{"story": rows[i].get("story"), "title": rows[i]["title"]} for i in keep]
    report = story_report(gold, [{"story": pred[i]} for i in keep])
    pw = report.pairwise
    return {"bcubed_f1": report.bcubed_f1, "pair_precision": pw.precision, "pair_recall": pw.recall}


def line(name: str, f: dict[str, float]) -> str:
    return (f"{name:<40} B-cubed F1 {f['bcubed_f1']:.4f}  pairwise P {f['pair_precision']:.4f}"
            f"  R {f['pair_recall']:.4f}")  # fmt: skip


def mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}


def grouped_folds(rows: list[dict[str, Any]], k: int) -> list[list[int]]:
    """Items dealt into k folds by a stable hash of their story label (a story never straddles folds)."""
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, row in enumerate(rows):
        folds[zlib.crc32(row["label"].encode("utf-8")) % k].append(i)
    return folds


def held_out_grouped(sets: dict[str, list[dict[str, Any]]], k: int, tune: float | None) -> dict[str, list[dict[str, float]]]:
    folds = {name: grouped_folds(rows, k) for name, rows in sets.items()}
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sets}
    for f in range(k):
        train: list[Sample] = []
        train_rows = {}
        for name, rows in sets.items():
            held = set(folds[name][f])
            train_rows[name] = [row for i, row in enumerate(rows) if i not in held]
            train += collect(train_rows[name])
        with fitted_on(train_rows, fit(train), tune) as chosen:
            for name, rows in sets.items():
                sub = [rows[i] for i in folds[name][f]]
                runs[name].append(figures(sub, assign(sub), list(range(len(sub)))))
                print(line(f"  {name}: grouped fold {f + 1}/{k}", runs[name][-1]) + _shown(chosen, tune), flush=True)
    return runs


def _shown(chosen: Thresholds, tune: float | None) -> str:
    return "" if tune is None else f"  (join at {chosen[0]}/{chosen[1]}, single {chosen[2]})"


def held_out_time(sets: dict[str, list[dict[str, Any]]], tune: float | None) -> dict[str, list[dict[str, float]]]:
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sets}
    for direction in ("first half -> second", "second half -> first"):
        train: list[Sample] = []
        halves, train_rows = {}, {}
        for name, rows in sets.items():
            half = len(rows) // 2
            first, second = list(range(half)), list(range(half, len(rows)))
            fit_on, test = (first, second) if direction.startswith("first") else (second, first)
            halves[name] = test
            train_rows[name] = [rows[i] for i in fit_on]
            train += collect(train_rows[name])
        with fitted_on(train_rows, fit(train), tune) as chosen:
            for name, rows in sets.items():
                runs[name].append(figures(rows, assign(rows), halves[name]))
                print(line(f"  {name}: time {direction}", runs[name][-1]) + _shown(chosen, tune), flush=True)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", nargs="*", type=Path, default=DEV)
    parser.add_argument("--folds", type=int, default=3, help="k of the grouped k-fold (default 3)")
    parser.add_argument("--entries", action="store_true", help="add the derived set of search-API entries")
    parser.add_argument("--fit-thresholds", action="store_true",
                        help="fit the join thresholds in each training split too (a minute more)")
    parser.add_argument("--precision-floor", type=float, default=PRECISION_FLOOR,
                        help=f"with --fit-thresholds: training precision to keep (default {PRECISION_FLOOR}; 0: none)")
    args = parser.parse_args()
    sets = {path.parent.name: load(path) for path in args.labels}
    if "fulltext_news" in sets and args.entries:
        sets["entries"] = with_entries(sets["fulltext_news"])
    for name, rows in sets.items():
        print(f"{name}: {len(rows)} items, {len({r['label'] for r in rows})} stories")
    print()
    for name, rows in sets.items():
        print(line(f"{name}: weights in decision.py", figures(rows, assign(rows), list(range(len(rows))))))
    fitted = fit([s for rows in sets.values() for s in collect(rows)])
    tune = args.precision_floor if args.fit_thresholds else None
    with fitted_on(sets, fitted, tune) as chosen:
        for name, rows in sets.items():
            print(line(f"{name}: refit, in-sample", figures(rows, assign(rows), list(range(len(rows)))))
                  + _shown(chosen, tune), flush=True)  # fmt: skip
    grouped = held_out_grouped(sets, args.folds, tune)
    timed = held_out_time(sets, tune)
    print()
    for name in sets:
        print(line(f"{name}: held out, grouped {args.folds}-fold mean", mean(grouped[name])))
        print(line(f"{name}: held out, time split mean", mean(timed[name])))
    print(f"\n# pair: {', '.join(PAIR)}\n# story: {', '.join(STORY)}\nWEIGHTS = {{")
    for name, (pair_w, story_w) in fitted.items():
        print(f'    "{name}": ({pair_w},\n{" " * (len(name) + 7)}{story_w}),')
    print("}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
