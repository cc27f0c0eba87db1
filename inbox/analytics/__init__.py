"""Analytics: the KPIs of a period, computed in SQL, for the page (``inbox.web.analytics``), the
CSV downloads and ``shopdesk report``.

* ``period``: the checked period and filters (:func:`~inbox.analytics.period.parse_query`);
* ``metrics``: the inbox's KPIs (conversations, automation, response times, CSAT, WISMO);
* ``report``: every KPI of the period and the one before, as named tables.

Order-side KPIs (processing time, on-time shipping, late shipments, return reasons) live in
``ordersvc.shipping_insight``; return rates per product in ``ordersvc.insight``.
"""
