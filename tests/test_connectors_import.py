"""Importing a connector has no side effects: no environment variable, no logger level changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = r"""
import importlib, json, logging, os, pkgutil, sys

def levels():
    names = ["", *logging.root.manager.loggerDict]
    return {name: logging.getLogger(name).level for name in names
            if not isinstance(logging.root.manager.loggerDict.get(name), logging.PlaceHolder)}

# what the libraries and our lower layers do on import is theirs; measure only the connectors
import sqlalchemy, sqlmodel, aiohttp, telegram, telegram.ext, slack_sdk, slack_bolt  # noqa: F401
import inbox.actions.message_record, inbox.outbox, inbox.events  # noqa: F401
import bot.connectors
env_before, levels_before = dict(os.environ), levels()
modules = []
for info in pkgutil.walk_packages(bot.connectors.__path__, "bot.connectors."):
    importlib.import_module(info.name)
    modules.append(info.name)
env_after, levels_after = dict(os.environ), levels()
changed_env = sorted(k for k in set(env_before) | set(env_after) if env_before.get(k) != env_after.get(k))
changed_levels = sorted(name for name, level in levels_after.items()
                        if level != levels_before.get(name, logging.NOTSET))
print(json.dumps({"modules": modules, "env": changed_env, "levels": changed_levels}))
"""


def test_importing_every_connector_module_changes_no_environment_or_logger_level() -> None:
    env = {k: v for k, v in os.environ.items() if k != "PTB_TIMEDELTA"}  # conftest sets it for the fakes
    done = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert {"bot.connectors.telegram.connector", "bot.connectors.telegram.setup"} <= set(found["modules"])
    assert any(m.startswith("bot.connectors.slack") for m in found["modules"])
    assert found["env"] == []
    assert found["levels"] == []
