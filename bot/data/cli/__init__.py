"""The ``bot-stream`` command line (``python -m bot.data`` runs the same); see
:mod:`bot.data.cli.main`. Needs the ``cli`` extra: ``pip install 'bot-stream[cli]'``."""

from bot.data.extras import require

require("cli", "The bot-stream command line")
