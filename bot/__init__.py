"""Trading bot toolkit. Market data lives in :mod:`bot.data`."""
