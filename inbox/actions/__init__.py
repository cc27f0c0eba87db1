"""Every state change of the inbox, one function per module (``noun_verb``).

A customer, an agent, a connector, the bot, the API or the CLI changes something only by
calling an action: ``from inbox.actions.order_cancel import order_cancel``. An action takes
the caller's session (its transaction; only :mod:`inbox.actions.message_record` runs its own),
checks permission and preconditions, calls ``ordersvc`` for order-store effects, writes the
inbox rows and the audit entry, and collects the events that are published after the commit
(:func:`inbox.events.collect`). It never commits. A refusal raises
:class:`shopbase.refusal.Refused` and leaves nothing written that the caller must keep.
Shared pieces (audit line, conversation event, the internal transcript line) live in
:mod:`inbox.actions.base`. Reads live in :mod:`inbox.queries`.
"""
