"""OPML import and export (collectors/opml.py, ``newsradar sources import|export``) on files we write."""

from __future__ import annotations

from pathlib import Path

import pytest

from collectors.opml import read_opml, write_opml
from newsradar.errors import ContentError
from newsradar.settings import load
from tests.e2e.processes import newsradar

READER_EXPORT = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="1.0">
  <head><title>Feedly subscriptions</title></head>
  <body>
    <outline text="지역 언론" title="지역 언론">
      <outline type="rss" text="경북일보" title="경북일보" xmlUrl="https://www.kyongbuk.co.kr/rss/allArticle.xml"
               htmlUrl="https://www.kyongbuk.co.kr"/>
      <outline type="rss" text="영남일보 &amp; 뉴스" xmlUrl="https://www.yeongnam.com/rss/allArticle.xml"/>
      <outline text="IT">
        <outline type="rss" text="전자신문 속보" title="전자신문 속보" xmlUrl="https://rss.etnews.com/Section901.xml"/>
        <outline type="rss" text="" xmlUrl="https://www.thelec.kr/rss/allArticle.xml?utm_source=feedly"/>
      </outline>
    </outline>
    <outline type="rss" text="경북일보 again" xmlUrl="https://WWW.kyongbuk.co.kr/rss/allArticle.xml#top"/>
  </body>
</opml>
"""

CONFIG = """# my watch config: comments and layout must survive an import
state_dir: var

sources:
  # the outlet's own feed
  - name: 전자신문
    url: "https://rss.etnews.com/Section901.xml"
    outlet: 전자신문

  - {name: naver-포항, kind: naver, query: 포항}

# what we watch
watchlist:
  terms:
    - name: 포항
"""


def test_read_opml_finds_feeds_in_nested_folders_each_url_once():
    feeds = read_opml(READER_EXPORT.encode(), "subs.opml")
    assert [(f.name, f.url) for f in feeds] == [
        ("경북일보", "https://www.kyongbuk.co.kr/rss/allArticle.xml"),
        ("영남일보 & 뉴스", "https://www.yeongnam.com/rss/allArticle.xml"),
        ("전자신문 속보", "https://rss.etnews.com/Section901.xml"),
        ("www.thelec.kr", "https://www.thelec.kr/rss/allArticle.xml?utm_source=feedly"),  # no name: the host
    ]
    assert feeds[0].site == "https://www.kyongbuk.co.kr"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaa">]><opml><body/></opml>', "refused"),
        (b"<opml><body><outline xmlUrl='https://x/rss'></body>", "not well-formed"),
        (b"<rss version='2.0'><channel/></rss>", "not an OPML file"),
        (b"<opml><body><outline text='x' xmlUrl='javascript:alert(1)'/></body></opml>", r"not an http\(s\) URL"),
    ],
)
def test_bad_opml_files_are_refused_with_the_reason(data: bytes, message: str):
    with pytest.raises(ContentError, match=message) as caught:
        read_opml(data, "subs.opml")
    assert "subs.opml" in str(caught.value)


def test_import_adds_new_feeds_keeps_comments_and_is_idempotent(tmp_path: Path):
    config, opml = tmp_path / "config.yaml", tmp_path / "subs.opml"
    config.write_text(CONFIG, encoding="utf-8")
    opml.write_text(READER_EXPORT, encoding="utf-8")
    dry = newsradar("--config", str(config), "sources", "import", str(opml), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "would add 3 feeds" in dry.stdout and config.read_text(encoding="utf-8") == CONFIG
    result = newsradar("--config", str(config), "sources", "import", str(opml))
    assert result.returncode == 0, result.stderr
    assert "added 3 feeds" in result.stdout and "1 already there" in result.stdout
    text = config.read_text(encoding="utf-8")
    assert text.startswith(CONFIG.split("# what we watch")[0].rstrip("\n"))  # everything before, untouched
    assert "# what we watch\nwatchlist:" in text and "# the outlet's own feed" in text
    settings = load(config)
    assert [s.name for s in settings.sources] == ["전자신문", "naver-포항", "경북일보", "영남일보 & 뉴스", "www.thelec.kr"]
    assert settings.sources[2].kind == "rss" and settings.watchlist.terms[0].name == "포항"
    again = newsradar("--config", str(config), "sources", "import", str(opml))
    assert "added 0 feeds" in again.stdout and config.read_text(encoding="utf-8") == text


@pytest.mark.parametrize("before", ["state_dir: var\nsources: []\n", "state_dir: var\n",
                                    "sources:\n- {name: z, url: 'https://z/rss'}\nstate_dir: var\n"])
def test_import_into_other_config_shapes_and_name_clashes(tmp_path: Path, before: str):
    config, opml = tmp_path / "config.yaml", tmp_path / "subs.opml"
    config.write_text(before, encoding="utf-8")
    opml.write_text('<opml version="2.0"><body><outline text="a" xmlUrl="https://x/1.xml"/>'
                    '<outline text="a" xmlUrl="https://x/2.xml"/></body></opml>', encoding="utf-8")
    result = newsradar("--config", str(config), "sources", "import", str(opml))
    assert result.returncode == 0, result.stdout + result.stderr
    assert [s.name for s in load(config).sources if s.name != "z"] == ["a", "a (2)"]


def test_export_writes_the_rss_sources_and_a_reader_can_read_them_back(tmp_path: Path):
    config = tmp_path / "config.yaml"
    config.write_text(CONFIG, encoding="utf-8")
    result = newsradar("--config", str(config), "sources", "export")
    assert result.returncode == 0 and "not feeds, left out: naver-포항" in result.stderr
    feeds = read_opml(result.stdout.encode(), "export")
    assert [(f.name, f.url) for f in feeds] == [("전자신문", "https://rss.etnews.com/Section901.xml")]
    default = load(Path(__file__).resolve().parents[2] / "config" / "default.yaml")
    data, skipped = write_opml(default)
    assert [f.url for f in read_opml(data, "default")] == [s.url for s in default.sources if s.kind == "rss"]
    assert "포항시-보도자료" in skipped and "naver-포항" in skipped
