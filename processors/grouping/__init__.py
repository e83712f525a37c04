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

``native.py`` switches on the compiled twins of the two loops a profile showed to matter (shingle
hashing, posting lookups and merges at a million articles); everything else is Python and numpy.
"""

from processors.grouping.grouper import Grouper, Placement

__all__ = ["Grouper", "Placement"]
