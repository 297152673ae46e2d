"""The clinician web app (aiohttp, server-rendered, works without JavaScript)."""
