"""Business rules between the channels and storage: no aiogram imports here."""
