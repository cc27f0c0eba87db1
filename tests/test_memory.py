"""The memory savers: the served character n-gram vocabulary (``bot.nlu.linear.TokenIndex``) answers
exactly as the dict it replaces, and the server's periodic ``malloc_trim`` (``shopdesk.memory``)."""

from __future__ import annotations

import asyncio
import csv
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bot.nlu import linear
from bot.nlu.intents import IntentClassifier
from bot.nlu.linear import TfidfView, TokenIndex
from shopdesk import memory

TESTS = Path(__file__).parent


def test_token_index_finds_what_a_dict_finds() -> None:
    # "ak" and "歡" share CPython's hash() (the same two bytes in memory); "ак" is Cyrillic
    tokens = ["ak", "歡", "ка", "ак", " a", "a ", "zz", "𠀀", "", "order", "заказ", "订单"]
    index = TokenIndex.build(tokens)
    assert isinstance(index, TokenIndex)
    assert len(index) == len(tokens)
    assert index.find(tokens) == list(range(len(tokens)))
    assert index.find(["歡", "nope", "ak", "歡歡", "k", "ака"]) == [1, -1, 0, -1, -1, -1]
    assert index.find([]) == []
    empty = TokenIndex.build([])
    assert isinstance(empty, TokenIndex) and empty.find(["a"]) == [-1]


def test_colliding_keys_fall_back_to_a_dict(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(linear, "_keys", lambda tokens: np.zeros(len(tokens), dtype=np.int64))
    assert TokenIndex.build(["a", "b"]) == {"a": 0, "b": 1}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[IntentClassifier, IntentClassifier]:
    """(trained in this process: dict vocabularies, read back from its cache file as served)"""
    cache = tmp_path_factory.mktemp("memory-nlu-cache")
    trained = IntentClassifier.load_or_train(cache_dir=cache)
    return trained, IntentClassifier.load_or_train(cache_dir=cache)


@pytest.fixture(scope="module")
def served(models: tuple[IntentClassifier, IntentClassifier]) -> IntentClassifier:
    return models[1]


def _texts() -> list[str]:
    with (TESTS / "nlu_heldout.csv").open(encoding="utf-8", newline="") as fh:
        texts = [row["text"] for row in csv.DictReader(fh)]
    return texts + ["", "where   is my order", "歡迎 ak ак", "x" * 300, "gde moy zakaz 1001"]


def test_served_character_view_equals_the_dict_view(models: tuple[IntentClassifier, IntentClassifier],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    trained, served = models
    pairs: list[tuple[Any, Any]] = [(a, b) for a, b in zip(trained._linear.views, served._linear.views)
                                    if isinstance(a, TfidfView) and a.analyzer == "char_wb"]
    assert pairs
    monkeypatch.setattr(linear, "WORD_CACHE_SIZE", 40)  # evictions on the way
    prepare = served._linear.functions
    for as_dict, view in pairs:
        assert isinstance(as_dict.vocabulary, dict) and isinstance(view.vocabulary, TokenIndex)
        assert len(view.vocabulary) == len(as_dict.vocabulary)
        view._word_columns.clear()
        as_dict._word_columns.clear()
        for text in _texts():
            prepared = prepare[view.preprocessor](text)
            assert view.columns(prepared) == as_dict.columns(prepared)
        assert 0 < len(view._word_columns) <= 40


def test_the_served_model_matches_the_trained_one(models: tuple[IntentClassifier, IntentClassifier]) -> None:
    trained, served = models
    assert trained.trained_now and not served.trained_now
    assert not any(isinstance(getattr(v, "vocabulary", None), TokenIndex) for v in trained._linear.views)
    texts = _texts()
    assert [(p.intent, round(p.confidence, 9)) for p in served.predict_many(texts)] == \
        [(p.intent, round(p.confidence, 9)) for p in trained.predict_many(texts)]


def test_a_served_vocabulary_cannot_be_saved_again(served: IntentClassifier, tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        served.save(tmp_path / "again.npz")


glibc = pytest.mark.skipif(memory.free_in_malloc() is None, reason="glibc's mallinfo2 only")


@glibc
async def test_the_trimmer_trims_only_above_its_threshold() -> None:
    keep = [bytearray(4096) for _ in range(5000)]  # ~20 MB, then mostly freed
    del keep[::2]
    free = memory.free_in_malloc()
    assert free is not None and free > 0
    assert await memory.MemoryTrimmer(threshold=2**62).check() is False
    trimmer = memory.MemoryTrimmer(threshold=0)
    assert await trimmer.check() is True
    assert trimmer.trims == 1
    del keep


@glibc
async def test_the_trimmer_runs_periodically_and_stops() -> None:
    trimmer = memory.MemoryTrimmer(interval=0.01, threshold=0)
    trimmer.start()
    for _ in range(500):
        if trimmer.trims >= 2:
            break
        await asyncio.sleep(0.01)
    await trimmer.stop()
    assert trimmer.trims >= 2
    done = trimmer.trims
    await asyncio.sleep(0.05)
    assert trimmer.trims == done


def test_the_server_imports_no_pdf_library_until_a_pdf(tmp_path: Path) -> None:
    """reportlab and Pillow (~7 MB resident) are imported by the first PDF, not by the app."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from shopdesk.app import build_app\n"
        "from shopdesk.settings import Settings\n"
        "build_app(Settings())\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('reportlab', 'PIL'))}))\n"
        "from bot.files import _render_invoice\n"
        "import ordersvc.invoices\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith(('reportlab', 'PIL'))}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SHOPDESK_")}
    env.update({"SHOPDESK_CONFIG": "/dev/null", "SHOPDESK_DATA_DIR": str(tmp_path),
                "SHOPDESK_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/db.sqlite",
                "SHOPDESK_SECRET_KEY": "test-secret-key-0123456789abcdef0123456789"})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True,
                         env=env)
    assert out.stdout.split("\n")[:2] == ["[]", "['PIL', 'reportlab']"], out.stdout + out.stderr


def test_fold_keeps_only_short_texts_and_a_bounded_number() -> None:
    from bot.dialog import choices

    choices._fold_cached.cache_clear()
    long = "¡Sí, POR favor! " * 40
    assert choices.fold(long) == ("si por favor " * 40).strip()
    assert choices._fold_cached.cache_info().currsize == 0  # longer than FOLD_CACHED_CHARS: not kept
    assert choices.fold("¡Sí, por favor!") == "si por favor"
    assert choices.fold("") == "" and choices._fold_cached.cache_info().currsize == 1
    assert choices._fold_cached.cache_info().maxsize == choices.FOLD_CACHE_SIZE


def test_the_plain_head_is_alembics_head() -> None:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from shopdesk.db import MIGRATIONS_DIR, _plain_head

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    assert _plain_head() == ScriptDirectory.from_config(cfg).get_current_head()


async def test_an_old_database_is_still_upgraded_and_one_at_head_left_alone(tmp_path: Path) -> None:
    import subprocess
    import sys

    from shopdesk.db import _plain_head, create_engine, current_revision, migrate

    url = f"sqlite+aiosqlite:///{tmp_path}/db.sqlite"
    engine = create_engine(url)
    try:
        await migrate(engine, "0024")
        assert await current_revision(engine) == "0024"
        await migrate(engine)  # one migration behind: alembic upgrades it
        assert await current_revision(engine) == _plain_head()
    finally:
        await engine.dispose()
    code = (
        "import asyncio, sys\n"
        "from shopdesk.db import create_engine, migrate\n"
        f"engine = create_engine({url!r})\n"
        "asyncio.run(migrate(engine))\n"
        "print(sorted(m for m in ('alembic', 'mako', 'pygments') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
