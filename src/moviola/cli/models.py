"""`moviola models list | info ID|FOLDER | pull ID`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.table import Table

from moviola.cli import chat_models, install_bar
from moviola.cli.failures import one_line_errors

if TYPE_CHECKING:
    from moviola.config import Settings
    from moviola.engine import ModelSpec
    from moviola.engine.loading import Weighted

app = typer.Typer(
    help="The model catalogue: what is known, what is installed, fetching weights.",
    no_args_is_help=True,
)


def _installed(spec: Weighted, models_dir: Path) -> str:
    """'built in', 'local', 'cached' or '' — without touching the network."""
    if (models_dir / spec.id / "model_index.json").is_file():
        return "local"
    if spec.repo_id is None:
        return "built in"
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(spec.repo_id, "model_index.json")
    return "cached" if isinstance(found, str) else ""


@app.command("list")
def list_models() -> None:
    """Every model in the catalogue, installed ones first."""
    with one_line_errors():
        from moviola.config import get_settings
        from moviola.engine import catalogue

        settings = get_settings()
        rows = [(spec, _installed(spec, settings.models_path)) for spec in catalogue().values()]
        rows.sort(key=lambda row: row[1] == "")
        # Narrow enough for an 80-column terminal; `models info ID` has the rest.
        table = Table(title="Moviola models")
        table.add_column("id", no_wrap=True)  # ids are what users copy: never cut them
        table.add_column("starts from")
        table.add_column("fps", justify="right")
        table.add_column("max s", justify="right")
        table.add_column("VRAM", justify="right", no_wrap=True)
        table.add_column("installed", no_wrap=True)
        for spec, installed in rows:
            table.add_row(
                spec.id,
                "test model (noise)"
                if spec.is_test_model
                else ", ".join(_CAPS[c.value] for c in spec.capabilities),
                str(spec.fps),
                f"{spec.max_seconds_per_segment:.1f}",
                f"{spec.vram_gb:g} GB" if spec.vram_gb else "-",
                installed or "[dim]no[/]",
            )
        Console().print(table)
        aliases = ", ".join(f"{k} → {v}" for k, v in settings.model_aliases.items())
        Console().print(f"aliases: {aliases}")
        _list_soundtracks(settings)
        chat_models.list_chat_models(settings)


def _list_soundtracks(settings: Settings) -> None:
    from moviola.engine.soundtrack import soundtrack_models

    table = Table(title="Soundtrack models (audio=soundtrack)")
    table.add_column("id", no_wrap=True)
    table.add_column("makes")
    table.add_column("max s", justify="right")
    table.add_column("installed", no_wrap=True)
    for spec in soundtrack_models().values():
        used = " (in use)" if spec.id == settings.soundtrack_model else ""
        table.add_row(
            spec.id + used,
            "test model (noise)" if spec.is_test_model else "sound from a prompt",
            f"{spec.max_seconds:g}",
            _installed(spec, settings.models_path) or "[dim]no[/]",
        )
    Console().print(table)


_CAPS = {"t2v": "text", "i2v": "image", "v2v": "video"}


@app.command("info")
def info(
    model_id: str = typer.Argument(..., help="A catalogue id or alias, or a diffusers folder."),
) -> None:
    """Everything the catalogue knows about one model; for a folder, which model it holds and
    the evidence for it."""
    with one_line_errors():
        from moviola.config import get_settings
        from moviola.engine import catalogue, get_model

        settings = get_settings()
        if model_id in _soundtrack_ids():
            _soundtrack_info(model_id, settings)
            return
        if chat_models.is_chat_model(model_id):
            _print_facts(chat_models.chat_info(model_id, settings))
            return
        target = settings.resolve_model(model_id)
        folder = Path(target).expanduser()
        if target not in catalogue() and folder.is_dir():
            spec = _folder_info(folder)
        else:
            spec = get_model(target)
        rows = {
            "id": spec.id,
            "name": spec.name,
            "about": spec.description,
            "weights": spec.repo_id or "built in code (test model)",
            "installed": _installed(spec, settings.models_path) or "no",
            "pipelines": ", ".join(f"{_CAPS[c.value]}: {cls}" for c, cls in spec.pipelines.items()),
            "native sizes": " ".join(f"{w}x{h}" for w, h in spec.native_sizes),
            "size multiple": str(spec.size_multiple),
            "fps": str(spec.fps),
            "frames": f"{spec.frame_rule.step}k+{spec.frame_rule.offset}, "
            f"at most {spec.max_frames}",
            "defaults": f"{spec.default_steps} steps, guidance {spec.default_guidance:g}"
            + (f", flow shift {spec.flow_shift:g}" if spec.flow_shift else ""),
            "VRAM (rough)": f"{spec.vram_gb:g} GB" if spec.vram_gb else "-",
            "licence": spec.license,
            "continues with": spec.chain_model or "itself",
            "sound": "its own, with the picture"
            if spec.audio
            else "none (a soundtrack can add it)",
        }
        if spec.transformer:
            rows["transformer"] = (
                f"{spec.transformer.cls}, {spec.transformer.published_params / 1e9:g}B params"
                + (f" × {spec.transformer.count}" if spec.transformer.count > 1 else "")
            )
        _print_facts(rows)


def _folder_info(folder: Path) -> ModelSpec:
    """Print which catalogue model `folder` holds and why; that model's entry follows."""
    from moviola.engine.recognise import recognise

    found = recognise(folder)
    rows = {
        "folder": str(folder),
        "holds": f"{found.spec.id} ({found.spec.name})",
        "because": "\n".join(f"• {reason}" for reason in found.reasons),
    }
    if found.tied_with:
        rows["or perhaps"] = ", ".join(found.tied_with)
    _print_facts(rows)
    Console().print()
    return found.spec


def _print_facts(rows: dict[str, str]) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(key, value)
    Console().print(table)


def _soundtrack_ids() -> set[str]:
    from moviola.engine.soundtrack import soundtrack_models

    return set(soundtrack_models())


def _soundtrack_info(model_id: str, settings: Settings) -> None:
    from moviola.engine.soundtrack import get_soundtrack_model

    spec = get_soundtrack_model(model_id)
    rows = {
        "id": spec.id,
        "name": spec.name,
        "about": spec.description,
        "weights": spec.repo_id or "built in code (test model)",
        "installed": _installed(spec, settings.models_path) or "no",
        "pipeline": spec.pipeline,
        "per call": f"at most {spec.max_seconds:g} s (longer soundtracks join several)",
        "defaults": f"{spec.default_steps} steps, guidance {spec.default_guidance:g}",
        "VRAM (rough)": f"{spec.vram_gb:g} GB" if spec.vram_gb else "-",
        "licence": spec.license,
        "in use": "yes"
        if spec.id == settings.soundtrack_model
        else "no (MOVIOLA_SOUNDTRACK_MODEL)",
    }
    _print_facts(rows)


@app.command("pull")
def pull(
    model_id: str = typer.Argument(..., help="A catalogue id or alias."),
    to: Path = typer.Option(
        None,
        help="Save a plain copy into this folder instead (a video model is then not installed "
        "where the server looks, and an interrupted copy starts again).",
    ),
    fast: bool = typer.Option(
        False, "--fast", help="Also fetch the step-distilled LoRA that speed=fast runs."
    ),
) -> None:
    """Fetch a model's weights (from the Hugging Face Hub) so that it runs offline: a video
    model is installed into the models folder, resuming an interrupted install."""
    with one_line_errors():
        from moviola.config import get_settings
        from moviola.engine import get_model
        from moviola.errors import MoviolaError

        settings = get_settings()
        console = Console()
        spec: Weighted
        if model_id in _soundtrack_ids():
            from moviola.engine.soundtrack import get_soundtrack_model

            if fast:
                raise MoviolaError("--fast is for video models", code="invalid_request")

            spec = get_soundtrack_model(model_id)
            license = spec.license
            if spec.repo_id is None:
                from moviola.engine.tiny import save_tiny_stable_audio

                folder = save_tiny_stable_audio(to or settings.models_path / spec.id)
                console.print(f"{spec.id} is built in code; saved a copy to {folder}")
                return
        elif chat_models.is_chat_model(model_id):
            from moviola.engine.chat_models import find_chat_model

            if fast:
                raise MoviolaError("--fast is for video models", code="invalid_request")
            chat = find_chat_model(model_id)
            spec, license = chat, chat.license
            saved = chat_models.pull_built_in(model_id, to, settings)
            if saved is not None:
                console.print(f"{chat.id} is built in code; saved a copy to {saved}")
                return
        else:
            video = get_model(settings.resolve_model(model_id))
            spec, license = video, video.license
            if fast:
                _pull_fast(video, settings, console)
            if to is None:  # installed where the server looks, as the Studio installs
                install_bar.install(video, settings, console)
                return
            if video.repo_id is None:
                from moviola.engine.tiny import save_tiny

                folder = save_tiny(video, to or settings.models_path / video.id)
                console.print(f"{video.id} is built in code; saved a copy to {folder}")
                return
        from huggingface_hub import snapshot_download

        repo_id = spec.repo_id
        assert repo_id is not None  # built-in models returned above
        console.print(f"fetching {repo_id} (licence: {license}) …")
        try:
            path = snapshot_download(repo_id, local_dir=to)
        except Exception as err:  # network, auth, disk: all end the same way for the user
            raise MoviolaError(
                f"could not fetch {spec.repo_id}: {str(err).splitlines()[0]}",
                code="download_failed",
            ) from err
        console.print(f"{spec.id} is ready: {path}")


def _pull_fast(spec: ModelSpec, settings: Settings, console: Console) -> None:
    """Fetch the LoRA files of `spec`'s `speed=fast` route into the Hugging Face cache (a test
    model's, built in code, is saved under the models folder)."""
    from moviola.engine.distilled import local_path, route_for, why_no_route
    from moviola.errors import InvalidRequestError, MoviolaError

    route = route_for(spec)
    if route is None:
        raise InvalidRequestError(why_no_route(spec), param="fast")
    for file in route.files:
        if file.repo_id is None:
            from moviola.engine.tiny import save_tiny_distilled_lora

            target = local_path(settings.models_path, spec, file)
            assert target is not None
            saved = save_tiny_distilled_lora(target.parent)
            console.print(f"{route.name} is built in code; saved a copy to {saved}")
            continue
        from huggingface_hub import hf_hub_download

        console.print(f"fetching {file.repo_id}: {file.filename} …")
        try:
            hf_hub_download(file.repo_id, file.filename)
        except Exception as err:  # network, auth, disk: all end the same way for the user
            raise MoviolaError(
                f"could not fetch {file.repo_id}/{file.filename}: {str(err).splitlines()[0]}",
                code="download_failed",
            ) from err
    licence = f" (licence: {route.licence})" if route.licence else ""
    console.print(f"speed=fast is ready for {spec.id}: {route.name}{licence}")
