"""Read a world caption back into a :class:`Scene` (common words and their synonyms)."""

from __future__ import annotations

import re

from .scenes import COLORS, POSITION_PHRASES, SHAPES, SYNONYMS, Obj, Scene

_CANONICAL = {form: word for word, forms in SYNONYMS.items() for form, _ in forms}
_CANONICAL.update({"big": "large", "huge": "large", "little": "small", "middle": "center", "centre": "center"})
_POSITION = {phrase.split()[-1]: pos for pos, phrase in POSITION_PHRASES.items()}
_POSITION.update({"middle": "center", "centre": "center"})


def _canon(word: str) -> str:
    return _CANONICAL.get(word.lower(), word.lower())


def parse_object(text: str) -> Obj | None:
    words = [_canon(w) for w in re.findall(r"[A-Za-z]+", text)]
    color = next((w for w in words if w in COLORS), None)
    shape = next((w for w in words if w in SHAPES), None)
    size = next((w for w in words if w in ("small", "large")), None)
    position = next((_POSITION[w] for w in words if w in _POSITION), None)
    if None in (color, shape, size, position):
        return None
    return Obj(color, shape, size, position)


def parse_prompt(prompt: str) -> Scene | None:
    """The scene a world prompt asks for, or None when it is not a world caption."""
    text = prompt.lower()
    quality = "clean"
    m = re.match(r"\s*an?\s+(\w+)\s+picture of\s+(.*)", text)
    if m:
        quality = _canon(m.group(1))
        if quality not in ("blurry", "noisy"):
            return None
        text = m.group(2)
    objects = [parse_object(part) for part in re.split(r"\band\b", text)]
    if not objects or any(o is None for o in objects) or len(objects) > 2:
        return None
    return Scene(tuple(objects), quality)
