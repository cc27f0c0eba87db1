"""The order store: customers, orders, shipments, returns and stock.

``ordersvc`` imports nothing else of ours; ``inbox`` and ``bot`` call into it.
"""
