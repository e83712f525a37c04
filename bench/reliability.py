"""The reliability scorecard: runs tests/reliability and prints, per case, the expected behaviour, what was
observed, the items lost and the alerts doubled (counted by each test from the Slack and SMTP stand-ins).

Exits non-zero when any case lost or doubled anything, when any test failed, or when no case reported.

    .venv/bin/python bench/reliability.py                 # run the suite (about 3 minutes) and print the table
    .venv/bin/python bench/reliability.py -k slack        # only some cases (pytest -k)
    .venv/bin/python bench/reliability.py --from card.json   # print a scorecard saved with --json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ENV = "NEWSRADAR_SCORECARD"  # read by tests/reliability/scorecard.py
COLUMNS = (("case", 34), ("expected behaviour", 40), ("observed", 58), ("lost", 4), ("doubled", 7), ("test", 6))


def run_suite(card: Path, select: str | None, verbose: bool) -> int:
    """Run tests/reliability with the scorecard written to ``card``; returns pytest's exit code."""
    command = [sys.executable, "-m", "pytest", "tests/reliability", "-q", "-p", "no:cacheprovider"]
    if select:
        command += ["-k", select]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, ENV: str(card)},
                            stdout=None if verbose else subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    tail = "" if verbose else result.stdout.strip().splitlines()[-1:]
    print(f"pytest tests/reliability: exit {result.returncode} in {time.monotonic() - started:.0f}s"
          + (f" ({tail[0]})" if tail else ""))
    if result.returncode not in (0, 1) and not verbose:
        print(result.stdout[-4000:])
    return result.returncode


def _cells(row: dict[str, Any]) -> list[list[str]]:
    outcome = {"passed": "ok", "failed": "FAIL", "skipped": "skip"}.get(row["outcome"], row["outcome"])
    values = [row["case"], row["expected"], row["observed"], str(row["lost"]), str(row["doubled"]), outcome]
    return [textwrap.wrap(v, width) or [""] for v, (_, width) in zip(values, COLUMNS, strict=True)]


def print_table(data: dict[str, Any]) -> tuple[int, int, list[str]]:
    """Print the scorecard; returns (total lost, total doubled, failing tests)."""
    rows = data["rows"]
    rule = "+".join("-" * (width + 2) for _, width in COLUMNS)
    print(rule)
    print("|".join(f" {name:<{width}} " for name, width in COLUMNS))
    print(rule)
    for row in rows:
        cells = _cells(row)
        for i in range(max(len(c) for c in cells)):
            print("|".join(f" {(c[i] if i < len(c) else ''):<{w}} " for c, (_, w) in zip(cells, COLUMNS, strict=True)))
        print(rule)
    lost = sum(r["lost"] for r in rows)
    doubled = sum(r["doubled"] for r in rows)
    failing = sorted(t for t, outcome in data["tests"].items() if outcome == "failed")
    reported = {r["test"] for r in rows}
    silent = [t for t, o in data["tests"].items() if t not in reported and t != "(session)" and o != "passed"]
    print(f"{len(rows)} cases from {len(data['tests'])} tests: {lost} items lost, {doubled} alerts doubled, "
          f"{len(failing)} failing test(s)")
    for test in failing:
        print(f"  FAILED {test}")
    for test in silent:
        print(f"  (no scorecard row) {test}: {data['tests'][test]}")
    return lost, doubled, failing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="select", help="only the cases whose tests match (pytest -k expression)")
    parser.add_argument("--json", type=Path, help="also keep the scorecard as JSON here")
    parser.add_argument("--from", dest="saved", type=Path, help="print a saved scorecard instead of running")
    parser.add_argument("-v", "--verbose", action="store_true", help="show pytest's own output")
    args = parser.parse_args(argv)
    if args.saved:
        data = json.loads(args.saved.read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            card = Path(tmp) / "scorecard.json"
            code = run_suite(card, args.select, args.verbose)
            if not card.exists():
                print(f"no scorecard written (pytest exit {code})", file=sys.stderr)
                return 2
            if args.json:
                shutil.copyfile(card, args.json)
            data = json.loads(card.read_text(encoding="utf-8"))
    if not data["rows"]:
        print("no case reported", file=sys.stderr)
        return 2
    lost, doubled, failing = print_table(data)
    return 1 if lost or doubled or failing else 0


if __name__ == "__main__":
    sys.exit(main())
