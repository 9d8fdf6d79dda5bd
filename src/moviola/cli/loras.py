"""`moviola loras add FILE [--name NAME] | list | remove NAME`: the LoRA library in the data dir."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from moviola.engine.lora_library import LoraLibrary
    from moviola.engine.loras import LoraUse

app = typer.Typer(
    help="LoRAs: add a safetensors file to the library, list them, remove one. A request "
    "names them with their scales (`generate --lora NAME:SCALE`, the API's `loras`).",
    no_args_is_help=True,
)


def library() -> LoraLibrary:
    from moviola.config import get_settings
    from moviola.engine.lora_library import LoraLibrary, library_folder

    return LoraLibrary(library_folder(get_settings().data_dir))


@app.command("add")
def add(
    file: Path = typer.Argument(
        ..., help="A LoRA .safetensors file (diffusers, kohya or Wan keys)."
    ),
    name: str = typer.Option(
        None, "--name", help="What requests call it (default: the file's name)."
    ),
    low_noise: Path = typer.Option(
        None,
        "--low-noise",
        help="Wan 2.2 A14B LoRAs come as two files: FILE is the high-noise expert's, this the "
        "low-noise expert's.",
    ),
) -> None:
    """Add a LoRA: its keys are read and matched against the catalogue's models, and it is kept
    only if it fits one of them."""
    with one_line_errors():
        lora = library().add(file, name, low_noise=low_noise)
        typer.echo(
            f"added {lora.name}: {lora.layout} keys, rank {lora.rank}, {lora.layers} layers; "
            f"made for {lora.base}; fits {', '.join(lora.fits)}"
        )


@app.command("list")
def list_loras() -> None:
    """Every LoRA in the library and the models it fits."""
    with one_line_errors():
        table = Table(title="LoRAs")
        table.add_column("name", no_wrap=True)  # names are what requests use: never cut them
        table.add_column("made for")
        table.add_column("fits")
        table.add_column("rank", justify="right")
        table.add_column("keys", no_wrap=True)
        table.add_column("added", no_wrap=True)
        for lora in library().all():
            table.add_row(
                lora.name,
                lora.base,
                ", ".join(lora.fits),
                str(lora.rank),
                lora.layout + (" (2 files)" if lora.low_noise_file else ""),
                datetime.fromtimestamp(lora.added_at).strftime("%Y-%m-%d %H:%M"),
            )
        console = Console()
        if not console.is_terminal:  # piped: never cut what people copy from here
            console.width = 200
        console.print(table)


@app.command("remove")
def remove(name: str = typer.Argument(..., help="The LoRA's name, as `list` shows it.")) -> None:
    """Remove a LoRA from the library (its file is deleted)."""
    with one_line_errors():
        lora = library().remove(name)
        typer.echo(f"removed {lora.name}")


def parse_uses(given: list[str]) -> tuple[LoraUse, ...]:
    """`--lora NAME:SCALE` (scale 1 when left out) as the library's LoRAs."""
    from moviola.errors import InvalidRequestError

    chosen = []
    for item in given:
        name, _, scale = item.rpartition(":") if ":" in item else (item, "", "1")
        try:
            value = float(scale)
        except ValueError:
            raise InvalidRequestError(
                f"--lora takes NAME:SCALE, e.g. watercolour:0.8 (got {item!r})", param="loras"
            ) from None
        chosen.append({"name": name, "scale": value})
    return library().uses(chosen)
