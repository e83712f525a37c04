"""Fit the story-grouping model on a labelled file and say honestly how well it does on unseen data.

What it does, exactly:
1. Teacher-forced replay: the labelled items are fed in time order to a ``Grouper``; for each item
   ``Grouper.explain`` gives the evidence of every candidate story the index finds (the pair
   features of each scored member, the story's vocabulary cover and age), and the item is then
   indexed under its *labelled* story (``Grouper.record``), so the training data shows the index as
   it would be if every earlier decision had been right.
2. Two logistic regressions (L2, Newton steps; nothing else is tuned): the pair model
   (``dedup_model.WEIGHTS``) on every scored member (each pair counts once, as in the pairwise
   figures: weighting each candidate story as one decision instead was tried and joined less
   well online, B-cubed 0.912 against 0.926 in-sample); then the story model
   (``dedup_model.STORY_WEIGHTS``) on ``story_features`` of each candidate story, label "the item
   belongs to it". The join threshold stays at the logistic 0.5 (``JOIN_AT``).
3. Figures, always from the real online ``Grouper.assign`` (decisions made once, in time order):
   - in-sample: weights fitted on the whole file, run on the whole file;
   - grouped k-fold: stories (and copy-less items) dealt into k folds by a hash of their label; fit
     on the other folds' items only, run on the held-out fold's items only;
   - time split: fit on the first half of the period (by publication time), run on the whole
     stream, score the second half's items (and the reverse), so the held-out half meets the
     trained half's stories as it would in production.
   Also the weights currently in dedup_model.py, for comparison. Story merging (``MERGE_*`` in
   dedup_model.py) runs in all of them with its fixed settings; they are not refitted here.
4. Prints the fitted weights as the two Python lines to paste into processors/dedup_model.py.

Run: ``.venv/bin/python bench/fit_grouping.py [LABELS.jsonl] [--folds 2]`` (about a minute on dev.jsonl).
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
from processors import dedup_model as model  # noqa: E402
from processors.dedup import Grouper  # noqa: E402

DEV = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "battery_news" / "dev.jsonl"
PAIR_L2, STORY_L2 = 1.0, 0.1  # ridge penalties (intercepts unpenalised); fixed, not searched


@dataclass
class Sample:
    """One candidate story of one item in the teacher-forced replay."""

    item: int
    joins: bool  # the item's label is this story
    evidence: model.StoryEvidence


def load(path: Path) -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["label"] = row.get("story") or f"single-{i}-{row['id']}"
    return rows


def article(row: dict[str, Any]) -> Article:
    published = datetime.fromisoformat(row["published"]) if row.get("published") else None
    return Article(id=row["id"], source=row.get("source") or "", outlet=row.get("outlet") or "",
                   url=row.get("url") or "", title=row.get("title") or "", text=row.get("text") or "",
                   published_at=published)  # fmt: skip


def collect(rows: list[dict[str, Any]]) -> list[Sample]:
    """Evidence of every candidate story of every item, with the index holding the labelled stories."""
    grouper = Grouper()
    samples = []
    for i, row in enumerate(rows):
        art = article(row)
        for story_id, ev in grouper.explain(art).items():
            if ev.near is None:  # full-text copies are decided by the sketch rule, not by the fit
                samples.append(Sample(i, story_id == row["label"], ev))
        grouper.record(art, row["label"])
    return samples


def logistic(x: np.ndarray, y: np.ndarray, weight: np.ndarray, l2: float) -> np.ndarray:
    """Weighted L2-penalised logistic regression by Newton's method (column 0 is the intercept)."""
    w = np.zeros(x.shape[1])
    penalty = np.full(x.shape[1], l2)
    penalty[0] = 1e-6
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-np.clip(x @ w, -30, 30)))
        grad = x.T @ (weight * (p - y)) + penalty * w
        hess = (x * (weight * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def fit(samples: list[Sample]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Pair weights, then story weights on story features computed with those pair weights."""
    xs, ys = [], []
    for s in samples:
        for features in s.evidence.pairs:
            xs.append(features)
            ys.append(float(s.joins))
    pair = logistic(np.array(xs), np.array(ys), np.ones(len(ys)), PAIR_L2)
    pair_w = tuple(round(float(v), 3) for v in pair)
    sx = np.array([model.story_features(s.evidence, pair_w) for s in samples])
    sy = np.array([float(s.joins) for s in samples])
    story = logistic(sx, sy, np.ones(len(samples)), STORY_L2)
    return pair_w, tuple(round(float(v), 3) for v in story)


@contextmanager
def weights(pair: tuple[float, ...], story: tuple[float, ...]) -> Iterator[None]:
    """Run the real grouping code with other weights for a while."""
    saved = model.WEIGHTS, model.STORY_WEIGHTS
    model.WEIGHTS, model.STORY_WEIGHTS = pair, story
    try:
        yield
    finally:
        model.WEIGHTS, model.STORY_WEIGHTS = saved


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
    return (f"{name:<34} B-cubed F1 {f['bcubed_f1']:.4f}  pairwise P {f['pair_precision']:.4f}"
            f"  R {f['pair_recall']:.4f}")  # fmt: skip


def mean(runs: list[dict[str, float]]) -> dict[str, float]:
    return {k: sum(r[k] for r in runs) / len(runs) for k in runs[0]}


def grouped_folds(rows: list[dict[str, Any]], k: int) -> list[list[int]]:
    """Items dealt into k folds by a stable hash of their story label (a story never straddles folds)."""
    folds: list[list[int]] = [[] for _ in range(k)]
    for i, row in enumerate(rows):
        folds[zlib.crc32(row["label"].encode("utf-8")) % k].append(i)
    return folds


def held_out_grouped(rows: list[dict[str, Any]], k: int) -> list[dict[str, float]]:
    runs = []
    for f, test in enumerate(grouped_folds(rows, k)):
        held = set(test)
        train = [row for i, row in enumerate(rows) if i not in held]
        with weights(*fit(collect(train))):
            sub = [rows[i] for i in test]
            runs.append(figures(sub, assign(sub), list(range(len(sub)))))
        print(line(f"  grouped fold {f + 1}/{k}", runs[-1]))
    return runs


def held_out_time(rows: list[dict[str, Any]]) -> list[dict[str, float]]:
    half = len(rows) // 2  # rows are in publication order
    first, second = list(range(half)), list(range(half, len(rows)))
    runs = []
    for name, train, test in (("first half -> second", first, second), ("second half -> first", second, first)):
        with weights(*fit(collect([rows[i] for i in train]))):
            runs.append(figures(rows, assign(rows), test))
        print(line(f"  time {name}", runs[-1]))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("labels", nargs="?", type=Path, default=DEV)
    parser.add_argument("--folds", type=int, default=2, help="k of the grouped k-fold (default 2)")
    args = parser.parse_args()
    rows = load(args.labels)
    rows.sort(key=lambda r: r.get("published") or "")
    print(f"{args.labels}: {len(rows)} items, {len({r['label'] for r in rows})} stories\n")
    everything = list(range(len(rows)))
    print(line("weights in dedup_model.py", figures(rows, assign(rows), everything)))
    pair_w, story_w = fit(collect(rows))
    with weights(pair_w, story_w):
        print(line("refit, in-sample (saw all labels)", figures(rows, assign(rows), everything)))
    print(line(f"held out: grouped {args.folds}-fold mean", mean(held_out_grouped(rows, args.folds))))
    print(line("held out: time split mean", mean(held_out_time(rows))))
    print(f"\nWEIGHTS = {pair_w}\nSTORY_WEIGHTS = {story_w}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
