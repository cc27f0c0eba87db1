"""``shopdesk nlu``: try and evaluate the bot's language understanding (library functions of ``bot.nlu.tools``)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import typer

from shopdesk.cli.common import fail, note, printable, working

app = typer.Typer(help="Try and evaluate the bot's language understanding.", no_args_is_help=True)


@app.command("classify")
def nlu_classify() -> None:
    """Read JSON lines ({"text", "lang"?}) or plain lines on stdin; write one JSON result per line.

    Each output line has text, intent, confidence, language and entities.
    """
    from bot.nlu.tools import classify_stream

    if sys.stdin.isatty():
        note("Type messages, one per line (Ctrl-D to end).")
    if isinstance(sys.stdin, io.TextIOWrapper):
        sys.stdin.reconfigure(errors="surrogateescape")  # a line that is not UTF-8 is reported, not fatal
    counts = classify_stream(sys.stdin, sys.stdout)
    if counts.failed:
        note(f"{counts.failed} line(s) could not be classified; see their \"error\" records")
        raise typer.Exit(1)


@app.command("eval")
def nlu_eval(
    path: Path = typer.Argument(..., help="CSV with columns text,intent[,lang], or a folder of <lang>.csv files."),
) -> None:
    """Print accuracy per intent and language, a confusion table and wrong actions on out-of-scope messages."""
    from bot.nlu.tools import evaluate_csv, format_report

    try:
        with working("classifying…"):
            report = evaluate_csv(path)
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        fail(str(exc))
    typer.echo(printable(format_report(report)))
