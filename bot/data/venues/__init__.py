"""Sans-I/O venue codecs: build the requests a venue expects and turn its frames into ticks.

No sockets here: every function takes bytes or values and returns values, so each
codec is tested with plain calls on real recorded frames.
"""
