"""``bot-stream health``: ask a running instance's status server how its stream is.

Exit status follows the monitoring-plugin convention, so the command drops into
a cron job or a check runner as is: 0 healthy, 1 degraded, 2 unhealthy, 3 the
server could not be reached or answered something else.
"""

from __future__ import annotations

import argparse
import json
import urllib.error
import urllib.request
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from bot.data.cli.formatting import console
from bot.data.cli.view import HEALTH_STYLES, STATE_STYLES

EXIT_CODES = {"healthy": 0, "degraded": 1, "unhealthy": 2}
UNREACHABLE = 3

DESCRIPTION = """\
Query GET /health of a running `bot-stream live|record|dashboard --status-port PORT`
(or any StatusServer) and print the report. Exit status: 0 healthy, 1 degraded,
2 unhealthy, 3 unreachable.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "health", help="query a running instance's status server (GET /health)",
        description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", metavar="URL",
                        help="status server base URL (default http://HOST:PORT)")
    parser.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="default 8787")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="default 5")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    base = (args.url or f"http://{args.host}:{args.port}").rstrip("/")
    try:
        report = fetch_health(f"{base}/health", args.timeout)
    except (OSError, ValueError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"bot-stream health: cannot read {base}/health: {reason}")
        return UNREACHABLE
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report, console())
    return EXIT_CODES.get(report.get("status", ""), UNREACHABLE)


def fetch_health(url: str, timeout: float) -> dict[str, Any]:
    """The JSON report at ``url``; a 503 (unhealthy) still carries one."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code != 503:
            raise
        body = exc.read()
    report = json.loads(body)
    if not isinstance(report, dict) or "status" not in report:
        raise ValueError(f"{url} did not answer with a health report")
    return report


def print_report(report: dict[str, Any], out: Console) -> None:
    status = report["status"]
    out.print(Text.assemble("status: ", (status, HEALTH_STYLES.get(status, "bold"))))
    for reason in report.get("reasons", []):
        out.print(f"  - {reason}", style="yellow")
    connections = Table(title="Connections", title_justify="left", header_style="bold cyan")
    for name in ("Name", "State", "For (s)", "Last message (s ago)", "Reconnects", "Symbols",
                 "Error"):
        connections.add_column(name)
    for c in report.get("connections", []):
        connections.add_row(c["name"], Text(c["state"], STATE_STYLES.get(c["state"], "yellow")),
                            f"{c['state_age_s']:.1f}", _age(c.get("last_message_age_s")),
                            str(c["reconnects"]), str(c["symbols"]), c.get("error") or "")
    symbols = Table(title="Symbols", title_justify="left", header_style="bold cyan")
    for name in ("Symbol", "Venue", "Last trade (s ago)", "Trades last minute", "Stale"):
        symbols.add_column(name)
    for s in report.get("symbols", []):
        symbols.add_row(s["symbol"], s["venue"], _age(s.get("last_tick_age_s")),
                        str(s["ticks_last_minute"]),
                        Text("stale", "bold red") if s["stale"] else Text("no", "green"))
    out.print(connections)
    out.print(symbols)


def _age(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"
