"""Merchant alert rules (issue 13): configuration (``config``), evaluation (``rules``), the words
people read (``text``) and the periodic job (``runner``). Findings are stored by the
``alert_fire`` action, once per (rule, subject, window); each new one goes to Slack through the
durable outbox and appears in the agents' notifications (``inbox.queries.notifications``)."""
