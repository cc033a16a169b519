"""Writing a run's results: ``result.json`` and one PNG per seed (initial | best)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .errors import DpoDiffError

# ``result`` below is a :class:`dpo_diff.results.OptimizationResult`; not imported here, since
# results imports this module to save itself (one direction, no cycle).
OptimizationResult = Any


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


def image_files(result: OptimizationResult) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """The PNGs of a result, in memory: (names by kind, bytes by file name).

    Per seed: ``seed-<s>.png`` (initial left, best right), ``initial-seed-<s>.png``, ``best-seed-<s>.png``.
    """
    names: dict[str, list[str]] = {"images": [], "initial_images": [], "best_images": []}
    files: dict[str, bytes] = {}
    if result.initial_images is None or result.best_images is None:
        return names, files
    for seed, initial, best in zip(result.seeds, result.initial_images, result.best_images):
        for key, name, image in (
            ("images", f"seed-{seed}.png", side_by_side(initial, best)),
            ("initial_images", f"initial-seed-{seed}.png", _to_pil(initial)),
            ("best_images", f"best-seed-{seed}.png", _to_pil(best)),
        ):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            files[name] = buffer.getvalue()
            names[key].append(name)
    return names, files


def write_files(path: Path, files: dict[str, bytes]) -> None:
    """Write each file atomically (a reader never sees half a PNG; a failed write leaves no part)."""
    for name, data in files.items():
        tmp = path / f".{name}.{os.getpid()}.tmp"
        try:
            tmp.write_bytes(data)
            tmp.replace(path / name)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise


def save_images(result: OptimizationResult, path: Path) -> dict[str, list[str]]:
    """Write the result's PNGs (see :func:`image_files`) into ``path``; returns their names by kind."""
    names, files = image_files(result)
    write_files(path, files)
    return names


def save_result(result: OptimizationResult, out: str | Path) -> Path:
    """Write ``result.json`` and the images (see :func:`save_images`) into ``out``."""
    path = prepare_out_dir(out)
    data = result.to_dict()
    data.update(save_images(result, path))
    write_json_atomic(path / "result.json", data)
    return path
