"""Writing a run's results: ``result.json`` and one PNG per seed (initial | best)."""

from __future__ import annotations

import contextlib
import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .errors import DpoDiffError

# ``result`` below is a :class:`dpo_diff.results.OptimizationResult`; not imported here, since
# results imports this module to save itself (one direction, no cycle).
OptimizationResult = Any

MIN_SIDE = 256  # small models' pictures are enlarged (nearest neighbour) to at least this many pixels a side


RUN_FILES = ("result.json", "seed-*.png", "initial-seed-*.png", "best-seed-*.png")  # what one run writes


def prepare_out_dir(out: str | Path, overwrite: bool | None = None) -> Path:
    """Create ``out`` if needed and check that it is a writable folder, before any work is done.

    ``overwrite`` is about a folder holding another run's ``result.json``: False refuses it in one
    line, True first removes that run's files (its result.json and images, nothing else); None
    (batch folders) does not look.
    """
    path = Path(out).expanduser()
    if path.exists() and not path.is_dir():
        raise DpoDiffError(f"--out '{out}' is a file, not a folder")
    if overwrite is not None and (path / "result.json").exists():
        if not overwrite:
            raise DpoDiffError(
                f"--out '{out}' holds another run's result (result.json): use another --out, or --overwrite "
                "to replace it"
            )
        clear_run(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise DpoDiffError(f"--out '{out}' is not writable: {err.strerror or err}") from None
    return path


def clear_run(path: Path) -> list[Path]:
    """Remove a single run's files from ``path`` (result.json, its images); returns what was removed."""
    removed = []
    for pattern in RUN_FILES:
        for file in sorted(path.glob(pattern)):
            if file.is_file():
                try:
                    file.unlink()
                except OSError as err:
                    raise DpoDiffError(f"cannot remove '{file}' to overwrite it ({err.strerror or err})") from None
                removed.append(file)
    return removed


def _to_pil(image) -> Image.Image:
    array = (image.detach().float().clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    return Image.fromarray(array)


def enlarged(image: Image.Image, min_side: int = MIN_SIDE) -> Image.Image:
    """``image`` scaled by a whole factor (nearest neighbour: every pixel stays a sharp square) to
    at least ``min_side`` pixels on its short side; large pictures are left as they are."""
    factor = max(1, -(-min_side // min(image.size)))
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def side_by_side(left, right, gap: int = 8, labels: tuple[str, str] | None = None,
                 captions: tuple[str, str] | None = None, title: str | None = None) -> Image.Image:
    """Two pictures side by side, enlarged for small models, with a label above each and a caption
    (e.g. the loss) under each when given."""
    a, b = enlarged(_to_pil(left)), enlarged(_to_pil(right))
    font = ImageFont.load_default()
    line = 14
    top = line * ((title is not None) + (labels is not None)) + (4 if title or labels else 0)
    bottom = line + 6 if captions is not None else 0
    width = a.width + gap + b.width
    canvas = Image.new("RGB", (width, top + max(a.height, b.height) + bottom), "white")
    canvas.paste(a, (0, top))
    canvas.paste(b, (a.width + gap, top))
    draw = ImageDraw.Draw(canvas)
    y = 2
    if title is not None:
        draw.text((2, y), title, fill="black", font=font)
        y += line
    for x, text in zip((2, a.width + gap + 2), labels or ()):
        draw.text((x, y), text, fill="black", font=font)
    for x, text in zip((2, a.width + gap + 2), captions or ()):
        draw.text((x, top + max(a.height, b.height) + 3), text, fill="black", font=font)
    return canvas


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)


def image_files(result: OptimizationResult) -> tuple[dict[str, list[str]], dict[str, bytes]]:
    """The PNGs of a result, in memory: (names by kind, bytes by file name).

    Per seed: ``seed-<s>.png`` (initial left, best right, enlarged for small models, each labeled with
    its loss and, on the world, the judge's faithfulness), and the pictures at their own size:
    ``initial-seed-<s>.png``, ``best-seed-<s>.png``.
    """
    names: dict[str, list[str]] = {"images": [], "initial_images": [], "best_images": []}
    files: dict[str, bytes] = {}
    if result.initial_images is None or result.best_images is None:
        return names, files
    for i, (seed, initial, best) in enumerate(zip(result.seeds, result.initial_images, result.best_images)):
        pair = side_by_side(initial, best, labels=("initial", "best"), captions=_captions(result, i),
                            title=f"seed {seed}")
        for key, name, image in (
            ("images", f"seed-{seed}.png", pair),
            ("initial_images", f"initial-seed-{seed}.png", _to_pil(initial)),
            ("best_images", f"best-seed-{seed}.png", _to_pil(best)),
        ):
            buffer = io.BytesIO()
            image.save(buffer, format="PNG")
            files[name] = buffer.getvalue()
            names[key].append(name)
    return names, files


def _captions(result: OptimizationResult, i: int) -> tuple[str, str]:
    """What goes under each picture of seed ``i``: its loss, and the judge's faithfulness on the world."""
    out = []
    for which in ("initial", "best"):
        losses = getattr(result, f"{which}_seed_losses", None)
        faith = getattr(result, f"{which}_seed_faithfulness", None)
        text = f"loss {losses[i]:.4f}" if losses else ""
        if faith:
            text += f", judged {100 * faith[i]:.0f} %"
        out.append(text)
    return out[0], out[1]


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
    """Write ``result.json`` and the images (see :func:`save_images`) into ``out``, replacing the
    files of a result already there (no stale seed images stay beside the new result.json)."""
    path = prepare_out_dir(out)
    clear_run(path)
    data = result.to_dict()
    data.update(save_images(result, path))
    write_json_atomic(path / "result.json", data)
    return path
