"""``python -m shopdesk.cli``: the same as the ``shopdesk`` console script."""

from __future__ import annotations

from shopdesk.cli import main

main()
