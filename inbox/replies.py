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

from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from shopbase.formatting import babel_locale, install_filters

__all__ = [
    "SUPPORTED_LANGUAGES",
    "FALLBACK_LANGUAGE",
    "babel_locale",
    "render_reply",
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
