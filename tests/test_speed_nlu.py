"""A server start with no model cache trains in a child process (scikit-learn stays out of the
server); with the caches there, nothing is started."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import bot.nlu as nlu


def test_models_are_trained_out_of_process_only_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    cached = {"intents": True, "tone": True}
    runs: list[list[str]] = []

    def fake_run(cmd: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        runs.append(cmd)
        cached.update(intents=True, tone=True)  # the child wrote both caches
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(nlu.IntentClassifier, "cached", classmethod(lambda cls: cached["intents"]))
    monkeypatch.setattr(nlu.ToneClassifier, "cached", classmethod(lambda cls: cached["tone"]))
    monkeypatch.setattr(subprocess, "run", fake_run)

    assert nlu.train_out_of_process() and runs == []
    cached["tone"] = False
    assert nlu.train_out_of_process()
    assert len(runs) == 1 and runs[0][0] == sys.executable and "load_or_train" in runs[0][-1]


def test_a_failing_child_leaves_training_to_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(cmd: list[str], **kwargs: Any) -> None:
        raise subprocess.CalledProcessError(1, cmd)

    monkeypatch.setattr(nlu.IntentClassifier, "cached", classmethod(lambda cls: False))
    monkeypatch.setattr(nlu.ToneClassifier, "cached", classmethod(lambda cls: True))
    monkeypatch.setattr(subprocess, "run", failing)
    assert nlu.train_out_of_process() is False
