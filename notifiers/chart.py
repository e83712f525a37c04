"""Draw the digest's trend chart as a PNG with matplotlib (Agg, no display), labels in Korean.

Korean needs a CJK font: we ask for Noto Sans CJK KR (Debian's fonts-noto-cjk, installed by `make fonts`,
`make run` and `make test`) and fall back to any installed font that has Hangul. Without one, the chart
would show empty boxes for every label, so ``render`` returns None and says why once; the digest then
carries the same figures as text (notifiers/trend.py).
"""

from __future__ import annotations

import io
import logging
import threading
from functools import lru_cache

from notifiers.trend import Trend

log = logging.getLogger(__name__)

PREFERRED_FONTS = ("Noto Sans CJK KR", "Noto Sans KR", "NanumGothic", "Noto Sans CJK JP", "Noto Sans CJK SC")
CHART_CID = "trend-chart@newsradar"
WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.6, 110
_warned: list[bool] = []
_RC_LOCK = threading.Lock()  # rc_context changes matplotlib's global settings for the drawing's duration


@lru_cache(maxsize=1)
def korean_font() -> str | None:
    """The family name of an installed font with Hangul glyphs, preferring PREFERRED_FONTS; None if none."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    for name in PREFERRED_FONTS:
        if name in names:
            return name
    from matplotlib.ft2font import FT2Font

    for entry in font_manager.fontManager.ttflist:  # any other font that can draw Hangul syllables
        try:
            if 0xAC00 in FT2Font(entry.fname).get_charmap():
                return str(entry.name)
        except (OSError, RuntimeError):
            continue
    return None


def render(data: Trend) -> bytes | None:
    """The chart as PNG bytes: stories per term per day (lines) over outlets per day (bars); None without
    a Korean font or when there is nothing to draw."""
    if data.empty or not data.days:
        return None
    font = korean_font()
    if font is None:
        if not _warned:
            log.warning("digest chart: no Korean (CJK) font installed; install fonts-noto-cjk (make fonts) — "
                        "digests carry the trend as text only until then")
            _warned.append(True)
        return None
    import matplotlib
    from matplotlib.figure import Figure  # the object API: no pyplot state, Agg canvas, no display needed

    labels = [f"{d:%m/%d}" for d in data.days]
    x = list(range(len(labels)))
    with _RC_LOCK, matplotlib.rc_context({"font.family": [font, "DejaVu Sans"], "axes.unicode_minus": False}):
        fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
        for term in data.terms:
            top.plot(x, data.stories[term], marker="o", markersize=3, linewidth=1.8, label=term)
        top.set_ylim(0, max(1, *(max(v) for v in data.stories.values())) * 1.35)  # room for the legend
        top.set_title(f"최근 {len(labels)}일 키워드별 기사 추이", fontsize=13)
        top.set_ylabel("스토리 수")
        top.legend(loc="upper left", fontsize=9, ncols=min(4, len(data.terms)), frameon=False)
        top.grid(axis="y", alpha=0.3)
        width = 0.8 / max(1, len(data.terms))
        for i, term in enumerate(data.terms):
            offset = (i - (len(data.terms) - 1) / 2) * width
            bottom.bar([v + offset for v in x], data.outlets[term], width=width, label=term)
        bottom.set_ylabel("보도 매체 수")
        bottom.set_xlabel("날짜 (현지 시각)")
        bottom.set_xticks(x, labels, fontsize=8, rotation=45)
        bottom.grid(axis="y", alpha=0.3)
        for axis in (top, bottom):
            axis.yaxis.get_major_locator().set_params(integer=True)
        fig.tight_layout()
        out = io.BytesIO()
        fig.savefig(out, format="png")
        return out.getvalue()
