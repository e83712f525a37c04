"""Turn fetched bytes into text: honour declared charsets, treat EUC-KR as CP949, detect when undeclared.

Korean sites often declare ``euc-kr`` while sending CP949 (its superset), declare a charset that is simply
wrong, or declare none at all. We try the declared charsets in order of authority, take the first that
decodes cleanly, fall back to detection, and as a last resort decode with replacement characters, which are
counted and logged, never a crash.
"""

from __future__ import annotations

import codecs
import logging
import re
import threading
from dataclasses import dataclass
from typing import Literal

from charset_normalizer import from_bytes

logger = logging.getLogger(__name__)

# Names that mean "Korean" on the web all decode as CP949: a superset of EUC-KR that servers really send.
# fmt: off
_KOREAN_LABELS = [
    "euc-kr", "euckr", "euc_kr", "ks_c_5601-1987", "ks_c_5601", "ksc5601", "ksc_5601", "korean",
    "x-windows-949", "windows-949", "ms949", "uhc", "cp949", "iso-ir-149", "csksc56011987",
]
# The WHATWG encoding standard: browsers read these labels as windows-1252, and so do we.
_WESTERN_LABELS = ["iso-8859-1", "iso8859-1", "latin1", "latin-1", "us-ascii", "ascii", "windows-1252"]
# fmt: on
_ALIASES = {
    **dict.fromkeys(_KOREAN_LABELS, "cp949"),
    **dict.fromkeys(_WESTERN_LABELS, "cp1252"),
    **dict.fromkeys(["gb2312", "gbk"], "gb18030"),
    **dict.fromkeys(["shift_jis", "sjis", "x-sjis"], "cp932"),
}
_SINGLE_BYTE_WESTERN = {"cp1252", "latin_1", "iso8859-1", "ascii"}
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),  # before UTF-16 LE: its BOM starts the same way
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]*?\sencoding\s*=\s*["']\s*([A-Za-z0-9._:-]+)\s*["']""")
_META_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
_XML_DECL_TEXT = re.compile(r"""^(\s*<\?xml[^>]*?\sencoding\s*=\s*)(["'])[^"']*\2""")
_HEAD_BYTES = 16384  # where a <meta charset> may appear; real Korean pages put it well inside this

_counter = threading.local()


def _count_and_replace(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    _counter.n = getattr(_counter, "n", 0) + 1
    return "\ufffd", exc.end


codecs.register_error("newsradar-count", _count_and_replace)


@dataclass(frozen=True)
class Decoded:
    """Decoded text, the codec actually used, and how many undecodable byte runs became U+FFFD.

    ``problem`` is the warning already logged when the declared charset did not fit or bytes were replaced,
    so a collector can count it for the source without logging it twice.
    """

    text: str
    encoding: str
    replaced: int
    problem: str = ""


def normalize_charset(label: str | None) -> str | None:
    """Python codec name for a charset label (euc-kr → cp949), or None when the label is unknown."""
    if not label:
        return None
    key = label.strip().strip("\"'").lower()
    if key in _ALIASES:
        return _ALIASES[key]
    try:
        name = codecs.lookup(key).name
    except LookupError:
        return None
    return _ALIASES.get(name, name)


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _lenient(body: bytes, encoding: str) -> tuple[str, int]:
    _counter.n = 0
    text = body.decode(encoding, errors="newsradar-count")
    return text, _counter.n


def declared_charsets(body: bytes, *, http_charset: str | None, kind: Literal["xml", "html"]) -> list[str]:
    """Charset labels a response declares, most authoritative first: HTTP, XML declaration, HTML meta."""
    labels = [http_charset] if http_charset else []
    decl = _XML_DECL.match(body[:1024])
    if decl:
        labels.append(decl.group(1).decode("ascii"))
    if kind == "html":
        meta = _META_CHARSET.search(body[:_HEAD_BYTES])
        if meta:
            labels.append(meta.group(1).decode("ascii"))
    return labels


def _detect(body: bytes) -> str | None:
    best = from_bytes(body[:200_000]).best()
    return normalize_charset(best.encoding) if best else None


def _western_but_korean(body: bytes) -> str | None:
    """A page labelled latin-1 whose bytes are really UTF-8 or CP949 Korean (common on old Korean sites)."""
    if body.isascii():
        return None
    if _strict(body, "utf-8") is not None:
        return "utf-8"
    text = _strict(body, "cp949")
    if text:
        non_ascii = [c for c in text if ord(c) > 127]
        hangul = sum(1 for c in non_ascii if "\uac00" <= c <= "\ud7a3")
        if hangul > len(non_ascii) / 2:
            return "cp949"
    return None


def _candidates(labels: list[str], where: str) -> list[str]:
    """Codec names for the declared labels, in order, without repeats; unknown labels are logged."""
    candidates: list[str] = []
    for label in labels:
        encoding = normalize_charset(label)
        if encoding is None:
            logger.warning("%s: unknown charset label %r ignored", where, label)
        elif encoding not in candidates:
            candidates.append(encoding)
    return candidates


def decode_bytes(
    body: bytes,
    *,
    http_charset: str | None,
    kind: Literal["xml", "html"],
    forced: str | None = None,
    where: str = "",
) -> Decoded:
    """Decode a response body; never raises on bad bytes. ``where`` names the source/URL in log lines."""
    where = where or "response"
    if forced:
        encoding = normalize_charset(forced)
        if encoding is None:
            logger.error("%s: configured encoding %r is unknown; detecting instead", where, forced)
        else:
            return _finish(body, encoding, where, "configured")
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            return _finish(body[len(bom) :], encoding, where, "byte-order mark")
    candidates = _candidates(declared_charsets(body, http_charset=http_charset, kind=kind), where)
    for encoding in candidates:
        if encoding in _SINGLE_BYTE_WESTERN:
            actual = _western_but_korean(body)
            if actual:
                problem = _warn(f"{where}: declared {encoding} but the bytes are {actual}; decoding as {actual}")
                decoded = _finish(body, actual, where, "content")
                return Decoded(decoded.text, decoded.encoding, decoded.replaced, problem)
        text = _strict(body, encoding)
        if text is not None:
            return Decoded(text, encoding, 0)
    if _strict(body, "utf-8") is not None:
        problem = _mismatch(candidates, where, "they are valid UTF-8")
        return Decoded(body.decode("utf-8"), "utf-8", 0, problem)
    detected = _detect(body)
    if detected and _strict(body, detected) is not None:
        problem = _mismatch(candidates, where, f"detected {detected}")
        return Decoded(body.decode(detected), detected, 0, problem)
    encoding = candidates[0] if candidates else (detected or "utf-8")
    return _finish(body, encoding, where, "best guess")


def _finish(body: bytes, encoding: str, where: str, why: str) -> Decoded:
    try:
        text, replaced = _lenient(body, encoding)
    except LookupError:
        text, replaced = _lenient(body, "utf-8")
        encoding = "utf-8"
    problem = ""
    if replaced:
        problem = _warn(
            f"{where}: {replaced} undecodable byte sequence(s) replaced with U+FFFD decoding as {encoding} ({why})"
        )
    return Decoded(text, encoding, replaced, problem)


def _warn(message: str) -> str:
    logger.warning("%s", message)
    return message


def _mismatch(candidates: list[str], where: str, finding: str) -> str:
    """Log that the declared charset does not fit (when one was declared); return the message."""
    return _warn(f"{where}: declared {candidates[0]} does not fit the bytes; {finding}") if candidates else ""


def xml_as_utf8(text: str) -> bytes:
    """Already-decoded XML as UTF-8 bytes whose declaration says utf-8, so a parser does not guess again."""
    text = text.lstrip("\ufeff")
    rewritten, _ = _XML_DECL_TEXT.subn(r"\1\2utf-8\2", text, count=1)
    return rewritten.encode("utf-8")
