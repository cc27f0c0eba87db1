"""``shopdesk report`` (issue 15 item 6), run for real in a subprocess on SQLite and PostgreSQL
against the hand-made dataset of ``tests/analytics_data.py``: text, JSON and CSV give the same
numbers as the page; bad periods and filters are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from analytics_data import FIRST, LAST, seed

from tests.test_cli import Cli, ok, one_line_error


@pytest.fixture
async def report_cli(db_url: str, tmp_path: Path, sessions: Any) -> Cli:
    async with sessions() as session:
        await seed(session)
        await session.commit()
    return Cli(tmp_path, {"SHOPDESK_DATABASE_URL": db_url})


def test_report_as_json_csv_and_text(report_cli: Cli) -> None:
    document = json.loads(ok(report_cli("report", "--from", FIRST, "--to", LAST, "--json")))
    assert (document["from"], document["to"], document["previous_from"]) == (FIRST, LAST, "2026-10-22")
    kpis = {row[0]: row[1:4] for row in document["tables"]["kpis"]["rows"]}
    assert kpis["Conversations"] == [6, 2, 4]
    assert kpis["Median first response"] == [120, 600, -480]
    assert kpis["Median order processing time"][0] == 172800
    assert document["tables"]["conversations_by_day"]["rows"][0] == ["2026-11-01", 1, 1, 2]

    csv_text = ok(report_cli("report", "--from", FIRST, "--to", LAST, "--csv", "--table", "csat_by_agent"))
    assert csv_text.splitlines() == ["agent,ratings,mean,satisfied,r1,r2,r3,r4,r5",
                                     "Alice,2,3.5,0.5,0,0,1,1,0", "Bảo,1,2.0,0.0,0,1,0,0,0", "Bot,1,5.0,1.0,0,0,0,0,1"]
    telegram = ok(report_cli("report", "--from", FIRST, "--to", LAST, "--channel", "telegram", "--csv"))
    assert telegram.splitlines()[1] == "Conversations,2,1,1,count"

    text = ok(report_cli("report", "--from", FIRST, "--to", LAST))
    assert "Nov 1, 2026 – Nov 10, 2026" in text
    assert "Conversations: 6 (previous 2, change 4)" in text
    assert "Median first response: 2 min (previous 10 min" in text
    assert "On-time shipping rate: 50%" in text


def test_report_bad_input_is_one_line_and_exit_2(report_cli: Cli) -> None:
    one_line_error(report_cli("report", "--from", LAST, "--to", FIRST), 2, "start date is after the end date")
    one_line_error(report_cli("report", "--from", "2026-01-01", "--to", "2099-01-01"), 2, "future")
    one_line_error(report_cli("report", "--from", "2016-01-01", "--to", "2026-11-01"), 2, "366 days")
    one_line_error(report_cli("report", "--from", "31/12/2025"), 2, "2026-11-30")
    one_line_error(report_cli("report", "--channel", "fax"), 2, "Unknown channel")
    one_line_error(report_cli("report", "--json", "--csv"), 2, "--json")
    one_line_error(report_cli("report", "--csv", "--table", "users"), 2, "unknown table")
