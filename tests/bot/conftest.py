"""The /api/messages fixtures (tests/bot/endpoint.py), for every test module in this folder."""

from tests.bot.endpoint import client, connector, demo_client, keys, settings  # noqa: F401
