"""The ``newsradar`` command: run the daemon, check config, preview or send the digest, test sources,
classify an archive, evaluate against labels.

Exit codes: 0 success, 1 runtime failure, 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

# Before numpy is first imported, here or in a child: grouping uses numpy on arrays of a few dozen values and never
# a matrix product, and an OpenBLAS thread pool started at import spins for ~0.1 s of another core (measured: 0.20 ->
# 0.10 s of CPU for `import numpy` on two cores), taken from the daemon beside the processor process.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from newsradar.errors import ConfigError, NewsradarError  # noqa: E402
from newsradar.settings import Settings, load, secret_env_names  # noqa: E402

log = logging.getLogger("newsradar")
DEFAULT_CONFIG = "config/default.yaml"


class RedactSecrets(logging.Filter):
    """Replace the value of every secret environment variable in log records with [redacted]."""

    def __init__(self, env_names: list[str]) -> None:
        super().__init__()
        self.secrets = [v for v in (os.environ.get(n, "") for n in env_names) if len(v) >= 4]

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            for value in self.secrets:
                message = message.replace(value, "[redacted]")
            record.msg, record.args = message, None
        return True


def setup_logging(level: str, settings: Settings | None, process: str = "") -> None:
    """Log to stderr at ``level``, secrets redacted; ``process`` tags the lines of a worker process."""
    handler = logging.StreamHandler(sys.stderr)
    tag = f"[{process}] " if process else ""
    handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {tag}%(name)s: %(message)s"))
    if settings is not None:
        handler.addFilter(RedactSecrets(secret_env_names(settings)))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("apscheduler", "kafka", "httpx", "httpcore", "trafilatura", "charset_normalizer"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def config_path(arg: str | None) -> str:
    return arg or os.environ.get("NEWSRADAR_CONFIG") or DEFAULT_CONFIG


# -- commands ----------------------------------------------------------------------------------------
def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from newsradar.daemon import Daemon

    if args.role == "all" and settings.processor.own_process:
        from newsradar.processor_process import start_early

        start_early(settings, forever=not args.once)

    daemon = Daemon(settings, role=args.role, shard=args.shard)
    if not args.once:
        daemon.run_forever()
        return 0
    started = time.monotonic()
    summaries = daemon.run_once()
    print(f"\n{'source':<36} {'new':>5} {'status':<12} {'seconds':>7}")
    for s in summaries:
        status = "error" if s.error else ("not-modified" if s.not_modified else "ok")
        print(f"{s.source[:36]:<36} {s.new_items:>5} {status:<12} {s.seconds:>7.2f}")
        if s.error:
            print(f"    {s.error[:200]}")
    snap = daemon.metrics.snapshot()["components"]
    stories = {k: v["counts"] for k, v in snap.items() if not k.startswith("source:")}
    print(f"\nstages: {json.dumps(stories, ensure_ascii=False)}")
    if daemon.notify is not None:  # issue 18: what was not alerted, and why
        print(f"alerts held back as old (earliest copy over {settings.slack.alert_max_age_hours:g} h ago, or a new "
              f"source's backlog): {len(daemon.notify.held_old)} stories (listed in the digest)")
        held = daemon.held_for_quiet_hours
        if held:
            print(f"alerts held for quiet hours: {held} (sent when the window ends)")
    print(f"done in {time.monotonic() - started:.2f}s")
    return 1 if summaries and all(s.error for s in summaries) else 0


def cmd_check_config(args: argparse.Namespace, settings: Settings) -> int:
    from newsradar.settings import secret

    print(f"{config_path(args.file or args.config)}: OK")
    print(f"  sources: {len(settings.sources)} ({sum(s.enabled for s in settings.sources)} enabled)")
    print(f"  watchlist: {', '.join(t.name for t in settings.watchlist.terms)}")
    print(f"  bus: {settings.bus.kind}; state: {settings.state_dir}")
    slack = "bot token" if secret(settings.slack.token_env) else (
        "incoming webhook" if secret(settings.slack.webhook_url_env) else "not set (alerts printed, written to var/)")
    print(f"  slack: {slack}")  # never the secret itself
    mail = f"{settings.smtp.host}:{settings.smtp.port} ({settings.smtp.security})" if settings.smtp.host else (
        "not set (digests written to var/)")
    print(f"  smtp: {mail}; digest at {settings.digest.time} {settings.digest.timezone} "
          f"to {len(settings.digest.recipients)} recipient(s)")
    return 0


def cmd_digest(args: argparse.Namespace, settings: Settings) -> int:
    from newsradar.pipeline import utcnow
    from newsradar.store import open_store
    from notifiers import digest_mailer
    from notifiers.slack_digest import slack_digester

    store = open_store(settings)
    try:
        mailer = digest_mailer(settings, store)
        if args.preview:
            digest = mailer.preview(utcnow(), Path(args.preview))
            print(f"wrote {args.preview}: {digest.subject}")
            return 0
        now = utcnow()
        sent = [r for r in mailer.recipients() if mailer.send(r, now)]  # on demand; still once per day
        slack = slack_digester(settings, store, mailer)
        sent += [f"Slack {c}" for c in slack.channels() if slack.send(c, now)]
        print(f"digest sent to: {', '.join(sent)}" if sent else "digest: nothing to send (already sent today)")
        return 0
    finally:
        store.close()


def cmd_sources_test(args: argparse.Namespace, settings: Settings) -> int:
    """Fetch each source once and show what it yields, without publishing or remembering anything."""
    import tempfile

    from collectors.fetch import Fetcher
    from newsradar.pipeline import make_collector, utcnow
    from newsradar.store import SqliteStore

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "probe.db")  # a throwaway store: nothing is marked seen for real
        fetcher = Fetcher(settings.http)
        for source in settings.sources:
            if args.names and source.name not in args.names:
                continue
            started = time.monotonic()
            try:
                batch = make_collector(source, settings, fetcher, store).collect(utcnow())
                print(f"OK    {source.name}: {len(batch.items)} items ({time.monotonic() - started:.1f}s)")
                zone = ZoneInfo(settings.timezone)
                for item in sorted(batch.items, key=lambda i: i.published_at or i.fetched_at or utcnow(),
                                   reverse=True)[: args.show]:  # fmt: skip
                    when = item.published_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") if item.published_at \
                        else "(no date)"  # fmt: skip
                    print(f"        - {when}  {item.title[:80]}  [{item.outlet}]")
                for err in batch.errors:
                    print(f"        ! {err}")
            except Exception as exc:  # noqa: BLE001 - report every source
                failures += 1
                print(f"FAIL  {source.name}: {type(exc).__name__}: {exc}")
        fetcher.close()
        store.close()
    return 1 if failures else 0


def cmd_sources_import(args: argparse.Namespace, settings: Settings) -> int:
    """Add the feeds of an OPML file (a feed reader's subscriptions) to the config file."""
    from collectors.opml import import_opml

    config = Path(config_path(args.config))
    result = import_opml(config, Path(args.opml), dry_run=args.dry_run)
    verb = "would add" if args.dry_run else "added"
    print(f"{args.opml}: {verb} {len(result.added)} feeds to {config}; {len(result.already)} already there")
    for feed in result.added:
        print(f"  + {feed.name}  {feed.url}")
    return 0


def cmd_sources_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write the config's RSS sources as an OPML file a feed reader can import."""
    from collectors.opml import write_opml

    data, skipped = write_opml(settings)
    if args.opml:
        Path(args.opml).write_bytes(data)
        print(f"{args.opml}: {len(settings.sources) - len(skipped)} feeds written")
    else:
        sys.stdout.write(data.decode("utf-8"))
    if skipped:
        print(f"not feeds, left out: {', '.join(skipped)}", file=sys.stderr)
    return 0


def cmd_classify(args: argparse.Namespace, settings: Settings) -> int:
    from newsradar.classify import Classifier, InputError, read_lines
    from newsradar.progress import Progress

    classifier = Classifier(settings)
    with open(args.input, encoding="utf-8") as src:
        lines = src.readlines()
    outputs: list[dict[str, object]] = []
    bad = 0
    with Progress(len(lines), "classifying") as progress:
        for number, record, problem in read_lines(lines):
            if not problem and record is not None:
                try:
                    outputs.append(classifier.classify(record))
                except InputError as exc:
                    problem = str(exc)
            if problem:
                # One bad line is reported (line number and id) and passed through as an error row; the run goes on.
                bad += 1
                ident = record.get("id") if record is not None else None
                message = f"{args.input}: line {number}" + (f" (id {ident!r})" if ident is not None else "") \
                    + f": {problem}; passed through as an error row"  # fmt: skip
                logging.getLogger("newsradar.classify").error("%s", message)
                outputs.append({"id": ident, "line": number, "error": problem})
            progress.advance()
    for output in classifier.settle(outputs):  # type: ignore[arg-type]
        sys.stdout.write(json.dumps(output, ensure_ascii=False) + "\n")
    classifier.close()
    if bad:
        logging.getLogger("newsradar.classify").error("%s: %d of %d lines could not be classified",
                                                      args.input, bad, len(outputs))  # fmt: skip
    return 1 if bad else 0


def cmd_eval(args: argparse.Namespace, settings: Settings) -> int:
    from newsradar.classify import Classifier, read_jsonl
    from newsradar.evaluate import format_stories, format_terms, story_report, term_report
    from newsradar.progress import Progress

    with open(args.labels, encoding="utf-8") as src:
        gold = [record for _, record in read_jsonl(src)]
    classifier = Classifier(settings)
    with Progress(len(gold), "classifying") as progress:
        predicted = []
        for record in gold:
            predicted.append(classifier.classify(record))
            progress.advance()
    classifier.settle(predicted)
    classifier.close()
    print(f"{args.labels}: {len(gold)} items\n")
    if args.what in ("terms", "all"):
        terms = [t.name for t in settings.watchlist.terms]
        print("\n".join(format_terms(term_report(gold, predicted, terms), args.max_list)))
        print()
    if args.what in ("stories", "all"):
        print("\n".join(format_stories(story_report(gold, predicted), args.max_list)))
    return 0


def cmd_dead_letter(args: argparse.Namespace, settings: Settings) -> int:
    """List the dead-letter topic, or replay its events to the topics they came from (after a fix)."""
    from newsradar.bus import open_bus
    from newsradar.runner import dead_letters

    bus = open_bus(settings)
    try:
        letters = dead_letters(bus, replay=args.action == "replay")
    finally:
        bus.close()
    for letter in letters:
        where = f"{letter.failed_at}  {letter.topic}  key={letter.key}  attempts={letter.attempts}"
        print(f"{where}  {letter.reason[:160]}")
    print(f"{len(letters)} dead-lettered event(s) {'replayed' if args.action == 'replay' else 'listed'}")
    return 0


# -- parser ------------------------------------------------------------------------------------------
def _shard(value: str) -> tuple[int, int]:
    try:
        k, n = (int(part) for part in value.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected K/N such as 1/2, got {value!r}") from None
    if not 1 <= k <= n:
        raise argparse.ArgumentTypeError(f"expected 1 <= K <= N, got {value!r}")
    return k, n


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="newsradar", description="Korean news watch: collect, match, group, alert.")
    parser.add_argument("--config", help=f"config file (default: $NEWSRADAR_CONFIG or {DEFAULT_CONFIG})")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the daemon (or one sweep with --once)")
    run.add_argument("--once", action="store_true", help="poll every source once, process, notify, summarise, exit")
    run.add_argument("--role", default="all", choices=["collector", "processor", "notifier", "all"])
    run.add_argument("--shard", type=_shard, default=(1, 1), metavar="K/N",
                     help="with several collectors: this one polls the K-th of N shares of the sources")
    run.set_defaults(func=cmd_run)

    check = sub.add_parser("check-config", help="validate a config file")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_check_config)

    digest = sub.add_parser("digest", help="preview or send the daily digest")
    group = digest.add_mutually_exclusive_group(required=True)
    group.add_argument("--preview", metavar="FILE.html", help="render to a file; sends and records nothing")
    group.add_argument("--send", action="store_true", help="send today's digest to recipients not yet served")
    digest.set_defaults(func=cmd_digest)

    sources = sub.add_parser("sources", help="source tools")
    sources_sub = sources.add_subparsers(dest="sources_command", required=True)
    test = sources_sub.add_parser("test", help="fetch each source once and show its items (nothing is stored)")
    test.add_argument("names", nargs="*", help="only these sources")
    test.add_argument("--show", type=int, default=3, help="items to show per source")
    test.set_defaults(func=cmd_sources_test)

    opml_in = sources_sub.add_parser("import", help="add an OPML file's feeds to the config file (new URLs only)")
    opml_in.add_argument("opml", metavar="FILE.opml")
    opml_in.add_argument("--dry-run", action="store_true", help="show what would be added; change nothing")
    opml_in.set_defaults(func=cmd_sources_import)
    opml_out = sources_sub.add_parser("export", help="write the config's RSS sources as OPML")
    opml_out.add_argument("opml", metavar="FILE.opml", nargs="?", help="default: standard output")
    opml_out.set_defaults(func=cmd_sources_export)

    classify = sub.add_parser("classify", help="classify a JSONL archive (see README for the contract)")
    classify.add_argument("input", help="IN.jsonl")
    classify.set_defaults(func=cmd_classify)

    dead = sub.add_parser("dead-letter", help="list or replay events that kept failing")
    dead.add_argument("action", choices=["list", "replay"], help="replay: republish to the original topics")
    dead.set_defaults(func=cmd_dead_letter)

    evaluate = sub.add_parser("eval", help="precision/recall of terms and stories on a labelled JSONL file")
    evaluate.add_argument("labels", help="LABELS.jsonl (classify input plus terms, relevant, story)")
    evaluate.add_argument("--what", choices=["terms", "stories", "all"], default="all")
    evaluate.add_argument("--max-list", type=int, default=30, help="false hits/misses/pairs listed per kind")
    evaluate.set_defaults(func=cmd_eval)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    path = config_path(getattr(args, "file", None) or args.config)
    try:
        settings = load(path)
    except ConfigError as exc:
        setup_logging(args.log_level, None)
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    setup_logging(args.log_level, settings)
    try:
        return int(args.func(args, settings) or 0)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return 2
    except (NewsradarError, OSError, ValueError) as exc:
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
