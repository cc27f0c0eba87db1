"""Actions: every state change is one function here (callers import the module, e.g.
``from inbox.actions.return_decide import return_decide``); each takes the caller's
transaction, checks permission and preconditions, changes ordersvc and inbox rows, writes the
audit entry and collects the events that go out after commit. Refusals raise
``shopbase.refusal.Refused``."""
