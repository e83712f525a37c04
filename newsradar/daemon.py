"""The daemon: wires the stages from settings and runs them until SIGTERM/SIGINT.

Roles decide what one process runs: ``collector`` (poll jobs), ``processor``
(extract+match and the story grouper), ``notifier`` (Slack alerts and the daily
digest), or ``all`` (everything, as threads, the embedded default). Shutdown
order: stop polling, let the stage runners finish and commit their batch in
hand, then close the bus and the store.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from collectors.naver import scheduled_interval
from collectors.pacing import Pacer
from newsradar.bus import open_bus
from newsradar.errors import ConfigError, NewsradarError, TransientError
from newsradar.metrics import Metrics
from newsradar.pipeline import CollectStage, ExtractMatchStage, GroupStage, NotifyStage, PollSummary, utcnow
from newsradar.processor_process import ProcessorProcess
from newsradar.progress import Progress
from newsradar.runner import StageRunner, backoff
from newsradar.settings import Settings
from newsradar.store import open_store
from newsradar.sweep import SweepPool

if TYPE_CHECKING:  # apscheduler is imported where the daemon schedules: run --once needs none of it (~60 ms)
    from apscheduler.schedulers.background import BackgroundScheduler

log = logging.getLogger(__name__)

ROLES = ("collector", "processor", "notifier", "all")
RELEASE_EVERY = 10  # seconds between two looks at alerts held for quiet hours


class Daemon:
    """One process of newsradar. Build with settings and roles; call ``run_once`` or ``run_forever``."""

    def __init__(self, settings: Settings, role: str = "all", shard: tuple[int, int] = (1, 1),
                 metrics: Metrics | None = None) -> None:  # fmt: skip
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; expected one of {', '.join(ROLES)}")
        if not 1 <= shard[0] <= shard[1]:
            raise ValueError(f"shard {shard[0]}/{shard[1]}: expected K/N with 1 <= K <= N")
        self.settings = settings
        self.role = role
        self.shard = shard
        self.state_dir = Path(settings.state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = metrics or Metrics()
        self.stop = threading.Event()
        self.store = open_store(settings)
        self.bus = open_bus(settings)
        self.collect: CollectStage | None = None
        self.pacer: Pacer | None = None  # adaptive polling (polling.adaptive)
        self._intervals: dict[str, float] = {}
        self.runners: list[StageRunner] = []
        self.closers: list[Any] = []
        self.mailer: Any = None
        self.source_alerts: Any = None  # notifiers.SourceAlertSender (notifier role)
        self.dashboard: Any = None  # newsradar.web.server.Dashboard while run_forever serves it
        self.notify: NotifyStage | None = None
        self.held_for_quiet_hours = 0
        self.slack_digest: Any = None  # issue 18: the daily digest in Slack (or var/digests when Slack is off)
        self._scheduler: BackgroundScheduler | None = None
        self._digest_attempts = 0
        self._sweep_pool: SweepPool | None = None  # worker processes of a sweep (polling.processes > 1)
        self.processor_process: ProcessorProcess | None = None  # the processor stages' own process (role all)
        self._wire()

    def _has(self, role: str) -> bool:
        return self.role in (role, "all")

    def _wire(self) -> None:
        attempts = self.settings.bus.max_attempts
        if self._has("collector"):
            self.collect = CollectStage(self.settings, self.store, self.bus, self.metrics, self.shard)
            if self.settings.polling.adaptive:
                self.pacer = Pacer(self.settings, self.store)
            for source in self.settings.sources:
                if source.name in self.collect.collectors:
                    self.metrics.component(f"source:{source.name}", scheduled_interval(self.settings, source))
        if self.role == "all" and self.settings.processor.own_process:
            self.processor_process = ProcessorProcess(self.settings, self.metrics, self.request_stop)
        elif self._has("processor"):
            group = GroupStage.from_settings(self.settings, self.store)
            self.closers.append(group)
            for stage in (ExtractMatchStage.from_settings(self.settings), group):
                self.runners.append(StageRunner(stage, self.bus, self.metrics, self.stop, attempts,
                                                batch_size=self.settings.bus.batch_size))
        if self._has("notifier"):
            from notifiers import digest_mailer, source_alert_sender
            from notifiers.slack_digest import slack_digester

            notify = self.notify = NotifyStage.from_settings(self.settings, self.store, self.metrics)
            self.closers.append(notify)
            self.runners.append(StageRunner(notify, self.bus, self.metrics, self.stop, attempts))
            self.mailer = digest_mailer(self.settings, self.store)
            self.slack_digest = slack_digester(self.settings, self.store, self.mailer)
            self.source_alerts = source_alert_sender(self.settings, self.store)

    # -- one sweep -----------------------------------------------------------------------------
    def poll_all(self) -> list[PollSummary]:
        """Poll every enabled source once, a few at a time, with progress on a terminal.

        With ``polling.processes`` > 1 the sweep is spread over that many worker processes (newsradar.sweep),
        each host's sources in one of them; scheduled polls between sweeps stay in this process.
        """
        if self.collect is None:
            return []
        names = list(self.collect.collectors)
        if self.settings.polling.processes > 1 and len(names) > 1:  # a CPU-bound sweep over every core
            if self._sweep_pool is None:
                self._sweep_pool = SweepPool(self.settings, self.shard, self.metrics)
            with Progress(len(names), "polling sources") as progress:

                def done(summary: PollSummary) -> None:
                    self._paced(summary)
                    progress.advance(note=summary.source)

                return self._sweep_pool.poll(names, self.collect.poll, done)
        summaries: list[PollSummary] = []
        with Progress(len(names), "polling sources") as progress, ThreadPoolExecutor(
            max_workers=self.settings.polling.workers
        ) as pool:
            for summary in pool.map(self.poll_source, names):
                summaries.append(summary)
                progress.advance(note=summary.source)
        return summaries

    def poll_source(self, name: str) -> PollSummary:
        """Poll one source; with adaptive polling, work out its next interval and move its job to it."""
        assert self.collect is not None
        return self._paced(self.collect.poll(name))

    def _paced(self, summary: PollSummary) -> PollSummary:
        """With adaptive polling, work out the next interval of the source just polled and move its job."""
        name = summary.source
        if self.pacer is None:
            return summary
        try:
            state = self.pacer.after_poll(name, summary.new_items, summary.parse_failed, utcnow())
        except Exception as exc:  # noqa: BLE001 - pacing must never stop polling
            log.warning("source %s: adaptive interval not updated: %s", name, exc)
            return summary
        self.metrics.info(f"source:{name}", self.pacer.health(state))
        if state.failures == self.settings.polling.parse_failures:
            log.error("source %s: %d unparsable answers in a row; polled every %.0fs until it works again",
                      name, state.failures, state.interval)  # fmt: skip
        previous = self._intervals.get(name)
        self._intervals[name] = state.interval
        # health's silence check follows the interval (a failing source stays unhealthy: it never succeeds)
        self.metrics.component(f"source:{name}", state.interval)
        scheduler = self._scheduler
        if previous is not None and abs(state.interval - previous) > 0.05 * previous and scheduler is not None \
                and scheduler.running:  # fmt: skip
            from apscheduler.triggers.interval import IntervalTrigger

            source = next(s for s in self.settings.sources if s.name == name)
            try:
                scheduler.reschedule_job(f"poll:{name}",
                                         trigger=IntervalTrigger(seconds=state.interval, jitter=source.jitter or None))
            except Exception as exc:  # noqa: BLE001 - e.g. the job is gone at shutdown
                log.debug("source %s: not rescheduled: %s", name, exc)
        return summary

    def _empty_after(self) -> tuple[int, float]:
        """How a drain knows a topic is empty: (empty polls in a row, seconds each poll may wait).

        On the embedded bus in one process nothing else writes the topics while we drain, so one empty
        poll means empty and no poll waits; on Kafka a poll may come back empty while the group forms.
        """
        return (1, 0.0) if self.settings.bus.kind == "embedded" else (2, 0.3)

    def drain(self) -> int:
        """Run every local stage until its topic is empty (in pipeline order)."""
        idle_polls, poll_timeout = self._empty_after()
        return sum(runner.drain(idle_polls, poll_timeout) for runner in self.runners)

    def sweep_and_drain(self) -> list[PollSummary]:
        """One sweep with every local stage running beside it, each as a thread; returns once all is drained.

        ``run --once`` and the daemon's first sweep run this way.

        A stage consumes what the sweep (or the stage before it) publishes as it arrives: extraction, grouping
        and alerts overlap the polling, and the waits of one stage (fsync, Slack) the work of another. Stage k
        drains its topic once the sweep and stages 1..k-1 are done: nothing can be published upstream after
        that, so its last empty poll means empty. Each stage commits as it does in the daemon (after its
        effects are durable), so a kill at any moment loses and doubles nothing. A stage that fails stops the
        others (their batch in hand is finished and committed) and its error is raised here. With the
        processor stages in their own process, that process follows the sweep and the notifier follows it.
        """
        swept = threading.Event()
        child = self.processor_process
        threads, failures = self._follow(child.drained if child is not None else swept)
        try:
            summaries = self.poll_all()
        except BaseException:
            self.stop.set()  # the stages finish their batch in hand, commit it and end
            raise
        finally:
            swept.set()
            if child is not None:
                child.swept()
            for thread in threads:
                thread.join()
        if child is not None:
            child.check()
        if failures:
            raise failures[0]
        return summaries

    def _follow(self, upstream: Any) -> tuple[list[threading.Thread], list[BaseException]]:
        """Start every local stage as a thread that follows ``upstream`` (an Event set when it is done)."""
        finished = [threading.Event() for _ in self.runners]
        failures: list[BaseException] = []
        idle_polls, poll_timeout = self._empty_after()

        def follow(k: int, runner: StageRunner) -> None:
            try:
                runner.follow(finished[k - 1] if k else upstream, idle_polls, poll_timeout)
            except BaseException as exc:  # noqa: BLE001 - raised in the calling thread
                failures.append(exc)
                self.stop.set()
            finally:
                finished[k].set()

        threads = [threading.Thread(target=follow, args=(k, runner), name=f"stage-{runner.stage.name}")
                   for k, runner in enumerate(self.runners)]  # fmt: skip
        for thread in threads:
            thread.start()
        return threads, failures

    def follow_stages(self, upstream: Any) -> None:
        """Run the local stages until ``upstream`` is done and they are drained (a processor process's start)."""
        threads, failures = self._follow(upstream)
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]

    def run_stages(self) -> None:
        """Run the local stages until stopped (a processor process after its first drain)."""
        threads = [threading.Thread(target=r.run, name=f"stage-{r.stage.name}") for r in self.runners]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        failures = [r.failure for r in self.runners if r.failure is not None]
        if failures:
            raise failures[0]

    def run_once(self) -> list[PollSummary]:
        """Poll every source once, process and notify everything (the stages beside the sweep), then close."""
        try:
            if self.processor_process is not None:
                self.processor_process.start(forever=False)
            summaries = self.sweep_and_drain()
            self.check_sources()
            if self.notify is not None:
                self.release_held()
                self.held_for_quiet_hours = self.notify.held_for_quiet_hours()  # for the summary; store closes
            return summaries
        finally:
            self.close()

    # -- forever -------------------------------------------------------------------------------
    def run_forever(self, install_signals: bool = True) -> None:
        """Initial sweep, then scheduled polls, stage threads and the digest, until stopped."""
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: self.request_stop())
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = self._scheduler = BackgroundScheduler(timezone=ZoneInfo(self.settings.timezone))
        threads = [
            threading.Thread(target=r.run, name=f"stage-{r.stage.name}", daemon=True) for r in self.runners
        ]
        try:
            self.start_dashboard()
            if self.processor_process is not None:
                self.processor_process.start(forever=True)
            if self.collect is not None and not self.stop.is_set():
                self.sweep_and_drain()  # the first sweep is processed before the catch-up digest looks at stories
            for thread in threads:
                thread.start()
            self._schedule(scheduler)
            scheduler.start()
            if self.mailer is not None:
                self._catch_up_digest()
            log.info("newsradar running (role %s); stop with SIGTERM or Ctrl-C", self.role)
            while not self.stop.wait(30):
                self.metrics.write(self.state_dir / "health.json")
        finally:
            self.stop.set()
            if scheduler.running:
                scheduler.shutdown(wait=True)  # in-flight polls finish; no new ones start
            for thread in threads:
                if thread.ident is not None:  # started: a first sweep that failed comes before the threads
                    thread.join(timeout=60)
            self.close()
        failures = [r.failure for r in self.runners if r.failure is not None]
        if failures:
            raise failures[0]  # the process exits non-zero; nothing was committed past the failure
        if self.processor_process is not None:
            self.processor_process.check()

    # -- issue 17: the dashboard and source health -----------------------------------------------------
    def start_dashboard(self) -> str | None:
        """Serve the dashboard, /metrics and the probes (web.enabled); prints and returns its address.

        A token missing off loopback is a ConfigError (the daemon does not start). A port that is taken is
        logged as an error and the daemon runs on without the dashboard: the alerts matter more than the page.
        """
        if not self.settings.web.enabled or self.dashboard is not None:
            return None
        from newsradar.web.server import Dashboard

        dashboard = Dashboard(self.settings, self.metrics, {"bus": self.bus.ping, "store": self.store.ping},
                              next_poll=self._next_poll)
        try:
            address = dashboard.start()
        except ConfigError as exc:
            dashboard.stop()
            log.error("dashboard not started, running without it: %s", exc)
            return None
        self.dashboard = dashboard
        print(f"newsradar dashboard: {address}  (metrics: {address}metrics)", flush=True)
        log.info("dashboard listening on %s", address)
        return address

    def _next_poll(self, source: str) -> datetime | None:
        scheduler = self._scheduler
        job = scheduler.get_job(f"poll:{source}") if scheduler is not None and scheduler.running else None
        return job.next_run_time if job is not None else None

    def check_sources(self) -> None:
        """Open 'silent' incidents for quiet sources (collector role), then send queued source alerts (notifier)."""
        if self.collect is not None:
            self.collect.health.check(list(self.collect.collectors), utcnow())
        if self.source_alerts is None:
            return
        try:
            self.source_alerts.flush()
            self.metrics.success("source-alerts")
        except TransientError as exc:
            self.metrics.error("source-alerts", f"{type(exc).__name__}: {exc}")
            log.warning("source alerts not sent yet (transient, next try in %.0fs): %s",
                        self.settings.source_health.check_interval, exc)
        except NewsradarError as exc:
            self.metrics.error("source-alerts", f"{type(exc).__name__}: {exc}", permanent=True)
            log.error("source alerts not sent: %s", exc)

    def request_stop(self) -> None:
        if not self.stop.is_set():  # a processor process is told twice: when asked, and when the daemon closes
            log.info("stop requested: finishing work in hand")
        self.stop.set()
        if self.processor_process is not None:
            self.processor_process.request_stop()

    def _schedule(self, scheduler: BackgroundScheduler) -> None:
        from apscheduler.triggers.cron import CronTrigger
        from apscheduler.triggers.interval import IntervalTrigger

        if self.collect is not None:
            for source in self.settings.sources:
                if source.name not in self.collect.collectors:
                    continue
                # naver sources: paced to the API budget; adaptive: the interval the pacer saved
                interval = self.pacer.interval(source.name) if self.pacer else scheduled_interval(self.settings, source)
                self._intervals[source.name] = interval
                scheduler.add_job(
                    self.poll_source,
                    IntervalTrigger(seconds=interval, jitter=source.jitter or None),
                    args=[source.name],
                    id=f"poll:{source.name}",
                    max_instances=1,
                    coalesce=True,
                    next_run_time=utcnow() + timedelta(seconds=interval * random.uniform(0.5, 1.0)),
                )
        if self.mailer is not None:
            digest = self.settings.digest
            scheduler.add_job(
                self.send_digest,
                CronTrigger(hour=digest.at.hour, minute=digest.at.minute, timezone=ZoneInfo(digest.timezone)),
                id="digest",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=max(1, int(digest.misfire_grace)),  # apscheduler wants a positive number
            )
        scheduler.add_job(self.maintain, IntervalTrigger(hours=1), id="maintenance", coalesce=True)
        scheduler.add_job(self.check_sources, IntervalTrigger(seconds=self.settings.source_health.check_interval),
                          id="source-health", coalesce=True, max_instances=1)
        if self.notify is not None:  # quiet hours: held alerts go out within RELEASE_EVERY of the window's end
            scheduler.add_job(self.release_held, IntervalTrigger(seconds=RELEASE_EVERY), id="release",
                              coalesce=True, max_instances=1, next_run_time=utcnow())

    def release_held(self) -> None:
        """Send what quiet hours held where the window is over; failures are retried at the next run."""
        assert self.notify is not None
        try:
            released = self.notify.release_due()
            if released:
                log.info("quiet hours over: %d held stor%s released", released, "y" if released == 1 else "ies")
        except Exception as exc:  # noqa: BLE001 - the scheduler must keep running; nothing was lost
            self.metrics.error("notifier", f"release: {type(exc).__name__}: {exc}")
            log.warning("releasing held alerts failed, retrying in %ds: %s: %s", RELEASE_EVERY,
                        type(exc).__name__, exc)

    def _catch_up_digest(self) -> None:
        """Send today's digest now if its time passed within the misfire grace while we were down."""
        digest = self.settings.digest
        zone = ZoneInfo(digest.timezone)
        now = datetime.now(zone)
        scheduled = now.replace(hour=digest.at.hour, minute=digest.at.minute, second=0, microsecond=0)
        if scheduled <= now <= scheduled + timedelta(seconds=digest.misfire_grace):
            self.send_digest()

    def send_digest(self) -> None:
        """The digest job: send to every recipient not yet served today (idempotent across restarts).

        A transient failure (mail server down) schedules a one-off retry; the (day, recipient)
        keys make the retry send only what is still missing.
        """
        try:
            sent = self.mailer.send_due(utcnow())
            if sent:
                log.info("digest sent to %s", ", ".join(sent))
            if self.slack_digest is not None:
                posted = self.slack_digest.send_due(utcnow())
                if posted:
                    log.info("Slack digest posted to %s", ", ".join(posted))
            self.metrics.success("digest")
        except TransientError as exc:
            delay = backoff(self._digest_attempts, exc.retry_after, cap=900)
            self._digest_attempts += 1
            self.metrics.error("digest", f"{type(exc).__name__}: {exc}")
            log.warning("digest failed (transient), retrying in %.0fs: %s", delay, exc)
            if self._scheduler is not None and self._scheduler.running and not self.stop.is_set():
                from apscheduler.triggers.date import DateTrigger

                self._scheduler.add_job(self.send_digest, DateTrigger(utcnow() + timedelta(seconds=delay)),
                                        id="digest-retry", replace_existing=True)
            return
        except Exception as exc:  # noqa: BLE001 - the scheduler must keep running
            self.metrics.error("digest", f"{type(exc).__name__}: {exc}", permanent=True)
            log.error("digest failed: %s: %s", type(exc).__name__, exc)
        self._digest_attempts = 0

    def maintain(self) -> None:
        """Hourly: forget old seen ids and stories (by time), trim the embedded bus."""
        now = utcnow()
        self.store.prune_seen(timedelta(days=self.settings.seen_days), now)
        self.store.prune_stories(timedelta(days=max(self.settings.seen_days, self.settings.grouping.window_days)), now)
        self.store.prune_issue_17(timedelta(days=max(self.settings.seen_days, 2.0)), now)
        prune = getattr(self.bus, "prune", None)
        if prune is not None:
            prune(7 * 86400)

    def close(self) -> None:
        if self.processor_process is not None:
            self.processor_process.stop()  # its batch in hand finished and committed
        if self.dashboard is not None:
            self.dashboard.stop()
            self.dashboard = None
        for runner in self.runners:
            runner.close()
        for closer in self.closers:
            closer.close()
        if self._sweep_pool is not None:
            self._sweep_pool.close()
        if self.collect is not None:
            self.collect.close()
        self.metrics.write(self.state_dir / "health.json")
        self.bus.close()
        self.store.close()
