"""A pixel-space judge: reads each object's color, shape, size and position back from a picture.

It is the ground truth the benchmarks report beside the CLIP loss, and shares nothing with
the CLIP objective: foreground = pixels far from the background grey; objects = its two
largest connected parts; color = nearest palette color to the part's median; size = area;
position = centroid; shape = best overlap with each shape drawn at that centroid and area.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from .scenes import BACKGROUND, COLORS, SHAPES, SIZES, Obj, Scene, centre, shape_mask

ATTRIBUTES = ("color", "shape", "size", "position")


@dataclass(frozen=True)
class Seen:
    color: str
    shape: str
    size: str
    position: str
    area: float


def _position(cx: float, cy: float, size: str) -> str:
    options = ("left", "right", "top", "bottom", "center")
    return min(options, key=lambda p: (centre(p, size)[0] - cx) ** 2 + (centre(p, size)[1] - cy) ** 2)


def read(image: np.ndarray, max_objects: int = 2) -> list[Seen]:
    """Objects seen in a float (32, 32, 3) image in [0, 1], largest first."""
    image = np.asarray(image, dtype=np.float32)
    smooth = ndimage.median_filter(image, size=(3, 3, 1))  # robust to noise
    distance = np.linalg.norm(smooth - np.array(BACKGROUND, dtype=np.float32), axis=-1)
    foreground = distance > 0.3
    labels, n = ndimage.label(foreground)
    if n == 0:
        return []
    areas = ndimage.sum(foreground, labels, range(1, n + 1))
    order = np.argsort(areas)[::-1][:max_objects]
    palette = np.array(list(COLORS.values()), dtype=np.float32)
    names = list(COLORS)
    seen = []
    small_area, large_area = (np.pi * SIZES["small"] ** 2, np.pi * SIZES["large"] ** 2)
    for index in order:
        area = float(areas[index])
        if area < 12:  # specks
            continue
        part = labels == index + 1
        color = names[int(np.argmin(np.linalg.norm(palette - np.median(smooth[part], axis=0), axis=1)))]
        size = "small" if area < np.sqrt(small_area * large_area) else "large"
        cy, cx = ndimage.center_of_mass(part)
        cx, cy = cx + 0.5, cy + 0.5
        r = float(np.sqrt(area / np.pi))
        ious = []
        for shape in SHAPES:
            ref = shape_mask(shape, cx, cy, r) > 0.5
            ious.append((part & ref).sum() / max(1, (part | ref).sum()))
        seen.append(Seen(color, SHAPES[int(np.argmax(ious))], size, _position(cx, cy, size), area))
    return seen


def faithfulness(image: np.ndarray, scene: Scene) -> float:
    """Share of the scene's attributes (4 per object) the judge confirms in the image."""
    seen = read(image, max_objects=len(scene.objects))
    total = 4 * len(scene.objects)
    if not seen:
        return 0.0
    confirmed = 0
    used: set[int] = set()
    for obj in scene.objects:
        # match each asked object to the unmatched seen object that agrees on most attributes
        scores = [(sum(getattr(s, a) == getattr(obj, a) for a in ATTRIBUTES), i) for i, s in enumerate(seen) if i not in used]
        if not scores:
            continue
        best, i = max(scores)
        used.add(i)
        confirmed += best
    return confirmed / total


def attribute_accuracy(images, scenes) -> dict[str, float]:
    """Per attribute, the share of single-object scenes whose attribute the judge reads right."""
    hits = {a: 0 for a in ATTRIBUTES}
    n = 0
    for image, scene in zip(images, scenes):
        if len(scene.objects) != 1:
            continue
        n += 1
        seen = read(image, 1)
        for a in ATTRIBUTES:
            hits[a] += bool(seen) and getattr(seen[0], a) == getattr(scene.objects[0], a)
    return {a: hits[a] / max(1, n) for a in ATTRIBUTES}


