"""Quiet hours: is a channel inside its mute window now, and when does that window end?

Unlike Alertmanager's or Grafana's mute timings, which drop what falls inside the window, newsradar *holds*
an alert in the outbox (state 'held' in the store) and releases it when the window ends. This module is only
the clock arithmetic; the sinks (notifiers/slack.py, notifiers/console.py) do the holding and releasing.

A window is "HH:MM-HH:MM" in its own time zone; ``days`` are the days on which it *starts*, so a 22:00-07:00
window on Friday ends on Saturday at 07:00. Windows that touch (Saturday 00:00-24:00 and Sunday 00:00-24:00)
chain: the end reported is the end of the last one.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from newsradar.settings import WEEKDAYS, QuietHoursSettings

_CHAIN = 8  # a window can chain into at most a week of following ones


def _window_around(quiet: QuietHoursSettings, now: datetime) -> tuple[datetime, datetime] | None:
    """The (start, end) of the window holding ``now``, as aware datetimes in the window's zone, or None."""
    zone = ZoneInfo(quiet.timezone)
    local = now.astimezone(zone)
    start_min, end_min = quiet.bounds
    for back in (1, 0):
        day = local.date() - timedelta(days=back)
        if WEEKDAYS[day.weekday()] not in quiet.days:
            continue
        midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
        start = midnight + timedelta(minutes=start_min)
        end = midnight + timedelta(minutes=end_min if end_min > start_min else end_min + 24 * 60)
        if start <= local < end:
            return start, end
    return None


def quiet_until(quiet: QuietHoursSettings | None, now: datetime) -> datetime | None:
    """When the quiet window holding ``now`` ends (UTC), or None when ``now`` is outside every window."""
    if quiet is None or not quiet.enabled:
        return None
    found = _window_around(quiet, now)
    if found is None:
        return None
    end = found[1]
    for _ in range(_CHAIN):  # windows that touch chain into one
        following = _window_around(quiet, end)
        if following is None:
            break
        end = following[1]
    return end.astimezone(timezone.utc)


def describe(quiet: QuietHoursSettings) -> str:
    """'22:00-07:00 (Asia/Seoul, 월·화·수·목·금)' for people; every day is left unsaid."""
    names = dict(zip(WEEKDAYS, "월화수목금토일", strict=True))
    days = "" if len(quiet.days) == 7 else ", " + "·".join(names[d] for d in quiet.days)
    return f"{quiet.window} ({quiet.timezone}{days})"
