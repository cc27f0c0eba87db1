"""No hand-written number or date formatting in the product: everything a person reads goes
through ``shopbase.formatting`` (Babel), in the reader's locale.

Python files are read as syntax trees: an f-string or ``format()`` spec for numbers (``:.2f``,
``:,``, ``:%``), a printf-style number (``%.2f``, ``%d``) or ``str.format`` spec in a string, and
any ``.strftime(`` call fail, except inside logging calls (logs are for machines and operators)
and the few machine formats listed in ``ALLOWED``. Templates and scripts are searched for the
same things in their own syntax (``strftime``, ``|round``, ``|format``, ``"%.2f"``,
``toFixed``, ``toLocaleString()`` without a locale).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("bot", "inbox", "ordersvc", "shopdesk", "shopbase", "templates")
SKIP_DIRS = {"migrations", "__pycache__"}

#: (path, a substring of the offending line): machine formats and developer reports, with the reason
ALLOWED: dict[tuple[str, str], str] = {
    # `shopdesk nlu evaluate`: a developer's accuracy report (three decimals to compare runs), not UI
    ("bot/nlu/evaluate.py", ":.3f"): "developer report",
    ("bot/nlu/evaluate.py", ":>10.2f"): "developer report",
}

_LOG_METHODS = {"debug", "info", "warning", "warn", "error", "exception", "critical", "log"}
# Numbers written for people: a precision (``.2f``, ``.1%``), thousands grouping (``,`` ``_``) or a
# percentage. Zero-padded integers (``:07d``: serials, ids) and Decimal's canonical text
# (``format(x, "f")``) are machine formats and pass.
# printf style: %.2f %5.1f %.3e (a precision is what makes it "for people"; %d in dates passes)
_PRINTF_NUMBER = re.compile(r"(?<!%)%[-+ 0#]*\d*\.\d+[eEfFgG]")
# str.format: {:.2f} {0:,} {x:>8.1f} {:%} {:,.2f}
_FORMAT_NUMBER = re.compile(r"\{[^{}:]*:[^{}]*(?:\.\d+[fFeEgG%n]?|[,_]|%)\}")
_SPEC_NUMBER = re.compile(r"\.\d+[fFeEgG%n]?|[,_]|%")


def _python_files() -> list[Path]:
    files = []
    for top in PRODUCT:
        for path in (ROOT / top).rglob("*.py"):
            if not any(part in SKIP_DIRS for part in path.relative_to(ROOT).parts):
                files.append(path)
    return sorted(files)


def _template_files() -> list[Path]:
    files = []
    for top in PRODUCT:
        for pattern in ("*.html", "*.txt", "*.j2", "*.js"):
            for path in (ROOT / top).rglob(pattern):
                if not any(part in SKIP_DIRS for part in path.relative_to(ROOT).parts) and "vendor" not in path.name:
                    files.append(path)
    return sorted(files)


def _is_log_call(node: ast.Call) -> bool:
    func = node.func
    if isinstance(func, ast.Attribute) and func.attr in _LOG_METHODS:
        owner = func.value
        name = owner.id if isinstance(owner, ast.Name) else owner.attr if isinstance(owner, ast.Attribute) else ""
        return name in {"log", "logger", "logging", "_log", "LOG", "bolt_log"} or name.endswith("log")
    return False


class _Finder(ast.NodeVisitor):
    def __init__(self, *, layer: bool = False) -> None:
        self.layer = layer  # shopbase/formatting.py itself may put a number next to a currency code
        self.found: list[tuple[int, str]] = []
        self._in_log = 0
        self._docstrings: set[int] = set()

    def visit_Module(self, node: ast.Module) -> None:
        self._mark_docstring(node)
        self.generic_visit(node)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._mark_docstring(node)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._mark_docstring(node)
        self.generic_visit(node)

    def _mark_docstring(self, node: ast.AST) -> None:
        body = getattr(node, "body", [])
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            self._docstrings.add(id(body[0].value))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr == "strftime":
            self.found.append((node.lineno, "strftime("))
        if isinstance(func, ast.Name) and func.id == "format" and len(node.args) == 2:
            spec = node.args[1]
            if isinstance(spec, ast.Constant) and isinstance(spec.value, str) and _SPEC_NUMBER.search(spec.value):
                self.found.append((node.lineno, f"format(..., {spec.value!r})"))
        if _is_log_call(node):
            self._in_log += 1
            self.generic_visit(node)
            self._in_log -= 1
            return
        self.generic_visit(node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> None:
        # f"{amount} {currency}": money glued together by hand (format_money knows where the code goes)
        if not self._in_log and not self.layer:
            for value in node.values:
                expr = ast.unparse(value.value) if isinstance(value, ast.FormattedValue) else ""
                if "currency" in expr.lower() and not expr.startswith("format_money("):
                    self.found.append((node.lineno, "amount and currency glued by hand"))
                    break
        self.generic_visit(node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> None:
        spec = node.format_spec
        if not self._in_log and isinstance(spec, ast.JoinedStr):
            text = "".join(v.value for v in spec.values if isinstance(v, ast.Constant) and isinstance(v.value, str))
            if _SPEC_NUMBER.search(text):
                self.found.append((node.lineno, f"f-string spec :{text}"))
        self.generic_visit(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        if self._in_log or not isinstance(node.value, str) or id(node) in self._docstrings:
            return
        if ".strftime(" in node.value:  # a Jinja template kept in a Python string
            self.found.append((node.lineno, "strftime( in a template string"))
            return
        for pattern in (_PRINTF_NUMBER, _FORMAT_NUMBER):
            match = pattern.search(node.value)
            if match:
                self.found.append((node.lineno, match.group(0)))
                return


def _allowed(rel: str, line: str) -> bool:
    return any(path == rel and needle in line for path, needle in ALLOWED)


def _python_offences(path: Path) -> list[str]:
    source = path.read_text(encoding="utf-8")
    rel = path.relative_to(ROOT).as_posix()
    finder = _Finder(layer=rel == "shopbase/formatting.py")
    finder.visit(ast.parse(source, filename=str(path)))
    lines = source.splitlines()
    out = []
    for lineno, what in finder.found:
        line = lines[lineno - 1] if lineno <= len(lines) else ""
        if not _allowed(rel, line):
            out.append(f"{rel}:{lineno}: {what}: {line.strip()[:120]}")
    return out


_TEMPLATE_PATTERNS = [
    re.compile(r"strftime"),
    re.compile(r"\|\s*round\b"),
    re.compile(r"\|\s*format\b"),
    re.compile(r"['\"]%[-+ 0#]*\d*\.\d+f['\"]"),
    re.compile(r"\{:[^}]*[.,]\d*f\}|\{:,"),
    re.compile(r"\.toFixed\("),
    re.compile(r"\.toLocale(Date|Time)?String\(\s*\)"),
]


def _template_offences(path: Path) -> list[str]:
    rel = path.relative_to(ROOT).as_posix()
    out = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        for pattern in _TEMPLATE_PATTERNS:
            match = pattern.search(line)
            if match and not _allowed(rel, line):
                out.append(f"{rel}:{lineno}: {match.group(0)}: {line.strip()[:120]}")
    return out


def test_no_hand_written_number_or_date_formatting_in_python() -> None:
    offences = [o for path in _python_files() for o in _python_offences(path)]
    assert not offences, "format through shopbase.formatting (Babel) instead:\n" + "\n".join(offences)


def test_no_hand_written_number_or_date_formatting_in_templates_and_scripts() -> None:
    files = _template_files()
    assert any(p.suffix == ".html" for p in files) and any(p.suffix == ".txt" for p in files)
    offences = [o for path in files for o in _template_offences(path)]
    assert not offences, "use the money/number/day/moment/since filters instead:\n" + "\n".join(offences)


def test_the_allow_list_is_still_needed() -> None:
    """An allow-list entry whose line is gone must go too, so the list stays small and true."""
    for (rel, needle), _reason in ALLOWED.items():
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert needle in text, f"{rel}: {needle!r} is allowed but no longer used; remove it from ALLOWED"


@pytest.mark.parametrize(
    "source",
    [
        'x = f"{amount:.2f} {currency}"',
        'x = f"{total:,}"',
        'x = "{:,.2f}".format(total)',
        'x = "%.2f EUR" % total',
        "x = when.strftime('%d %b')",
        "x = format(total, '.2f')",
        'x = f"{ratio:.0%}"',
        'x = f"{rma.refund_amount} {rma.currency}"',
        'PAGE = """<td>{{ when.strftime(\'%d %b\') }}</td>"""',
    ],
)
def test_the_finder_catches_hand_formatting(source: str, tmp_path: Path) -> None:
    finder = _Finder()
    finder.visit(ast.parse(source))
    assert finder.found, source


@pytest.mark.parametrize(
    "source",
    [
        'log.info("retry in %.2fs", delay)',
        'logger.warning(f"took {seconds:.1f}s")',
        'x = f"{name}: {count}"',
        'x = f"{key:<8}"',
        'x = "%s and %r" % (a, b)',
        'def f():\n    """Formats 1.234,56 € (not %.2f)."""',
        "x = value.isoformat()",
    ],
)
def test_the_finder_leaves_logs_and_plain_text_alone(source: str) -> None:
    finder = _Finder()
    finder.visit(ast.parse(source))
    assert not finder.found, finder.found
