"""The ``bot-stream`` command line (``python -m bot.data`` runs the same); see
:mod:`bot.data.cli.main`."""
