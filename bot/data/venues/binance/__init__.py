"""Binance spot (and Binance.US): sans-I/O session, REST client, history, description.

``session`` (combined-stream codec), ``rest`` (trades, aggregate trades, klines),
``history`` (what recovery and warm-up read) and ``spec`` (the
:class:`~bot.data.venues.spec.VenueSpec` the registry lists).
"""
