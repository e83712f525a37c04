"""Which stories a new article is compared with: those whose members share its rare words or a passage.

The new article's keys are its rare headline words, its rare text words (a long text offers only its
rarest few: its copies share passages) and its shingle sample. Each key's postings name the indexed
articles that carry it; a key carried by too many (a topic word, boilerplate) finds nothing. The
articles found within the window are ranked by how many keys they share; in a crowd only those that
share two count. Their stories are then compared as a whole: each with its members found here and
its newest members (what the story says together, not only the member that happened to match).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from processors.grouping import native, signature
from processors.grouping.features import Features
from processors.grouping.index import Index

LIMIT = 128  # indexed articles found per new article at most (most shared keys first)
STORIES = 24  # candidate stories compared at most
MEMBERS = 12  # newest members of a candidate story compared beside those found
MAX_WORD_POSTINGS = 256  # a word carried by more articles than this finds no candidates
MAX_SHINGLE_POSTINGS = 64  # a shingle in more texts than this finds no candidates
MIN_HITS, CROWD = 2, 32  # with more articles found than CROWD, only those sharing MIN_HITS keys count
LONG_TEXT_KEYS = 4  # rarest text words of a long text used as keys


def query(features: Features, index: Index) -> tuple[np.ndarray, np.ndarray]:
    """The keys a new article looks candidates up with, and the posting cap of each."""
    rarity = index.rarity
    packed = features.packed()
    common = rarity.common_df() - 2.0  # the new article and its first copy count too
    head_df = rarity.word_df(packed.head).tolist()
    words = [h for h, df in zip(packed.head.tolist(), head_df, strict=True) if df <= common]
    rare = [(df, h) for h, df in zip(packed.text.tolist(), rarity.word_df(packed.text).tolist(), strict=True)
            if df <= common]  # fmt: skip
    if features.long and len(rare) > LONG_TEXT_KEYS:
        rare = sorted(rare)[:LONG_TEXT_KEYS]
    words += [h for _, h in rare]
    keys = np.concatenate([np.array(words, dtype=np.uint32), features.sample ^ np.uint32(signature.SHINGLE_SALT)])
    caps = np.full(len(keys), MAX_SHINGLE_POSTINGS, dtype=np.uint32)
    caps[: len(words)] = MAX_WORD_POSTINGS
    return keys, caps


class Found(NamedTuple):
    """Candidate stories and the members to compare with, grouped story by story (``owner``: story position)."""

    stories: list[int]
    slots: np.ndarray  # uint32
    owner: np.ndarray  # uint32
    shared: np.ndarray  # uint32: how many of the new article's sample keys found each member (0: walked to)


def find(index: Index, features: Features, t: float) -> Found:
    """The candidate stories of a new article at ``t``, each with the members to compare it with.

    The compiled core does it all in one call (``find_py`` is the reference).
    """
    core = native.active()
    if core is None:
        keys, caps = query(features, index)
        return find_py(index, keys, caps, t, len(keys) - len(features.sample))
    p = features.packed()
    stories, slots, owner, shared = core.find(*index.postings.parts(), p.head, p.text, features.sample,
                                              index.rarity.words,
                                      index.rarity.common_df() - 2.0, features.long,
                                      index.records.raw_view(), index.last, index.members_n, t, index.window_s,
                                      (LIMIT, CROWD, MIN_HITS, STORIES, MEMBERS, LONG_TEXT_KEYS, MAX_WORD_POSTINGS,
                                       MAX_SHINGLE_POSTINGS, signature.SHINGLE_SALT))  # fmt: skip
    u32 = native.U32
    return Found(np.frombuffer(stories, u32).tolist(), np.frombuffer(slots, u32), np.frombuffer(owner, u32),
                 np.frombuffer(shared, u32))  # fmt: skip


def find_py(index: Index, keys: np.ndarray, caps: np.ndarray, t: float, sample_from: int) -> Found:
    """The reference of ``find``: the slots ``find_slots`` ranks, grouped into stories in the order first found
    (``keys`` from ``sample_from`` on are the sample's)."""
    story_col = index.col("story")
    stories: dict[int, list[int]] = {}
    found, shared = find_slots(index, keys, caps, t, sample_from)
    for slot in found:
        story = int(story_col[slot])
        members = stories.get(story)
        if members is None:
            if len(stories) >= STORIES:
                continue
            members = stories[story] = []
        members.append(slot)
    for story, members in stories.items():
        if index.members_n[story] > len(members):  # members not found by the keys: the story's newest
            seen = set(members)
            members.extend(s for s in index.members(story, t, MEMBERS) if s not in seen)
    slots = [slot for members in stories.values() for slot in members]
    owner = [at for at, members in enumerate(stories.values()) for _ in members]
    return Found(list(stories), np.array(slots, dtype=np.uint32), np.array(owner, dtype=np.uint32),
                 np.array([shared.get(slot, 0) for slot in slots], dtype=np.uint32))  # fmt: skip


def find_slots(index: Index, keys: np.ndarray, caps: np.ndarray, t: float, sample_from: int
               ) -> tuple[list[int], dict[int, int]]:  # fmt: skip
    """Indexed articles sharing keys with the new one within the window of ``t``: most shared keys first,
    and how many sample keys (those from ``sample_from`` on) found each.

    With no more than LIMIT of them they come in the order they are first found (key by key, oldest
    first within a key).
    """
    if not len(keys):
        return [], {}
    slots, which = index.postings.lookup(keys, caps.astype(np.int64))
    if not len(slots):
        return [], {}
    order = np.lexsort((which, slots))  # by slot, then by the key it was found under
    slots, which = slots[order], which[order]
    head = np.flatnonzero(np.concatenate(([True], slots[1:] != slots[:-1])))
    hits = np.diff(np.append(head, len(slots)))
    shared = np.add.reduceat((which >= sample_from).astype(np.int64), head)
    slots, first = slots[head].astype(np.int64), which[head]
    least = MIN_HITS if len(slots) > CROWD else 1  # one shared rare word is enough in a quiet index
    ok = (hits >= least) & (np.abs(index.col("t")[slots].astype(np.float64) - t) <= index.window_s)
    slots, first, hits, shared = slots[ok], first[ok], hits[ok], shared[ok]
    if len(slots) > LIMIT:
        ranked = np.lexsort((-slots, -hits))[:LIMIT]  # most shared keys, then newest
    else:
        ranked = np.lexsort((slots, first))  # in order of discovery
    return slots[ranked].tolist(), dict(zip(slots[ranked].tolist(), shared[ranked].tolist(), strict=True))
