"""Dutch text understanding. No aiogram or database imports here."""
