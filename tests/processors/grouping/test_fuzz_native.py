"""Grouping's compiled core (processors/grouping/_core.c) fuzzed under AddressSanitizer and UBSan.

Why: the core reads text written by strangers (news titles and bodies) and arrays the index wrote (records,
postings, signatures replayed from the SQLite record), and every length is meant to be checked before it is
read. A plain test run cannot see an out-of-bounds read or a signed overflow; a sanitized build aborts on the first.

How: the test compiles _core.c with ``-fsanitize=address,undefined`` into a temporary directory and runs this very
module as the fuzz driver (``python -m``) in subprocesses, with the ASan runtime preloaded and ``PYTHONMALLOC=malloc``
(the core's PyMem buffers then come from ASan's allocator: in pymalloc's arenas an overflow of a small buffer goes
unseen). The driver loads the sanitized build as ``processors.grouping._core`` and puts it in
``processors.grouping.native``, so the whole package runs on it. With fixed seeds, two sections run side by side:

- ``text``: ``shingles``, ``word_sets`` and ``figures`` on hostile strings (empty, lone surrogates, non-BMP
  characters, NUL, combining marks, a 5,000-syllable word, 60,000-character texts, digits of many scripts,
  separators only, random mixes), each result compared with its pure-Python twin, and ``features.extract`` of
  hostile articles compared with the pure-Python path;
- ``grouper``: the Grouper on a few hundred random and hostile articles (copies with edits, empty titles, texts of
  0 to 20,000 characters, ten days of times, some unknown), compared with the pure-Python grouper, then with its
  SQLite record closed, reopened and replayed, also with damaged signatures in it; the twins of choose, put, find,
  evidence, probabilities and the postings on the resulting index; and every entry point called with malformed
  arguments (the package's own calls, recorded, then mutated: wrong lengths, types and values, truncated
  signatures), which must raise a Python exception and never crash.

A sanitizer report, an unexpected exception or a twin mismatch fails the test with the driver's output. The
findings the fuzz made are kept as regression reproducers (``FOUND``), each run alone under the sanitizers.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import itertools
import logging
import os
import random
import shutil
import sqlite3
import struct
import subprocess
import sys
import sysconfig
import time
from array import array
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from newsradar.events import Article
from processors.grouping import Grouper, candidates, decision, evidence, features, native, shingles, signature, text
from processors.grouping.index import Index, whole_seconds
from processors.grouping.postings import Postings

ROOT = Path(__file__).resolve().parents[3]
SOURCE = ROOT / "processors" / "grouping" / "_core.c"
DRIVER = "tests.processors.grouping.test_fuzz_native"
SANITIZE = ["-shared", "-fPIC", "-O1", "-g", "-fno-omit-frame-pointer", "-fsanitize=address,undefined",
            "-fno-sanitize-recover=undefined"]  # fmt: skip
SECTIONS = ("text", "grouper")
DRIVER_TIMEOUT_S = 110
SANITIZER_MARKS = ("AddressSanitizer", "runtime error")


# --- the test: build, run the driver, read its verdict --------------------------------------------------------------


def build_sanitized(source: Path, out_dir: Path) -> Path:
    """``source`` compiled with ASan and UBSan into ``out_dir``; fails the test with gcc's stderr if it cannot."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.fail("gcc not found: the sanitized build of the grouping core needs it")
    out = out_dir / ("_core" + sysconfig.get_config_var("EXT_SUFFIX"))
    cmd = [gcc, *SANITIZE, "-I", sysconfig.get_paths()["include"], str(source), "-o", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    if done.returncode != 0 or not out.is_file():
        pytest.fail(f"sanitized build failed: {' '.join(cmd)}\n{done.stderr}")
    return out


def sanitizer_env() -> dict[str, str]:
    """A driver's environment: the ASan runtime preloaded (the interpreter is not built with it), halt on a report."""
    found = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True, timeout=60)
    runtime = Path(found.stdout.strip()).resolve()
    if not runtime.is_file():  # gcc prints the bare name back when it has no such library
        pytest.fail(f"no ASan runtime: gcc -print-file-name=libasan.so says {found.stdout.strip()!r} (libasan8?)")
    env = dict(os.environ)
    env.update(
        LD_PRELOAD=str(runtime),
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1",  # CPython itself leaks at exit
        UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1",
        PYTHONMALLOC="malloc",  # PyMem_Malloc through ASan's malloc: every core buffer gets redzones
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])),
        PYTHONHASHSEED="0",  # article id hashes, so the run is the same every time
    )
    return env


@dataclass
class Outcome:
    section: str
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def problems(self) -> list[str]:
        found = [f"exit status {self.returncode}"] if self.returncode != 0 else []
        return found + [f"stderr mentions {mark!r}" for mark in SANITIZER_MARKS if mark in self.stderr]

    def report(self) -> str:
        return (f"driver section {self.section!r} ({self.seconds:.0f} s): {'; '.join(self.problems())}\n"
                f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-30000:]}")  # fmt: skip


def run_driver(core: Path, workdir: Path, sections: tuple[str, ...]) -> list[Outcome]:
    """Each section in its own sanitized subprocess, all at once (CI has two cores)."""
    env = sanitizer_env()
    started = time.monotonic()
    running = []
    for section in sections:
        where = workdir / section.replace(":", "_")
        where.mkdir(parents=True)
        out, err = (where / "stdout").open("wb"), (where / "stderr").open("wb")
        proc = subprocess.Popen([sys.executable, "-m", DRIVER, str(core), str(where), section], cwd=ROOT, env=env,
                                stdout=out, stderr=err)  # fmt: skip
        running.append((section, where, proc, out, err))
    outcomes = []
    for section, where, proc, out, err in running:
        try:
            proc.wait(timeout=max(1.0, DRIVER_TIMEOUT_S - (time.monotonic() - started)))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        out.close()
        err.close()
        stdout, stderr = ((where / name).read_text(errors="replace") for name in ("stdout", "stderr"))
        outcomes.append(Outcome(section, proc.returncode, stdout, stderr, time.monotonic() - started))
    return outcomes


@pytest.fixture(scope="module")
def sanitized_core(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_sanitized(SOURCE, tmp_path_factory.mktemp("sanitized_core"))


def test_core_survives_fuzzing_under_sanitizers(sanitized_core: Path, tmp_path: Path) -> None:
    outcomes = run_driver(sanitized_core, tmp_path, SECTIONS)
    failed = [o.report() for o in outcomes if o.problems()]
    assert not failed, "\n\n".join(failed)
    for o in outcomes:  # the tallies, for `pytest -s`
        print(f"[{o.section}] {o.seconds:.1f} s\n{o.stdout}")


# --- the driver (runs in the sanitized subprocess) -----------------------------------------------------------------

ALLOWED = (ValueError, TypeError, IndexError, OverflowError, BufferError)  # what malformed arguments may raise
KST = timezone(timedelta(hours=9))
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=timezone.utc)


def load_sanitized(path: Path) -> ModuleType:
    """The sanitized build, loaded from its file, as the core of the whole package."""
    spec = importlib.util.spec_from_file_location("processors.grouping._core", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    native.core = module
    native.enabled = True
    assert native.active() is module and module.__file__ == str(path)
    return module


@contextmanager
def python_path() -> Iterator[None]:
    """The package on its pure-Python twins for a while."""
    native.enabled = False
    try:
        yield
    finally:
        native.enabled = True


def snapshot(value: Any) -> Any:
    """A copy of the arrays among a call's arguments (as they were before the call wrote into them)."""
    if isinstance(value, np.ndarray | array):
        return value.copy() if isinstance(value, np.ndarray) else array(value.typecode, value)
    return tuple(snapshot(v) for v in value) if isinstance(value, tuple) else value


class Recorder:
    """The core, keeping the arguments of its latest call to each function (the package's own calls, to mutate).

    With ``copies``, the arrays are kept as they were before the call (a merge writes into its own inputs)."""

    def __init__(self, core: ModuleType, copies: bool) -> None:
        self.core = core
        self.copies = copies
        self.calls: dict[str, tuple[Any, ...]] = {}

    def __getattr__(self, name: str) -> Any:
        function = getattr(self.core, name)

        def call(*args: Any) -> Any:
            self.calls[name] = snapshot(args) if self.copies else args
            return function(*args)

        return call


@contextmanager
def recording(core: ModuleType, copies: bool = False) -> Iterator[Recorder]:
    recorder = Recorder(core, copies)
    native.core = recorder  # type: ignore[assignment]
    try:
        yield recorder
    finally:
        native.core = core


class Stopwatch:
    """Seconds spent in each step of a section (printed with its tallies)."""

    def __init__(self) -> None:
        self.start = time.monotonic()
        self.laps: list[str] = []

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.laps.append(f"{step} {now - self.start:.1f} s")
        self.start = now

    def __str__(self) -> str:
        return ", ".join(self.laps)


class Mismatch(AssertionError):
    pass


REPRODUCER = Path("mismatch.txt")  # where a mismatch's inputs are written in full (main puts it in the workdir)


def expect_equal(what: str, got: Any, want: Any, *inputs: Any) -> None:
    """Fails with the inputs (as a reproducer) when the core and its twin disagree."""
    same = np.array_equal(np.asarray(got), np.asarray(want)) if isinstance(got, np.ndarray) else got == want
    if not same:
        REPRODUCER.write_text(f"{what}\ninputs = {ascii(inputs)}\n", encoding="ascii")
        shown = ", ".join(ascii(x)[:300] + (f" (len {len(x)})" if isinstance(x, str) else "") for x in inputs)
        raise Mismatch(f"{what}: core {ascii(got)[:300]} != twin {ascii(want)[:300]} for {shown} "
                       f"(inputs in full: {REPRODUCER})")  # fmt: skip


def u32(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint32)


def u16(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype=np.uint16)


# --- hostile and random text --------------------------------------------------------------------------------------

SUBJECTS = ("포스코퓨처엠", "에코프로비엠", "LG에너지솔루션", "삼성SDI", "포항시", "브릴스", "싸이몬", "SK온", "현대차",
            "한국전력", "RAV4", "테슬라")  # fmt: skip
KO_WORDS = ("배터리", "전고체배터리", "공장", "준공", "광양에", "포항시는", "정부가", "발표했다", "이라는", "에서는",
            "양극재", "수출", "증가", "계약을", "체결했다", "단속", "세관", "과", "의", "는", "오늘의", "뉴스", "[사설]",
            "[종합]", "기자수첩", "마감시황", "무단전재", "및", "재배포", "금지")  # fmt: skip
LATIN = ("rav4", "RAV4", "LG", "sk", "Samsung", "abc", "x", "kWh", "EV", "ESS", "a1b2", "ＡＢＣ", "ﬁle", "Ⅻ")
FIGURES = ("7.0%", "7%", "428억", "3000만", "31명", "18명", "77km", "12㎞", "1,234.50원", "3 명", "2025년", "5월",
           "10일", "3시", "5퍼센트", "40 gwh", "2.5조", "100달러", "7.%", "0.50%", "1,2,3억", "١٢٣ 명", "５０%")  # fmt: skip
DIGITS = ("٣", "٤٥", "５", "１２３", "०१२", "𝟘𝟙", "߀", "๓", "᠑", "0", "42")
SEPARATORS = (" ", " ", " ", "  ", "\t", "\n", "\n\n", "\u3000", "\xa0", ",", ".", "...", "…", "·", '"', "'", "‘",
              "“", "[", "]", "(", ")", ", ", "，", "|", " | ", "-", " - ", "%")  # fmt: skip
ODD = ("\x00", "\ud800", "\udc00", "\udfff", "😀", "👍🏽", "\u0301", "\u200b", "\ufeff", "\U0010ffff", "\uffff",
       "漢字", "ｶﾀｶﾅ", "㈜", "℃", "㎞", "\u1100\u1161", "\r", "\x7f", "\u2028")  # fmt: skip


def syllables(rng: random.Random, n: int) -> str:
    return "".join(chr(0xAC00 + rng.randrange(11172)) for _ in range(n))


def random_text(rng: random.Random, size: int) -> str:
    """About ``size`` characters of tokens drawn from every kind a news text (or a broken feed) holds."""
    kinds: list[tuple[float, Callable[[], str]]] = [
        (30, lambda: rng.choice(KO_WORDS)),
        (10, lambda: syllables(rng, rng.randint(1, 6))),
        (8, lambda: rng.choice(LATIN)),
        (8, lambda: rng.choice(FIGURES)),
        (3, lambda: rng.choice(DIGITS)),
        (3, lambda: rng.choice(SUBJECTS)),
        (35, lambda: rng.choice(SEPARATORS)),
        (3, lambda: rng.choice(ODD)),
    ]
    weights = [w for w, _ in kinds]
    out: list[str] = []
    length = 0
    while length < size:
        token = rng.choices(kinds, weights)[0][1]()
        out.append(token)
        length += len(token)
    return "".join(out)[:size]


def hostile_texts(rng: random.Random) -> list[str]:
    """Strings a parser of strangers' text must survive, and a few random ones of every length."""
    word = syllables(rng, 5000)
    fixed = [
        "", "a", "가", "1", "%", "ab", "가나", "abc", "가나다", "abcd", "abcde", "가나다라마", "AbCdE", "12345",
        "\ud800", "\udfff", "a\ud800b\udc00cdefg", "\ud800" * 10 + "abcdef", "\udbff\udfff가나다라마",
        "😀", "😀" * 5, "𝟘𝟙𝟚𝟛𝟜", "abc😀def😀ghi", "\U0010ffff" * 3, "가😀나😀다😀라😀마😀바",
        "\x00", "\x00" * 8, "a\x00b\x00c\x00d\x00e\x00f", "가\x00나\x00다\x00라\x00마", "\x00abcdef\x00",
        "e\u0301" * 50, "\u1100\u1161\u11a8" * 30, "가\u0300나\u0301다\u0302라\u0303마", "\u0301" * 100,
        word, "가" * 5000, word[:255], word[:256], word[:257], "a" * 5000, "a1" * 3000,
        ("포스코퓨처엠은 광양에서는 " * 5000)[:60_000], random_text(rng, 60_000), word * 12,
        # The core's fixed buffers at their edges: 16,380 shingles fill its static table of values seen, 16,390 do not
        syllables(rng, 16_380), syllables(rng, 16_390), syllables(rng, 30_000), "a" * 20_000, "ab" * 4100,
        "1" * 70 + "%", "1." + "0" * 100 + "명", "٣" * 80 + "%", "1," * 50 + "1억",  # figure values past 64 characters
        "٣", "٣٤٥%", "٣٤٥ 명", "٠٫٥%", "５", "５０%", "１２３억", "१२३ 명", "𝟙𝟚%", "๓๔๕원", "߁߂߃ 명",
        "..,,", ".", ",", "..,,..,,", "…" * 100, " " * 100, "\t\n\r\u3000\xa0" * 20, ",,,,%%%%",
        "1" * 64 + "%", "1." + "0" * 60 + "%", "1" * 200, "1.5.5.5.5 명", "1,2,3,4 억", "1,,2", "1..2명", "7.0%",
        "7.%", ".5%", "0.0%", "00.00%", "10.000km", "428억3000만", "3 명", "3  명", "3\n명", "3\u3000명", "12㎞",
        "12 ㎞", "5퍼센트", "5 퍼센트", "10kwh", "10 mwh", "2025년 5월 10일 3시", "3마력", "7mm", "7㎜", "1위",
        "RAV4 rav4 Rav4", "ＡＢＣ ａｂｃ １２３", "ﬁﬂ", "Ⅻ ⅻ", "㈜삼성", "℃ ㎏ ㎞ ㎜",
        "[사설] 포스코퓨처엠, 광양에 배터리 공장 준공...", "에코프로비엠, 31명 채용 … 7.0% 증가 - 연합뉴스",
        "[속보][종합] 브릴스, 싸이몬 인수", "포항시는 포항시에서는 포항시에게서 이라는", "가나다는", "가는", "이라고",
        "a1b2c3d4e5", "abc123def", "1abc", "x" * 300, "가1나2다3", "rav4가", "1a2b3c%",
    ]  # fmt: skip
    sizes = [1, 2, 3, 4, 5, 6, 10, 50, 99, 100, 101, 150, 300, 600, 2000, 20_000]
    return fixed + [random_text(rng, size) for size in sizes for _ in range(6)]


# --- section "text": shingles, word_sets, figures against their twins ----------------------------------------------


def check_shingles(core: ModuleType, s: str, rng: random.Random) -> None:
    ref, ref_pool, ref_sample, ref_passage = shingles.shingle_hashes_py(s)
    distinct, pool, sample, passage = map(u32, core.shingles(s, shingles.POOL, shingles.SAMPLE_BELOW,
                                                             shingles.SAMPLE_CAP, shingles.PASSAGE_BELOW))  # fmt: skip
    expect_equal("shingles distinct (as a set)", sorted(distinct.tolist()), ref.tolist(), s)
    expect_equal("shingles pool", pool, ref_pool, s)
    expect_equal("shingles sample", sample, ref_sample, s)
    expect_equal("shingles passage", passage, ref_passage, s)
    for _ in range(3):  # other pool sizes and samples than the package's: derived from the twin's distinct hashes
        want = rng.choice((0, 1, 2, 5, 64, 100, 1000, 70_000))
        below = rng.choice((0, 1, 1 << 20, 1 << 26, 1 << 31, 2**32 - 1, 2**32, 2**64 - 1))
        passage_below = rng.choice((0, 1, 1 << 20, 1 << 26, 1 << 30, 1 << 31, 2**32 - 1, 2**32, 2**64 - 1))
        cap = rng.choice((0, 1, 32, 10_000))
        _, pool, sample, passage = map(u32, core.shingles(s, want, below, cap, passage_below))
        expect_equal(f"shingles pool of {want}", pool, ref[:want], s)
        expect_equal(f"shingles sample below {below} cap {cap} (passage below {passage_below})", sample,
                     ref[ref < below][:cap], s)  # fmt: skip
        expect_equal(f"shingles passage below {passage_below}", passage, ref[ref < passage_below], s)


@functools.cache
def norm(s: str) -> str:
    """text.norm, once per text (NFKC of a long random text takes seconds under ASan)."""
    return text.norm(s)


def check_words(core: ModuleType, head: str, body: str) -> None:
    head_norm, body_norm = norm(head), norm(body)
    cuts = list(itertools.product((False, True), repeat=2))
    if len(head) + len(body) >= 5000:  # the Python twin is slow on long texts
        cuts = [(False, False), (True, True)]
    for head_cut, body_cut in cuts:
        got = core.word_sets(head_norm, head_cut, body_norm, body_cut)
        want = features.word_arrays_py(head_norm, head_cut, body_norm, body_cut)
        for name, data, ref, view in zip(("head", "bigrams", "text", "everything"), got, want, (u32, u16, u32, u32),
                                         strict=True):  # fmt: skip
            expect_equal(f"word_sets {name} (cut {head_cut}, {body_cut})", view(data), ref, head_norm, body_norm)
    core.word_sets(head, True, body, False)  # not normalised: never what the package passes, but must not crash


def check_figures(core: ModuleType, head: str, lead: str) -> None:
    head_norm, lead_norm = norm(head), norm(lead)
    got_head, got_all = map(u32, core.figures(head_norm, lead_norm))
    want_head = text.figures(head_norm)
    expect_equal("figures of the headline", got_head.tolist(), sorted(want_head), head_norm)
    expect_equal("figures of headline and lead", got_all.tolist(), sorted(want_head | text.figures(lead_norm)),
                 head_norm, lead_norm)  # fmt: skip
    core.figures(head, lead)


def check_extract(title: str, body: str, outlet: str) -> None:
    """``features.extract`` on the core and on the pure-Python path give the same arrays."""
    got = features.extract(title, body, outlet)
    with python_path():
        want = features.extract(title, body, outlet)
    names = ["head", "head_bigrams", "text", "everything", "subject", "pool", "sample", "figures", "head_figures",
             "passage"]
    for name in names:
        expect_equal(f"extract {name}", getattr(got, name), getattr(want, name), title, body, outlet)
    expect_equal("extract shingles (as a set)", sorted(got.shingles.tolist()), want.shingles.tolist(), body)


def bad_text_calls(core: ModuleType) -> int:
    """Arguments of the wrong kind for the text functions: each must raise."""
    calls = [
        (core.shingles, (b"abcdef", 64, 1, 32, 1)), (core.shingles, ("abcdef", -1, 1, 32, 1)),
        (core.shingles, ("abcdef", 64, 1, -1, 1)), (core.shingles, ("abcdef", 2**64, 1, 32, 1)),
        (core.shingles, ("abcdef", 64, 1, 32)), (core.shingles, (None, 64, 1, 32, 1)),
        (core.shingles, ("abcdef", 1.5, 1, 32, 1)), (core.shingles, ("abcdef", 64, 1, 32, 1.5)),
        (core.word_sets, (b"a", False, "b", False)), (core.word_sets, ("a", False, None, False)),
        (core.word_sets, ("a", False)), (core.figures, (1, "a")), (core.figures, ("a",)), (core.figures, ("a", b"b")),
    ]  # fmt: skip
    for function, args in calls:
        try:
            function(*args)
        except ALLOWED:
            continue
        raise AssertionError(f"{function.__name__}{ascii(args)} did not raise")
    return len(calls)


def text_section(core: ModuleType, rng: random.Random) -> None:
    texts = hostile_texts(rng)
    short = [s for s in texts if len(s) <= 2000]
    pairs = [(s, s) for s in texts] + [(rng.choice(short), rng.choice(short)) for _ in range(900)]
    pairs += [(rng.choice(texts), rng.choice(short)) for _ in range(40)]
    for s in texts:
        check_shingles(core, s, rng)
    for head, body in pairs:
        check_words(core, head, body)
        check_figures(core, head, body)
    extracts = [(rng.choice(short), rng.choice(texts)) for _ in range(150)]
    for head, body in extracts:
        check_extract(head, body, rng.choice(("", "연합뉴스", "ＫＢＳ", "\x00", "a" * 300)))
    print(f"text: {len(texts)} texts, {len(pairs)} pairs, {len(extracts)} extracts, {bad_text_calls(core)} bad calls")


# --- section "grouper": the whole package on the sanitized core ----------------------------------------------------


def edited_copy(rng: random.Random, base: Article, n: int) -> Article:
    """A copy of ``base`` as another outlet runs it: a new headline, a trimmed or extended text, its own furniture."""
    title, body = base.title, base.text
    title = rng.choice([
        title, f"{title} - {base.outlet}", title[: max(1, len(title) // 2)] + "...", title.upper(), title + " …",
        title.replace(",", " ,"), "[종합] " + title, random_text(rng, len(title) or 1), title[::-1], "",
    ])  # fmt: skip
    body = rng.choice([
        body, body[rng.randint(0, min(200, len(body))):], body[:150], body[:50], body + random_text(rng, 120),
        body.replace(" ", "  "), body.replace(".", ". \n"), "", base.title, body[: len(body) // 2] + "...",
    ])  # fmt: skip
    shift = timedelta(minutes=rng.uniform(-600, 600))
    when = None if base.published_at is None else base.published_at + shift
    return replace(base, id=f"{base.id}-copy{n}", outlet=rng.choice(("연합뉴스", "뉴시스", "", "KBS")), title=title,
                   text=body, published_at=when, url=f"https://example.com/{base.id}/{n}")  # fmt: skip


def make_articles(rng: random.Random, events: int) -> list[Article]:
    """A few hundred articles: events with edited copies, and hostile ones; ten days of times, a few unknown."""
    # Not the longest: the pure-Python twin is slow on them (the text section has them).
    hostile = [s for s in hostile_texts(rng) if len(s) <= 20_000]
    out: list[Article] = []
    for e in range(events):
        when: datetime | None = T0 + timedelta(seconds=rng.uniform(0, 10 * 86400))
        if rng.random() < 0.5:
            when = when.astimezone(KST)  # type: ignore[union-attr]
        if rng.random() < 0.04:
            when = None
        size = rng.choice((0, 0, 50, 150, 150, 600, 2000, 2000, 20_000))
        head = f"{rng.choice(SUBJECTS)}, {random_text(rng, rng.randint(8, 60))}"
        base = Article(id=f"e{e}", source="fuzz", outlet=rng.choice(("연합뉴스", "뉴시스", "")),
                       url=f"https://example.com/e{e}", title=head, text=random_text(rng, size), published_at=when,
                       fetched_at=T0)  # fmt: skip
        out.append(base)
        out.extend(edited_copy(rng, base, n) for n in range(rng.choice((0, 0, 1, 2, 4))))
    for h in range(len(hostile) // 2):
        when = T0 + timedelta(seconds=rng.uniform(0, 10 * 86400))
        out.append(Article(id=f"h{h}", source="fuzz", outlet=rng.choice(("", "연합뉴스", "\x00")), url="",
                           title=rng.choice(hostile), text=rng.choice(hostile), published_at=when,
                           fetched_at=T0))  # fmt: skip
    rng.shuffle(out)
    return out


def strange_times(rng: random.Random) -> list[Article]:
    """Articles with no time at all (grouped at now) or times a uint32 cannot hold (clamped)."""
    utc = timezone.utc
    times = [None, datetime(1960, 1, 1, tzinfo=utc), datetime(1970, 1, 1, tzinfo=KST), datetime(2200, 1, 1, tzinfo=utc),
             datetime(2106, 2, 7, 6, 28, 15, tzinfo=utc)]  # fmt: skip
    return [Article(id=f"odd{i}", source="fuzz", outlet="", url="", title=random_text(rng, 30),
                    text=random_text(rng, rng.choice((0, 300))), published_at=when)
            for i, when in enumerate(times)]  # fmt: skip


def damaged(rng: random.Random, blob: bytes) -> bytes:
    """A recorded signature as a bad disk, a bug or an attacker could leave it."""
    header = signature._HEADER.size
    kind = rng.randrange(7)
    if kind == 0:  # cut anywhere, often inside the header
        return blob[: rng.randrange(len(blob) + 1)]
    if kind == 1:  # random bytes flipped
        data = bytearray(blob)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:  # a length field pointing past the end, or too long for a record
        data = bytearray(blob)
        at = 12 + 2 * rng.randrange(12)
        data[at : at + 2] = struct.pack("<H", rng.choice((1, 255, 256, 4096, 65535)))
        return bytes(data)
    if kind == 3:  # every length at its largest that still fits a record, over nothing
        return blob[:12] + struct.pack("<12H", *([255] * 12))
    if kind == 4:  # random bytes after a valid version byte
        return bytes([blob[0]]) + rng.randbytes(rng.randint(0, 600))
    if kind == 5:  # lengths that fit the blob but describe arrays of values nobody wrote
        lens = [rng.randint(0, 255) for _ in range(10)] + [rng.randint(0, 9), rng.randint(0, 9)]
        body = rng.randbytes(4 * sum(lens[:7]) + 2 * sum(lens[7:10]))
        return blob[:12] + struct.pack("<12H", *lens) + body
    return blob[:header] + rng.randbytes(len(blob) - header)


def time_of(article: Article) -> int:
    """The article's time as the grouper reads it (every generated article has a published or a fetched time)."""
    return whole_seconds((article.published_at or article.fetched_at or T0).timestamp())


def assign_all(grouper: Grouper, articles: list[Article]) -> list[str]:
    return [grouper.assign(a) for a in articles]


def check_grouper_twin(articles: list[Article]) -> Grouper:
    """The grouper on the core places every article where the pure-Python grouper does."""
    native_grouper = Grouper()
    got = assign_all(native_grouper, articles)
    with python_path():
        want = assign_all(Grouper(), articles)
    for article, g, w in zip(articles, got, want, strict=True):
        expect_equal("story of an article (core vs pure-Python grouper)", g, w, article.id, article.title)
    return native_grouper


def record_passes(rng: random.Random, articles: list[Article], where: Path) -> int:
    """The durable grouper: closed, reopened (replay), redeliveries, then a record with damaged signatures replayed."""
    path = where / "grouping.sqlite"
    half = articles[: len(articles) // 2]
    first = Grouper(path=path)
    assign_all(first, half)
    redelivered = assign_all(first, half)  # their stories now, merges included
    first.close()
    again = Grouper(path=path)
    horizon = again._index.clock - again._index.window_s + 3600  # older ones left the window with the replay
    kept = [(a, story) for a, story in zip(half, redelivered, strict=True) if time_of(a) >= horizon]
    for article, story in kept:
        expect_equal("story of a redelivered article after a replay", again.assign(article), story, article.id)
    assign_all(again, articles[len(half) :])
    again.evict()
    again.close()
    conn = sqlite3.connect(str(path))
    rows = conn.execute("SELECT article_id, story_id, t, signature FROM grouped").fetchall()
    bad = [(f"{a}-damaged{i}", s, t, damaged(rng, bytes(b))) for i, (a, s, t, b) in enumerate(rows * 3)]
    conn.executemany("INSERT INTO grouped (article_id, story_id, t, signature) VALUES (?, ?, ?, ?)", bad)
    conn.commit()
    conn.close()
    replayed = Grouper(path=path)
    assign_all(replayed, [replace(a, id=a.id + "-after") for a in articles[:60]])
    for article in articles[:30]:
        replayed.explain(article)
    assign_all(replayed, strange_times(rng))  # last: a time of 2106 moves the clock past every other article
    replayed.evict()
    replayed.close()
    return len(bad)


def probes(rng: random.Random, articles: list[Article]) -> list[Article]:
    """New articles to compare against an index: copies of indexed ones and strangers."""
    picked = rng.sample(articles, min(60, len(articles)))
    return [edited_copy(rng, a, 99) for a in picked] + make_articles(random.Random(rng.random()), 8)[:30]


def expect_close(what: str, got: Any, want: Any, *inputs: Any) -> None:
    """Like expect_equal for floats, which may differ in their last bits (sums in another order)."""
    if isinstance(got, bool | str) or not np.allclose(np.asarray(got), np.asarray(want), rtol=1e-9, atol=1e-12):
        expect_equal(what, got, want, *inputs)


def check_index_twins(grouper: Grouper, new: list[Article]) -> int:
    """choose, find, evidence and probabilities on the core against the pure-Python path, on a grouper's index."""
    index = grouper._index
    compared = 0
    for article in new:
        t = time_of(article)
        feats = features.extract(article.title, article.text, article.outlet)
        blob = signature.choose_encoded(feats, t, index.rarity)
        found = candidates.find(index, feats, t)
        with python_path():
            expect_equal("choose (encoded signature)", blob, signature.choose_encoded(feats, t, index.rarity),
                         article.title)  # fmt: skip
            ref = candidates.find(index, feats, t)
        for name, got, want in zip(found._fields, found, ref, strict=True):
            expect_equal(f"find: {name}", got, want, article.title)
        if not found.stories:
            continue
        ev = evidence.gather(feats, index, found, t)
        with python_path():
            ev_ref = evidence.gather(feats, index, found, t)
        for field in dataclasses.fields(ev):
            name = field.name
            expect_close(f"evidence: {name}", getattr(ev, name), getattr(ev_ref, name), article.title)
        p = decision.probabilities(ev)
        with python_path():
            expect_close("probabilities", p, decision.probabilities(ev), article.title)
        compared += 1
    return compared


def states_equal(a: Index, b: Index, what: str) -> None:
    expect_equal(f"{what}: records", a.records.view().tobytes(), b.records.view().tobytes())
    expect_equal(f"{what}: flat32", a.flat32.view(), b.flat32.view())
    expect_equal(f"{what}: flat16", a.flat16.view(), b.flat16.view())
    for name in ("last", "first", "members_n"):
        expect_equal(f"{what}: {name}", getattr(a, name).tolist(), getattr(b, name).tolist())
    for name in ("words", "bigrams", "shingles"):
        expect_equal(f"{what}: rarity.{name}", getattr(a.rarity, name), getattr(b.rarity, name))
    pa, pb = a.postings._pending, b.postings._pending
    expect_equal(f"{what}: pending count", pa.n, pb.n)
    for name in ("keys", "vals", "chain"):
        expect_equal(f"{what}: pending {name}", getattr(pa, name)[: pa.n], getattr(pb, name)[: pb.n])
    expect_equal(f"{what}: pending heads", pa.heads, pb.heads)


def signatures(rng: random.Random, count: int) -> list[bytes]:
    """Recorded signatures of random articles, half of them with random values in their arrays (the header kept)."""
    rarity = Index(7 * 86400.0).rarity
    start = int(T0.timestamp())
    out = []
    for _ in range(count):
        title, body = random_text(rng, rng.randint(5, 80)), random_text(rng, rng.choice((0, 150, 2000)))
        feats = features.extract(title, body, "")
        blob = signature.choose_encoded(feats, start + rng.randrange(12 * 86400), rarity)
        header = signature._HEADER.size
        out.append(blob if rng.random() < 0.5 else blob[:header] + rng.randbytes(len(blob) - header))
    return sorted(out, key=signature.time_of)


def check_put_twin(rng: random.Random, blobs: list[bytes]) -> int:
    """Index.add_encoded on the core (put) and on the pure-Python path (add of the decoded signature) agree."""
    window = 7 * 86400.0
    got, want = Index(window), Index(window)
    story = 0
    for n, blob in enumerate(blobs):
        if n == 0 or rng.random() < 0.3:
            story = got.new_story(f"s{n}")
            want.new_story(f"s{n}")
        got.add_encoded(n, blob, story)
        with python_path():
            want.add_encoded(n, blob, story)
    states_equal(got, want, "put")
    return len(blobs)


def check_postings_twin(rng: random.Random) -> int:
    """Postings on the core (pending_add, postings_merge, find's lookups) and on the pure-Python path."""
    got, want = Postings(), Postings()
    keys_seen: list[int] = []
    for round_ in range(4):
        for value in range(rng.randint(1, 400)):
            recent = keys_seen[-3:] or [7]  # keys met before: postings of several values
            keys = np.array([rng.choice((rng.getrandbits(32), rng.randrange(70_000), *recent))
                             for _ in range(rng.randint(0, 20))], dtype=np.uint32)  # fmt: skip
            keys_seen.extend(keys.tolist())
            got.add(keys, value)
            with python_path():
                want.add(keys, value)
        got.merge()
        with python_path():
            want.merge()
        expect_equal(f"postings keys after merge {round_}", got.keys, want.keys)
        expect_equal(f"postings vals after merge {round_}", got.vals, want.vals)
        expect_equal(f"postings starts after merge {round_}", got.starts, want.starts)
    return len(keys_seen)


# Malformed arguments: each argument of a recorded call replaced by values of the wrong length, type, dtype, or
# content; each call must return or raise one of ALLOWED.


def array_variants(value: np.ndarray, rng: random.Random) -> list[Any]:
    n = len(value)
    noise = np.random.default_rng(rng.getrandbits(64))
    out: list[Any] = [value[:0], value[: n - 1], np.concatenate([value, value[:1]]) if n else value[:0]]
    raw = value.view(np.uint8)
    out += [value.tobytes(), bytearray(value.tobytes()), raw, raw[: max(0, len(raw) - 1)]]
    if value.dtype.names is None:
        out += [value.astype(np.float64), value.astype(np.int8), np.asarray(value).reshape(-1, 1)]
        if n >= 2:
            out.append(value[::2])  # not contiguous
        out.append(np.frombuffer(noise.bytes(value.nbytes), dtype=value.dtype))  # any bits: NaN, negative, huge
        out.append(noise.integers(0, n + 3, size=n).astype(value.dtype))  # small values: slots, owners, offsets
    else:  # the index's records: random bytes where the index wrote fields
        out.append(np.frombuffer(noise.bytes(value.nbytes), dtype=value.dtype).copy())
    frozen = value.copy()
    frozen.flags.writeable = False
    return [*out, frozen, "not an array", None, 3]


def column_variants(value: array, rng: random.Random) -> list[Any]:
    n = len(value)
    return [array(value.typecode), value[: n - 1], value + value[:1], array("d", [0.0] * n), array("b", [0] * n),
            array(value.typecode, [rng.randint(-3 if value.typecode.islower() else 0, n + 3) for _ in range(n)]),
            bytes(value), [1, 2, 3], None]


def int_variants(value: int) -> list[Any]:
    return [-1, 0, 1, 2, value + 1, value - 1, 255, 65535, 2**32, 2**63, 2**64, -(2**63) - 1, 1.5, None, "7"]


def float_variants(value: float) -> list[Any]:
    return [float("nan"), float("inf"), float("-inf"), -0.0, -1.0, 1e308, -1e308, 0.0, value * 2, None, "x", 10**400]


def variants(value: Any, rng: random.Random) -> list[Any]:
    """Wrong values for one argument, chosen by the kind of the right one."""
    if isinstance(value, np.ndarray):
        return array_variants(value, rng)
    if isinstance(value, array):
        return column_variants(value, rng)
    if isinstance(value, bool):
        return [None, 2, "x", np.array([1, 2])]
    if isinstance(value, int):
        return int_variants(value)
    if isinstance(value, float):
        return float_variants(value)
    if isinstance(value, str):
        return ["", "\ud800", "😀" * 10, "가나다라마바사" * 500, "\x00" * 5, b"bytes", None, 5]
    if isinstance(value, bytes):
        return [damaged(rng, value) for _ in range(40)] + [b"", value[:35], bytearray(value), memoryview(value), "s"]
    if isinstance(value, tuple):
        out: list[Any] = [value[:-1], (*value, value[-1]), (), list(value), None]
        for i, item in enumerate(value):
            out += [value[:i] + (v,) + value[i + 1 :] for v in variants(item, rng)[:12]]
        return out
    return [None]


def call_malformed(core: ModuleType, name: str, args: tuple[Any, ...], tally: dict[str, int]) -> None:
    try:
        getattr(core, name)(*args)
        outcome = "returned"
    except ALLOWED as exc:
        outcome = type(exc).__name__
    except Exception as exc:
        shown = ", ".join(f"{type(a).__name__}:{ascii(a)[:80]}" for a in args)
        raise AssertionError(f"core.{name} raised {type(exc).__name__}: {exc} for ({shown})") from exc
    tally[outcome] = tally.get(outcome, 0) + 1


def fuzz_arguments(core: ModuleType, name: str, args: tuple[Any, ...], rng: random.Random, tally: dict[str, int]
                   ) -> None:  # fmt: skip
    """One argument wrong at a time, then a few at once; the right call first (it must work)."""
    getattr(core, name)(*args)
    options = [variants(a, rng) for a in args]
    for i, wrong in enumerate(options):
        for v in wrong:
            call_malformed(core, name, args[:i] + (v,) + args[i + 1 :], tally)
    for _ in range(150):
        mutated = list(args)
        for i in rng.sample(range(len(args)), k=min(len(args), rng.randint(2, 4))):
            mutated[i] = rng.choice(options[i])
        call_malformed(core, name, tuple(mutated), tally)
    call_malformed(core, name, args[:-1], tally)
    call_malformed(core, name, (*args, None), tally)


Call = tuple[str, tuple[Any, ...]]  # a core function's name and its arguments


def recorded_calls(core: ModuleType, grouper: Grouper, new: list[Article], rng: random.Random) -> list[Call]:
    """Calls of every core function as the package makes them, on a live index and on scratch copies (for writers)."""
    index = grouper._index
    wanted = ("shingles", "word_sets", "figures", "choose", "find", "evidence", "probabilities")
    calls: list[Call] = []
    for article in new:
        with recording(core) as rec:
            ev, _ = grouper.explain(article)
            if ev is not None:
                decision.probabilities(ev)
            feats = features.extract(article.title, article.text, article.outlet)
            signature.choose_encoded(feats, 0, index.rarity)
        if ev is not None and all(w in rec.calls for w in wanted):
            calls += [(w, rec.calls[w]) for w in wanted]
        if len(calls) >= 3 * len(wanted):
            break
    scratch = Index(7 * 86400.0)
    story = scratch.new_story("s")
    blob = signature.choose_encoded(features.extract("포스코퓨처엠, 광양에 배터리 공장 준공", random_text(rng, 400), "연합뉴스"),
                                    int(T0.timestamp()), scratch.rarity)  # fmt: skip
    with recording(core) as rec:
        scratch.add_encoded(1, blob, story)
        scratch.postings.add(np.array([1, 2, 3], dtype=np.uint32), 0)
    put_calls = rec.calls
    postings = Postings()
    for value in range(2):
        postings.add(np.array([rng.getrandbits(32) for _ in range(50)], dtype=np.uint32), value)
        with recording(core, copies=True) as rec:
            postings.merge()
    return [*calls, ("put", put_calls["put"]), ("pending_add", put_calls["pending_add"]),
            ("postings_merge", rec.calls["postings_merge"])]


def grouper_section(core: ModuleType, rng: random.Random, where: Path) -> None:
    clock = Stopwatch()
    articles = make_articles(rng, 150)
    grouper = check_grouper_twin(articles)
    stories = len(set(assign_all(grouper, articles)))
    clock.lap("grouper twin")
    new = probes(rng, articles)
    compared = check_index_twins(grouper, new)
    put_twins = check_put_twin(rng, signatures(rng, 150))
    posted = check_postings_twin(rng)
    clock.lap("index twins")
    grouper.evict()
    damaged_rows = record_passes(rng, articles, where)
    clock.lap("record")
    tally: dict[str, int] = {}
    calls = recorded_calls(core, grouper, new, rng)
    for name, args in calls:
        fuzz_arguments(core, name, args, rng, tally)
    clock.lap("malformed calls")
    print(f"grouper: {len(articles)} articles in {stories} stories; {compared} probes with candidates compared; "
          f"{put_twins} signatures put twice; {posted} postings; {damaged_rows} damaged rows replayed\n"
          f"malformed calls of {sorted({n for n, _ in calls})}: {tally}\n{clock}")  # fmt: skip


# --- what the fuzz found: reproducers, kept as regression tests -----------------------------------------------------


def package_calls(core: ModuleType) -> dict[str, tuple[Any, ...]]:
    """The arguments the package passes to find, evidence and choose, for a copy of an indexed headline."""
    grouper = Grouper()
    title = "포스코퓨처엠, 광양에 배터리 공장 7곳 준공"
    grouper.assign(Article(id="a", source="s", outlet="", url="", title=title, text="", published_at=T0))
    copy = Article(id="b", source="s", outlet="", url="", title=title, text="", published_at=T0)
    with recording(core) as rec:
        grouper.explain(copy)
        signature.choose_encoded(features.extract(title, "", ""), 0, grouper._index.rarity)
    return rec.calls


def _figure_of_65_digits(core: ModuleType) -> None:
    value = "1" * 65 + "%"
    expect_equal("figures", u32(core.figures(value, "")[0]).tolist(), sorted(text.figures(value)), value)


def _shingles_huge_pool(core: ModuleType) -> None:
    core.shingles("abcde", 2**62 - 4, shingles.SAMPLE_BELOW, shingles.SAMPLE_CAP, shingles.PASSAGE_BELOW)


def _evidence_huge_story_count(core: ModuleType) -> None:
    args = package_calls(core)["evidence"]
    core.evidence(*args[:-1], 2**32)  # the last argument: how many candidate stories


def _find_huge_caps(core: ModuleType) -> None:
    *args, params = package_calls(core)["find"]
    core.find(*args, params[:3] + (2**62, 4) + params[5:])  # candidates.STORIES, MEMBERS


def _bucket_starts_trusted(core: ModuleType) -> None:
    args = list(package_calls(core)["find"])
    keys, head = args[0], args[4]  # the stored low keys, the new headline's words (the first query keys)
    bucket = int(head[0]) >> 16
    starts = np.zeros_like(args[2])
    starts[bucket + 1 :] = len(keys) + 50_000  # the first word's bucket claims 50,000 more entries than are stored
    args[2] = starts
    try:
        core.find(*args)
    except ALLOWED:
        pass


def _choose_head_figures_not_in_figures(core: ModuleType) -> None:
    args = list(package_calls(core)["choose"])
    args[4] = np.zeros(0, np.uint32)  # figures (headline and lead): none
    args[5] = np.arange(1, 11, dtype=np.uint32)  # headline figures: ten
    try:
        core.choose(*args)
    except ALLOWED:
        pass


# Each finding, and what the sanitized build showed before it was fixed. The reproducer must now raise one of
# ALLOWED or return (and the figures one agree with its twin), with no sanitizer report.
FOUND: dict[str, tuple[Callable[[ModuleType], None], str]] = {
    "figure_of_65_digits": (_figure_of_65_digits, "the core hashed a value's first 64 characters only"),
    "shingles_huge_pool": (_shingles_huge_pool, "heap-buffer-overflow: the pool's allocation size wrapped"),
    "evidence_huge_story_count": (_evidence_huge_story_count, "signed overflow in k * (k + 4)"),
    "find_huge_caps": (_find_huge_caps, "signed overflow in STORIES * MEMBERS"),
    "bucket_starts_trusted": (_bucket_starts_trusted, "reads past the keys by bucket starts never checked"),
    "choose_head_figures_not_in_figures": (_choose_head_figures_not_in_figures, "heap-buffer-overflow in choose"),
}


@pytest.mark.parametrize("finding", sorted(FOUND))
def test_fuzz_finding_stays_fixed(sanitized_core: Path, tmp_path: Path, finding: str) -> None:
    """Each reproducer alone under the sanitizers: no report, no exception outside ALLOWED."""
    (outcome,) = run_driver(sanitized_core, tmp_path, (f"found:{finding}",))
    assert not outcome.problems(), f"{finding} ({FOUND[finding][1]}) is back:\n{outcome.report()}"


def main(argv: list[str]) -> int:
    global REPRODUCER
    core_path, where, section = Path(argv[0]), Path(argv[1]), argv[2]
    REPRODUCER = where / "mismatch.txt"
    logging.disable(logging.CRITICAL)  # the grouper logs every odd article it meets: expected here
    core = load_sanitized(core_path)
    if section == "text":
        text_section(core, random.Random(20250303))
    elif section == "grouper":
        grouper_section(core, random.Random(20250304), where)
    elif section.startswith("found:"):
        try:
            FOUND[section.removeprefix("found:")][0](core)
        except ALLOWED:
            pass
    else:
        raise SystemExit(f"unknown section {section!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
