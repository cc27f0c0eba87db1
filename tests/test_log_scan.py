"""The suite-wide log scan (``tests/log_scan.py``) catches what it is meant to catch.

The scanner on its own (known secrets in every printed form, leak shapes, what production's
redaction already masks), the one installed for this very session, and the plugin end to end:
a throwaway test run that logs a webhook secret fails, one that logs only redacted data passes.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import quote

import pytest

from tests import log_scan
from tests.log_scan import LeakScanner, ScanHandler, forms_of
from tests.test_fault_cluster import SECRET as FAULT_SECRET
from tests.test_logs_privacy import CUSTOMER_PHONE, WRONG_PASSWORD

ROOT = Path(__file__).resolve().parents[1]
WEBHOOK_SECRET = "scan-test-webhook-secret-42"
CUSTOMER_EMAIL = "scan.customer@example.com"


@pytest.fixture
def scanner() -> LeakScanner:
    found = LeakScanner()
    found.add(WEBHOOK_SECRET, "the webhook secret")
    found.add("+44 7700 900999", "a customer phone")
    found.current = "this test"
    return found


@pytest.fixture
def logger(scanner: LeakScanner) -> logging.Logger:
    log = logging.getLogger("tests.scan_target")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handler = ScanHandler(scanner)
    log.addHandler(handler)
    yield log
    log.removeHandler(handler)
    log.propagate = True


def test_a_secret_is_found_in_every_printed_form(scanner: LeakScanner) -> None:
    for form in forms_of(WEBHOOK_SECRET) | {WEBHOOK_SECRET.upper()}:
        assert scanner.find(f"header was {form}!") == ["the webhook secret"], form
    assert scanner.find("+44%207700%20900999") == ["a customer phone"]
    assert scanner.find("nothing to see here") == []


def test_shapes_are_leaks_whatever_their_value(scanner: LeakScanner) -> None:
    assert scanner.find("mail to someone.else@shop.example") == ["an email address"]
    assert scanner.find("GET /x?email=someone%40shop.example") == ["an email address (URL-encoded)"]
    assert scanner.find("POST /bot123456789:AAbbccddeeffgghhiijjkkllmmnnooppqq/sendMessage") == [
        "a Telegram bot token"]
    assert scanner.find("token xoxb-1-2-abcdefabcdef") == ["a Slack token"]
    assert scanner.find("Bearer sdk_abcdefghijklmnopqrstuvwxyz") == ["an API token"]


def test_records_are_scanned_as_a_server_writes_them(scanner: LeakScanner, logger: logging.Logger) -> None:
    logger.info("customer wrote from %s", CUSTOMER_EMAIL)  # the redacting filter masks it: no leak
    logger.info("token xoxb-1-2-abcdefabcdef refused")  # masked too
    logger.info("customer called from %s", "+44 7700 900999")  # a phone number is masked as well
    assert scanner.leaks == []
    logger.warning("webhook refused: secret %r does not match", WEBHOOK_SECRET)
    logger.info("lookup", extra={"detail": f"q={quote(CUSTOMER_EMAIL)}"})  # an extra field, URL-encoded
    try:
        raise ValueError(f"bad header {WEBHOOK_SECRET}")
    except ValueError:
        logger.exception("handler failed")  # the traceback is part of the line
    found = [(leak.test, leak.what) for leak in scanner.leaks]
    assert found == [("this test", "the webhook secret"), ("this test", "an email address (URL-encoded)"),
                     ("this test", "the webhook secret")]
    assert "does not match" in scanner.leaks[0].line
    assert scanner.take("this test") and scanner.leaks == []


def test_a_record_the_server_would_not_write_is_not_a_leak(scanner: LeakScanner) -> None:
    engine_log = logging.getLogger("sqlalchemy.engine.Engine.scan_test")
    handler = ScanHandler(scanner)
    engine_log.addHandler(handler)
    engine_log.propagate = False
    try:
        level = engine_log.level
        engine_log.setLevel(logging.DEBUG)
        engine_log.debug("Row (1, '%s')", WEBHOOK_SECRET)  # production pins the engine's logger at WARNING
        assert scanner.leaks == []
        engine_log.warning("Row (1, '%s')", WEBHOOK_SECRET)
        assert [leak.what for leak in scanner.leaks] == ["the webhook secret"]
    finally:
        engine_log.setLevel(level)
        engine_log.removeHandler(handler)
        engine_log.propagate = True


def test_log_files_are_scanned_line_by_line(scanner: LeakScanner, tmp_path: Path) -> None:
    log_file = tmp_path / "server.out"  # (not *.log: the live scan would find it too)
    log_file.write_text('{"message": "ok"}\n{"message": "secret=' + WEBHOOK_SECRET + '"}\n')
    [leak] = scanner.scan_file(log_file)
    assert leak.where == "server.out:2" and leak.what == "the webhook secret"


def test_the_seeded_customers_phone_numbers_are_known() -> None:
    """The demo seed's customers (a persona and a generated one, of each seed the suite plants)."""
    from shopdesk.demo.customers import plan_people

    active = log_scan.ACTIVE
    assert active is not None
    for seed in log_scan.SEEDS:
        phones = [p.phone for p in plan_people(seed) if p.phone]
        assert "+15125550143" in phones and len(phones) > 1
        for phone in (phones[0], phones[-1]):
            assert active.find(f"row ({phone})"), phone
            assert active.find(f"q={quote(phone, safe='')}"), phone


def test_this_sessions_scanner_knows_the_suites_secrets(request: pytest.FixtureRequest) -> None:
    active = log_scan.ACTIVE
    assert active is not None
    for value in (WEBHOOK_SECRET, FAULT_SECRET, CUSTOMER_PHONE, WRONG_PASSWORD, "jon.snow@example.com"):
        assert active.find(f"x {value} y"), value
    # a record logged now is found and blamed on this test (then forgotten, so that it passes)
    logging.getLogger("shopdesk.scan_test").warning("leaking %s on purpose", FAULT_SECRET)
    leaks = active.take(request.node.nodeid)
    assert len(leaks) == 1 and leaks[0].what.endswith("SECRET") and "leaking" in leaks[0].line


def test_the_plugin_fails_a_test_that_logs_a_secret(tmp_path: Path) -> None:
    (tmp_path / "test_leaky.py").write_text(textwrap.dedent('''
        import logging

        TELEGRAM_WEBHOOK_SECRET = "plugin-test-webhook-secret"


        def test_leaks() -> None:
            logging.getLogger("shopdesk.leaky").warning("refused %s", TELEGRAM_WEBHOOK_SECRET)


        def test_only_redacted() -> None:
            logging.getLogger("shopdesk.tidy").info("hello jane.doe@example.com")


        def test_a_server_log_file(tmp_path) -> None:
            (tmp_path / "server-0.log").write_text("GET /x?email=jane.doe%40example.com\\n")
    '''))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.log_scan", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:randomly", "--rootdir", str(tmp_path), str(tmp_path / "test_leaky.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = run.stdout + run.stderr
    assert run.returncode == 1, out
    assert "3 passed, 2 errors" in out, out
    assert "ERROR at teardown of test_leaks" in out and "test_leaky.TELEGRAM_WEBHOOK_SECRET" in out, out
    assert "ERROR at teardown of test_a_server_log_file" in out and "server-0.log:1" in out, out
    assert "test_only_redacted" not in out.split("short test summary")[-1], out
