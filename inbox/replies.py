"""Customer-facing reply texts, rendered from ``templates/replies/<lang>/<name>.txt``.

Every sentence the bot or the inbox sends a customer lives in a template, in every supported
language; code never concatenates user-facing sentences. A merchant overrides a template by
placing a file of the same name under ``<override_dir>/<lang>/``.

Templates are trusted (they come from the package or the merchant); the values passed in are
data. Customer text is never used as template source, so ``{{ 7*7 }}`` typed by a customer
stays those eight characters. Rendering uses a sandboxed environment and plain text (no HTML
escaping: the channels render text, and the web views escape on display). Amounts, dates and
times go through :mod:`shopbase.formatting`'s filters, in the reply's language (``money(currency)``,
``day(tz)``, ``moment(tz)``, ``number``, ``since`` ...).
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined, Template, nodes
from jinja2.sandbox import SandboxedEnvironment

from shopbase.formatting import babel_locale, install_filters

__all__ = [
    "SUPPORTED_LANGUAGES",
    "FALLBACK_LANGUAGE",
    "babel_locale",
    "render_reply",
    "render_reply_memo",
    "reply_names",
    "replies_dir",
    "configure_overrides",
    "reply_label",
]

SUPPORTED_LANGUAGES = ("en", "es", "ru", "vi", "zh-Hans", "zh-Hant")
FALLBACK_LANGUAGE = "en"

_override_dir: Path | None = None


def replies_dir() -> Path:
    """The packaged reply templates (``templates/replies``)."""
    return Path(str(resources.files("templates"))) / "replies"


def configure_overrides(path: Path | None) -> None:
    """Let a merchant's directory take precedence over the packaged templates."""
    global _override_dir
    _override_dir = path
    _environment.cache_clear()
    _labels.cache_clear()
    _MEMO.clear()


def _language(lang: str | None) -> str:
    return lang if lang in SUPPORTED_LANGUAGES else FALLBACK_LANGUAGE


@cache
def _environment(lang: str) -> SandboxedEnvironment:
    loaders = []
    if _override_dir is not None:
        loaders.append(FileSystemLoader(str(_override_dir / lang)))
    loaders.append(FileSystemLoader(str(replies_dir() / lang)))
    env = SandboxedEnvironment(
        loader=ChoiceLoader(loaders),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    install_filters(env)  # money, day, moment, number, since ... (shopbase.formatting)
    env.globals["locale"] = babel_locale(lang)
    return env


def render_reply(name: str, lang: str | None, /, **context: Any) -> str:
    """Render reply ``name`` in ``lang`` (falling back to English for unsupported languages)."""
    language = _language(lang)
    template = _environment(language).get_template(f"{name}.txt")
    return template.render(lang=language, **context).strip()


#: texts of :func:`render_reply_memo`, at most MEMO_SIZE (keyed by template object, language and
#: the caller's key; the oldest used goes first)
MEMO_SIZE = 512
_MEMO: OrderedDict[tuple[Template, str, Hashable], str] = OrderedDict()
#: per template object: whether its text is a function of its context alone (see ``_same_text``)
_SAME_TEXT: weakref.WeakKeyDictionary[Template, bool] = weakref.WeakKeyDictionary()
#: what makes a render differ for one context: the clock (``since``, ``ago``), chance (``random``,
#: ``lipsum``), or another template (its edits would not be seen)
_VARYING_FILTERS = frozenset({"random", "since", "ago"})
_VARYING_NAMES = frozenset({"lipsum"})


def _same_text(template: Template, language: str) -> bool:
    """The template renders the same text for the same context (its source has no filter or
    global that reads the clock or chance, and no include, import or extends)."""
    known = _SAME_TEXT.get(template)
    if known is None:
        env = _environment(language)
        try:
            source = env.loader.get_source(env, str(template.name))[0] if env.loader is not None else None
        except Exception:  # gone since it was loaded: not kept
            source = None
        tree = env.parse(source) if source is not None else None
        known = tree is not None and not any(
            (isinstance(node, nodes.Filter | nodes.Test) and node.name in _VARYING_FILTERS)
            or (isinstance(node, nodes.Name) and node.name in _VARYING_NAMES)
            or isinstance(node, nodes.Include | nodes.Import | nodes.FromImport | nodes.Extends)
            for node in tree.find_all(nodes.Node))
        _SAME_TEXT[template] = known
    return known


def render_reply_memo(name: str, lang: str | None, key: Hashable, context: Callable[[], dict[str, Any]]) -> str:
    """``render_reply(name, lang, **context())`` for a reply whose context is told entirely by
    ``key`` (the caller's promise: equal keys, equal contexts; e.g. the shop's name, zone and a
    stored policy's JSON), rendered once per template, language and key: ``context`` is only
    called when the text is not kept. A template that was edited (a new template object) or
    whose text can vary for one context (``_same_text``) is rendered every time."""
    language = _language(lang)
    template = _environment(language).get_template(f"{name}.txt")
    if not _same_text(template, language):
        return template.render(lang=language, **context()).strip()
    memo = (template, language, key)
    text = _MEMO.get(memo)
    if text is not None:
        _MEMO.move_to_end(memo)
        return text
    text = template.render(lang=language, **context()).strip()
    _MEMO[memo] = text
    while len(_MEMO) > MEMO_SIZE:
        _MEMO.popitem(last=False)
    return text


def reply_names(lang: str = FALLBACK_LANGUAGE) -> set[str]:
    folder = replies_dir() / lang
    return {p.stem for p in folder.glob("*.txt")} if folder.is_dir() else set()


@cache
def _labels(lang: str) -> dict[str, str]:
    import yaml

    merged: dict[str, str] = {}
    for folder in (replies_dir() / lang, (_override_dir / lang) if _override_dir else None):
        if folder is not None and (folder / "labels.yaml").is_file():
            merged.update(yaml.safe_load((folder / "labels.yaml").read_text(encoding="utf-8")) or {})
    return merged


def reply_label(key: str, lang: str | None) -> str:
    """A short UI text (a button) from ``templates/replies/<lang>/labels.yaml``."""
    language = _language(lang)
    labels = _labels(language)
    if key in labels:
        return str(labels[key])
    return str(_labels(FALLBACK_LANGUAGE)[key])
