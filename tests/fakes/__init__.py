"""Loopback fakes of external APIs for the Shopdesk test-suite.

- :mod:`tests.fakes.telegram`: ``FakeTelegram`` (Bot API) + update builders.
- :mod:`tests.fakes.slack`: ``FakeSlack`` (Web API + response_url) + signed inbound-request builders.

Serve ``fake.app`` with pytest-aiohttp's ``aiohttp_server`` fixture (or ``start_fake``).
"""

from .slack import FakeSlack
from .telegram import FakeTelegram, start_fake

__all__ = ["FakeSlack", "FakeTelegram", "start_fake"]
