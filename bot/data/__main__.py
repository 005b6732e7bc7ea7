"""``python -m bot.data`` and the ``bot-stream`` command: the command line.

Without the ``cli`` extra installed, says so in one line (exit status 2).
"""

import sys

from bot.data.extras import MissingExtra


def main() -> int:
    """Run the command line; returns the exit status."""
    try:
        from bot.data.cli.main import main as run
    except MissingExtra as exc:
        print(f"bot-stream: {exc}", file=sys.stderr)
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main())
