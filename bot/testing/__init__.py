"""Test tools shipped with the product: a fake Telegram Bot API (over HTTP or in-process).

Used by the test suite and by ``python -m bot bench``; never by the running bot.
"""
