"""``spendgate export``: events to a CSV, JSON or Parquet file, with a progress bar.

The file is written next to its destination under a temporary name and renamed into place
only when complete: an error or Ctrl-C leaves no partial file.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from spendgate.analytics import export as exports
from spendgate.analytics.periods import EXAMPLES, time_range
from spendgate.cli.options import gateway_store, store_options
from spendgate.cli.report import parse_filters
from spendgate.errors import ConfigError
from spendgate.events import Event
from spendgate.store.schema import FILTERABLE


def format_for(fmt: str | None, out: Path) -> str:
    """The export format: ``--format``, else the extension of ``--out``."""
    chosen = fmt or out.suffix.lstrip(".").lower()
    if chosen not in exports.FORMATS:
        raise ConfigError(
            f"cannot tell the format of {out.name!r}: pass --format {'|'.join(exports.FORMATS)}"
        )
    return chosen


@contextlib.contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """A temporary path beside ``out``, renamed to ``out`` when the block succeeds and removed
    when it fails."""
    folder = out.parent if str(out.parent) else Path()
    if not folder.is_dir():
        raise ConfigError(f"the folder {str(folder)!r} of --out does not exist")
    handle, name = tempfile.mkstemp(dir=folder, prefix=f".{out.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, out)
    finally:
        temporary.unlink(missing_ok=True)


def _write(fmt: str, chunks: Iterator[list[Event]], path: Path, progress: exports.Progress) -> None:
    if fmt == "parquet":
        exports.write_parquet(chunks, path, progress)
        return
    pieces = (
        exports.csv_text(chunks, progress) if fmt == "csv" else exports.json_text(chunks, progress)
    )
    with path.open("w", encoding="utf-8", newline="") as stream:
        for piece in pieces:
            stream.write(piece)


@click.command()
@click.option(
    "--format", "fmt", type=click.Choice(exports.FORMATS), help="File format (default: from --out)."
)
@click.option("--since", default="7d", show_default=True, help=f"Start of the range: {EXAMPLES}.")
@click.option("--until", help="End of the range (exclusive; default now).")
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="FIELD=VALUE",
    help=f"Only events whose FIELD equals VALUE (repeatable): {', '.join(FILTERABLE)}.",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="The file to write (replaced atomically when complete).",
)
@store_options
def export(
    *,
    fmt: str | None,
    since: str,
    until: str | None,
    filters: tuple[str, ...],
    out: Path,
    db: str | None,
    config_file: Path | None,
) -> None:
    """Export events (every field, oldest first) to CSV, JSON or Parquet."""
    chosen = format_for(fmt, out)
    start, end = time_range(since, until, datetime.now(UTC))
    where = exports.event_filters(parse_filters(filters))
    with gateway_store(db, config_file) as store:
        total = store.count_events(since=start, until=end, filters=where)
        chunks = store.iter_events(since=start, until=end, filters=where)
        columns = (
            TextColumn("exporting"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
        )
        with (
            atomic_file(out) as temporary,
            Progress(*columns, console=Console(stderr=True), transient=True) as progress,
        ):
            task = progress.add_task("events", total=total)
            written = [0]

            def advance(count: int) -> None:
                written[0] += count
                progress.advance(task, count)

            try:
                _write(chosen, chunks, temporary, advance)
            except (OSError, ValueError, TypeError) as err:
                raise click.ClickException(
                    f"the export failed; no file was written ({type(err).__name__}: {err})"
                ) from None
    click.echo(f"wrote {written[0]:,} events to {out} ({chosen})", err=True)
