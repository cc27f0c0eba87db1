"""The ``shopdesk`` command line, run for real: ``python -m shopdesk.cli`` in a subprocess.

Each run gets its own data dir and ``SHOPDESK_CONFIG=/dev/null``; the commands that touch the
database point at the ``db_url`` fixture, so they run on SQLite and on PostgreSQL. A subprocess
costs about a second, so each test groups the assertions of one command family.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "shopify"
TIMEOUT = 300


@dataclass
class Cli:
    """Runs ``python -m shopdesk.cli ARGS`` with a clean SHOPDESK_* environment."""

    tmp: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def data_dir(self) -> Path:
        return self.tmp / "data"

    def __call__(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPDESK_")}
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
        full_env["SHOPDESK_DATA_DIR"] = str(self.data_dir)
        full_env["SHOPDESK_CONFIG"] = os.devnull
        full_env.update(self.env)
        full_env.update(env)
        return subprocess.run(
            [sys.executable, "-m", "shopdesk.cli", *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            encoding="utf-8",
            env=full_env,
            cwd=self.tmp,
            timeout=TIMEOUT,
        )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(result: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The run failed with ``code`` and said so in exactly one ``error: …`` line on stderr."""
    assert result.returncode == code, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), lines[0]
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A CLI whose database is a SQLite file that no test creates (for commands without a DB)."""
    return Cli(tmp_path, {"SHOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}"})


@pytest.fixture
def db_cli(db_url: str, tmp_path: Path) -> Cli:
    return Cli(tmp_path, {"SHOPDESK_DATABASE_URL": db_url})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --------------------------------------------------------------------------- help

_HELP_WALK = r"""
import contextlib, io, json, sys
import typer.main
from shopdesk import cli

def walk(command, path):
    yield path
    for name, sub in sorted(getattr(command, "commands", {}).items()):
        yield from walk(sub, [*path, name])

results = {}
for path in walk(typer.main.get_command(cli.app), []):
    out, err = io.StringIO(), io.StringIO()
    code = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli.main([*path, "--help"])
        except SystemExit as exc:
            code = exc.code
    results[" ".join(path)] = [code, out.getvalue(), err.getvalue()]
json.dump(results, sys.__stdout__)
"""

EXPECTED_COMMANDS = {
    "", "config", "serve", "demo", "chat",
    "db", "db upgrade", "db current",
    "orders", "orders import", "orders show",
    "tokens", "tokens create", "tokens list", "tokens revoke",
    "users", "users add", "users list",
    "nlu", "nlu classify", "nlu eval",
    "telegram", "telegram set-webhook", "telegram status",
}  # fmt: skip


def test_every_command_has_help(cli: Cli, tmp_path: Path) -> None:
    # the real entry point, as the console script and `python -m` run it
    top = ok(cli("--help"))
    for name in ("serve", "demo", "db", "orders", "tokens", "users", "nlu", "chat", "telegram", "config"):
        assert name in top
    assert "Usage: shopdesk" in top
    assert "add" in ok(cli("users", "--help"))  # group commands exist under -m too

    # every command and sub-command, through main(), in one interpreter
    walk = subprocess.run(
        [sys.executable, "-c", _HELP_WALK],
        capture_output=True, text=True, cwd=tmp_path, timeout=TIMEOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SHOPDESK_CONFIG": os.devnull},
    )  # fmt: skip
    assert walk.returncode == 0, walk.stderr
    results: dict[str, list[Any]] = json.loads(walk.stdout)
    assert EXPECTED_COMMANDS <= set(results)
    for path, (code, out, err) in results.items():
        assert code == 0, f"shopdesk {path} --help: exit {code} {err}"
        assert f"Usage: shopdesk {path}".rstrip() in out, out
        assert "Traceback" not in err


def test_usage_errors_are_one_line(cli: Cli) -> None:
    one_line_error(cli("no-such-command"), 2, "no-such-command", "--help")
    one_line_error(cli("tokens", "revoke", "abc"), 2, "token_id")
    one_line_error(cli("serve", "--port", "70000"), 2, "--port")
    one_line_error(cli("telegram", "status"), 1, "SHOPDESK_TELEGRAM_TOKEN")
    one_line_error(cli("orders", "import", str(FIXTURES / "order_get.json"), "--source", "etsy"), 2, "etsy")


# --------------------------------------------------------------------------- settings


def test_config_masks_secrets_and_keeps_a_generated_secret_key(cli: Cli) -> None:
    webhook_secret = "shpss_0123456789abcdefSECRET"
    db_password = "pw-Very-Secret-42"
    url = f"postgresql://shop:{db_password}@db.example.com:5432/shop"
    out = ok(cli("config", SHOPDESK_SHOPIFY_WEBHOOK_SECRET=webhook_secret, SHOPDESK_DATABASE_URL=url))
    assert webhook_secret not in out and db_password not in out
    assert "SHOPDESK_SHOPIFY_WEBHOOK_SECRET" in out
    assert "postgresql+asyncpg://shop:***@db.example.com:5432/shop" in out

    key_file = cli.data_dir / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) >= 32
    assert key not in out

    # the second run reuses the key instead of making a new one
    again = ok(cli("config"))
    assert key_file.read_text().strip() == key
    assert key not in again


@pytest.mark.parametrize(
    ("name", "value", "command"),
    [
        ("SHOPDESK_PORT", "abc", ["config"]),
        ("SHOPDESK_DATABASE_URL", "mysql://x", ["db", "current"]),
        ("SHOPDESK_SHOP_TIMEZONE", "Mars/Olympus", ["tokens", "list"]),
    ],
)
def test_a_bad_setting_is_one_line_naming_it(cli: Cli, name: str, value: str, command: list[str]) -> None:
    one_line_error(cli(*command, **{name: value}), 2, name)


def test_toml_file_is_read_and_the_environment_wins(cli: Cli, tmp_path: Path) -> None:
    toml = tmp_path / "elsewhere.toml"
    toml.write_text('shop_name = "Toml Shop"\nport = 9001\ndefault_language = "es"\n')
    out = ok(cli("config", SHOPDESK_CONFIG=str(toml), SHOPDESK_PORT="9002"))
    values = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    assert values["SHOPDESK_SHOP_NAME"] == "Toml Shop"
    assert values["SHOPDESK_DEFAULT_LANGUAGE"] == "es"
    assert values["SHOPDESK_PORT"] == "9002"

    toml.write_text('port = "abc"\n')
    one_line_error(cli("config", SHOPDESK_CONFIG=str(toml)), 2, "SHOPDESK_PORT")
    toml.write_text("port = [unclosed\n")
    one_line_error(cli("config", SHOPDESK_CONFIG=str(toml)), 2)
    toml.write_text('databse_url = "sqlite+aiosqlite:///elsewhere.db"\n')  # a typo must not be ignored
    one_line_error(cli("config", SHOPDESK_CONFIG=str(toml)), 2, "databse_url", "did you mean 'database_url'")


def test_an_unreachable_database_is_one_line_without_the_password(cli: Cli) -> None:
    url = f"postgresql+asyncpg://shop:pw-Hidden-99@127.0.0.1:{_free_port()}/shop"
    for command in (["db", "current"], ["tokens", "list"]):
        line = one_line_error(cli(*command, SHOPDESK_DATABASE_URL=url), 1, "database")
        assert "pw-Hidden-99" not in line


# --------------------------------------------------------------------------- db


def test_db_upgrade_and_current(db_cli: Cli, tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from shopdesk.db import MIGRATIONS_DIR

    head = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()
    assert head
    assert ok(db_cli("db", "upgrade")).strip() == f"database at revision {head}"
    assert ok(db_cli("db", "current")).strip() == head
    one_line_error(db_cli("db", "upgrade", "no-such-revision"), 1, "no-such-revision")

    # a brand-new SQLite file starts empty and is created by the upgrade
    fresh = f"sqlite+aiosqlite:///{tmp_path / 'fresh' / 'new.db'}"
    assert ok(db_cli("db", "current", SHOPDESK_DATABASE_URL=fresh)).strip() == "(empty database)"
    ok(db_cli("db", "upgrade", SHOPDESK_DATABASE_URL=fresh))
    assert ok(db_cli("db", "current", SHOPDESK_DATABASE_URL=fresh)).strip() == head


# --------------------------------------------------------------------------- orders


def _many_orders(count: int) -> dict[str, Any]:
    base = json.loads((FIXTURES / "webhook_order_create.json").read_text())
    orders = []
    for n in range(count):
        order = json.loads(json.dumps(base))
        order["id"] = 5_000_000_000_000_000_000 + n
        order["name"] = f"#{7000 + n}"
        order["order_number"] = 7000 + n
        for i, line in enumerate(order.get("line_items", [])):
            line["id"] = 60_000_000_000_000_000_000 + n * 10 + i
        orders.append(order)
    return {"orders": orders}


def test_orders_import_is_an_upsert_and_show_prints_json(db_cli: Cli, tmp_path: Path) -> None:
    path = str(FIXTURES / "order_get.json")
    first = ok(db_cli("orders", "import", path))
    assert "1 created" in first and "0 rejected" in first
    second = ok(db_cli("orders", "import", path))
    assert "0 created" in second and "1 unchanged" in second

    document = json.loads(ok(db_cli("orders", "show", "#1001")))
    assert document["name"] == "#1001"
    assert document["external_id"] == "6107318599000123457"  # beyond 2^53, exact
    assert isinstance(document["shipments"], list) and document["shipments"]
    assert isinstance(document["returns"], list)
    assert json.loads(ok(db_cli("orders", "show", "1001")))["id"] == document["id"]
    one_line_error(db_cli("orders", "show", "#99999"), 1, "#99999")

    # a big file: progress goes to stderr (not a terminal here) and nothing breaks
    big = tmp_path / "big.json"
    big.write_text(json.dumps(_many_orders(60)))
    result = db_cli("orders", "import", str(big))
    assert "60 created" in ok(result)


def test_orders_import_of_bad_files(db_cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"orders": [{"id": 1,')
    one_line_error(db_cli("orders", "import", str(broken)), 1, "not valid JSON")
    one_line_error(db_cli("orders", "import", str(tmp_path / "missing.json")), 1, "missing.json")
    shape = tmp_path / "shape.json"
    shape.write_text('{"products": []}')
    one_line_error(db_cli("orders", "import", str(shape)), 1, "shape")
    binary = tmp_path / "orders.csv"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    one_line_error(db_cli("orders", "import", str(binary)), 1, "UTF-8")

    # some bad orders: the good ones land, each rejection has its reason, the exit says so
    result = db_cli("orders", "import", str(FIXTURES / "marketplace_broken.csv"))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 created" in result.stdout and "2 rejected" in result.stdout
    assert "row 4: quantity 'two' is not a whole number" in result.stdout
    assert "row 6: source 'amazn'" in result.stdout


def test_import_output_cannot_drive_the_terminal(db_cli: Cli, tmp_path: Path) -> None:
    evil = tmp_path / "evil.json"
    evil.write_text(json.dumps({"orders": [{"name": "\x1b]0;pwned\x07#1", "line_items": "nope"}]}))
    result = db_cli("orders", "import", str(evil))
    assert result.returncode == 1
    assert "\x1b" not in result.stdout + result.stderr
    assert "\\x1b" in result.stdout


# --------------------------------------------------------------------------- tokens


async def test_tokens_create_list_revoke(db_cli: Cli, sessions: Any) -> None:
    from ordersvc.api_tokens import authenticate

    result = db_cli("tokens", "create", "erp-sync")
    token = ok(result).strip()
    assert token.startswith("sdk_") and "\n" not in token
    assert "shown only now" in result.stderr
    async with sessions() as session:
        found = await authenticate(session, token)
        assert found is not None and found.name == "erp-sync"
        token_id = found.id

    listing = ok(db_cli("tokens", "list"))
    assert "erp-sync" in listing and token[:8] in listing and "active" in listing
    assert token not in listing

    assert ok(db_cli("tokens", "revoke", str(token_id))).strip() == f"revoked token {token_id}"
    assert "revoked" in ok(db_cli("tokens", "list"))
    async with sessions() as session:
        assert await authenticate(session, token) is None

    one_line_error(db_cli("tokens", "revoke", "99999"), 1, "99999")
    one_line_error(db_cli("tokens", "create", "   "), 2, "name")


# --------------------------------------------------------------------------- users


async def test_users_add_reads_the_password_from_stdin(db_cli: Cli, sessions: Any) -> None:
    from inbox.auth import authenticate

    password = "correct-horse-battery-staple"
    result = db_cli("users", "add", "Sam@Example.com", "--admin", "--name", "Sam", stdin=password + "\n")
    assert ok(result).strip() == "added admin sam@example.com"
    assert password not in result.stdout + result.stderr
    async with sessions() as session:
        agent = await authenticate(session, "sam@example.com", password)
        assert agent is not None and agent.role.value == "admin" and agent.name == "Sam"

    listing = ok(db_cli("users", "list"))
    assert "sam@example.com\tadmin\tactive" in listing

    duplicate = db_cli("users", "add", "sam@example.com", stdin=password + "\n")
    one_line_error(duplicate, 1, "already exists")
    assert password not in duplicate.stdout + duplicate.stderr

    short = db_cli("users", "add", "kim@example.com", stdin="short\n")
    one_line_error(short, 2, "at least 10")
    assert "short" not in short.stdout
    one_line_error(db_cli("users", "add", "kim@example.com", stdin=""), 2, "password")
    one_line_error(db_cli("users", "add", "not-an-email", stdin=password + "\n"), 2, "email")
    async with sessions() as session:
        assert await authenticate(session, "kim@example.com", password) is None


# --------------------------------------------------------------------------- nlu


def test_nlu_classify_reads_json_and_plain_lines(cli: Cli) -> None:
    from bot.nlu.intents import INTENTS

    stdin = "\n".join(
        [
            json.dumps({"text": "where is my order #1001?", "lang": "en"}),
            "hola, quiero devolver mis zapatos",
            "",
            "{broken json",
        ]
    )
    out = ok(cli("nlu", "classify", stdin=stdin + "\n"))
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["text"] for r in records] == [
        "where is my order #1001?",
        "hola, quiero devolver mis zapatos",
        "{broken json",
    ]
    for record in records:
        assert record["intent"] in INTENTS
        assert 0.0 <= record["confidence"] <= 1.0
        assert isinstance(record["language"], str) and isinstance(record["entities"], list)
    assert records[0]["language"] == "en"
    assert any("1001" in entity["value"] for entity in records[0]["entities"])


def test_nlu_classify_reports_a_bad_line_and_goes_on(cli: Cli) -> None:
    stdin = '{"text": "hi"}\n{"not": "a text field"}\n{"text": "bad \\ud800"}\nwhere is my order\n'
    result = cli("nlu", "classify", stdin=stdin)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "2 line(s) could not be classified" in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r.get("line") for r in records] == [None, 2, 3, None]
    assert records[-1]["intent"] == "track_order"


def test_nlu_eval_on_a_small_csv(cli: Cli, tmp_path: Path) -> None:
    labelled = tmp_path / "small.csv"
    labelled.write_text(
        "text,intent,lang\n"
        "where is my package,track_order,en\n"
        "I want to return these shoes,start_return,en\n"
        "thank you so much,thanks,en\n"
        "cancel my order please,cancel_order,en\n"
    )
    out = ok(cli("nlu", "eval", str(labelled)))
    assert out.startswith("accuracy ") and "/4)" in out.splitlines()[0]
    assert "track_order" in out

    bad = tmp_path / "bad.csv"
    bad.write_text("message,label\nhello,greeting\n")
    one_line_error(cli("nlu", "eval", str(bad)), 1, "text,intent")
    one_line_error(cli("nlu", "eval", str(tmp_path / "missing.csv")), 1, "missing.csv")


# --------------------------------------------------------------------------- chat


async def test_chat_as_a_customer_through_stdin(db_cli: Cli, sessions: Any) -> None:
    from ordersvc.models import Customer

    async with sessions() as session:
        session.add(Customer(email="mai.tran@example.com", first_name="Mai", last_name="Tran"))
        await session.commit()

    result = db_cli("chat", "--email", "mai.tran@example.com", stdin="hi\n")  # then EOF, i.e. Ctrl-D
    out = ok(result)
    assert "Ctrl-D" in out
    assert "no customer with that email" not in out
    assert out.count("bot> ") >= 1
    assert out.rstrip().endswith("you>")


# --------------------------------------------------------------------------- demo


async def test_demo_seeds_once_and_prints_what_to_try(db_cli: Cli, sessions: Any) -> None:
    from sqlmodel import func, select

    from inbox.auth import authenticate
    from ordersvc.models import Order
    from shopdesk.demo import DEMO_ADMIN, DEMO_AGENT

    async def count_orders() -> int:
        async with sessions() as session:
            return int((await session.exec(select(func.count()).select_from(Order))).one())

    first = ok(db_cli("demo", "--no-serve", "--seed", "7"))
    for email, password, _name in (DEMO_ADMIN, DEMO_AGENT):
        assert f"{email} / {password}" in first
    assert "#1001" in first and "/shop" in first and "/inbox" in first
    orders = await count_orders()
    assert orders > 0
    async with sessions() as session:
        assert await authenticate(session, DEMO_ADMIN[0], DEMO_ADMIN[1]) is not None

    second = ok(db_cli("demo", "--no-serve", "--seed", "7"))
    assert "nothing added" in second
    assert "#1001" in second and DEMO_ADMIN[0] in second
    assert await count_orders() == orders

    # another port: the printed links follow it (SHOPDESK_PORT or --port), unless a public URL is set
    assert "http://127.0.0.1:8099/shop" in ok(db_cli("demo", "--no-serve", SHOPDESK_PORT="8099"))
    assert "http://127.0.0.1:8098/inbox" in ok(db_cli("demo", "--no-serve", "--port", "8098"))
    moved = ok(db_cli("demo", "--no-serve", "--port", "8098", SHOPDESK_PUBLIC_URL="https://desk.example"))
    assert "https://desk.example/shop" in moved and "8098" not in moved


# --------------------------------------------------------------------------- serve


def test_serve_stops_cleanly_on_ctrl_c_and_a_busy_port_is_one_line(cli: Cli) -> None:
    import signal

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = cli("serve", "--port", str(busy.getsockname()[1]))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines()[-1].startswith("error: ") and "address" in result.stderr.splitlines()[-1]

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPDESK_")}
    env.update(cli.env, PYTHONPATH=str(ROOT), SHOPDESK_DATA_DIR=str(cli.data_dir), SHOPDESK_CONFIG=os.devnull)
    server = subprocess.Popen(
        [sys.executable, "-m", "shopdesk.cli", "serve", "--port", str(_free_port())],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cli.tmp,
    )  # fmt: skip
    try:
        assert server.stdout is not None and server.stderr is not None
        assert "Shopdesk is serving on http://127.0.0.1:" in server.stdout.readline()
        # once the language models are loaded the server settles its heap (shopdesk.heap)
        lines = queue.Queue[str]()
        stderr = server.stderr

        def pump() -> None:
            for line in stderr:
                lines.put(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        seen: list[str] = []
        while not any("heap settled" in line for line in seen):
            seen.append(lines.get(timeout=TIMEOUT))
        settled = json.loads(next(line for line in seen if "heap settled" in line))
        assert settled["level"] == "info" and int(settled["message"].split()[2]) > 10_000
        server.send_signal(signal.SIGINT)
        server.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        while not lines.empty():
            seen.append(lines.get())
        err = "".join(seen)
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    assert server.returncode == 0
    assert "Traceback" not in err


def test_a_second_server_on_the_same_sqlite_file_refuses_to_start(cli: Cli) -> None:
    """SQLite is one process: a second `serve` on the same file says so in one line (exit 3);
    after the first one stops, a new one starts."""
    import signal

    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPDESK_")}
    env.update(cli.env, PYTHONPATH=str(ROOT), SHOPDESK_DATA_DIR=str(cli.data_dir), SHOPDESK_CONFIG=os.devnull)

    def start() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "shopdesk.cli", "serve", "--port", str(_free_port())],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=cli.tmp,
        )  # fmt: skip

    for attempt in range(2):
        first = start()
        try:
            assert first.stdout is not None
            assert "Shopdesk is serving on http://127.0.0.1:" in first.stdout.readline()
            if attempt == 0:
                second = cli("serve", "--port", str(_free_port()))
                assert second.returncode == 3 and "Traceback" not in second.stderr
                last = second.stderr.splitlines()[-1]
                assert last.startswith("error: ") and "already running" in last and "PostgreSQL" in last
            first.send_signal(signal.SIGINT)
            first.communicate(timeout=TIMEOUT)
        finally:
            if first.poll() is None:
                first.kill()
                first.wait()
        assert first.returncode == 0
