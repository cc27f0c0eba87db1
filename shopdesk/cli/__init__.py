"""``shopdesk``: the one command line. Every sub-command has ``--help``.

Errors are one line on stderr (``error: …``) and a non-zero exit: 2 for a bad setting or
usage, 1 for anything else, 130 for Ctrl-C. No traceback reaches the user; set
``SHOPDESK_DEBUG=1`` to see one for an unexpected error. Commands are thin: they parse
arguments, open the database and call the same functions the web app uses.

One module per command group (``config``, ``serve``, ``demo``, ``db``, ``orders``, ``tokens``,
``users``, ``nlu``, ``chat``, ``telegram``, ``report``, ``analytics``), the shared helpers in ``common`` and the root
command with ``main`` in ``root``. ``python -m shopdesk.cli`` is the same as the ``shopdesk``
console script.
"""

from __future__ import annotations

from shopdesk.cli.common import CliError, error_line, printable
from shopdesk.cli.root import app, main

__all__ = ["main", "app", "CliError", "error_line", "printable"]
