"""Voice: reading messages aloud (text to speech) and voice answers (speech to text)."""
