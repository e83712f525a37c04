"""Main-text extraction: turn a fetched item into an Article holding the story's own text and nothing else.

Korean news pages wrap a few paragraphs in menus, weather widgets, "최신뉴스"/"많이 본 뉴스" lists, share
buttons, bylines, copyright lines and whole unrelated articles glued below. Matching on that furniture makes
false alerts ("포항" in a weather widget), so we take the body container when the page has a known one,
trafilatura otherwise, then drop furniture line by line. Items without a page (feed summaries, Naver API
snippets) are cleaned of markup and entities.
"""

from __future__ import annotations

import html as html_lib
import json
import logging
import re
from datetime import datetime

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from newsradar.dates import SEOUL, parse_time
from newsradar.events import Article, RawItem

logger = logging.getLogger(__name__)

# Body containers of Korean portals and CMSs, most specific first. <article> comes last: on many sites it
# also wraps the related-news lists, so trafilatura is tried before it.
# fmt: off
BODY_CONTAINERS = (
    "div#realArtcContents",  # nate
    "#dic_area",  # naver news (current)
    "#articleBodyContents",  # naver news (older)
    "#newsct_article",
    "#article-view-content-div",  # ndsoft CMS used by many regional papers
    "#articleBody", "#article_body", "#articeBody", "#news_body_area", "#textBody", "#newsContent",
    ".article_body", ".article-body", ".news_body", ".view_con", ".news_view", ".article_view",
    "[itemprop=articleBody]",
)
# fmt: on
MIN_BODY_CHARS = 80
# fmt: off
_SKIP_TAGS = frozenset({
    "script", "style", "noscript", "iframe", "form", "button", "select", "input", "textarea", "nav", "header",
    "footer", "aside", "svg", "video", "audio", "object", "embed", "template", "head", "-comment",
})
_BLOCK_TAGS = frozenset({
    "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "tr", "table", "section", "article", "h1", "h2",
    "h3", "h4", "h5", "h6", "blockquote", "figure", "figcaption", "pre", "hr", "center", "main", "td",
})
# class/id words that mark page furniture inside a body container.
_JUNK_WORDS = frozenset({
    "related", "relation", "recommend", "popular", "ranking", "rank", "most", "sns", "share", "social",
    "weather", "breadcrumb", "copyright", "banner", "ad", "ads", "advert", "advertisement", "promotion",
    "promo", "byline", "reporter", "comment", "comments", "reply", "menu", "gnb", "lnb", "snb", "sidebar",
    "widget", "print", "fontsize", "toolbar", "subscribe", "newsletter", "tag", "tags", "keyword", "keywords",
    "hidden",
})
# fmt: on
_WORD_SPLIT = re.compile(r"[^a-z0-9]+|(?<=[a-z])(?=[A-Z])")

# A run of spaces (an odd one, or two or more): a lone ASCII space is left alone, which makes a long text's
# collapse three times faster than replacing every space with itself.
_SPACE = re.compile(r" [ \t\u00a0\u3000\u200b\ufeff]+|[\t\u00a0\u3000\u200b\ufeff][ \t\u00a0\u3000\u200b\ufeff]*")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
_BYLINE = re.compile(
    r"[가-힣]{2,4}\s*(기자|특파원|통신원|객원기자)(\s|$|[=/|·,])|기사\s*입력|입력\s*[:：]|기사\s*승인|승인\s*[:：]"
    r"|수정\s*[:：]|등록\s*[:：]|최종\s*(편집|수정)|발행일|송고시간"
)
_COPYRIGHT = re.compile(
    r"무단\s*전재|재\s*배포\s*금지|무단\s*복제|재배포\s*및|all\s+rights\s+reserved|copyrights?\s*(ⓒ|©|\(c\))"
    r"|저작권자\s*(ⓒ|©|\(c\))",
    re.IGNORECASE,
)
_WEATHER = re.compile(
    r"^(맑음|구름많음|구름조금|흐림|흐리고\s*비|비|눈|안개|박무|연무|황사|소나기|진눈깨비|뇌우|비/눈|눈/비)?"
    r"\s*[가-힣()]{0,12}\s*-?\d{1,2}(\.\d)?\s*(℃|°C|°)$"
)
_END_MARKERS = {"(끝)", "<끝>", "[끝]", "/끝/", "(END)"}
# Headings of furniture lists, compared without spaces: after the story starts, one ends the story.
# fmt: off
_FURNITURE_HEADINGS = frozenset({
    "최신뉴스", "최신기사", "많이본뉴스", "많이본기사", "이시각많이본기사", "이시각많이본뉴스", "관련기사",
    "관련뉴스", "인기기사", "인기뉴스", "추천기사", "추천뉴스", "주요뉴스", "오늘의주요뉴스", "포토뉴스",
    "photonews", "핫이슈", "실시간인기기사", "랭킹뉴스", "많이본", "이기사와함께많이본뉴스", "기자의다른기사",
    "다른기사보기", "이전기사", "다음기사", "뉴스댓글", "댓글", "에디터추천", "섹션주요뉴스", "헤드라인뉴스",
    "최근기사", "주요기사", "전체기사", "이슈", "화제의뉴스", "오피니언", "포토", "영상", "카드뉴스",
    "공지사항",
})
# Buttons and widgets that survive as lines of their own (compared without spaces).
_UI_LINES = frozenset({
    "인쇄", "프린트", "스크랩", "공유", "공유하기", "글씨확대", "글씨축소", "글자크기", "가", "가가", "-",
    "+", "닫기", "더보기", "목록", "이전", "다음", "맨위로", "top", "모바일버전으로보기",
    "해당된기사를공유합니다", "트위터페이스북밴드카카오스토리", "페이스북", "트위터", "카카오톡",
    "카카오스토리", "밴드", "기사듣기", "좋아요", "구독", "구독하기", "본문바로가기", "기사공유", "url복사",
    "링크복사", "이메일", "글자크기설정", "기사저장", "즐겨찾기", "로그인", "회원가입", "sns공유", "뒤로가기",
    "•", "·",
})
# fmt: on
_MENU_LINE = re.compile(r"^([^|·]{1,12}[|·]){3,}[^|·]{1,12}$")  # "홈 | 정치 | 경제 | 사회"
_BREADCRUMB = re.compile(r"^[^>]{1,12}(\s*>\s*[^>]{1,12})+$")  # "뉴스 > 경제 일반"
_DATE_LINE = re.compile(
    r"^\d{4}[.\-/]\s?\d{1,2}[.\-/]\s?\d{1,2}\.?\s*(\([월화수목금토일]\))?$"
)  # "2024.05.06 (월)"
# Page metadata: "등록일 2026-11-20 15:00", "작성자 : 기후에너지과", "작성일 2025.03.14 | 조회수 1,024". A line made
# only of such fields is page furniture; a sentence that mentions 조회수 or 작성자 does not match as a whole.
# Each field is an atomic group (?>…) and a name stops at the next label, so a near miss fails fast.
_META_LABEL = r"(최초\s*)?(등록|작성|게시|수정|입력|승인|발행|배포|송고)|조회|추천|댓글|hits?|views?"
_META_DATE = (
    r"\d{4}\s*[.\-/년]\s*\d{1,2}\s*[.\-/월]\s*\d{1,2}\s*일?\.?(\s*\([월화수목금토일]\))?"
    r"(\s*(오전|오후|AM|PM)?\s*\d{1,2}:\d{2}(:\d{2})?)?"
)
_META_NAME = rf"((?!{_META_LABEL})[가-힣A-Za-z0-9()·.])+"
_META_FIELD = (
    rf"(?>(최초\s*)?(등록|작성|게시|수정|입력|승인|발행|배포|송고)\s*(일시|일자|일|시간|시각)?\s*[:：]?\s*{_META_DATE}"
    r"|(조회|추천|댓글)\s*수?\s*[:：]?\s*\d[\d,]*\s*(회|건)?|(hits?|views?)\s*[:：]?\s*\d[\d,]*"
    rf"|(작성자|글쓴이|등록자|게시자)\s*[:：]?\s*{_META_NAME}( {_META_NAME})?)"
)
_META_LINE = re.compile(rf"{_META_FIELD}((?>\s*[|/,]?\s*){_META_FIELD})*", re.IGNORECASE)
_BULLETS = "•·◦▪‧ "
_PROMO = re.compile(r"^[▶►☞]\s*.{0,40}(앱|구독|다운|바로가기|클릭|제보|채널|카카오톡|네이버|유튜브|홈페이지)")
_HEADING_TRIM = re.compile(r"^[\[\(【<■□▶►●◆◇▲△※|\s]+|[\]\)】>|\s]+$")
_KOREAN_DATE = re.compile(
    r"(?:기사\s*입력|최초\s*입력|입력|등록|기사\s*승인|승인|기사\s*전송|전송|발행|게재|송고|기자\s*[|｜/·])"
    r"\s*(?:일시|일자|시간)?\s*[:：]?\s*"
    r"(\d{4})\s*[.\-/년]\s*(\d{1,2})\s*[.\-/월]\s*(\d{1,2})\s*일?\.?\s*(?:\(\S\)\s*)?"
    r"(?:\[?\s*(오전|오후|AM|PM)?\s*(\d{1,2})\s*:\s*(\d{2})(?:\s*:\s*(\d{2}))?)?"
)
_PUBLISHED_META = tuple(
    f'meta[{attr}="{name}"]'
    for attr, name in (
        ("property", "article:published_time"),
        ("name", "article:published_time"),
        ("property", "og:article:published_time"),
        ("itemprop", "datePublished"),
        ("name", "pubdate"),
        ("name", "publishdate"),
        ("name", "publish-date"),
        ("property", "dable:published_time"),
        ("name", "dc.date.issued"),
        ("name", "DC.date.issued"),
        ("name", "date"),
    )
)
_TITLE_SEPARATORS = (" - ", " | ", " : ", " :: ", " < ", " — ", " – ", " ｜ ")


def _norm(text: str) -> str:
    """Whitespace removed, lower-cased: the key lines are compared by (str.split splits on what \\s matches)."""
    return "".join(text.split()).lower()


def collapse(text: str) -> str:
    """Whitespace collapsed inside lines; empty lines removed."""
    lines = (line.strip() for line in _SPACE.sub(" ", text).splitlines())  # _SPACE holds no line break
    return "\n".join(line for line in lines if line)


# -- text of a DOM subtree -------------------------------------------------------------------------------
def _is_junk(node: LexborNode) -> bool:
    attrs = node.attributes
    words: set[str] = set()
    for name in ("class", "id"):
        value = attrs.get(name) or ""
        words.update(w.lower() for w in _WORD_SPLIT.split(value) if w)
    if words & _JUNK_WORDS:
        return True
    style = (attrs.get("style") or "").replace(" ", "").lower()
    return "display:none" in style


def _link_dense(node: LexborNode) -> bool:
    """A list of links (related articles, rankings): at least three links making up most of the text."""
    if node.tag not in ("ul", "ol", "dl", "table", "div", "section"):
        return False
    anchors = node.css("a")
    if len(anchors) < 3:
        return False
    total = len(_norm(node.text()))
    linked = sum(len(_norm(a.text())) for a in anchors)
    return total > 0 and linked / total > 0.6


def node_text(root: LexborNode, *, skip_furniture: bool = True) -> str:
    """Text of ``root``, a newline at each block boundary, skipping scripts and (optionally) furniture."""
    parts: list[str] = []
    stack: list[LexborNode | str] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            parts.append(node)
            continue
        tag = node.tag
        if tag == "-text":
            parts.append(node.text_content or "")
            continue
        if tag in _SKIP_TAGS or (
            node is not root and skip_furniture and (_is_junk(node) or _link_dense(node))
        ):
            continue
        if tag in _BLOCK_TAGS:
            parts.append("\n")
            stack.append("\n")
        stack.extend(reversed(list(node.iter(include_text=True))))
    return "".join(parts)


# -- furniture, line by line -----------------------------------------------------------------------------
def _is_heading(line: str) -> bool:
    return _norm(_HEADING_TRIM.sub("", line)) in _FURNITURE_HEADINGS


def _drop_line(line: str) -> bool:
    line = line.lstrip(_BULLETS) or line  # list bullets survive in text captures: "• 흐림포항25.1℃"
    key = _norm(line)
    if key in _UI_LINES or _WEATHER.match(line) or _PROMO.match(line) or _MENU_LINE.match(line):
        return True
    if _BREADCRUMB.match(line) or _DATE_LINE.match(line):
        return True
    if line.startswith("☞"):
        return True
    if len(line) <= 100 and (_EMAIL.search(line) and len(_EMAIL.sub("", line).strip()) < 40):
        return True  # a reporter's e-mail line
    if line.endswith(("다.", "다", "요.")):
        return False  # a sentence, even if it names a date or a 작성자
    if len(line) <= 100 and _META_LINE.fullmatch(line):
        return True  # only 등록일 / 작성자 / 조회수 fields
    return len(line) <= 80 and bool(_BYLINE.search(line))


def clean_lines(text: str, title: str = "") -> str:
    """Drop furniture lines; stop at end markers, copyright lines and furniture headings after the body."""
    kept: list[str] = []
    body_chars = 0
    title_key = _norm(title)
    for line in collapse(text).splitlines():
        started = body_chars >= 100 or any(len(k) >= 60 for k in kept)
        if line in _END_MARKERS:
            if started:
                break
            continue
        if len(line) <= 120 and _COPYRIGHT.search(line):
            if started:
                break
            continue
        if _is_heading(line):
            if started:
                break
            continue
        if _drop_line(line):
            continue
        if title_key and len(kept) < 3 and _norm(line) == title_key:
            continue
        if kept and kept[-1] == line:
            continue
        kept.append(line)
        body_chars += len(line)
    return "\n".join(kept)


# -- title and time --------------------------------------------------------------------------------------
def _meta(tree: LexborHTMLParser, selector: str) -> str:
    node = tree.css_first(selector)
    return (node.attributes.get("content") or "").strip() if node is not None else ""


def _trim_outlet(title: str, outlets: list[str]) -> str:
    known = {_norm(o) for o in outlets if o and o.strip()}
    for sep in _TITLE_SEPARATORS:
        head, found, tail = title.rpartition(sep)
        if found and head.strip() and _norm(tail) in known:
            return head.strip()
    return title


def page_title(tree: LexborHTMLParser, fallback: str, outlet: str = "") -> str:
    """og:title, <title> or the first h1, without a trailing ' - outlet' when the outlet is known.

    A candidate that is only the outlet's name (old sites put just that in <title>) is skipped.
    """
    outlets = [
        outlet,
        _meta(tree, 'meta[property="og:site_name"]'),
        _meta(tree, 'meta[name="application-name"]'),
    ]
    known = {_norm(o) for o in outlets if o}
    title_node = tree.css_first("title")
    h1 = tree.css_first("h1")
    for candidate in (
        _meta(tree, 'meta[property="og:title"]'),
        _meta(tree, 'meta[name="twitter:title"]'),
        title_node.text() if title_node is not None else "",
        h1.text() if h1 is not None else "",
    ):
        candidate = _SPACE.sub(" ", candidate).strip()
        if candidate and _norm(candidate) not in known:
            return _trim_outlet(candidate, outlets)
    return fallback


def korean_page_time(text: str) -> datetime | None:
    """The first '기사입력 2024/12/03 [13:57]'-style publication time in page text, in Asia/Seoul."""
    for m in _KOREAN_DATE.finditer(text):
        year, month, day, ampm, hour, minute, second = m.groups()
        h = int(hour or 0)
        if ampm in ("오후", "PM") and h < 12:
            h += 12
        elif ampm in ("오전", "AM") and h == 12:
            h = 0
        try:
            return datetime(
                int(year), int(month), int(day), h, int(minute or 0), int(second or 0), tzinfo=SEOUL
            )
        except ValueError:
            continue
    return None


def _json_ld_published(tree: LexborHTMLParser) -> datetime | None:
    """``datePublished`` of the page's JSON-LD (schema.org NewsArticle …, also inside ``@graph`` or lists);
    a block that is not valid JSON is passed over."""
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(node.text(deep=True) or "")
        except ValueError:
            continue
        stack = [data]
        while stack:
            value = stack.pop(0)
            if isinstance(value, list):
                stack.extend(value)
            elif isinstance(value, dict):
                when = parse_time(value.get("datePublished") if isinstance(value.get("datePublished"), str) else None,
                                  SEOUL)  # fmt: skip
                if when:
                    return when
                stack.extend(v for v in value.values() if isinstance(v, (dict, list)))
    return None


def page_published(tree: LexborHTMLParser, page_text: str) -> datetime | None:
    """When the page says the article was published: the first publication meta tag that parses, then JSON-LD
    ``datePublished``, then ``<time datetime>``, then a Korean byline in the text ('입력 2026.11.18 15:20',
    '기사입력 2026/11/18 15:20', '승인 2026-11-18', '등록 …', '정다은 기자 | 2026-11-18 15:20'). No zone:
    Asia/Seoul."""
    for selector in _PUBLISHED_META:
        when = parse_time(_meta(tree, selector), SEOUL)
        if when:
            return when
    when = _json_ld_published(tree)
    if when:
        return when
    for node in tree.css("time[datetime]"):
        when = parse_time(node.attributes.get("datetime"), SEOUL)
        if when:
            return when
    return korean_page_time(page_text)


# -- main text -------------------------------------------------------------------------------------------
def _container_text(tree: LexborHTMLParser, selectors: list[str], title: str) -> str:
    for selector in selectors:
        try:
            node = tree.css_first(selector)
        except SelectolaxError as exc:
            logger.error("content_selector %r is not a valid CSS selector (%s); ignored", selector, exc)
            continue
        if node is None:
            continue
        text = clean_lines(node_text(node), title)
        if len(text) >= MIN_BODY_CHARS:
            return text
    return ""


def _trafilatura_text(page: str, url: str, title: str) -> str:
    # Imported on the first page it reads (~0.2 s of CPU): feeds and search APIs give summaries, never pages.
    import trafilatura

    text = trafilatura.extract(
        page,
        url=url or None,
        favor_precision=True,
        include_comments=False,
        include_tables=False,
        include_links=False,
        include_images=False,
        deduplicate=False,
    )
    return clean_lines(text or "", title)


def main_text(
    page: str, tree: LexborHTMLParser, *, url: str = "", title: str = "", selector: str | None = None
) -> str:
    """The article's own text: configured selector, known containers, trafilatura, <article>, then <body>."""
    selectors = ([selector] if selector else []) + list(BODY_CONTAINERS)
    text = _container_text(tree, selectors, title)
    if text:
        return text
    text = _trafilatura_text(page, url, title)
    if len(text) >= MIN_BODY_CHARS:
        return text
    fallback = _container_text(tree, ["article", "main", "body"], title)
    return fallback or text


_HIDDEN = re.compile(r"<(noscript|template)\b[^>]*>.*?</\1\s*>", re.I | re.S)


def _from_page(raw: RawItem, content_selector: str | None) -> Article:
    # noscript (even in <head>) and template contents are never the article a reader sees
    html = _HIDDEN.sub(" ", raw.html or "")
    raw = RawItem(**{**raw.__dict__, "html": html})
    tree = LexborHTMLParser(html)
    title = page_title(tree, fallback=plain_text(raw.title), outlet=raw.outlet)
    body = tree.body
    page_text = collapse(node_text(body, skip_furniture=False)) if body is not None else ""
    published = page_published(tree, page_text) or raw.published_at
    text = main_text(raw.html or "", tree, url=raw.url, title=title, selector=content_selector)
    if len(text) < MIN_BODY_CHARS:
        summary = _summary_text(raw.body, title)
        if len(summary) > len(text):
            logger.warning("%s: no main text found on %s; using the feed summary", raw.source, raw.url)
            text = summary
    return _article(raw, title, text, published)


# -- items without a page --------------------------------------------------------------------------------
def plain_text(fragment: str | None) -> str:
    """Text of an HTML fragment (Naver API style <b>…</b>, &quot;): tags removed, entities unescaped."""
    if not fragment:
        return ""
    if "<" not in fragment:
        return collapse(html_lib.unescape(fragment))
    tree = LexborHTMLParser(f"<div>{fragment}</div>")
    node = tree.css_first("div")
    return collapse(node_text(node, skip_furniture=False)) if node is not None else collapse(fragment)


def _summary_text(body: str, title: str) -> str:
    return clean_lines(plain_text(body), title)


def _article(raw: RawItem, title: str, text: str, published: datetime | None) -> Article:
    return Article(
        id=raw.id,
        source=raw.source,
        outlet=raw.outlet,
        url=raw.url,
        title=" ".join(title.split()),
        text=text,
        published_at=published,
        fetched_at=raw.fetched_at,
        matches=(),
    )


def extract(raw: RawItem, *, content_selector: str | None = None) -> Article:
    """Title, publication time and main text of ``raw``; never raises on a bad page (logs and falls back)."""
    if raw.html:
        try:
            return _from_page(raw, content_selector)
        except Exception:  # a hostile page must not stop the pipeline; the feed summary is still useful
            logger.exception("%s: extraction failed on %s; using the feed summary", raw.source, raw.url)
    title = " ".join(plain_text(raw.title).split())
    return _article(raw, title, _summary_text(raw.body, title), raw.published_at)
