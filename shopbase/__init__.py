"""The small base below everything else: time, column types, text cleaning, refusals and
platform-delivery dedupe. It imports nothing of ours; ordersvc, inbox, bot and shopdesk all
build on it."""
