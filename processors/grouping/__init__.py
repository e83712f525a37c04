"""Grouping: the copies of one event become one story, and two events never hide each other.

One press release reprinted by ten outlets under new headlines, with trimmed leads and their own
boilerplate, must be ONE story; a customs crackdown and a plant opening that share the day's battery
vocabulary must stay two. Each article's trip, one module per step::

    text.py, shingles.py ─▶ features.py ──▶ candidates.py ──▶ evidence.py ──▶ decision.py ──▶ grouper.py
    (words, subject,        (what the      (stories whose    (each signal,   (weights and     (story id;
     figures, shingles)      article says)  members share     article vs      thresholds,      record.py
                                            its rare words    each story)     where fitted)    makes it
                                            or a passage)                                      durable)

    index.py keeps the window's signatures (signature.py: what is kept of an article), their
    stories, postings.py (who carries which key) and rarity.py (how rare each word is this week).

``native.py`` switches on ``_core.c``, the compiled twins of the per-article loops: on the real June
stream the Python path spent nine tenths of its time comparing an article with its candidates one
member at a time (about 600 articles/s), at a million articles in posting lookups and merges. Each
compiled function has its Python reference beside it (``*_py`` or the numpy path, used when the core
is off: NEWSRADAR_GROUPING_NATIVE=0); tests/processors/grouping/test_native.py compares them and
test_fuzz_native.py fuzzes the core under AddressSanitizer and UBSan.
"""

from processors.grouping.grouper import Grouper, Placement

__all__ = ["Grouper", "Placement"]
