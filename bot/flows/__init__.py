"""Conversation flows as pure state machines.

Nothing here imports aiogram or the database: a flow is a function of
(definition, state, incoming answer) -> (new state, outgoing messages, effects).
Adapters (Telegram, the terminal demo, tests) translate in and out.
"""
