"""The `feedhub` command: serve the site, or check the config and the posts."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from feedhub import __version__
from feedhub.config import CONFIG_ENV, DEFAULT_CONFIG_PATH, Config, config_path, load_config
from feedhub.errors import ConfigError
from feedhub.index import open_index


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        config = load_config(config_path(args.config))
    except ConfigError as exc:
        print(f"feedhub: {exc}", file=sys.stderr)
        return 2
    return args.command(config, args)


def configure_logging(level: str = "INFO") -> None:
    """One line per event on stderr, in gunicorn's format so the two logs read as one."""
    logging.basicConfig(
        level=getattr(logging, level),
        format="[%(asctime)s] [%(process)d] [%(levelname)s] %(name)s: %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S %z",
        stream=sys.stderr,
    )


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        help=f"the config file (default: ${CONFIG_ENV}, else {DEFAULT_CONFIG_PATH})",
    )
    parser = argparse.ArgumentParser(
        prog="feedhub", description="Publish Jekyll posts as Atom, RSS and JSON feeds."
    )
    parser.add_argument("--version", action="version", version=f"feedhub {__version__}")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve", parents=[common], help="serve the feeds and pages over HTTP (gunicorn)"
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default: 8000)")
    serve.add_argument("--workers", type=int, default=2, help="worker processes (default: 2)")
    serve.add_argument("--threads", type=int, default=4, help="threads per worker (default: 4)")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false", help="do not log requests")
    serve.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    serve.set_defaults(command=_serve)

    check = commands.add_parser(
        "check", parents=[common], help="validate the config and every post; exit 1 if a post is skipped"
    )
    check.add_argument("--log-level", default="ERROR", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    check.set_defaults(command=_check)
    return parser


def _serve(config: Config, args: argparse.Namespace) -> int:
    from feedhub.server import serve  # gunicorn is only needed here

    # Sync once before the workers start, so each of them opens a warm index.
    index = open_index(config)
    index.sync_all()
    counts, (skipped, _) = index.counts(), index.problems()
    logging.getLogger("feedhub").info(
        "%s: %d posts in %d categories, %d scheduled; %d skipped (see `feedhub check`)",
        config.posts_dir,
        counts["posts"],
        counts["categories"],
        counts["scheduled"],
        len(skipped),
    )
    serve(config.path, args.host, args.port, args.workers, args.threads, args.access_log)
    return 0


def _check(config: Config, _args: argparse.Namespace) -> int:
    index = open_index(config)
    index.sync_all()
    skipped, warnings = index.problems()
    for problem in skipped:
        print(f"{config.posts_dir / problem.path}: skipped: {problem.reason}")
    for problem in warnings:
        print(f"{config.posts_dir / problem.path}: warning: {problem.reason}")
    counts = index.counts()
    print(
        f"{config.path}: ok; {counts['posts']} posts in {counts['categories']} categories, "
        f"{counts['scheduled']} scheduled, {counts['drafts']} drafts, {len(skipped)} skipped"
    )
    return 1 if skipped else 0
