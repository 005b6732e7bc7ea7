"""The venues: one package per exchange, each described by a ``VenueSpec``.

``spec`` (what a venue description holds: name, symbol form, facts, factories),
``registry`` (name -> description, and which venue takes a symbol),
``protocol`` (what a sans-I/O session promises the transport), ``history``
(what recovery and warm-up read of a venue's REST history) and ``tickrule``
(sides of trades that carry none). No sockets in the sessions: every function
takes bytes or values and returns values, so each codec is tested with plain
calls on real recorded frames.
"""
