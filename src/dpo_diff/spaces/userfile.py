"""Search spaces written by the user as JSON.

Either ``{"word": ["substitute", ...], ...}`` for the relation asked for, or the same
nested by relation: ``{"synonym": {...}, "antonym": {...}}``. Keys match prompt words
case-insensitively.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import SpaceError


def load_user_substitutes(path: str | Path, relation: str) -> dict[str, list[str]]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"space file '{path}' does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SpaceError(f"cannot read space file '{path}': {err}") from None
    except json.JSONDecodeError as err:
        raise SpaceError(f"space file '{path}' is not valid JSON: {err.msg} at line {err.lineno}") from None
    if isinstance(data, dict) and relation in data and isinstance(data[relation], dict):
        data = data[relation]
    elif isinstance(data, dict) and any(k in data for k in ("synonym", "antonym")):
        return {}
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in data.items()
    ):
        raise SpaceError(f"space file '{path}' must map words to lists of strings")
    return {k.lower(): [x.strip() for x in v if x.strip()] for k, v in data.items()}
