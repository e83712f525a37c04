"""Our syndication set: each base article of bases.json turned into the copies real outlets make.

Per base: the original; a copy with a new headline, another byline, a trimmed lead, one paragraph
dropped and the outlet's menus, "latest news" list and footer around it; a copy with paragraphs
reordered and an English translation appended; a copy with the last two paragraphs dropped; a
Google-News style entry (headline only, "headline - outlet"); a Naver style entry (headline cut
with "..." and a cut snippet). Two bases also get a copy each from one outlet with identical page
furniture. Deterministic: no randomness, so failures reproduce.

The extended set (``extended=True``) adds five kinds per base (``new_copies_of``), from the
outlets of ``extra_outlets`` and the articles the six outlets above already ran:

- ``lead-trimmed``: the short release is three sentences: those of the first paragraph, and when it
  has fewer than three, the first sentence of each following paragraph in turn (the eleven older
  bases have one-sentence leads, so theirs is the lead and the first sentences of paragraphs 2 and
  3; the six newer ones have three-sentence leads). An outlet drops its FIRST sentence and runs the
  other two verbatim (131-205 characters for the older bases, 225-268 for the newer ones) under its
  own headline (the base's ``own_headline``, which shares few words with the base's headlines).
- ``description``: the RSS entry of the snippet outlet's article (its headline is the base's first
  one): the text's first two sentences, whole when they fit in 250 characters (one longer would be
  cut there); on every other base the feed cuts them at 150 characters with "..." (149-242 characters).
- ``naver`` and ``google``: the Naver search-API entry and the Google News entry of the trimmed
  outlet's article (headline: the base's last one), 3 and 7 minutes after it: Naver gives the
  headline and the text's start cut at about 110 characters with "..."; Google gives
  "headline - outlet" with the summary repeating it ("headline\\xa0\\xa0outlet").
- ``partial``: a rewrite that keeps the first two paragraphs verbatim and adds the outlet's own
  context (the base's ``background``, one or two paragraphs of 200-400 characters). It shares
  0.34-0.58 of its 5-character shingles with the original (``shingle_share``: letters and digits
  only, shared 5-grams over the smaller set); ``python generate.py --shares`` prints each base's.

Six bases form three same-day pairs of different events (``same_day`` in bases.json): two
companies' quarterly earnings, two companies' sustainability reports, and a customs crackdown on
battery-equipment exports beside a recycling plant opening in the same city.

Run ``python tests/data/syndication/generate.py`` to print the set (``--extended`` for all kinds).
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from newsradar.events import Article

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Copy:
    article: Article
    event: str  # the happening it reports: same event = same story
    kind: str  # one of KINDS, NEW_KINDS or "same-outlet"


KINDS = ("original", "rewritten", "reordered", "trimmed", "headline", "snippet")
NEW_KINDS = ("lead-trimmed", "description", "naver", "google", "partial")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def _load() -> dict:
    return json.loads((HERE / "bases.json").read_text(encoding="utf-8"))


def _wrap(outlet: dict, body: str) -> str:
    """The page around an article, as an imperfect extraction leaves it."""
    latest = "\n".join(f"· {title}" for title in outlet["latest"])
    return f"{outlet['menu']}\n\n{body}\n\n많이 본 뉴스\n{latest}\n\n{outlet['footer']}"


def _byline(outlet: dict, paragraphs: list[str]) -> str:
    return f"[{outlet['name']} {outlet['byline']}] " + "\n\n".join(paragraphs) + f"\n\n{outlet['byline']}"


def _trim_lead(lead: str) -> str:
    """A shortened lead: the reporting clause goes, the news stays."""
    cut = lead.find("가 ") if "가 " in lead[:40] else lead.find("는 ")
    return lead[cut + 2 :] if 0 < cut < 40 else lead


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + "..."


def _article(key: str, kind: str, outlet: str, title: str, text: str, when: datetime) -> Article:
    return Article(id=f"{key}-{kind}", source="syndication-fixture", outlet=outlet,
                   url=f"https://example.org/{key}/{kind}", title=title, text=text, published_at=when)  # fmt: skip


def copies_of(base: dict, outlets: list[dict], offset: int) -> list[Copy]:
    """The six copies of one base, outlets rotated by ``offset``."""
    key, event, paras, heads = base["key"], base["event"], base["paragraphs"], base["headlines"]
    t0 = datetime.fromisoformat(base["published"])
    o = [outlets[(offset + k) % len(outlets)] for k in range(6)]
    reordered = [paras[0], paras[1], paras[3], paras[2], *paras[4:]]
    rewritten = [_trim_lead(paras[0]), *paras[1:3], *paras[4:]]
    made = [
        ("original", o[0]["name"], heads[0], _byline(o[0], paras), 0),
        ("rewritten", o[1]["name"], heads[1], _wrap(o[1], _byline(o[1], rewritten)), 40),
        ("reordered", o[2]["name"], heads[min(2, len(heads) - 1)],
         _byline(o[2], reordered) + "\n\n[English] " + base["english"], 120),
        ("trimmed", o[3]["name"], heads[-1], _wrap(o[3], _byline(o[3], paras[:-2])), 300),
        ("headline", o[4]["name"], f"{heads[1]} - {o[4]['name']}", f"{heads[1]}\xa0\xa0{o[4]['name']}", 60),
        ("snippet", o[5]["name"], _cut(heads[0], 28), _cut(paras[2], 90), 180),
    ]  # fmt: skip
    return [
        Copy(_article(key, kind, outlet, title, text, t0 + timedelta(minutes=minutes)), event, kind)
        for kind, outlet, title, text, minutes in made
    ]


def sentences(paragraph: str) -> list[str]:
    """The sentences of a paragraph (each ends in ".", "?" or "!" before a space)."""
    return [s for s in _SENTENCE_END.split(paragraph.strip()) if s]


def short_release(base: dict) -> list[str]:
    """The three sentences of the base's short release: the first paragraph's, then the first of each next one."""
    paras = base["paragraphs"]
    out = sentences(paras[0])
    for para in paras[1:]:
        if len(out) >= 3:
            break
        out.append(sentences(para)[0])
    return out[:3]


def _letters(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def shingle_share(a: str, b: str, n: int = 5) -> float:
    """Shared n-character shingles of two texts over the smaller set (letters and digits only)."""
    la, lb = _letters(a), _letters(b)
    sa = {la[i : i + n] for i in range(len(la) - n + 1)}
    sb = {lb[i : i + n] for i in range(len(lb) - n + 1)}
    return len(sa & sb) / min(len(sa), len(sb)) if sa and sb else 0.0


def _description(paras: list[str], offset: int) -> str:
    """An RSS description: the first two sentences, cut by some feeds."""
    two = " ".join(sentences(" ".join(paras))[:2])
    if offset % 2:
        return _cut(two, 150)
    return two if len(two) <= 250 else _cut(two, 247)


def new_copies_of(base: dict, outlets: list[dict], extra: list[dict], offset: int) -> list[Copy]:
    """The five new kinds of copy of one base (see the module docstring), outlets rotated by ``offset``."""
    key, event, paras, heads = base["key"], base["event"], base["paragraphs"], base["headlines"]
    t0 = datetime.fromisoformat(base["published"])
    o = [outlets[(offset + k) % len(outlets)] for k in range(6)]
    x = [extra[(offset + k) % len(extra)] for k in range(2)]
    release = short_release(base)
    made = [
        ("lead-trimmed", x[0]["name"], base["own_headline"], " ".join(release[1:3]), 75),
        ("description", o[5]["name"], heads[0], _description(paras, offset), 180),
        ("naver", o[3]["name"], heads[-1], _cut(" ".join(paras), 110), 303),
        ("google", o[3]["name"], f"{heads[-1]} - {o[3]['name']}", f"{heads[-1]}\xa0\xa0{o[3]['name']}", 307),
        ("partial", x[1]["name"], heads[1], _byline(x[1], [paras[0], paras[1], *base["background"]]), 150),
    ]  # fmt: skip
    return [
        Copy(_article(key, kind, outlet, title, text, t0 + timedelta(minutes=minutes)), event, kind)
        for kind, outlet, title, text, minutes in made
    ]


def syndication_set(extended: bool = False) -> list[Copy]:
    """Every copy of every base plus the same-outlet pair, in publication order.

    ``extended``: with the five new kinds of copy of each base too (NEW_KINDS).
    """
    data = _load()
    outlets = data["outlets"]
    out: list[Copy] = []
    for i, base in enumerate(data["bases"]):
        out.extend(copies_of(base, outlets, i))
        if extended:
            out.extend(new_copies_of(base, outlets, data["extra_outlets"], i))
    out.extend(same_outlet_pair(data))
    out.sort(key=lambda c: (c.article.published_at, c.article.id))
    return out


def same_outlet_pair(data: dict | None = None) -> list[Copy]:
    """Two different articles of one outlet, one day, identical menus, lists and footer."""
    data = data or _load()
    spec = data["same_outlet"]
    outlet = next(o for o in data["outlets"] if o["name"] == spec["outlet"])
    bases = {b["key"]: b for b in data["bases"]}
    pair = []
    for key in spec["keys"]:
        base = bases[key]
        when = datetime.fromisoformat(base["published"]) + timedelta(minutes=15)
        text = _wrap(outlet, _byline(outlet, base["paragraphs"]))
        pair.append(Copy(_article(key, "same-outlet", outlet["name"], base["headlines"][0], text, when), base["event"], "same-outlet"))
    return pair


def by_key(key: str, extended: bool = False) -> list[Copy]:
    """The copies of one base (for small property tests); ``extended``: the new kinds too, after the six."""
    data = _load()
    for i, base in enumerate(data["bases"]):
        if base["key"] == key:
            made = copies_of(base, data["outlets"], i)
            return made + new_copies_of(base, data["outlets"], data["extra_outlets"], i) if extended else made
    raise KeyError(key)


def base_keys() -> list[str]:
    """The keys of all bases, in file order."""
    return [b["key"] for b in _load()["bases"]]


def same_day_pairs() -> list[tuple[str, str]]:
    """The keys of the bases that are different events published on one day, two by two."""
    return [(a, b) for a, b in _load()["same_day"]["pairs"]]


def partial_shares() -> dict[str, float]:
    """Per base, the shingle share (``shingle_share``) of its partial copy with its original."""
    data = _load()
    out = {}
    for i, base in enumerate(data["bases"]):
        original = copies_of(base, data["outlets"], i)[0].article.text
        partial = next(c for c in new_copies_of(base, data["outlets"], data["extra_outlets"], i) if c.kind == "partial")
        out[base["key"]] = shingle_share(partial.article.text, original)
    return out


if __name__ == "__main__":
    if "--shares" in sys.argv:
        shares = partial_shares()
        for key, share in shares.items():
            print(f"{key:34} {share:.3f}")
        print(f"range {min(shares.values()):.3f}-{max(shares.values()):.3f}")
        raise SystemExit(0)
    for c in syndication_set(extended="--extended" in sys.argv):
        a = c.article
        print(f"{a.published_at:%m-%d %H:%M} {c.event:28} {c.kind:11} {a.outlet:10} {a.title[:40]} | {len(a.text)} chars")
