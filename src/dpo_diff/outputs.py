"""Writing a run's results: ``result.json`` and one PNG per seed (initial | best)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .errors import DpoDiffError

if TYPE_CHECKING:
    from .api import OptimizationResult


def prepare_out_dir(out: str | Path) -> Path:
    """Create ``out`` if needed and check that it is a writable folder, before any work is done."""
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise DpoDiffError(f"--out '{out}' is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise DpoDiffError(f"--out '{out}' is not writable: {err.strerror or err}") from None
    return path


def _to_pil(image) -> Image.Image:
    array = (image.detach().float().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def side_by_side(left, right, gap: int = 4) -> Image.Image:
    a, b = _to_pil(left), _to_pil(right)
    canvas = Image.new("RGB", (a.width + gap + b.width, max(a.height, b.height)), "white")
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width + gap, 0))
    return canvas


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def save_result(result: OptimizationResult, out: str | Path) -> Path:
    """Write ``result.json`` and ``seed-<s>.png`` (initial left, best right) into ``out``."""
    path = prepare_out_dir(out)
    images = []
    if result.initial_images is not None and result.best_images is not None:
        for seed, initial, best in zip(result.seeds, result.initial_images, result.best_images):
            name = f"seed-{seed}.png"
            side_by_side(initial, best).save(path / name)
            images.append(name)
    data = result.to_dict()
    data["images"] = images
    write_json_atomic(path / "result.json", data)
    return path
