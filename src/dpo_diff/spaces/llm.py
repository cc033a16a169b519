"""Substitutes from an LLM behind any OpenAI-compatible chat endpoint.

Endpoint, model and key come from arguments or the environment (``DPO_DIFF_LLM_BASE_URL``
or ``OPENAI_BASE_URL``; ``DPO_DIFF_LLM_MODEL``; ``DPO_DIFF_LLM_API_KEY`` or
``OPENAI_API_KEY``), never from a file in the repository. Replies are cached on disk by
(endpoint, model, relation, prompt, words); a malformed reply is asked again, and after
``retries`` tries reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field

from ..errors import SpaceError
from ..models.clip_bpe import cache_dir

_ASK = {
    "synonym": "single-word synonyms that keep the meaning of the word in this prompt",
    "antonym": "single-word antonyms (opposites) of the word in the context of this prompt",
}


@dataclass
class LLMConfig:
    base_url: str | None = field(
        default_factory=lambda: os.environ.get("DPO_DIFF_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    )
    model: str = field(default_factory=lambda: os.environ.get("DPO_DIFF_LLM_MODEL", "gpt-4o-mini"))
    api_key: str | None = field(
        default_factory=lambda: os.environ.get("DPO_DIFF_LLM_API_KEY") or os.environ.get("OPENAI_API_KEY")
    )
    retries: int = 3
    timeout: float = 60.0
    per_word: int = 5


def _parse(text: str, words: list[str]) -> dict[str, list[str]] | None:
    """The reply's JSON object mapping words to lists of strings, or None if malformed."""
    match = re.search(r"\{.*\}", text or "", flags=re.S)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict):
        return None
    out: dict[str, list[str]] = {}
    lowered = {k.lower(): v for k, v in data.items() if isinstance(k, str)}
    for word in words:
        value = lowered.get(word.lower(), [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return None
        out[word.lower()] = [x.strip() for x in value if x.strip()]
    return out


def llm_substitutes(prompt: str, words: list[str], relation: str, config: LLMConfig | None = None) -> dict[str, list[str]]:
    """Map each of ``words`` to the LLM's substitutes for ``relation`` ("synonym"/"antonym")."""
    config = config or LLMConfig()
    if not words:
        return {}
    key = hashlib.sha256(json.dumps([config.base_url, config.model, relation, prompt, words]).encode()).hexdigest()
    cache_file = cache_dir() / "llm" / f"{key[:32]}.json"
    if cache_file.is_file():
        return json.loads(cache_file.read_text())

    import openai

    where = config.base_url or "the OpenAI API"
    client = openai.OpenAI(
        base_url=config.base_url, api_key=config.api_key or "none", timeout=config.timeout, max_retries=0
    )
    messages = [
        {"role": "system", "content": "You write word substitutes for text-to-image prompts. Reply with JSON only."},
        {
            "role": "user",
            "content": f"Prompt: {prompt}\nFor each word in {json.dumps(words)}, list up to {config.per_word} "
            f"{_ASK[relation]}. Reply with one JSON object mapping each word to a list of strings.",
        },
    ]
    reply = ""
    for _ in range(max(1, config.retries)):
        try:
            response = client.chat.completions.create(model=config.model, messages=messages, temperature=0)
        except openai.APIConnectionError as err:
            raise SpaceError(f"LLM endpoint {where} is unreachable ({err.__cause__ or err})") from None
        except openai.APIStatusError as err:
            raise SpaceError(f"LLM endpoint {where} answered HTTP {err.status_code}: {err.message}") from None
        reply = (response.choices[0].message.content or "") if response.choices else ""
        parsed = _parse(reply, words)
        if parsed is not None:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(parsed))
            tmp.replace(cache_file)
            return parsed
    raise SpaceError(
        f"LLM at {where} gave no usable JSON in {config.retries} tries; last reply: {reply[:80]!r}"
    )
