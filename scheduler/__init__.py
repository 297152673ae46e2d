"""Durable outbox and sending. Rows in the ``outbox`` table are the source of truth."""
