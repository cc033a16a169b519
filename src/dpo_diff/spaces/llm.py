"""Substitutes from an LLM behind any OpenAI-compatible chat endpoint.

Endpoint, model and key come from arguments or the environment (``DPO_DIFF_LLM_BASE_URL``
or ``OPENAI_BASE_URL``; ``DPO_DIFF_LLM_MODEL``; ``DPO_DIFF_LLM_API_KEY``), never from a file
in the repository. ``OPENAI_API_KEY`` is sent only to the official endpoint
(``https://api.openai.com``); any other endpoint gets ``DPO_DIFF_LLM_API_KEY`` or no key, so
a key meant for OpenAI never reaches whatever ``--llm-base-url`` names.

An endpoint is not trusted: the reply body is read up to :data:`MAX_REPLY_BYTES` (a longer
one is refused), redirects are not followed, the JSON object is found without backtracking
(:func:`find_json_object`), and each word keeps at most :data:`MAX_CANDIDATES_PER_WORD`
candidates of at most :data:`MAX_CANDIDATE_CHARS` characters; what the caps cut is listed
(it reaches the search space's ``dropped``). Any failure is one :class:`SpaceError` line.
Replies are cached on disk by (endpoint, model, relation, prompt, words); a malformed reply
is asked again, and after ``retries`` tries reported.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from ..errors import SpaceError
from ..models.clip_bpe import cache_dir

_ASK = {
    "synonym": "single-word synonyms that keep the meaning of the word in this prompt",
    "antonym": "single-word antonyms (opposites) of the word in the context of this prompt",
}
OFFICIAL_HOST = "api.openai.com"
MAX_REPLY_BYTES = 1_000_000  # a reply body longer than this is refused unread
MAX_JSON_STARTS = 64  # '{' positions tried when looking for the reply's JSON object
MAX_CANDIDATES_PER_WORD = 20
MAX_CANDIDATE_CHARS = 40
_CUT_EXAMPLES = 3


@dataclass
class LLMConfig:
    """Where to ask for substitutes. Keys are kept out of ``repr`` (and so out of logs)."""

    base_url: str | None = field(
        default_factory=lambda: os.environ.get("DPO_DIFF_LLM_BASE_URL") or os.environ.get("OPENAI_BASE_URL")
    )
    model: str = field(default_factory=lambda: os.environ.get("DPO_DIFF_LLM_MODEL", "gpt-4o-mini"))
    api_key: str | None = field(default_factory=lambda: os.environ.get("DPO_DIFF_LLM_API_KEY"), repr=False)
    openai_api_key: str | None = field(default_factory=lambda: os.environ.get("OPENAI_API_KEY"), repr=False)
    retries: int = 3
    timeout: float = 60.0
    per_word: int = 5

    @property
    def url(self) -> str:
        """The chat completions URL of the endpoint."""
        return (self.base_url or f"https://{OFFICIAL_HOST}/v1").rstrip("/") + "/chat/completions"

    @property
    def official(self) -> bool:
        """Whether the endpoint is OpenAI's own (https, api.openai.com)."""
        parts = urllib.parse.urlsplit(self.url)
        return parts.scheme == "https" and (parts.hostname or "").lower() == OFFICIAL_HOST and parts.port in (None, 443)

    def key(self) -> str | None:
        """The key to send: ``api_key`` (``DPO_DIFF_LLM_API_KEY``) anywhere, ``OPENAI_API_KEY`` only to OpenAI."""
        if self.api_key:
            return self.api_key
        return self.openai_api_key if self.official else None


def find_json_object(text: str) -> dict | None:
    """The first JSON object in ``text``, found without backtracking.

    ``json.JSONDecoder.raw_decode`` is tried at each ``{`` in turn (at most
    :data:`MAX_JSON_STARTS` of them), so the work is bounded by that many linear scans of a
    reply that is itself capped in size.
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    for _ in range(MAX_JSON_STARTS):
        if start < 0:
            return None
        try:
            value, _end = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None


def _bounded(data: dict, words: list[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    """Each of ``words`` -> its candidates, capped; plus what the caps cut. None if malformed."""
    lowered = {k.lower(): v for k, v in data.items() if isinstance(k, str)}
    out: dict[str, list[str]] = {}
    cut: list[str] = []
    for word in words:
        value = lowered.get(word.lower(), [])
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            return None
        kept, too_long, too_many = [], [], []
        for cand in (x.strip() for x in value):
            if not cand:
                continue
            if len(cand) > MAX_CANDIDATE_CHARS:
                too_long.append(cand)
            elif len(kept) >= MAX_CANDIDATES_PER_WORD:
                too_many.append(cand)
            else:
                kept.append(cand)
        out[word.lower()] = kept
        if too_many:
            cut.append(
                f"{word}: {len(too_many)} LLM candidates beyond the first {MAX_CANDIDATES_PER_WORD} cut "
                f"(e.g. {', '.join(too_many[:_CUT_EXAMPLES])})"
            )
        if too_long:
            examples = ", ".join(c[:MAX_CANDIDATE_CHARS] + "..." for c in too_long[:_CUT_EXAMPLES])
            cut.append(f"{word}: {len(too_long)} LLM candidates longer than {MAX_CANDIDATE_CHARS} characters cut (e.g. {examples})")
    return out, cut


def _parse(text: str, words: list[str]) -> dict[str, list[str]] | None:
    """The reply's JSON object mapping words to lists of strings (capped), or None if malformed."""
    bounded = _parse_bounded(text, words)
    return bounded[0] if bounded is not None else None


def _parse_bounded(text: str, words: list[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    if not isinstance(text, str) or len(text) > MAX_REPLY_BYTES:
        return None
    data = find_json_object(text)
    return _bounded(data, words) if data is not None else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are refused: a key must not follow a redirect to another host."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102 - urllib's signature
        return None


def _post(config: LLMConfig, body: dict) -> str:
    """POST ``body`` to the endpoint; the reply's message text, or one SpaceError line."""
    where = config.base_url or "the OpenAI API"
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    key = config.key()
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(config.url, data=json.dumps(body).encode(), headers=headers, method="POST")
    opener = urllib.request.build_opener(_NoRedirect())
    try:
        with opener.open(request, timeout=config.timeout) as response:
            raw = response.read(MAX_REPLY_BYTES + 1)
    except urllib.error.HTTPError as err:
        reason = (err.reason or "").strip() if isinstance(err.reason, str) else ""
        raise SpaceError(f"LLM endpoint {where} answered HTTP {err.code}{': ' + reason[:80] if reason else ''}") from None
    except urllib.error.URLError as err:
        raise SpaceError(f"LLM endpoint {where} is unreachable ({err.reason})") from None
    except (TimeoutError, socket.timeout):
        raise SpaceError(f"LLM endpoint {where} did not answer within {config.timeout:g} s") from None
    except (OSError, ValueError) as err:  # connection reset, bad URL, broken HTTP
        raise SpaceError(f"LLM endpoint {where} failed: {str(err)[:120] or type(err).__name__}") from None
    if len(raw) > MAX_REPLY_BYTES:
        raise _Malformed(f"a reply of more than {MAX_REPLY_BYTES:,} bytes")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Malformed(f"a body that is not JSON ({raw[:40]!r})") from None
    try:
        content = data["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise _Malformed("JSON without choices[0].message.content") from None
    if not isinstance(content, str):
        raise _Malformed("a message content that is not text")
    return content


class _Malformed(Exception):
    """A reply that arrived but cannot be used; asked again, then reported."""


def llm_substitutes(prompt: str, words: list[str], relation: str, config: LLMConfig | None = None) -> dict[str, list[str]]:
    """Map each of ``words`` to the LLM's substitutes for ``relation`` ("synonym"/"antonym")."""
    return llm_substitutes_and_cuts(prompt, words, relation, config)[0]


def llm_substitutes_and_cuts(
    prompt: str, words: list[str], relation: str, config: LLMConfig | None = None
) -> tuple[dict[str, list[str]], list[str]]:
    """Like :func:`llm_substitutes`, plus one line per word whose candidates the caps cut."""
    config = config or LLMConfig()
    if not words:
        return {}, []
    key = hashlib.sha256(json.dumps([config.base_url, config.model, relation, prompt, words]).encode()).hexdigest()
    cache_file = cache_dir() / "llm" / f"{key[:32]}.json"
    cached = _read_cache(cache_file, words)
    if cached is not None:
        return cached

    where = config.base_url or "the OpenAI API"
    messages = [
        {"role": "system", "content": "You write word substitutes for text-to-image prompts. Reply with JSON only."},
        {
            "role": "user",
            "content": f"Prompt: {prompt}\nFor each word in {json.dumps(words)}, list up to {config.per_word} "
            f"{_ASK[relation]}. Reply with one JSON object mapping each word to a list of strings.",
        },
    ]
    body = {"model": config.model, "messages": messages, "temperature": 0}
    problem = "no reply"
    for _ in range(max(1, config.retries)):
        try:
            reply = _post(config, body)
        except _Malformed as err:
            problem = str(err)
            continue
        parsed = _parse_bounded(reply, words)
        if parsed is not None:
            _write_cache(cache_file, parsed)
            return parsed
        problem = f"no JSON object of word lists in the reply ({reply[:40]!r})"
    raise SpaceError(f"LLM at {where} gave no usable JSON in {max(1, config.retries)} tries; last: {problem}")


def _read_cache(path, words: list[str]) -> tuple[dict[str, list[str]], list[str]] | None:
    """A cached reply, capped again (a cache written before the caps may hold anything)."""
    try:
        if not path.is_file() or path.stat().st_size > MAX_REPLY_BYTES:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return None
    if isinstance(data, dict) and isinstance(data.get("substitutes"), dict):
        bounded = _bounded(data["substitutes"], words)
        cut = data.get("cut") if isinstance(data.get("cut"), list) else []
        return (bounded[0], [str(c) for c in cut] + bounded[1]) if bounded is not None else None
    return _bounded(data, words) if isinstance(data, dict) else None


def _write_cache(path, parsed: tuple[dict[str, list[str]], list[str]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"substitutes": parsed[0], "cut": parsed[1]}))
        tmp.replace(path)
    except OSError:
        pass  # a cache that cannot be written only costs asking again
