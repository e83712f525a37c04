"""Validated configuration: one pydantic model per section, loaded from YAML.

Every model forbids unknown keys, so a typo is an error naming the file, the
key and what was expected. Secrets never live in YAML: the config names the
environment variable, and ``secret()`` reads it at the moment of use.
"""

from __future__ import annotations

import os
import re
from datetime import time as dtime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from newsradar.errors import ConfigError


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r} (e.g. 'Asia/Seoul')") from exc
    return value


class HttpSettings(_Model):
    """The one HTTP client every collector uses."""

    user_agent: str = Field(
        "newsradar/0.1 (+https://github.com/newsradar/newsradar; news monitoring bot)",
        description="User-Agent header; names the project so site owners can reach us.",
    )
    connect_timeout: float = Field(5.0, gt=0, description="Seconds to establish a connection.")
    read_timeout: float = Field(15.0, gt=0, description="Seconds to wait for any one read.")
    total_timeout: float = Field(60.0, gt=0, description="Deadline in seconds for a whole response, body included.")
    max_bytes: int = Field(5_000_000, gt=0, description="Cap on a decompressed response body, in bytes.")
    max_redirects: int = Field(5, ge=0, description="Redirects followed before giving up.")
    per_host_concurrency: int = Field(2, ge=1, description="Requests in flight to one host at once.")
    per_host_delay: float = Field(1.0, ge=0, description="Seconds between two requests to one host.")
    respect_robots: bool = Field(True, description="Honour robots.txt for HTML sources.")
    max_retry_after: float = Field(600.0, ge=0, description="Longest Retry-After (seconds) we wait for.")


NAVER_NEWS_URL = "https://openapi.naver.com/v1/search/news.json"


class SourceSettings(_Model):
    """One news source: an RSS/Atom feed, an HTML list page, or a Naver News search query."""

    name: str = Field(..., min_length=1, description="Unique name, used in logs, metrics and state.")
    kind: Literal["rss", "html", "naver"] = Field(
        "rss", description="'rss' (RSS or Atom), 'html' (list page + articles) or 'naver' (Naver News search API)."
    )
    url: str = Field(
        "", description="Feed URL, list-page URL, or file:// path for offline use; naver: the API URL (default)."
    )
    query: str | None = Field(None, description="Naver sources: the search query (e.g. '이차전지 특화단지').")
    display: int = Field(100, ge=1, le=100, description="Naver sources: results per API call (the API allows 100).")
    max_pages: int = Field(
        3, ge=1, le=10, description="Naver sources: most API calls per poll while every result is still new."
    )
    outlet: str | None = Field(None, description="Outlet name; for feeds defaults to the entry's source or feed title.")
    interval: float = Field(600.0, ge=5, description="Seconds between polls.")
    jitter: float = Field(30.0, ge=0, description="Random extra delay (seconds) added to each poll.")
    timezone: str = Field("Asia/Seoul", description="Zone for published times that carry none.")
    encoding: str | None = Field(None, description="Force a charset when the source lies about it.")
    link_selector: str | None = Field(None, description="HTML sources: CSS selector for article links.")
    content_selector: str | None = Field(None, description="HTML sources: CSS selector for the article body, if known.")
    allowed_hosts: list[str] = Field(default_factory=list, description="Other hosts article links may go to.")
    max_articles: int = Field(30, ge=1, description="HTML sources: newest article links fetched per poll.")
    fetch_articles: bool = Field(False, description="RSS sources: also fetch each new item's page for its full text.")
    enabled: bool = Field(True, description="Set false to keep a source in config without polling it.")
    expected_period: float | None = Field(
        None, gt=0, description="Seconds within which this source normally has a new item; longer without one "
        "makes it 'silent' (one ops alert). Unset: source_health.silent_after.",
    )
    alert_first_poll: bool = Field(
        False, description="Alert the undated items of this source's first poll (default: backlog, digests only)."
    )

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @model_validator(mode="before")
    @classmethod
    def _naver_url(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("kind") == "naver" and not data.get("url"):
            return {**data, "url": NAVER_NEWS_URL}
        return data

    @model_validator(mode="after")
    def _html_needs_selector(self) -> SourceSettings:
        if self.kind == "html" and not self.link_selector:
            raise ValueError("an html source needs 'link_selector' (CSS selector for article links)")
        if self.kind == "naver" and not (self.query or "").strip():
            raise ValueError("a naver source needs 'query' (what to search Naver News for)")
        if self.kind != "naver" and not self.url:
            raise ValueError(f"an {self.kind} source needs 'url'")
        return self


class NaverSettings(_Model):
    """The Naver Search API account shared by every ``kind: naver`` source (issue 19)."""

    client_id_env: str = Field("NAVER_CLIENT_ID", description="Env var holding the application's Client ID.")
    client_secret_env: str = Field("NAVER_CLIENT_SECRET", description="Env var holding its Client Secret.")
    daily_budget: int = Field(
        20_000, ge=1, le=25_000,
        description="API calls a day newsradar may spend (Naver allows 25,000 per client id, all searches together).",
    )
    paging_share: float = Field(
        0.25, ge=0, lt=1,
        description="Share of the budget kept for extra pages in bursts; the rest paces the scheduled polls.",
    )


class PollingSettings(_Model):
    """Adaptive polling (issue 19): each source's interval follows how often it really publishes."""

    workers: int = Field(4, ge=1, le=64, description="Sources polled at once in a sweep (run --once, the first sweep).")
    processes: int = Field(
        1, ge=1, le=16,
        description="Worker processes a sweep is spread over, each source's host in one of them (1: the daemon's own).",
    )
    adaptive: bool = Field(False, description="Adapt each source's interval to its publishing rate (daemon only).")
    min_interval: float = Field(60.0, ge=5, description="Shortest adaptive interval in seconds.")
    max_interval: float = Field(3600.0, ge=5, description="Longest adaptive interval in seconds (quiet sources).")
    parse_failures: int = Field(
        3, ge=1, description="Consecutive unparsable answers after which a source is polled only rarely."
    )
    failing_interval: float = Field(
        21600.0, ge=5, description="Seconds between polls of a source that keeps failing to parse, until it works."
    )

    @model_validator(mode="after")
    def _bounds(self) -> PollingSettings:
        if self.min_interval > self.max_interval:
            raise ValueError("polling.min_interval must not exceed polling.max_interval")
        return self


class TermSettings(_Model):
    """A watched term: canonical name, aliases, exclusions, fuzzy tolerance."""

    name: str = Field(..., min_length=1, description="Canonical name reported in alerts and classify output.")
    aliases: list[str] = Field(default_factory=list, description="Other spellings: numerals, hanja, English.")
    exclude: list[str] = Field(default_factory=list, description="Phrases that must not count as this term.")
    tolerance: int | None = Field(
        None, ge=0, le=2, description="Jamo-level edits tolerated; default by length (short Hangul: exact)."
    )


class RuleSettings(_Model):
    """A rule over terms with its own routing: all / any / none."""

    name: str = Field(..., description="Rule name, shown in alerts.")
    all: list[str] = Field(default_factory=list, description="Every one of these terms must match.")
    any: list[str] = Field(default_factory=list, description="At least one of these terms must match.")
    none: list[str] = Field(default_factory=list, description="None of these terms may match.")
    channel: str | None = Field(None, description="Slack channel for stories that satisfy the rule.")


class WatchlistSettings(_Model):
    """What we watch for."""

    terms: list[TermSettings] = Field(default_factory=list, description="The watched terms.")
    rules: list[RuleSettings] = Field(default_factory=list, description="Optional rules over terms.")
    snippet_chars: int = Field(160, ge=40, description="Length of the snippet around the first match.")


class GroupingSettings(_Model):
    """How syndicated copies are grouped into stories."""

    window_days: float = Field(7.0, gt=0, description="Copies further apart than this are different stories.")


_WINDOW = re.compile(r"(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class QuietHoursSettings(_Model):
    """A daily window in which Slack alerts are held in the outbox, then released at its end (issue 18)."""

    window: str = Field(..., description="'HH:MM-HH:MM' (may cross midnight, end may be 24:00), or 'off'.")
    timezone: str = Field("Asia/Seoul", description="Zone of the window's times.")
    days: list[str] = Field(
        default_factory=lambda: list(WEEKDAYS),
        description="Days (mon..sun) on which the window starts; a window crossing midnight ends the next day.",
    )
    one_by_one_up_to: int = Field(
        3, ge=0, description="At the window's end, up to this many held stories go out one by one; more: one roll-up."
    )

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @field_validator("window")
    @classmethod
    def _window(cls, value: str) -> str:
        if value == "off":
            return value
        found = _WINDOW.fullmatch(value.strip())
        if not found:
            raise ValueError("expected 'HH:MM-HH:MM' such as '22:00-07:00', or 'off'")
        h1, m1, h2, m2 = map(int, found.groups())
        if h1 > 23 or m1 > 59 or m2 > 59 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise ValueError(f"{value!r}: hours run 00-23 (an end may be 24:00), minutes 00-59")
        if (h1, m1) == (h2 % 24, m2) and h2 != 24:
            raise ValueError(f"{value!r}: start and end are the same; use 'off' or '00:00-24:00'")
        return value.strip()

    @field_validator("days")
    @classmethod
    def _days(cls, value: list[str]) -> list[str]:
        days = [d.strip().lower()[:3] for d in value]
        wrong = [d for d, raw in zip(days, value, strict=True) if d not in WEEKDAYS or len(raw.strip()) < 3]
        if wrong:
            raise ValueError(f"unknown day(s) {wrong}; expected some of {', '.join(WEEKDAYS)}")
        if not days:
            raise ValueError("at least one day (or window: 'off')")
        return sorted(set(days), key=WEEKDAYS.index)

    @property
    def enabled(self) -> bool:
        return self.window != "off"

    @property
    def bounds(self) -> tuple[int, int]:
        """(start, end) in minutes after local midnight; end > start means the same day, else the next."""
        found = _WINDOW.fullmatch(self.window)
        assert found is not None, "bounds of an 'off' window"
        h1, m1, h2, m2 = map(int, found.groups())
        return h1 * 60 + m1, h2 * 60 + m2


class ChannelQuietHoursSettings(QuietHoursSettings):
    """Quiet hours of one Slack channel, overriding routes' and the default."""

    channel: str = Field(..., min_length=1, description="Slack channel id or name.")


class RouteSettings(_Model):
    """Send stories matching any of ``terms`` to ``channel``."""

    terms: list[str] = Field(..., min_length=1, description="Canonical term names.")
    channel: str = Field(..., description="Slack channel id or name.")
    quiet_hours: QuietHoursSettings | None = Field(None, description="Quiet hours of this route's channel.")


class SlackSettings(_Model):
    """Slack delivery. With neither secret set, alerts are printed and written under var/."""

    token_env: str = Field("SLACK_BOT_TOKEN", description="Env var holding the bot token (xoxb-...).")
    webhook_url_env: str = Field("SLACK_WEBHOOK_URL", description="Env var holding an incoming-webhook URL.")
    base_url: str = Field("https://slack.com/api/", description="Web API base URL (a stand-in in tests).")
    default_channel: str = Field("#news-radar", description="Channel for stories no route claims.")
    routes: list[RouteSettings] = Field(default_factory=list, description="Per-term channels.")
    min_interval: float = Field(1.0, ge=0, description="Seconds between two messages to one channel.")
    timeout: float = Field(10.0, gt=0, description="Seconds per Slack API call.")
    max_attempts: int = Field(5, ge=1, description="Attempts per message before it is dead-lettered.")
    quiet_hours: QuietHoursSettings | None = Field(None, description="Default quiet hours of every channel.")
    channel_quiet_hours: list[ChannelQuietHoursSettings] = Field(
        default_factory=list, description="Quiet hours per channel; window 'off' exempts a channel from the default."
    )
    alert_max_age_hours: float = Field(
        48.0, gt=0, description="Alert only stories whose earliest copy is this recent; older ones go to digests only."
    )

    @model_validator(mode="after")
    def _one_quiet_window_per_channel(self) -> SlackSettings:
        seen: dict[str, QuietHoursSettings] = {}
        for i, entry in enumerate(self.channel_quiet_hours):
            if entry.channel in seen:
                raise ValueError(f"channel_quiet_hours[{i}]: channel {entry.channel} is listed twice")
            seen[entry.channel] = entry
        for i, route in enumerate(self.routes):
            if route.quiet_hours is None:
                continue
            other = seen.get(route.channel)
            if other is not None and other != route.quiet_hours:
                raise ValueError(f"routes[{i}].quiet_hours: channel {route.channel} already has different quiet hours")
            seen[route.channel] = route.quiet_hours
        return self

    def quiet_hours_for(self, channel: str) -> QuietHoursSettings | None:
        """The quiet hours of ``channel``: its own entry, else a route's, else the default (None: never quiet)."""
        found: QuietHoursSettings | None = next((q for q in self.channel_quiet_hours if q.channel == channel), None)
        if found is None:
            found = next((r.quiet_hours for r in self.routes if r.channel == channel and r.quiet_hours), None)
        found = found or self.quiet_hours
        return found if found is not None and found.enabled else None


class SmtpSettings(_Model):
    """Mail server for the digest. Credentials come from the environment."""

    host: str | None = Field(None, description="SMTP host; unset means digests are written under var/.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port.")
    security: Literal["starttls", "ssl", "none"] = Field("starttls", description="Transport security.")
    username_env: str = Field("SMTP_USERNAME", description="Env var holding the login name.")
    password_env: str = Field("SMTP_PASSWORD", description="Env var holding the password.")
    timeout: float = Field(30.0, gt=0, description="Seconds per SMTP operation.")


class SubscriptionSettings(_Model):
    """What one digest recipient (email address) or Slack digest channel wants; unlisted ones get everything."""

    to: str = Field(..., min_length=1, description="An address of digest.recipients or a channel of slack_channels.")
    terms: list[str] = Field(default_factory=list, description="Stories matching any of these terms.")
    rules: list[str] = Field(default_factory=list, description="Stories satisfying any of these rules.")

    @model_validator(mode="after")
    def _something(self) -> SubscriptionSettings:
        if not self.terms and not self.rules:
            raise ValueError(f"subscription of {self.to}: name some terms or rules (or leave it out: everything)")
        return self


class DigestSettings(_Model):
    """The daily email digest."""

    time: str = Field("08:00", description="Local send time, HH:MM.")
    timezone: str = Field("Asia/Seoul", description="Zone of 'time'.")
    recipients: list[str] = Field(default_factory=list, description="Email addresses.")
    sender: str = Field("newsradar@localhost", description="From address.")
    subject: str = Field("[newsradar] {date} 뉴스 다이제스트 ({count}건)", description="Subject; {date}, {count}.")
    misfire_grace: float = Field(6 * 3600, ge=0, description="Seconds a late digest may still run.")
    slack_channels: list[str] = Field(default_factory=list, description="Slack channels that get the digest too.")
    subscriptions: list[SubscriptionSettings] = Field(
        default_factory=list, description="Per recipient or channel: only these terms or rules (default: all)."
    )
    chart_days: int = Field(14, ge=2, le=90, description="Days shown in the digest's trend chart.")

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @field_validator("time")
    @classmethod
    def _hhmm(cls, value: str) -> str:
        if not re.fullmatch(r"\d{1,2}:\d{2}", value):
            raise ValueError("expected HH:MM, e.g. '08:00'")
        hour, minute = map(int, value.split(":"))
        dtime(hour, minute)  # raises on 25:00
        return value

    @property
    def at(self) -> dtime:
        hour, minute = map(int, self.time.split(":"))
        return dtime(hour, minute)


class KafkaSettings(_Model):
    """The Kafka bus."""

    bootstrap_servers: str = Field("127.0.0.1:9092", description="Comma-separated host:port list.")
    topic_prefix: str = Field("newsradar.", description="Prefix for every topic name.")
    partitions: dict[str, int] = Field(
        default_factory=lambda: {"raw-items": 4, "articles": 1, "story-updates": 4, "dead-letter": 1},
        description="Partitions per topic, created at start-up if missing.",
    )
    replication_factor: int = Field(1, ge=1, description="Replication factor of created topics.")
    client_id: str = Field("newsradar", description="Client id reported to the broker.")


class BusSettings(_Model):
    """Which bus carries events between stages."""

    kind: Literal["embedded", "kafka"] = Field("embedded", description="'embedded' (SQLite) or 'kafka'.")
    path: str = Field("bus.db", description="Embedded bus file, relative to state_dir.")
    session_timeout: float = Field(10.0, gt=0, description="Seconds before a silent consumer loses its partitions.")
    kafka: KafkaSettings = Field(default_factory=KafkaSettings, description="Kafka settings (kind: kafka).")
    max_attempts: int = Field(5, ge=1, description="Attempts before an event goes to the dead-letter topic.")
    batch_size: int = Field(
        500, ge=1, le=10_000,
        description="Events extract+match and the grouper take per batch: one durable transaction, one publish "
        "and one offset commit each (the notifier takes at most 100: its Slack sends are paced per channel).",
    )


class ProcessorSettings(_Model):
    """Where the processor stages run when one daemon runs every role (``run``, ``run --once``)."""

    own_process: bool = Field(
        False,
        description="Run extraction, matching and grouping in a process of their own beside the daemon (role "
        "'all'): two cores instead of one; the same bus and state store, nothing else shared.",
    )


class WebSettings(_Model):
    """The dashboard, /metrics and the probes, served by the daemon (issue 17)."""

    enabled: bool = Field(True, description="Serve the dashboard, /metrics, /healthz and /readyz from the daemon.")
    listen: str = Field(
        "127.0.0.1:8080", description="host:port to listen on (port 0: any free port). Off loopback a token is "
        "required.",
    )
    token_env: str = Field(
        "NEWSRADAR_WEB_TOKEN", description="Env var holding the bearer token required when listen is not loopback."
    )
    page_size: int = Field(50, ge=1, le=500, description="Stories per page on the dashboard.")
    slack_workspace_url: str | None = Field(
        None, description="e.g. https://yourteam.slack.com: turns alert refs into Slack permalinks on story pages."
    )

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or int(port) > 65535:
            raise ValueError("expected host:port, e.g. '127.0.0.1:8080' or '[::1]:8080'")
        return value

    @field_validator("slack_workspace_url")
    @classmethod
    def _https(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"https://[A-Za-z0-9.-]+/?", value):
            raise ValueError("expected https://<workspace>.slack.com")
        return value.rstrip("/") if value else value

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])


class SourceHealthSettings(_Model):
    """When a source counts as broken, and where the one alert (and one recovery) goes (issue 17)."""

    failures: int = Field(3, ge=1, description="Failed polls in a row that make a source 'failing' (one alert).")
    silent_after: float = Field(
        2 * 86400, gt=0, description="Seconds without a new item that make a source 'silent', unless the source "
        "sets expected_period.",
    )
    channel: str | None = Field(
        None, description="Slack channel for source alerts (bot token). Unset, or no Slack secret: printed and "
        "written under {state_dir}/ops/.",
    )
    webhook_url_env: str = Field(
        "NEWSRADAR_OPS_WEBHOOK_URL", description="Env var holding an incoming-webhook URL for source alerts "
        "(used when there is no bot token or no channel).",
    )
    check_interval: float = Field(
        60.0, ge=1, description="Seconds between checks for silent sources and sends of pending source alerts."
    )
class StateSettings(_Model):
    """Where the state the roles share lives (seen ids, grouping decisions, stories, the alert outbox)."""

    kind: Literal["sqlite", "postgres"] = Field(
        "sqlite", description="'sqlite' ({state_dir}/state.db: one host) or 'postgres' (roles on several hosts)."
    )
    dsn_env: str = Field(
        "NEWSRADAR_DATABASE_URL", description="Env var holding the PostgreSQL DSN (postgresql://user:pw@host/db)."
    )
    pool_size: int = Field(4, ge=1, le=64, description="PostgreSQL connections kept open per process.")
    connect_timeout: float = Field(10.0, gt=0, description="Seconds to get a PostgreSQL connection.")


class Settings(_Model):
    """The whole configuration file."""

    state_dir: str = Field("var", description="Where state, the embedded bus and printed alerts live.")
    timezone: str = Field("Asia/Seoul", description="Zone used to show times to people.")
    seen_days: float = Field(30.0, gt=0, description="Days a seen item id is remembered.")
    bus: BusSettings = Field(default_factory=BusSettings, description="Event bus.")
    state: StateSettings = Field(default_factory=StateSettings, description="Shared state store.")
    http: HttpSettings = Field(default_factory=HttpSettings, description="HTTP client.")
    sources: list[SourceSettings] = Field(default_factory=list, description="News sources.")
    naver: NaverSettings = Field(default_factory=NaverSettings, description="Naver Search API account.")
    polling: PollingSettings = Field(default_factory=PollingSettings, description="Adaptive polling.")
    processor: ProcessorSettings = Field(default_factory=ProcessorSettings, description="The processor stages.")
    watchlist: WatchlistSettings = Field(default_factory=WatchlistSettings, description="Watched terms.")
    grouping: GroupingSettings = Field(default_factory=GroupingSettings, description="Story grouping.")
    slack: SlackSettings = Field(default_factory=SlackSettings, description="Slack alerts.")
    smtp: SmtpSettings = Field(default_factory=SmtpSettings, description="Mail server.")
    digest: DigestSettings = Field(default_factory=DigestSettings, description="Daily digest.")
    web: WebSettings = Field(default_factory=WebSettings, description="Dashboard, metrics and probes.")
    source_health: SourceHealthSettings = Field(
        default_factory=SourceHealthSettings, description="Source-health alerts to an ops channel."
    )

    _zone = field_validator("timezone")(classmethod(lambda cls, v: _zone(v)))

    @model_validator(mode="after")
    def _unique_sources(self) -> Settings:
        names = [s.name for s in self.sources]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"source names must be unique; repeated: {', '.join(dupes)}")
        self._check_subscriptions()
        return self

    def _check_subscriptions(self) -> None:
        """Subscriptions name known recipients, channels, terms and rules (issue 18)."""
        terms = {t.name for t in self.watchlist.terms} or {t["name"] for t in DEFAULT_WATCHLIST}
        rules = {r.name for r in self.watchlist.rules}
        targets = set(self.digest.recipients) | set(self.digest.slack_channels)
        for i, sub in enumerate(self.digest.subscriptions):
            where = f"digest.subscriptions[{i}]"
            if sub.to not in targets:
                raise ValueError(f"{where}.to: {sub.to!r} is neither in digest.recipients nor digest.slack_channels")
            unknown = [t for t in sub.terms if t not in terms]
            if unknown:
                raise ValueError(f"{where}.terms: unknown term(s) {unknown}; watched: {sorted(terms)}")
            unknown = [r for r in sub.rules if r not in rules]
            if unknown:
                raise ValueError(f"{where}.rules: unknown rule(s) {unknown}; defined: {sorted(rules)}")

    @property
    def state_path(self) -> Path:
        return Path(self.state_dir)


DEFAULT_WATCHLIST: list[dict[str, Any]] = [
    {"name": "이차전지", "aliases": ["2차전지", "二次電池", "secondary battery", "secondary batteries"]},
    {"name": "특화단지", "aliases": []},
    {"name": "CIBF", "aliases": ["China International Battery Fair", "중국국제배터리박람회"]},
    {"name": "포항", "aliases": ["Pohang"]},
]


def secret(env_name: str) -> str | None:
    """Read a secret from the environment at the moment of use; empty counts as unset."""
    value = os.environ.get(env_name, "")
    return value or None


def _format_errors(path: str, exc: ValidationError) -> str:
    lines = [f"{path}: invalid configuration"]
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling; see README config reference)"
        lines.append(f"  {key}: {msg}")
    return "\n".join(lines)


def parse(data: Any, path: str = "<config>") -> Settings:
    """Validate a parsed YAML document; raises ConfigError naming the file and keys."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(path, exc)) from None
    if not settings.watchlist.terms:
        settings = settings.model_copy(
            update={"watchlist": WatchlistSettings(terms=[TermSettings(**t) for t in DEFAULT_WATCHLIST])}
        )
    return settings


def load(path: str | Path) -> Settings:
    """Load and validate a YAML config file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read config: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{p}: not valid YAML: {exc}") from None
    if isinstance(data, dict):
        _resolve_file_urls(data, p.resolve().parent)
    return parse(data, str(p))


def _resolve_file_urls(data: dict[str, Any], base: Path) -> None:
    """``url: file:demo/feed.xml`` (relative) is read relative to the config file's folder."""
    for source in data.get("sources") or []:
        if isinstance(source, dict):
            url = source.get("url")
            if isinstance(url, str) and url.startswith("file:") and not url.startswith("file://"):
                source["url"] = (base / url[len("file:"):]).resolve().as_uri()


def secret_env_names(settings: Settings) -> list[str]:
    """Names of every environment variable that holds a secret, for log redaction."""
    return [
        settings.state.dsn_env,
        settings.naver.client_id_env,
        settings.naver.client_secret_env,
        settings.slack.token_env,
        settings.slack.webhook_url_env,
        settings.smtp.username_env,
        settings.smtp.password_env,
        settings.web.token_env,
        settings.source_health.webhook_url_env,
    ]
