"""The read side of the inbox, one module per area: ``access`` (who may see what),
``filters`` (the one declared conversation filter set), ``conversations`` (lists, counts, one
conversation), ``messages`` (transcripts, the worker's sweep), ``customers`` and ``orders``
(the customer sidebar). Nothing here writes; writes are :mod:`inbox.actions`."""
