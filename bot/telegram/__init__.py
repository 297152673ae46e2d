"""The Telegram adapter (aiogram 3): thin handlers that translate updates for the services."""
