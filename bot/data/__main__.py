"""``python -m bot.data``: the ``bot-stream`` command line."""

import sys

from bot.data.cli.main import main

sys.exit(main())
