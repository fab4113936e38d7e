"""What the operator CLI's command modules share: the typer app, the console, the options
that say where the platform is."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.console import Console

from allinone.keys_cli import keys_cli
from g60_chassis.settings import PlatformSettings
from g60_operator.client import Target, resolve
from matching.entrypoints.cli import app as matching_cli
from subscriptions.entrypoints.cli import cli as webhooks_cli

HELP = " ".join(  # one paragraph per line: typer's help reflows lines, not paragraphs
    [
        "The operator's command line for the G60 platform, embedded (`make run`, one URL) or",
        "distributed (one URL per service, Kafka + MongoDB). Every operator make target calls",
        "it.\n\nWhere: --url or G60_URL (default http://127.0.0.1:8000), or G60_PROJECTS_URL,",
        "G60_FUNDING_URL and G60_MATCHING_URL per service. Key: --key or G60_OPERATOR_KEY,",
        "else the embedded platform's <data dir>/operator.key. Kafka and the data folder come",
        "from the platform's settings (G60_BUS, G60_KAFKA_BOOTSTRAP, G60_DATA_DIR).\n\n",
        "Exit codes: 0 done; 1 a check failed (an audit that does not replay, a server",
        "error); 2 bad usage or input; 3 the platform or the broker cannot be reached; 4 the",
        "platform refused.",
    ]
)

app = typer.Typer(add_completion=False, help=HELP, no_args_is_help=True)
app.add_typer(keys_cli, name="keys", help="API keys: create, list, revoke, rotate")
app.add_typer(matching_cli, name="engine", help="offline allocation and explanations (files)")
app.add_typer(webhooks_cli, name="webhooks", help="webhook endpoints: list, replay (on the store)")
out = Console(width=None if sys.stdout.isatty() else 120)  # tables unclipped in logs and pipes
Url = Annotated[str | None, typer.Option(help="the platform (default G60_URL or :8000)")]
Key = Annotated[str | None, typer.Option(help="operator key (default G60_OPERATOR_KEY)")]
TopicArg = Annotated[str, typer.Argument(help="the topic (or its .dlq), e.g. g60.matches")]


def target(url: str | None, key: str | None) -> Target:
    """Where the platform is and the operator key, from the options and settings."""
    return resolve(url, key, PlatformSettings())
