"""A scan of every log the suite writes, for secrets, tokens and customer contact data (issue 16, item 5).

A pytest plugin (its hooks are imported by ``tests/conftest.py``; ``-p tests.log_scan`` loads it
elsewhere). For the whole session, per xdist worker:

* a handler on the root logger renders every record the way ``shopdesk serve`` writes it
  (:class:`shopdesk.logs.RedactingFilter` + :class:`~shopdesk.logs.JsonFormatter`, on a copy of
  the record) and scans the line. The root logger is at INFO, as in production, with the same
  libraries pinned at WARNING as ``configure_logging`` pins;
* after each test, the log files under its ``tmp_path`` (the ``shopdesk serve`` processes of
  the fault suite write there) are scanned too.

What counts as a leak: any known secret, in any of the forms it could be printed in (as is,
lower-cased, URL-encoded, JSON-escaped): string constants of the test modules and fakes whose
names say they are one (``*TOKEN*``, ``*SECRET*``, ``*PASSWORD*``, ``*EMAIL*``, ``*PHONE*``,
``*COOKIE*`` …), every email address and phone number in ``tests/fixtures`` and of the demo
seed's customers (:data:`SEEDS`), and values tests register at run time (:func:`register_secret`: session cookies, CSRF and API tokens). Shapes are
leaks as well, whatever their value: an email address (also URL-encoded), a Telegram bot
token, a Slack token, an API token (``sdk_…``).

A test whose records or files hold a leak gets an error at teardown listing the offending
lines; records written outside any test fail the session at its end.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

__all__ = [
    "LeakScanner",
    "ScanHandler",
    "pytest_collection_finish",
    "pytest_configure",
    "pytest_runtest_makereport",
    "pytest_runtest_setup",
    "pytest_sessionfinish",
    "register_secret",
    "written_form",
]

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OUTSIDE = "<outside any test>"
#: a module constant holds a secret when its name says so ...
_SECRET_NAME = re.compile(r"TOKEN|SECRET|PASSWORD|PASSWD|COOKIE|SIGNING|EMAIL|PHONE|API_KEY|CREDENTIAL")
#: ... unless it names a place where one goes (a header, a field, a path)
_NOT_A_VALUE = re.compile(r"HEADER|FIELD|PATH|URL|NAME|PATTERN|RE$|_KEYS$|LENGTH|MAX|MIN")
_MIN_LENGTH = 8
_MAX_FILE_BYTES = 20_000_000
#: shapes that are a leak whatever their value (the redacting filter masks every one of them)
SHAPES = {
    "an email address": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "an email address (URL-encoded)": re.compile(r"[A-Za-z0-9._+-]+%40[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
    "a Telegram bot token": re.compile(r"(?<![0-9])\d{6,12}:[A-Za-z0-9_-]{30,}"),
    "a Slack token": re.compile(r"\bxox[abposr]-[A-Za-z0-9-]{6,}"),
    "an API token": re.compile(r"\bsdk_[A-Za-z0-9_-]{20,}"),
}
#: the demo seeds the suite plants (``seed_demo_orders(seed=…)``): their customers' phone numbers
SEEDS = (7, 8)
_PHONE_IN_DATA = re.compile(r'"phone"\s*:\s*"([^"]{6,})"')
_PHONE_IN_CSV = re.compile(r"\+\d[\d ()-]{7,}\d")

ACTIVE: LeakScanner | None = None


@dataclass(frozen=True)
class Leak:
    test: str
    what: str
    where: str
    line: str

    def describe(self) -> str:
        line = self.line if len(self.line) <= 400 else self.line[:400] + "…"
        return f"{self.what} in {self.where}: {line}"


def forms_of(value: str) -> set[str]:
    """The ways a value could be printed: as is, lower-cased, URL-encoded, JSON-escaped."""
    forms = {value, value.lower(), quote(value, safe=""), quote(value, safe="@:+"), json.dumps(value)[1:-1]}
    return {f for f in forms if len(f) >= _MIN_LENGTH}


class LeakScanner:
    """Known secrets and leak shapes; :meth:`scan` records every leak found in a text."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # value -> what it is
        self.leaks: list[Leak] = []
        self.current = OUTSIDE
        self._pattern: re.Pattern[str] | None = None
        self._names: dict[str, str] = {}
        self._lock = threading.Lock()
        self._seen_modules: set[str] = set()

    # -- what to look for ------------------------------------------------------------------

    def add(self, value: str | bytes | None, what: str) -> None:
        if isinstance(value, bytes):
            try:
                value = value.decode()
            except UnicodeDecodeError:
                return
        if not isinstance(value, str) or len(value.strip()) < _MIN_LENGTH or value in self.secrets:
            return
        with self._lock:
            self.secrets[value] = what
            self._pattern = None

    def add_module(self, module: ModuleType) -> None:
        """String constants of ``module`` whose names say they hold a secret or contact data."""
        if module.__name__ in self._seen_modules:
            return
        self._seen_modules.add(module.__name__)
        for name, value in vars(module).items():
            if not name.isupper() or not _SECRET_NAME.search(name) or _NOT_A_VALUE.search(name):
                continue
            if isinstance(value, (str, bytes)):
                self.add(value, f"{module.__name__}.{name}")

    def add_fixture_data(self, root: Path = FIXTURES) -> None:
        """Every email address and phone number in the fixture files (customers' data)."""
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.suffix not in (".json", ".csv", ".txt", ".yaml", ".yml"):
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            for email in SHAPES["an email address"].findall(text):
                self.add(email, f"a customer email in {path.name}")
            for phone in [*_PHONE_IN_DATA.findall(text), *_PHONE_IN_CSV.findall(text)]:
                self.add(phone, f"a customer phone in {path.name}")

    def add_seeded_customers(self, seeds: Iterable[int] = SEEDS) -> None:
        """The phone numbers (and emails) of the customers the demo seed plants (``shopdesk.demo``)."""
        from shopdesk.demo.customers import plan_people

        for seed in seeds:
            for person in plan_people(seed):
                self.add(person.phone, f"a seeded customer's phone ({person.key})")
                self.add(person.email, f"a seeded customer's email ({person.key})")

    def _compiled(self) -> tuple[re.Pattern[str] | None, dict[str, str]]:
        with self._lock:
            if self._pattern is None and self.secrets:
                names: dict[str, str] = {}
                for value, what in self.secrets.items():
                    for form in forms_of(value):
                        names.setdefault(form.lower(), what)
                alternatives = sorted(names, key=len, reverse=True)
                self._pattern = re.compile("|".join(re.escape(a) for a in alternatives), re.IGNORECASE)
                self._names = names
            return self._pattern, self._names

    # -- looking ---------------------------------------------------------------------------

    def find(self, text: str) -> list[str]:
        """What leaks in ``text`` (names of the secrets and shapes found)."""
        found: list[str] = []
        pattern, names = self._compiled()
        if pattern is not None:
            for match in pattern.finditer(text):
                what = names.get(match.group(0).lower(), "a secret")
                if what not in found:
                    found.append(what)
        for what, shape in SHAPES.items():
            if shape.search(text) and what not in found:
                found.append(what)
        return found

    def scan(self, text: str, where: str) -> list[Leak]:
        leaks = [Leak(self.current, what, where, text) for what in self.find(text)]
        if leaks:
            with self._lock:
                self.leaks.extend(leaks)
        return leaks

    def scan_file(self, path: Path) -> list[Leak]:
        try:
            if path.stat().st_size > _MAX_FILE_BYTES:
                return self.scan(f"(log file of {path.stat().st_size} bytes not scanned)", str(path))
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        leaks: list[Leak] = []
        for number, line in enumerate(text.splitlines(), 1):
            leaks += self.scan(line, f"{path.name}:{number}")
        return leaks

    def take(self, test: str) -> list[Leak]:
        """The leaks found while ``test`` ran (forgetting them)."""
        with self._lock:
            mine = [leak for leak in self.leaks if leak.test == test]
            self.leaks = [leak for leak in self.leaks if leak.test != test]
        return mine


def written_form(record: logging.LogRecord) -> str:
    """The line ``shopdesk serve`` would write for ``record`` (the record itself is not touched)."""
    from shopdesk.logs import JsonFormatter, RedactingFilter

    copy = logging.makeLogRecord(dict(record.__dict__))
    RedactingFilter().filter(copy)
    return JsonFormatter().format(copy)


class ScanHandler(logging.Handler):
    def __init__(self, scanner: LeakScanner) -> None:
        super().__init__(logging.NOTSET)
        self.scanner = scanner

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno < logging.WARNING and _pinned(record.name):
            return  # a test opened a library production keeps at WARNING: a server never writes these
        try:
            line = written_form(record)
        except Exception as exc:  # a record that cannot be rendered is a finding of its own
            line = f"(record of {record.name} could not be rendered: {type(exc).__name__}) {record.msg!r}"
        self.scanner.scan(line, f"log record of {record.name}")


def _pinned(logger: str) -> bool:
    return any(logger == name or logger.startswith(name + ".") for name in PINNED)


def register_secret(value: str | bytes | None, what: str) -> None:
    """A secret made at run time (a session cookie, a CSRF or API token): logs must not hold it."""
    if ACTIVE is not None:
        ACTIVE.add(value, what)


# --------------------------------------------------------------------------- the plugin

_HANDLER_KEY = pytest.StashKey[ScanHandler]()
#: production pins these at WARNING (``shopdesk.logs.configure_logging``)
PINNED = ("httpx", "httpcore", "telegram", "telegram.ext", "aiohttp.access", "aiosqlite", "sqlalchemy.engine")


def pytest_configure(config: pytest.Config) -> None:
    global ACTIVE
    if _HANDLER_KEY in config.stash:
        return
    scanner = LeakScanner()
    scanner.add_fixture_data()
    scanner.add_seeded_customers()
    handler = ScanHandler(scanner)
    config.stash[_HANDLER_KEY] = handler
    ACTIVE = scanner
    root = logging.getLogger()
    if root.level == logging.NOTSET or root.level > logging.INFO:
        root.setLevel(logging.INFO)  # what a server logs by default (SHOPDESK_LOG_LEVEL)
    for name in PINNED:
        logging.getLogger(name).setLevel(logging.WARNING)
    root.addHandler(handler)


def _attach(config: pytest.Config) -> None:
    """``configure_logging`` (called by some tests) replaces the root's handlers: put ours back."""
    handler = config.stash.get(_HANDLER_KEY, None)
    if handler is not None and handler not in logging.getLogger().handlers:
        logging.getLogger().addHandler(handler)


def _test_modules(items: Iterable[pytest.Item]) -> Iterator[ModuleType]:
    seen: set[str] = set()
    for item in items:
        module = getattr(item, "module", None)
        if module is not None and module.__name__ not in seen:
            seen.add(module.__name__)
            yield module
    for name, module in list(sys.modules.items()):
        if (name == "tests" or name.startswith("tests.")) and module is not None and name not in seen:
            yield module


def pytest_collection_finish(session: pytest.Session) -> None:
    handler = session.config.stash.get(_HANDLER_KEY, None)
    if handler is None:
        return
    for module in _test_modules(session.items):
        handler.scanner.add_module(module)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    handler = item.config.stash.get(_HANDLER_KEY, None)
    if handler is None:
        return
    for module in _test_modules([item]):  # (modules imported since collection, too)
        handler.scanner.add_module(module)
    handler.scanner.current = item.nodeid
    _attach(item.config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    handler = item.config.stash.get(_HANDLER_KEY, None)
    if handler is None:
        return
    if call.when != "teardown":
        _attach(item.config)
        return
    scanner = handler.scanner
    tmp = getattr(item, "funcargs", {}).get("tmp_path")
    if isinstance(tmp, Path) and tmp.exists():
        for path in sorted(tmp.rglob("*.log")):
            scanner.scan_file(path)
    scanner.current = OUTSIDE
    leaks = scanner.take(item.nodeid)
    if not leaks:
        return
    report = outcome.get_result()
    lines = "\n".join(f"  {leak.describe()}" for leak in leaks[:50])
    more = f"\n  … and {len(leaks) - 50} more" if len(leaks) > 50 else ""
    report.outcome = "failed"
    report.longrepr = f"secrets or customer data leaked into the logs ({len(leaks)} finding(s)):\n{lines}{more}"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    handler = session.config.stash.get(_HANDLER_KEY, None)
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    leftover = handler.scanner.leaks
    if not leftover:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    text = "\n".join(f"  [{leak.test}] {leak.describe()}" for leak in leftover[:50])
    message = f"secrets or customer data leaked into the logs outside any test:\n{text}\n"
    if reporter is not None:
        reporter.write_line(message, red=True)
    else:
        sys.stderr.write(message)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
