"""A synthetic world of shapes: scenes, their pictures, and English captions.

A scene has one or two objects (color, shape, size, position) and a quality (clean,
blurry, noisy). Pictures are 32x32, drawn anti-aliased (4x supersampling) on a light grey
background. Captions come from templates with skewed synonym frequencies: the common word
almost always, WordNet synonyms rarely (about 30 times in 20 000 captions), so a text encoder
learns the rare words badly — room for meaning-preserving attacks — while antonym pairs
(large/small, left/right, top/bottom) give negative prompts something to steer.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

SIZE = 32
BACKGROUND = (0.88, 0.88, 0.88)
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.1, 0.1),
    "orange": (0.98, 0.55, 0.05),
    "yellow": (0.95, 0.88, 0.1),
    "green": (0.1, 0.65, 0.15),
    "blue": (0.1, 0.25, 0.9),
    "purple": (0.55, 0.15, 0.7),
    "pink": (0.98, 0.5, 0.75),
    "black": (0.08, 0.08, 0.08),
}
SHAPES = ("circle", "square", "triangle")
SIZES = {"small": 5.5, "large": 10.0}  # radius in pixels
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "top": (0, -1), "bottom": (0, 1), "center": (0, 0)}
POSITIONS = tuple(DIRECTIONS)


def centre(position: str, size: str) -> tuple[float, float]:
    """Pixel centre of an object: off-centre by as much as keeps it inside the picture."""
    offset = min(8.5, 15.0 - SIZES[size])
    dx, dy = DIRECTIONS[position]
    return 16.0 + dx * offset, 16.0 + dy * offset
QUALITIES = ("clean", "blurry", "noisy")
POSITION_PHRASES = {"left": "on the left", "right": "on the right", "top": "at the top",
                    "bottom": "at the bottom", "center": "in the center"}

# word -> [(surface form, weight)]: the common form, then rare WordNet synonyms (one CLIP token each)
RARE = 0.0015  # about 30 of 20 000 captions
SYNONYMS: dict[str, list[tuple[str, float]]] = {
    "red": [("red", 1.0), ("crimson", RARE), ("reddish", RARE)],
    "purple": [("purple", 1.0), ("violet", RARE)],
    "large": [("large", 0.8), ("big", 0.2), ("vast", RARE), ("great", RARE)],
    "small": [("small", 0.8), ("little", 0.2), ("tiny", RARE), ("minute", RARE)],
    "center": [("center", 0.9), ("middle", 0.1), ("centre", RARE)],
    "blurry": [("blurry", 1.0), ("blurred", RARE), ("fuzzy", RARE), ("hazy", RARE)],
    "noisy": [("noisy", 1.0)],
}


@dataclass(frozen=True)
class Obj:
    color: str
    shape: str
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    quality: str = "clean"


def random_scene(rng: random.Random, p_two: float = 0.3, p_quality: float = 0.3) -> Scene:
    def obj(position: str) -> Obj:
        return Obj(rng.choice(list(COLORS)), rng.choice(SHAPES), rng.choice(list(SIZES)), position)

    if rng.random() < p_two:
        pair = rng.choice([("left", "right"), ("top", "bottom")])
        a, b = obj(pair[0]), obj(pair[1])
        objects = (Obj(a.color, a.shape, "small", a.position), Obj(b.color, b.shape, "small", b.position))
    else:
        objects = (obj(rng.choice(POSITIONS)),)
    quality = rng.choice(QUALITIES[1:]) if rng.random() < p_quality else "clean"
    return Scene(objects, quality)


def _word(word: str, rng: random.Random | None) -> str:
    if rng is None or word not in SYNONYMS:
        return word
    forms, weights = zip(*SYNONYMS[word])
    return rng.choices(forms, weights=weights)[0]


def describe(obj: Obj, rng: random.Random | None = None) -> str:
    position = POSITION_PHRASES[obj.position]
    if obj.position == "center":
        position = f"in the {_word('center', rng)}"
    return f"a {_word(obj.size, rng)} {_word(obj.color, rng)} {obj.shape} {position}"


def caption(scene: Scene, rng: random.Random | None = None) -> str:
    """An English caption; with ``rng``, synonyms are drawn at their skewed frequencies."""
    text = " and ".join(describe(o, rng) for o in scene.objects)
    if scene.quality != "clean":
        text = f"a {_word(scene.quality, rng)} picture of {text}"
    return text


def caption_words() -> list[str]:
    """Every word a caption can contain (:func:`caption`'s templates, the rare synonyms included):
    the world's vocabulary, which ``dpo-diff world train`` writes to ``vocabulary.txt``."""
    words = {"a", "picture", "of", "and"}
    words.update(COLORS, SHAPES, SIZES, QUALITIES[1:])
    for phrase in POSITION_PHRASES.values():
        words.update(phrase.split())
    for forms in SYNONYMS.values():
        words.update(form for form, _ in forms)
    return sorted(words)


def write_vocabulary(folder) -> None:
    """``folder``/vocabulary.txt: the words of :func:`caption_words`, one a line."""
    from pathlib import Path

    head = "# every word the world's training captions can contain: substitutes outside it are left out of\n" \
           "# search spaces (dpo_diff.spaces.vocabulary; --vocabulary none turns that off)\n"
    (Path(folder) / "vocabulary.txt").write_text(head + "\n".join(caption_words()) + "\n", encoding="utf-8")


def shape_mask(shape: str, cx: float, cy: float, r: float, scale: int = 4) -> np.ndarray:
    """Anti-aliased coverage (32, 32) of a shape of "radius" r (all shapes have the area of the circle)."""
    n = SIZE * scale
    ys, xs = (np.mgrid[0:n, 0:n] + 0.5) / scale
    if shape == "circle":
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 <= r**2
    elif shape == "square":
        half = r * 0.886  # same area as the circle
        inside = (abs(xs - cx) <= half) & (abs(ys - cy) <= half)
    else:  # upward triangle, same area as the circle
        side = r * 2.694
        h = side * np.sqrt(3) / 2
        top, base = cy - 2 * h / 3, cy + h / 3
        frac = (ys - top) / h
        inside = (ys >= top) & (ys <= base) & (abs(xs - cx) <= frac * side / 2)
    return inside.reshape(SIZE, scale, SIZE, scale).mean(axis=(1, 3))


def render(scene: Scene, rng: np.random.Generator | None = None) -> np.ndarray:
    """The scene as a float32 (32, 32, 3) image in [0, 1]."""
    image = np.empty((SIZE, SIZE, 3), dtype=np.float32)
    image[:] = BACKGROUND
    for obj in scene.objects:
        alpha = shape_mask(obj.shape, *centre(obj.position, obj.size), SIZES[obj.size])[..., None]
        image = image * (1 - alpha) + np.array(COLORS[obj.color], dtype=np.float32) * alpha
    if scene.quality == "blurry":
        from scipy.ndimage import gaussian_filter

        image = gaussian_filter(image, sigma=(1.6, 1.6, 0))
    elif scene.quality == "noisy":
        rng = rng or np.random.default_rng(0)
        image = image + rng.normal(0, 0.12, image.shape)
    return np.clip(image, 0, 1).astype(np.float32)
