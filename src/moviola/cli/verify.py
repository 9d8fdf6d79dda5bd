"""`moviola verify FILE`: a video's content credentials, its lineage and whether they hold.

Exit status: 0 when the credentials are intact (valid, or untrusted: intact but signed by a
certificate no trust list knows), 1 when they are invalid (the file was changed after signing,
or the manifest is broken), 2 when the check could not be made (no such file, a trust anchors
file that cannot be read), 3 when the file carries none, 4 with `--require-trusted` when the
signer is not trusted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from moviola.cli.failures import one_line_errors

EXIT_INVALID, EXIT_UNUSABLE, EXIT_NONE, EXIT_UNTRUSTED = 1, 2, 3, 4
STYLE = {"valid": "bold green", "untrusted": "bold yellow", "invalid": "bold red"}
MEANING = {
    "valid": "signature and content intact, signer trusted",
    "untrusted": "signature and content intact; the signer is on no trust list configured here",
    "invalid": "the file or its manifest does not match its signature",
}


def verify(
    file: Path = typer.Argument(..., help="The video (or image) to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the credentials as JSON."),
    require_trusted: bool = typer.Option(
        False, "--require-trusted", help="Fail (exit 4) unless the signer is trusted."
    ),
) -> None:
    """Show a file's C2PA content credentials and check them.

    \b
    Exit status:
      0  intact: valid, or untrusted (no configured trust anchor vouches for the signer)
      1  invalid: the file was changed after signing, or its manifest is broken
      2  the check could not be made: no such file, unreadable trust anchors
      3  the file carries no content credentials
      4  with --require-trusted: intact, but the signer is not trusted
    """
    console = Console()
    with one_line_errors():
        from moviola.config import get_settings
        from moviola.errors import InvalidRequestError
        from moviola.media import provenance

        if not file.is_file():
            raise InvalidRequestError(f"no such file: {file}", param="file")
        # A configuration problem exits 2 (one_line_errors), never 1, which means "invalid".
        anchors = provenance.read_trust_anchors(get_settings().c2pa_trust_anchors)
        store = provenance.read_store(file, trust_anchors=anchors)
        credentials = None
        if store is not None:
            credentials = (
                provenance.summarize(store)
                if "error" not in store
                else provenance.read_credentials(file, trust_anchors=anchors)
            )
        if as_json:
            typer.echo(json.dumps(credentials, indent=2))
        elif credentials is None or store is None:
            console.print(f"{file}: [bold]no content credentials[/]")
        else:
            _print(console, file, credentials, store)
    if credentials is None:
        raise typer.Exit(EXIT_NONE)
    if credentials["state"] == "invalid":
        raise typer.Exit(EXIT_INVALID)
    if require_trusted and credentials["state"] != "valid":
        raise typer.Exit(EXIT_UNTRUSTED)


def _print(
    console: Console, file: Path, credentials: dict[str, Any], store: dict[str, Any]
) -> None:
    from moviola.media import provenance

    state = credentials["state"]
    console.print(
        f"{file}: content credentials [{STYLE[state]}]{state.upper()}[/] ({MEANING[state]})"
    )
    lineage = provenance.chain(store) if "error" not in store else [(0, credentials)]
    for depth, manifest in lineage:
        pad = "    " * depth
        head = "manifest" if depth == 0 else "ingredient's manifest"
        mark = f"[{STYLE[manifest['state']]}]{manifest['state']}[/]"
        console.print(f"{pad}{head} {manifest['manifest_label'] or '(unreadable)'}  {mark}")
        if manifest["signer"]:
            console.print(
                f"{pad}  signed by {manifest['signer']}"
                + (f" at {manifest['signed_at']}" if manifest["signed_at"] else "")
                + (f", generator {manifest['generator']}" if manifest["generator"] else "")
            )
        if manifest["model"]:
            console.print(f"{pad}  model {manifest['model']}")
        for action in manifest["actions"]:
            source = (action["digital_source_type"] or "").rsplit("/", 1)[-1]
            console.print(f"{pad}  action {action['action']}" + (f"  ({source})" if source else ""))
        for ingredient in manifest["ingredients"]:
            console.print(
                f"{pad}  ingredient {ingredient['title']!r} ({ingredient['relationship']})"
                f": {ingredient['state'] or 'no credentials'}"
            )
        for error in manifest["errors"]:
            console.print(f"{pad}  [red]error[/] {error}")
