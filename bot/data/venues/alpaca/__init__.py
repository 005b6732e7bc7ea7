"""Alpaca US stocks: sans-I/O session, REST client, history, calendar, description.

``session`` (stream codec, credentials), ``rest`` (trades and bars),
``conditions`` (which bar fields a trade updates), ``timestamps`` (exact RFC 3339),
``calendar`` (NYSE sessions), ``history`` (what recovery and warm-up read) and
``spec`` (the :class:`~bot.data.venues.spec.VenueSpec` the registry lists).
"""
