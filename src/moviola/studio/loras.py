"""The LoRAs a creator can pick on Create: the library's, each with the model choices it fits.

Read from the library's records (plain JSON beside the files), on every page that shows the
picker: adding or removing a LoRA shows at once, and nothing heavy is loaded.
"""

from __future__ import annotations

from moviola.config import Settings
from moviola.engine.lora_library import LoraLibrary, library_folder
from moviola.studio.models import Choice


def lora_choices(settings: Settings, models: list[Choice]) -> list[dict[str, object]]:
    """`[{name, base, rank, models}]`: `models` are the names in the model picker (aliases
    included) whose model the LoRA fits, so the page shows only those for the chosen model."""
    found = []
    for lora in LoraLibrary(library_folder(settings.data_dir)).all():
        fitting = [m.name for m in models if lora.fits_model(m.spec)]
        found.append({"name": lora.name, "base": lora.base, "rank": lora.rank, "models": fitting})
    return found
