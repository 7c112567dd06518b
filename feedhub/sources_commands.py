"""`feedhub sources import | export | list`: the operator's sources, to and from OPML, at a glance."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from feedhub.aggregator.opml_sources import (
    OpmlError,
    ascii_id,
    plan_import,
    read_opml,
    sources_opml,
    with_sources_added,
)
from feedhub.aggregator.sources import Source, load_sources
from feedhub.aggregator.state import StateStore
from feedhub.config import Config
from feedhub.posts import write_atomically
from feedhub.redact import public_url
from feedhub.storage import open_storage

DEFAULT_CATEGORY = "imported"


def import_sources(config: Config, sources: tuple[Source, ...], args: argparse.Namespace) -> int:
    path = Path(args.file)
    try:
        read = read_opml(path.read_bytes(), str(path))
    except OSError as exc:
        print(f"feedhub: {path}: cannot read it: {exc.strerror}", file=sys.stderr)
        return 2
    except OpmlError as exc:
        print(f"feedhub: {exc}", file=sys.stderr)
        return 2
    for repair in read.repairs:
        print(f"{path}: not well-formed, repaired: {repair}")
    for skipped in read.skipped:
        print(f"{path}: skipped: {skipped}")
    category = ascii_id(args.category or DEFAULT_CATEGORY) or DEFAULT_CATEGORY
    plan = plan_import(read, sources, category)
    for url in plan.already:
        print(f"already a source: {url}")
    for source in plan.added:
        title = f" ({source.category_title})" if source.category_title else ""
        print(
            f"{'would add' if args.dry_run else 'added'}: {source.id}  {source.category}{title}  {source.url}"
        )
    print(
        f"{len(plan.added)} to add, {len(plan.already)} already there"
        + (" (dry run: sources.yaml unchanged)" if args.dry_run else "")
    )
    if args.dry_run or not plan.added:
        return 0
    target = config.sources_path
    text = with_sources_added(target, plan.added)
    # The edited file must load as the scheduler will read it before it replaces the old one.
    check = target.with_name(f".{target.name}.import-check")
    try:
        check.write_text(text, "utf-8")
        load_sources(replace(config, sources_path=check))
    finally:
        check.unlink(missing_ok=True)
    write_atomically(target, text)
    return 0


def export_sources(config: Config, sources: tuple[Source, ...], _args: argparse.Namespace) -> int:
    sys.stdout.buffer.write(sources_opml(sources, f"{config.title}: sources"))
    return 0


def list_sources(config: Config, sources: tuple[Source, ...], _args: argparse.Namespace) -> int:
    states = StateStore(open_storage(config).state).all_sources()
    folder = config.sources_path.parent
    rows = [("ID", "CATEGORY", "URL", "STATE")]
    for source in sources:
        known = states.get(source.id)
        if not source.enabled:
            word = "disabled"
        elif known is None or known.result is None:
            word = "never polled"
        else:
            word = "gone" if known.gone else known.result.value
        rows.append((source.id, source.category, public_url(source.url, folder), word))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    for row in rows:
        print(
            "  ".join(value.ljust(width) for value, width in zip(row, widths, strict=False)) + f"  {row[3]}"
        )
    return 0
