"""Outlet names from publisher hosts: the mapping we maintain, for sources that give a URL but no name.

The Naver News search API returns the publisher's article URL (``originallink``) but not the outlet's
name, so the outlet is looked up by host: the longest matching suffix wins (``biz.chosun.com`` before
``chosun.com``), ``www.`` and ``m.`` are ignored. A host we do not know falls back to the host itself
without ``www.``/``m.`` (still a stable, readable name that groups one site's articles); add it here when
you see it in alerts.
"""

from __future__ import annotations

from collectors.urls import host_of

# fmt: off
OUTLETS: dict[str, str] = {
    # news agencies
    "yna.co.kr": "연합뉴스", "yonhapnewstv.co.kr": "연합뉴스TV", "news1.kr": "뉴스1", "newsis.com": "뉴시스",
    "newspim.com": "뉴스핌",
    # national dailies
    "chosun.com": "조선일보", "biz.chosun.com": "조선비즈", "joongang.co.kr": "중앙일보", "donga.com": "동아일보",
    "hani.co.kr": "한겨레", "khan.co.kr": "경향신문", "hankookilbo.com": "한국일보", "seoul.co.kr": "서울신문",
    "kmib.co.kr": "국민일보", "segye.com": "세계일보", "munhwa.com": "문화일보", "naeil.com": "내일신문",
    # business and IT
    "hankyung.com": "한국경제", "mk.co.kr": "매일경제", "sedaily.com": "서울경제", "edaily.co.kr": "이데일리",
    "mt.co.kr": "머니투데이", "asiae.co.kr": "아시아경제", "heraldcorp.com": "헤럴드경제", "fnnews.com": "파이낸셜뉴스",
    "ajunews.com": "아주경제", "etoday.co.kr": "이투데이", "etnews.com": "전자신문", "zdnet.co.kr": "지디넷코리아",
    "inews24.com": "아이뉴스24", "ddaily.co.kr": "디지털데일리", "thelec.kr": "디일렉", "bloter.net": "블로터",
    "dt.co.kr": "디지털타임스", "hellot.net": "헬로티", "energy-news.co.kr": "에너지신문",
    "electimes.com": "전기신문", "e2news.com": "이투뉴스",
    # broadcasters
    "kbs.co.kr": "KBS", "imbc.com": "MBC", "sbs.co.kr": "SBS", "ytn.co.kr": "YTN", "jtbc.co.kr": "JTBC",
    "mbn.co.kr": "MBN", "ichannela.com": "채널A", "tvchosun.com": "TV조선", "obsnews.co.kr": "OBS",
    # online and regional (the default watchlist follows 포항 and the battery industry in 경북)
    "nocutnews.co.kr": "노컷뉴스", "ohmynews.com": "오마이뉴스", "pressian.com": "프레시안",
    "mediatoday.co.kr": "미디어오늘",
    "kyongbuk.co.kr": "경북일보", "imaeil.com": "매일신문", "ksmnews.co.kr": "경상매일신문", "kbmaeil.com": "경북매일",
    "idaegu.com": "대구신문", "yeongnam.com": "영남일보", "busan.com": "부산일보", "kookje.co.kr": "국제신문",
    "knnews.co.kr": "경남신문", "idomin.com": "경남도민일보", "kwnews.co.kr": "강원일보", "jnilbo.com": "전남일보",
    "kado.net": "강원도민일보", "joongdo.co.kr": "중도일보", "cctoday.co.kr": "충청투데이",
    # portals (their own copies of outlets' articles)
    "news.naver.com": "네이버뉴스", "v.daum.net": "다음뉴스",
}
# fmt: on


def bare_host(host: str) -> str:
    """``host`` lower-cased without a leading ``www.`` or ``m.`` (mobile pages name the same outlet)."""
    host = host.lower().rstrip(".")
    for prefix in ("www.", "m."):
        if host.startswith(prefix) and host.count(".") > 1:
            host = host[len(prefix):]
    return host


def outlet_for_url(url: str, fallback: str = "") -> str:
    """The outlet publishing ``url``: the mapping's longest matching host suffix, else the bare host."""
    host = bare_host(host_of(url))
    labels = host.split(".")
    for i in range(len(labels) - 1):
        name = OUTLETS.get(".".join(labels[i:]))
        if name:
            return name
    return host or fallback
