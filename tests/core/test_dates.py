"""Publication times from feeds and pages (newsradar/dates.py): every result is timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from newsradar.dates import SEOUL, parse_time

LA = ZoneInfo("America/Los_Angeles")


def test_feed_formats() -> None:
    assert parse_time("Sat, 03 Apr 2010 21:15:06 +0900", SEOUL) == datetime(2010, 4, 3, 21, 15, 6, tzinfo=SEOUL)
    assert parse_time("2024.12.03 13:57", SEOUL) == datetime(2024, 12, 3, 13, 57, tzinfo=SEOUL)
    assert parse_time("Tue, 03 Dec 2024 13:57:00 KST", SEOUL) == datetime(2024, 12, 3, 13, 57, tzinfo=SEOUL)
    assert parse_time("Tue, 03 Dec 2024 04:57:00 -0000", SEOUL) == datetime(2024, 12, 3, 4, 57, tzinfo=UTC)
    assert parse_time("", SEOUL) is None and parse_time("어제", SEOUL) is None


def test_page_formats() -> None:
    """What meta tags and <time datetime> carry: ISO 8601 with or without a zone, dotted dates."""
    assert parse_time("2025-05-18T09:30:00", SEOUL) == datetime(2025, 5, 18, 9, 30, tzinfo=SEOUL)
    assert parse_time(" 2025-05-18T09:30:00+09:00 ", SEOUL) == datetime(2025, 5, 18, 9, 30, tzinfo=SEOUL)
    assert parse_time("2025-05-18T00:30:00Z", SEOUL) == datetime(2025, 5, 18, 0, 30, tzinfo=UTC)
    assert parse_time("2025/05/18 09:30", SEOUL) == datetime(2025, 5, 18, 9, 30, tzinfo=SEOUL)
    assert parse_time("2025-05-18", SEOUL) == datetime(2025, 5, 18, tzinfo=SEOUL)
    assert parse_time(None, SEOUL) is None and parse_time("   ", SEOUL) is None
    assert parse_time("2025-02-30", SEOUL) is None and parse_time("5월 18일", SEOUL) is None


def test_single_digit_dotted_dates_and_rfc_822_on_pages() -> None:
    """The one parser serves pages too, so a page's '2025.5.8' or RFC 822 meta value now parses.

    (Pages used to need two-digit months and days, and gave no time for RFC 822 values.)
    """
    assert parse_time("2025.5.8 9:30", SEOUL) is None  # an hour without its leading zero is not ISO
    assert parse_time("2025.5.8 09:30", SEOUL) == datetime(2025, 5, 8, 9, 30, tzinfo=SEOUL)
    assert parse_time("Thu, 08 May 2025 09:30:00 +0900", SEOUL) == datetime(2025, 5, 8, 9, 30, tzinfo=SEOUL)


@pytest.mark.parametrize("raw", ["2025-05-18T09:30:00", "Sun, 18 May 2025 09:30:00 KST", "2025.05.18 09:30"])
def test_a_time_without_a_known_zone_is_in_the_zone_given(raw: str) -> None:
    when = parse_time(raw, LA)
    assert when == datetime(2025, 5, 18, 9, 30, tzinfo=LA) and when.tzinfo is LA
