"""The CLI as a user runs it: check-config, classify's exact contract (on our own lines and on the seeds), eval."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.processes import newsradar

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"


def test_check_config_ok_and_never_prints_secrets():
    secrets = {"SLACK_BOT_TOKEN": "xoxb-never-print-me", "SMTP_PASSWORD": "hunter2-never"}
    result = newsradar("check-config", "config/default.yaml", env=secrets)
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout and "bot token" in result.stdout
    for value in secrets.values():
        assert value not in result.stdout + result.stderr


def test_check_config_error_names_file_and_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("slack:\n  min_intervall: 2\n", encoding="utf-8")
    result = newsradar("check-config", str(bad))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "slack.min_intervall" in result.stderr


def _lines(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def test_classify_contract(tmp_path):
    records = [
        {"id": "a", "url": "https://x/1", "outlet": "경북일보", "title": "포항시, 이차전지 특화단지 투자 유치",
         "text": "포항시는 이차 전지 기업 세 곳과 투자협약을 맺었다.", "published": "2026-11-20T09:00:00+09:00"},
        {"id": "b", "url": "https://y/2", "outlet": "대경일보", "title": "경북도 예산, 복지 포함 전 분야 증액",
         "text": "복지와 교육을 포함한 예산안이 제출됐다."},
        {"id": "c", "url": "https://z/3", "outlet": "매일", "title": "CIBF2025 참가",
         "html": "<html><body><article><h1>CIBF2025 참가</h1><p>중국 선전에서 열린 CIBF2025에 "
                 "지역 기업이 참가했다.</p></article></body></html>"},
    ]
    result = newsradar("classify", str(_lines(tmp_path / "in.jsonl", records)))
    assert result.returncode == 0, result.stderr
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", "c"]
    assert set(out[0]) == {"id", "relevant", "terms", "matches", "story"}
    assert out[0]["relevant"] and set(out[0]["terms"]) == {"포항", "이차전지", "특화단지"}
    assert not out[1]["relevant"] and out[1]["terms"] == [] and out[1]["matches"] == []
    assert out[2]["terms"] == ["CIBF"]
    document = records[0]["title"] + "\n" + records[0]["text"]
    for match in out[0]["matches"]:
        assert set(match) == {"term", "surface", "start", "end", "score"}
        assert document[match["start"]:match["end"]] == match["surface"]
    assert len({o["story"] for o in out}) == 3


def test_classify_reports_bad_input_by_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "title": "x"}\nnot json\n', encoding="utf-8")
    result = newsradar("classify", str(path))
    assert result.returncode == 1 and "line 2" in result.stderr


def test_seeds_are_all_relevant_and_the_two_fair_trips_stay_apart(tmp_path):
    seeds = SHARED / "seeds"
    if not seeds.is_dir():
        pytest.skip(f"{seeds} is absent: the seed articles live beside the checkout (present in CI)")
    records = []
    for path in sorted(seeds.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        title = next(line.strip() for line in text.splitlines() if line.strip())
        records.append({"id": path.stem[:3], "url": f"https://seed/{path.stem}", "outlet": path.stem,
                        "title": title, "text": text})
    result = newsradar("classify", str(_lines(tmp_path / "seeds.jsonl", records)))
    assert result.returncode == 0, result.stderr
    out = {o["id"]: o for o in map(json.loads, result.stdout.splitlines())}
    assert len(out) == 5 and all(o["relevant"] for o in out.values()), out
    assert out["000"]["story"] != out["001"]["story"]
    assert "CIBF" in out["000"]["terms"]


def test_eval_prints_term_and_story_scores(tmp_path):
    records = [
        {"id": "1", "url": "u1", "outlet": "A", "title": "포항시 이차전지 특화단지 착공", "text": "",
         "terms": ["포항", "이차전지", "특화단지"], "relevant": True, "story": "s1"},
        {"id": "2", "url": "u2", "outlet": "B", "title": "복지 포함 예산 증액", "text": "",
         "terms": [], "relevant": False, "story": None},
    ]
    result = newsradar("eval", str(_lines(tmp_path / "labels.jsonl", records)))
    assert result.returncode == 0, result.stderr
    assert "포항" in result.stdout and "B-cubed" in result.stdout and "(overall)" in result.stdout


def test_classify_passes_a_malformed_line_through_as_an_error_row_and_goes_on(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": "a", "title": "포항 이차전지 투자", "published": "2026-12-01T09:00:00+09:00"}\n'
        '{"id": "b", "title": "포항 소식", "published": "2026-12-01T9:00:00+09:00"}\n'
        '{"title": "id 없는 줄"}\n'
        "\n"
        "not json\n"
        '{"id": "e", "title": "이차전지 수출"}\n',
        encoding="utf-8",
    )
    result = newsradar("classify", str(path))
    assert result.returncode == 1  # the run finished, but said that some lines were bad
    out = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["id"] for o in out] == ["a", "b", None, None, "e"]  # one row per input line, in order
    assert out[0]["terms"] == ["이차전지", "포항"] and out[4]["terms"] == ["이차전지"]
    assert out[1] == {"id": "b", "line": 2, "error": out[1]["error"]} and "'2026-12-01T9:00:00+09:00'" in out[1]["error"]
    assert out[2]["line"] == 3 and "missing field 'id'" in out[2]["error"]
    assert out[3]["line"] == 5 and "not valid JSON" in out[3]["error"]
    assert f"{path}: line 2 (id 'b'): 'published' '2026-12-01T9:00:00+09:00' is not an ISO 8601 time" in result.stderr
    assert "line 3: missing field 'id'" in result.stderr and "Traceback" not in result.stderr


def test_the_command_starts_no_blas_threads_and_its_processor_child_can_be_forked() -> None:
    """numpy's OpenBLAS pool would spin on the other core at import; with none, a process that imported the command
    and numpy runs one thread (what start_early checks before it forks)."""
    script = ("import newsradar.cli, numpy, os; from newsradar.processor_process import _only_thread; "
              "print(len(os.listdir('/proc/self/task')), _only_thread())")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.split() == ["1", "True"]
