"""The `feedhub` command: serve the site, poll upstream feeds, check the config and the posts.

Exit status: 0 fine, 1 something to fix (a skipped post, a failed source), 2 an invalid
config or argument, 3 another scheduler already runs on the data folder.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

from feedhub import __version__
from feedhub.aggregator.lock import AlreadyRunning, SchedulerLock, holder_pid
from feedhub.aggregator.poll_requests import NoAnswer, ask
from feedhub.aggregator.poller import Poller, PollReport, user_agent
from feedhub.aggregator.scheduler import PollScheduler, poll_once
from feedhub.aggregator.sources import Source, load_sources
from feedhub.aggregator.state import StateStore
from feedhub.config import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    Config,
    config_path,
    load_config,
)
from feedhub.errors import ConfigError, StorageError
from feedhub.export import NGINX_SNIPPET, STATE_FOLDER, Exporter, open_exported_site
from feedhub.index.write import IndexWriter, open_writer
from feedhub.log_format import configure_logging
from feedhub.metrics import record_in_run_folder
from feedhub.posts import remove_temporaries
from feedhub.processes import processes_per_core
from feedhub.progress import progress
from feedhub.site import open_site
from feedhub.sources_commands import export_sources, import_sources, list_sources
from feedhub.storage import close_shared, open_storage
from feedhub.text import counted
from feedhub.websub.callbacks import CallbackClient
from feedhub.websub.hub import HubWorker
from feedhub.websub.push_store import PushStore
from feedhub.websub.runner import WebSubRunner, Worker
from feedhub.websub.store import HubStore
from feedhub.websub.subscriber import UpstreamSubscriber

log = logging.getLogger("feedhub")


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = load_config(config_path(args.config))
        sources = load_sources(config)
    except ConfigError as exc:
        print(f"feedhub: {exc}", file=sys.stderr)
        return 2
    try:
        status: int = args.command(config, sources, args)
    except StorageError as exc:  # the database is away, full or from a newer feedhub: one line, no traceback
        print(f"feedhub: {exc}", file=sys.stderr)
        return 1
    finally:
        close_shared()
    return status


LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        """One line, not argparse's usage block before it."""
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help=f"the config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG_PATH})",
    )
    parser = _Parser(prog="feedhub", description="Publish Jekyll posts as Atom, RSS and JSON feeds.")
    parser.add_argument("--version", action="version", version=f"feedhub {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="serve the feeds and pages over HTTP (gunicorn)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port", type=_between(1, 65535), default=8000, help="port to listen on (default: 8000)"
    )
    serve.add_argument("--workers", type=_between(1, 256), default=2, help="worker processes (default: 2)")
    serve.add_argument("--threads", type=_between(1, 1024), default=4, help="threads per worker (default: 4)")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false", help="do not log requests")
    serve.add_argument(
        "--no-scheduler", dest="scheduler", action="store_false", help="do not poll upstream feeds"
    )
    serve.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    serve.set_defaults(command=_serve)

    poll = commands.add_parser(
        "poll", parents=[common], help="poll the upstream feeds of sources.yaml on their schedule"
    )
    poll.add_argument(
        "--once",
        action="store_true",
        help="poll once now, print a summary and exit (a running scheduler is asked to, and answers)",
    )
    poll.add_argument(
        "--source", action="append", metavar="ID", help="with --once: only this source (repeatable)"
    )
    poll.add_argument(
        "--wait",
        action="store_true",
        help="without --once: if a scheduler already runs on the data folder, wait for it to stop",
    )
    poll.add_argument(
        "--jobs", type=_between(1, 256), default=8, help="sources polled at the same time (default: 8)"
    )
    poll.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)  # `feedhub serve`'s own poller
    poll.add_argument("--parent-sync", help=argparse.SUPPRESS)  # the full sync `feedhub serve` made
    poll.add_argument("--log-level", default="INFO", choices=LOG_LEVELS)
    poll.set_defaults(command=_poll)

    enable = commands.add_parser(
        "enable", parents=[common], help="poll a source again after 410 Gone or errors, now"
    )
    enable.add_argument("source", metavar="ID")
    enable.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS)
    enable.set_defaults(command=_enable)

    build = commands.add_parser(
        "build", parents=[common], help="write every feed and page as static files, for nginx or a CDN"
    )
    build.add_argument("outdir", type=_folder_to_write, metavar="OUTDIR")
    build.add_argument(
        "--jobs",
        type=_between(0, 64),
        default=processes_per_core(),
        help="processes that build the files (default: one per core; 0: this one alone)",
    )
    build.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS)
    build.set_defaults(command=_build)

    check = commands.add_parser(
        "check",
        parents=[common],
        help="validate the config, sources.yaml and every post; exit 1 if a post is skipped",
    )
    check.add_argument("--log-level", default="ERROR", choices=LOG_LEVELS)
    check.set_defaults(command=_check)

    sources = commands.add_parser("sources", help="import sources from OPML, export them, list them")
    what = sources.add_subparsers(required=True, metavar="ACTION")
    imported = what.add_parser(
        "import",
        parents=[common],
        help="add the feeds of an OPML file to sources.yaml (folders become categories)",
    )
    imported.add_argument("file", metavar="FILE.opml")
    imported.add_argument(
        "--category", metavar="SLUG", help="the category of feeds outside any folder (default: imported)"
    )
    imported.add_argument("--dry-run", action="store_true", help="print what would be added; change nothing")
    imported.set_defaults(command=import_sources)
    exported = what.add_parser("export", parents=[common], help="print the sources as OPML 2.0")
    exported.set_defaults(command=export_sources)
    listed = what.add_parser("list", parents=[common], help="print each source's id, category, URL and state")
    listed.set_defaults(command=list_sources)
    for action in (imported, exported, listed):
        action.add_argument("--log-level", default="WARNING", choices=LOG_LEVELS)
    return parser


def _between(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}, got {value}")
        return value

    return number


def _folder_to_write(text: str) -> Path:
    """An argparse type: a folder, or a path where one can be made (not a file)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a file, not a folder")
    return path


def _warn_about_base_url(config: Config, port: int) -> None:
    """Links in feeds and pages are made from base_url: a loopback one on another port leads nowhere."""
    parts = urlsplit(config.base_url)
    if parts.hostname in ("localhost", "127.0.0.1", "::1"):
        linked = parts.port or (443 if parts.scheme == "https" else 80)
        if linked != port:
            log.warning(
                "%s: base_url %s is a loopback address on port %d, but this server listens on %d: "
                "the links in feeds and pages will not reach it",
                config.path,
                config.base_url,
                linked,
                port,
            )


def _serve(config: Config, _sources: tuple[Source, ...], args: argparse.Namespace) -> int:
    from feedhub.server import AddressInUse, listen, serve  # gunicorn is only needed here
    from feedhub.supervise import Supervised

    try:
        listener = listen(args.host, args.port)
    except AddressInUse as exc:
        print(f"feedhub: {exc}", file=sys.stderr)
        return 2
    _warn_about_base_url(config, args.port)
    # Sync once before the workers start, so each of them opens a warm index.
    index = open_writer(config)
    _sync_showing_progress(index)
    site = open_site(config)
    counts, (skipped, _) = site.counts(), site.problems()
    log.info(
        "%s: %s in %s, %d scheduled; %d skipped (see `feedhub check`)",
        config.posts_dir,
        counted(counts["posts"], "post"),
        counted(counts["categories"], "category", "categories"),
        counts["scheduled"],
        len(skipped),
    )
    synced = index.full_sync_stamp()  # the workers and the poller need no sync of their own after it
    record_in_run_folder(config.data_dir, os.getpid())  # the workers and the scheduler inherit it
    scheduler = (
        Supervised("scheduler", _poller_command(config, args.log_level, synced)) if args.scheduler else None
    )
    serve(config.path, listener, args.workers, args.threads, args.access_log, synced, scheduler)
    return 0


def _poller_command(config: Config, log_level: str, synced: str | None) -> list[str]:
    """The scheduler in a process of its own: never inside gunicorn's forking master.

    With --wait it stands by if another scheduler already polls this data folder.
    """
    command = [sys.executable, "-m", "feedhub", "poll", "--config", str(config.path.resolve())]
    command += ["--wait", "--parent-pid", str(os.getpid()), "--log-level", log_level]
    return command + (["--parent-sync", synced] if synced else [])


def _poll(config: Config, sources: tuple[Source, ...], args: argparse.Namespace) -> int:
    record_in_run_folder(config.data_dir, os.getpid())  # or the folder of the `feedhub serve` it runs under
    lock = SchedulerLock(config.data_dir)
    try:
        lock.acquire(wait=args.wait and not args.once)
    except AlreadyRunning as exc:
        if not args.once:
            print(f"feedhub: {exc}", file=sys.stderr)
            return 3
        return _ask_the_scheduler(config, sources, args)
    try:
        poller = _poller(config, args.parent_sync)
        if args.once:
            chosen = _chosen_sources(sources, args)
            return _print_reports(poll_once(poller, chosen, args.jobs)) if chosen is not None else 2
        scheduler = PollScheduler(config, poller, args.jobs)
        websub = _websub_runner(config, scheduler)
        try:
            scheduler.run(threading.Event(), parent_pid=args.parent_pid)
        finally:
            websub.stop()
        return 0
    finally:
        lock.release()


def _websub_runner(config: Config, scheduler: PollScheduler) -> WebSubRunner:
    """WebSub runs beside the scheduler (one process per data folder): the built-in hub's
    deliveries and pings, and the subscriptions to upstream hubs with what they push."""
    backend = open_storage(config).state
    client = CallbackClient(user_agent(config), config.websub.allow_private_callbacks)
    subscriber = UpstreamSubscriber(
        config, PushStore(backend), client, scheduler.push, push_stopped=scheduler.push_stopped
    )
    workers: list[Worker] = [subscriber]
    if config.websub.builtin_hub or config.websub.hubs:
        workers.append(HubWorker(open_site(config), HubStore(backend), client))
    runner = WebSubRunner(backend, workers)
    runner.start()
    return runner


def _ask_the_scheduler(config: Config, sources: tuple[Source, ...], args: argparse.Namespace) -> int:
    """--once while a scheduler runs: it polls the sources now, and its reports are printed."""
    if _chosen_sources(sources, args) is None:
        return 2
    pid = holder_pid(config.data_dir)
    log.info("the scheduler (pid %s) polls now and answers", pid)
    try:
        reports = ask(config.data_dir, args.source, lambda: holder_pid(config.data_dir) == pid)
    except NoAnswer as exc:
        print(f"feedhub: {exc}", file=sys.stderr)
        return 1
    return _print_reports(reports)


def _poller(config: Config, parent_sync: str | None) -> Poller:
    """The poller of the one scheduler of this data folder (the caller holds its lock)."""
    removed = remove_temporaries(config.posts_dir)
    if removed:
        log.info(
            "%s: removed %s left by an interrupted write",
            config.posts_dir,
            counted(removed, "temporary file"),
        )
    index = open_writer(config)
    if parent_sync is None or index.full_sync_stamp() != parent_sync:
        _sync_showing_progress(index)  # dedupe must see every post already on disk
    return Poller(config, index, StateStore(open_storage(config).state))


def _chosen_sources(sources: tuple[Source, ...], args: argparse.Namespace) -> list[Source] | None:
    """The sources --source names (every enabled one without it); None, said why, for unknown names."""
    known = {source.id: source for source in sources}
    unknown = [name for name in args.source or [] if name not in known]
    if unknown:
        print(f"feedhub: no source {', '.join(map(repr, unknown))} in the sources file", file=sys.stderr)
        return None
    return [known[name] for name in args.source] if args.source else [s for s in sources if s.enabled]


def _print_reports(reports: Sequence[PollReport]) -> int:
    """One line per source and a summary; the exit status: 1 if any failed."""
    width = max((len(report.source) for report in reports), default=0)
    for report in reports:
        counts = report.counts
        numbers = f"{counts.new} new, {counts.updated} updated" if counts else ""
        reason = f"  {report.reason}" if report.reason else ""
        print(f"{report.source:{width}}  {report.outcome_word:12} {numbers:22}{reason}".rstrip())
    failed = [report for report in reports if report.failed]
    merged = sum(report.counts.new for report in reports if report.counts)
    print(f"{counted(len(reports), 'source')} polled: {counted(merged, 'new post')}, {len(failed)} failed")
    return 1 if failed else 0


def _sync_showing_progress(index: IndexWriter) -> None:
    """Bring the index up to the folder; on a terminal, with a bar of the files read."""
    with progress("reading posts", "posts") as advance:
        index.sync_all(advance)


def _enable(config: Config, sources: tuple[Source, ...], args: argparse.Namespace) -> int:
    if args.source not in {source.id for source in sources}:
        print(f"feedhub: no source {args.source!r} in {config.sources_path}", file=sys.stderr)
        return 2
    StateStore(open_storage(config).state).enable(args.source, time.time())
    pid = holder_pid(config.data_dir)
    if pid:
        os.kill(pid, signal.SIGHUP)  # the running scheduler picks it up now
    print(f"source {args.source} enabled" + (f"; the scheduler (pid {pid}) polls it now" if pid else ""))
    return 0


def _build(config: Config, _sources: tuple[Source, ...], args: argparse.Namespace) -> int:
    _sync_showing_progress(open_writer(config))
    with progress("exporting", "files") as advance:
        report = Exporter(open_exported_site(config), args.outdir, args.jobs).run(advance)
    counts = (
        f"{counted(report.written, 'file')} written, {report.unchanged} unchanged, {report.removed} removed"
    )
    print(f"{args.outdir}: {counts}; nginx: include {args.outdir.resolve() / STATE_FOLDER / NGINX_SNIPPET}")
    return 0


def _check(config: Config, sources: tuple[Source, ...], _args: argparse.Namespace) -> int:
    _sync_showing_progress(open_writer(config))
    site = open_site(config)
    skipped, warnings = site.problems()
    for problem in skipped:
        print(f"{config.posts_dir / problem.path}: skipped: {problem.reason}")
    for problem in warnings:
        print(f"{config.posts_dir / problem.path}: warning: {problem.reason}")
    counts = site.counts()
    print(
        f"{config.path}: ok; {counted(counts['posts'], 'post')} in "
        f"{counted(counts['categories'], 'category', 'categories')}, "
        f"{counts['scheduled']} scheduled, {counts['drafts']} drafts, {len(skipped)} skipped; "
        f"{counted(len(sources), 'upstream source')}"
    )
    return 1 if skipped else 0
