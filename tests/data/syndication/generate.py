"""Our syndication set: each base article of bases.json turned into the copies real outlets make.

Per base: the original; a copy with a new headline, another byline, a trimmed lead, one paragraph
dropped and the outlet's menus, "latest news" list and footer around it; a copy with paragraphs
reordered and an English translation appended; a copy with the last two paragraphs dropped; a
Google-News style entry (headline only, "headline - outlet"); a Naver style entry (headline cut
with "..." and a cut snippet). Two bases also get a copy each from one outlet with identical page
furniture. Deterministic: no randomness, so failures reproduce.

Run ``python tests/data/syndication/generate.py`` to print the set.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from newsradar.events import Article

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Copy:
    article: Article
    event: str  # the happening it reports: same event = same story
    kind: str  # original, rewritten, reordered, trimmed, headline, snippet, same-outlet


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


def syndication_set() -> list[Copy]:
    """Every copy of every base plus the same-outlet pair, in publication order."""
    data = _load()
    outlets = data["outlets"]
    out: list[Copy] = []
    for i, base in enumerate(data["bases"]):
        out.extend(copies_of(base, outlets, i))
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


def by_key(key: str) -> list[Copy]:
    """The copies of one base (for small property tests)."""
    data = _load()
    for i, base in enumerate(data["bases"]):
        if base["key"] == key:
            return copies_of(base, data["outlets"], i)
    raise KeyError(key)


if __name__ == "__main__":
    for c in syndication_set():
        a = c.article
        print(f"{a.published_at:%m-%d %H:%M} {c.event:28} {c.kind:11} {a.outlet:10} {a.title[:40]} | {len(a.text)} chars")
