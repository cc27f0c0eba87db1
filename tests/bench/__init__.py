"""``make bench`` (``python -m tests.bench``): how fast Shopdesk answers, next to a bare aiohttp
server measured the same way in the same run. A benchmark, not a test: it prints a table and
writes ``bench-results.json``; nothing in it passes or fails.

One module per concern:

* ``servers``: the server under test runs in its own process (``shopdesk serve``, or the bare
  aiohttp server of ``bare``) so that the load generator never shares its core;
* ``fake_api``: a slim loopback Bot API that receives the Telegram replies;
* ``load``: closed-loop and open-loop load on the widget socket and the Telegram webhook;
* ``databases``: fresh migrated SQLite files and a throwaway PostgreSQL cluster;
* ``seed`` and ``pages``: a large inbox (bulk inserts) and the inbox pages (list, search, a
  switch to each triage view, analytics) timed over HTTP; ``inbox_profile``: where one page's
  time goes (its statements, their plans, a profile);
* ``nlu``: understanding time per message;
* ``__main__``: the profiles, the sections and the long memory run (100,000 messages, RSS before/after);
* ``report``: the table and the JSON file.

Every load is loopback only and bounded in count and time; a target that fails (say, no
PostgreSQL binaries) is reported as such and the rest still runs.
"""
