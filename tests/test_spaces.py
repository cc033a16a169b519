import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from dpo_diff.errors import SpaceError
from dpo_diff.models import clip_tokenizer
from dpo_diff.spaces import LLMConfig, build_space, parse_kind
from dpo_diff.spaces.words import inflect_like, split_words
from dpo_diff.spaces.wordnet import wordnet_substitutes

from .conftest import PROMPT


def token_ids(text):
    return clip_tokenizer()(text, add_special_tokens=False).input_ids


def test_wordnet_synonyms_antonyms_and_inflection():
    assert "crimson" in wordnet_substitutes("red", "synonym")
    assert "noisy" in wordnet_substitutes("quiet", "antonym")
    assert "small" in wordnet_substitutes("large", "antonym")
    plural = wordnet_substitutes("cars", "synonym")
    assert plural and all(w.endswith("s") for w in plural)  # "cars" gets plural substitutes
    assert wordnet_substitutes("the", "synonym") == []


def test_inflection_rules():
    assert inflect_like("cats", "cat", "n", "kitty") == "kitties"
    assert inflect_like("parked", "park", "v", "stop") == "stopped"
    assert inflect_like("running", "run", "v", "race") == "racing"
    assert inflect_like("bigger", "big", "a", "large") is None


def test_spaces_by_kind_keep_multi_token_candidates():
    syn = build_space(PROMPT, "synonym", token_ids=token_ids)
    assert all(s.target == "positive" and s.candidates[0] == PROMPT[slice(*s.span)] for s in syn.slots)
    assert syn.render(syn.initial_choice) == (PROMPT, "")
    for slot in syn.slots:  # each slot records its candidates' token counts
        assert slot.tokens == tuple(len(token_ids(c)) for c in slot.candidates)
    multi = [c for s in syn.slots for c, n in zip(s.candidates, s.tokens) if n > 1]
    assert multi  # e.g. red -> blood-red, kept: random search and EPO render any text
    assert not any("more than one token" in d for d in syn.dropped)
    assert syn.to_dict()["slots"][0]["tokens"] == list(syn.slots[0].tokens)
    # the space before issue 9, on request: one token per candidate, the rest listed as dropped
    single = build_space(PROMPT, "synonym", token_ids=token_ids, single_tokens=True)
    assert all(len(token_ids(c)) == 1 for s in single.slots for c in s.candidates)
    assert {f"{s.label}->{c}: more than one token" for s in syn.slots for c, n in zip(s.candidates, s.tokens)
            if n > 1} <= set(single.dropped)

    neg = build_space(PROMPT, "antonym+nplib", token_ids=token_ids)
    assert all(s.target == "negative" and s.candidates[0] == "" for s in neg.slots)
    assert any(s.label == "quiet" and "noisy" in s.candidates for s in neg.slots)
    assert sum(s.label.startswith("nplib") for s in neg.slots) == 4
    _, negative = neg.render(tuple(1 for _ in neg.slots))
    assert "noisy" in negative.split(", ") and "grey" not in negative  # red gets no "grey" from the chromatic category


def test_multi_token_original_word_is_a_slot(tmp_path):
    path = tmp_path / "subs.json"
    path.write_text(json.dumps({"skateboarder": ["skater"], "ramp": ["slope", "incline"]}))
    space = build_space("a skateboarder on a ramp", "synonym", source=str(path), token_ids=token_ids)
    assert len(token_ids("skateboarder")) > 1
    assert [s.label for s in space.slots] == ["skateboarder", "ramp"]
    assert space.render((1, 0)) == ("a skater on a ramp", "")
    single = build_space("a skateboarder on a ramp", "synonym", source=str(path), token_ids=token_ids, single_tokens=True)
    assert [s.label for s in single.slots] == ["ramp"]
    assert any(d.startswith("skateboarder: the word itself is") for d in single.dropped)


def test_multi_word_lemmas_are_candidates_or_listed_with_the_reason():
    from dpo_diff.constraints import sense_score

    # "police" -> "police force" passed the cut before the refit (lexsub.py --tune); the refitted
    # weights cut it ("a police force car"), and keep "cellphone" -> "cellular phone", "mobile phone"
    space = build_space("a woman with a cellphone in a police car", "synonym", token_ids=token_ids)
    police = next(s for s in space.slots if s.label == "cellphone")
    kept = [c for c in police.candidates if " " in c]
    assert {"cellular phone", "mobile phone"} <= set(kept)  # multi-word WordNet lemmas over their (higher) cut
    assert all(n > 1 for c, n in zip(police.candidates, police.tokens) if " " in c)
    # every WordNet lemma left out is listed with its reason, multi-word ones included
    assert all("->" in d and ": " in d for d in space.dropped)
    multi_dropped = [d for d in space.dropped if " " in d.split(":")[0]]
    assert any(d.startswith("car->railway car: in-context score") and d.endswith("under the cut -0.4") for d in multi_dropped)
    reasons = {d.split(": ", 1)[1].split(" -")[0].split(" under")[0] for d in space.dropped}
    assert reasons <= {"its sense is not in use (gloss fit and WordNet rank)", "in-context score", "not ASCII",
                       "a comparative or superlative", "a multi-word lemma (single words asked for)"} | {
        r for r in reasons if r.startswith(("no ", "over the cap of"))}
    # the meaning check's sense rule reads the multi-word rewrite, with the in-context score under
    # the weights its cut was chosen with (MEANING_WEIGHTS; the space ranks with WEIGHTS)
    from dpo_diff.spaces.context import MEANING_WEIGHTS, rank_substitutes

    i = space.slots.index(police)
    choice = tuple(police.candidates.index(kept[0]) if j == i else 0 for j in range(len(space.slots)))
    rewrite = space.render(choice)[0]
    start = space.prompt.index("cellphone")
    own = {s.text: s.score for s in rank_substitutes(space.prompt, start, start + 9, threshold=-1e9, max_candidates=None,
                                                      single_words=False, wide=True, weights=MEANING_WEIGHTS)}
    assert sense_score(space.prompt, rewrite) == pytest.approx(own[kept[0]])
    assert sense_score("a red car", "a red railway car") < -1.5 < sense_score("a red car", "a red automobile")
    assert sense_score("a red car", "a red car park") is None  # no reading as synonyms: the cosine decides


def test_unknown_kind_is_refused():
    with pytest.raises(SpaceError, match="unknown space"):
        parse_kind("synonyms")
    assert parse_kind("antonym+nplib") == ("antonym", "nplib")


def test_prompt_without_substitutable_words_gives_empty_space():
    assert build_space("the of and", "synonym+antonym", token_ids=token_ids).is_empty


def test_user_file_space(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"synonym": {"red": ["crimson", "blood-red"]}, "antonym": {"quiet": ["loud"]}}))
    syn = build_space(PROMPT, "synonym", source=str(path), token_ids=token_ids)
    assert [s.candidates for s in syn.slots] == [("red", "crimson", "blood-red")]  # blood-red: 3 tokens, kept
    ant = build_space(PROMPT, "antonym", source=str(path), token_ids=token_ids)
    assert [s.candidates for s in ant.slots] == [("", "loud")]
    path.write_text("{not json")
    with pytest.raises(SpaceError, match="not valid JSON"):
        build_space(PROMPT, "synonym", source=str(path))
    with pytest.raises(SpaceError, match="does not exist"):
        build_space(PROMPT, "synonym", source=str(tmp_path / "missing.json"))


class _FakeLLM(BaseHTTPRequestHandler):
    replies: list[str] = []
    calls = 0

    def do_POST(self):  # noqa: N802
        length = int(self.headers["Content-Length"])
        self.rfile.read(length)
        type(self).calls += 1
        content = self.replies.pop(0) if self.replies else "still not json"
        body = json.dumps({
            "id": "x", "object": "chat.completion", "created": 0, "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": content}}],
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def llm_server():
    server = HTTPServer(("127.0.0.1", 0), _FakeLLM)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _FakeLLM.calls = 0
    yield f"http://127.0.0.1:{server.server_port}/v1"
    server.shutdown()


def test_llm_space_retries_malformed_replies_and_caches(llm_server):
    _FakeLLM.replies = ["Sure! Here you go", '```json\n{"red": ["crimson", "scarlet"], "car": ["auto"]}\n```']
    config = LLMConfig(base_url=llm_server, model="fake", api_key="k")
    space = build_space("a red car", "synonym", source="llm", llm=config, token_ids=token_ids)
    assert [s.candidates for s in space.slots] == [("red", "crimson", "scarlet"), ("car", "auto")]
    assert _FakeLLM.calls == 2
    build_space("a red car", "synonym", source="llm", llm=config, token_ids=token_ids)
    assert _FakeLLM.calls == 2  # served from the disk cache


def test_llm_space_reports_persistent_garbage(llm_server):
    _FakeLLM.replies = []
    config = LLMConfig(base_url=llm_server, model="fake", api_key="k", retries=2)
    with pytest.raises(SpaceError, match="no usable JSON in 2 tries"):
        build_space("a blue boat", "antonym", source="llm", llm=config)


def test_llm_endpoint_down_is_one_clear_error():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once we leave: nothing listens there
    config = LLMConfig(base_url=f"http://127.0.0.1:{port}/v1", model="fake", api_key="k", timeout=5)
    with pytest.raises(SpaceError, match="unreachable"):
        build_space("a green tree", "synonym", source="llm", llm=config)


def test_split_words_keeps_spans():
    words = split_words("A well-lit room, at night.")
    assert [w.text for w in words] == ["A", "well-lit", "room", "at", "night"]
    assert all("A well-lit room, at night."[w.start : w.end] == w.text for w in words)


def test_negative_prompt_library_words_are_single_tokens():
    from dpo_diff.spaces import NEGATIVE_PROMPT_LIBRARY

    assert len(NEGATIVE_PROMPT_LIBRARY) == len(set(NEGATIVE_PROMPT_LIBRARY)) == 40
    assert [w for w in NEGATIVE_PROMPT_LIBRARY if len(token_ids(w)) != 1] == []
    space = build_space(PROMPT, "nplib", token_ids=token_ids)
    assert sum(len(s.candidates) - 1 for s in space.slots) == 40 and not space.dropped


def test_repeated_words_and_case():
    neg = build_space("Quiet street, quiet night", "antonym", token_ids=token_ids)
    labels = [s.label for s in neg.slots]
    assert labels.count("quiet") == 1 and len(labels) == len(set(labels))
    syn = build_space("Red car", "synonym", token_ids=token_ids)
    red = next(s for s in syn.slots if s.candidates[0] == "Red")
    assert all(c[0].isupper() for c in red.candidates)


def test_non_ascii_words_stay_whole_and_fixed():
    words = split_words("a naïve café")
    assert [w.text for w in words] == ["a", "naïve", "café"]
    space = build_space("a naïve red car", "synonym", token_ids=token_ids)
    assert {s.label for s in space.slots} <= {"red", "car"}


# ---------------------------------------------------------------- in context (issue 9)


def test_tagger_reads_the_prompt():
    from dpo_diff.spaces.context import tag

    assert tag("a large crimson circle on the left".split()) == [None, "a", "a", "n", None, None, "n"]
    assert tag("two dogs playing with a ball".split())[1:3] == ["n", "v"]


def test_antonyms_of_the_sense_in_use():
    def antonyms(prompt, word):
        space = build_space(prompt, "antonym", token_ids=token_ids)
        return next((s.candidates[1:] for s in space.slots if s.label == word), ())

    left = antonyms("a large crimson circle on the left", "left")
    assert left[0] == "right" and "arrive" not in left
    assert {"large", "big"} & set(antonyms("a tiny cat", "tiny")[:3])
    assert {"light", "bright"} & set(antonyms("a dark room", "dark")[:3])


def test_an_adjective_heads_satellites_are_its_most_used_ones():
    """A head adjective offers the lemmas of its most used similar-to satellites. It used to take the
    first 8 by name (ample, astronomic, bear-sized ...), so "large" never offered huge or vast."""
    from dpo_diff.spaces.context import frequent_satellites, rank_substitutes
    from dpo_diff.spaces.wordnet import load_wordnet, similar_tos

    large = load_wordnet().synset("large.a.01")
    chosen = frequent_satellites(large)

    def used(s):
        return max(l.count() for l in s.lemmas())

    assert len(chosen) == 8 and [used(s) for s in chosen] == sorted((used(s) for s in chosen), reverse=True)
    assert max(used(s) for s in similar_tos(large) if s not in chosen) <= min(used(s) for s in chosen)
    prompt = "a tiny cat on a large sofa"
    start = prompt.index("large")
    offered = {c.text for c in rank_substitutes(prompt, start, start + 5, max_candidates=None)}
    assert {"huge", "enormous", "vast"} <= offered and "astronomic" not in offered


def test_candidates_are_scored_ranked_and_capped_after_filtering():
    space = build_space("a tiny cat sleeping in a dark room", "synonym+antonym", token_ids=token_ids, max_candidates=2)
    assert space.slots
    for slot in space.slots:
        assert len(slot.candidates) <= 3 and slot.scores[0] is None
        scores = [s for s in slot.scores[1:]]
        assert scores == sorted(scores, reverse=True)
    assert any(d.endswith("over the cap of 2") for d in space.dropped)  # the cap's cut is listed too
    d = space.to_dict()["slots"][0]
    assert len(d["scores"]) == len(d["candidates"]) == len(d["similarity"])


def test_inflection_follows_the_original():
    from dpo_diff.spaces.context import inflect, penn_tag

    assert penn_tag("dogs", "dog", "n") == "NNS" and inflect("hound", "NNS", "n") == "hounds"
    assert penn_tag("larger", "large", "a") == "JJR" and inflect("big", "JJR", "a") == "bigger"
    assert inflect("crimson", "JJR", "a") is None
    syn = build_space("two dogs playing in the snow", "synonym", token_ids=token_ids)
    dogs = next((s for s in syn.slots if s.label == "dogs"), None)
    assert dogs is None or all(c.endswith("s") for c in dogs.candidates)
    big = build_space("a large red square", "synonym", token_ids=token_ids)
    assert all(not c.endswith(("er", "est")) for s in big.slots for c in s.candidates[1:] if s.label == "large")


def test_user_file_candidates_are_scored_and_ranked(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"synonym": {"field": ["zebra", "meadow"]}}))
    syn = build_space("a green field with a red barn", "synonym", source=str(path), token_ids=token_ids)
    (slot,) = syn.slots
    assert slot.scores[0] is None and all(isinstance(x, float) for x in slot.scores[1:])
    assert slot.candidates == ("field", "meadow", "zebra")  # ranked by the in-context score


def test_sense_rule_of_the_meaning_check():
    from dpo_diff.constraints import sense_score

    assert sense_score("a large red circle", "a larger red circle") == float("-inf")
    assert sense_score("a plate of fresh fruit", "a plate of fresh fruits") == float("inf")
    assert sense_score("a large red circle", "a large crimson circle") > sense_score("a large red circle", "a large chromatic circle")
    assert sense_score("a red car", "a red car in snow") is None


WRONG_SENSE = (  # rewrites the previous default (any sense scoring >= -1.5) let through into world attacks
    ("a large red square at the top", "a prominent red square at the top"),
    ("a large yellow square at the bottom", "a large old square at the bottom"),
    ("a large red circle on the left", "a large red-faced circle on the left"),
)
TRUE_SYNONYMS = (
    ("a small purple circle in the center", "a small violet circle in the center"),
    ("a small blue square at the top", "a little blue square at the top"),
    ("a small blue square at the top", "a tiny blue square at the top"),
    ("a large red circle on the left", "a large crimson circle on the left"),
    ("a small purple circle in the center", "a small purple circle in the centre"),
)


def test_first_sense_rule_refuses_other_senses_and_keeps_synonyms():
    from dpo_diff.constraints import SENSE_MODE, STRICT, MeaningConstraint, Strict, sense_score

    assert SENSE_MODE == "first"
    for original, rewrite in WRONG_SENSE:
        first, cut = MeaningConstraint(original), MeaningConstraint(original, sense_mode="cut")
        assert cut(rewrite), rewrite  # the old rule, still selectable, accepts it
        assert not first(rewrite), rewrite
        assert first.judge(rewrite)["sense"] == float("-inf")
    for original, rewrite in TRUE_SYNONYMS:
        assert MeaningConstraint(original)(rewrite), rewrite
        assert sense_score(original, rewrite, STRICT) == sense_score(original, rewrite)  # same score when kept
    # comparatives stay refused, unchanged prompts accepted
    assert not MeaningConstraint("a large red circle")("a larger red circle")
    assert MeaningConstraint("a large red circle")("a large red circle")
    # the cluster matters: without satellites of the head, "tiny" (a satellite of small) is refused
    narrow = Strict(places=99, ranks=1, heads=True, satellites=False)
    assert sense_score("a small blue square at the top", "a tiny blue square at the top", narrow) == float("-inf")
    with pytest.raises(ValueError):
        MeaningConstraint("a red circle", sense_mode="any")


CLEAR_CHANGES = (  # refused by every mode: a comparative, an antonym, a noun compound's modifier replaced alone
    ("a large red circle on the left", "a larger red circle on the left"),
    ("a tiny cat sleeping on a sofa", "a huge cat sleeping on a sofa"),
    ("a happy child eating ice cream", "a happy child eating frost cream"),
)


@pytest.mark.parametrize("mode", ["first", "cut", "model"])
def test_meaning_check_modes_on_clear_cases(mode):
    from dpo_diff.constraints import MeaningConstraint

    for original, rewrite in TRUE_SYNONYMS + (("a man riding a bicycle in the city", "a man riding a bike in the city"),):
        assert MeaningConstraint(original, sense_mode=mode)(rewrite), (mode, rewrite)
    for original, rewrite in CLEAR_CHANGES:
        verdict = MeaningConstraint(original, sense_mode=mode).judge(rewrite)
        assert not verdict["accepted"] and verdict["sense"] == float("-inf"), (mode, rewrite)
    if mode == "cut":
        return  # the old rule lets other senses through (WRONG_SENSE)
    # a lemma of another sense of the word: "quiet" as in unostentatious, "old" as in former
    for original, rewrite in (("a quiet street at night", "a unostentatious street at night"),
                              ("a large yellow square at the bottom", "a large old square at the bottom")):
        assert not MeaningConstraint(original, sense_mode=mode)(rewrite), (mode, rewrite)


def test_relation_model_reads_each_changed_word():
    from dpo_diff.constraints import Change, _fix_compound_tags, best_reading, readings
    from dpo_diff.spaces.context import tag
    from dpo_diff.spaces.words import split_words

    ((meadow,),) = readings("a green field with a red barn", "a green meadow with a red barn")
    assert isinstance(meadow, Change) and not meadow.synonym and meadow.gloss  # "meadow: a field where ..."
    ((crimson,),) = readings("a large red circle", "a large crimson circle")
    assert crimson.synonym and crimson.in_use and crimson.sense_cos > 0.99
    assert readings("a large red circle", "a large red circle") == [[]]  # nothing changed
    assert readings("a red car", "a red car in snow") is None  # no reading: the cosine decides
    # a word WordNet cannot judge (NaN) no longer hides a refused one (-inf), in either order
    nan, inf = float("nan"), float("inf")
    assert best_reading([[nan, -inf]], float) == best_reading([[-inf, nan]], float) == -inf
    assert best_reading([[nan, 1.0]], float) != best_reading([[nan, 1.0]], float)  # NaN: the cosine decides
    assert best_reading([[-inf], [0.5, 2.0]], float) == 0.5  # the best reading's worst word
    ws = split_words("a sunny beach with palm trees")
    assert _fix_compound_tags(ws, tag([w.text for w in ws]))[-1] == "n"  # "palm trees": the noun, not the verb


def test_candidates_do_not_depend_on_the_hash_seed():
    """NLTK 3.9+ keeps similar-to pointers in a set: which 8 satellites an adjective head offered
    used to change from one process to the next (old -> aged came and went)."""
    import os
    import subprocess
    import sys

    code = ("from dpo_diff.spaces.context import _sense_inventory as s; "
            "print([(x.name(), c) for x, _, c in s('old', 'a', 'synonym')])")
    outs = {
        subprocess.run([sys.executable, "-c", code], env={**os.environ, "PYTHONHASHSEED": str(h)},
                       capture_output=True, text=True, check=True).stdout
        for h in (1, 2, 3)
    }
    assert len(outs) == 1 and "aged" in outs.pop()


def test_feature_vector_and_the_new_features():
    """One weight per feature; the contextual target similarity and the shared-stem flag behave."""
    from dpo_diff.spaces.context import WEIGHTS, _target_similarity, rank_substitutes, shares_stem, token_embed

    text = "a tight knot in the rope"
    feats: list = []
    rank_substitutes(text, 2, 7, "synonym", threshold=-1e9, max_candidates=None, features=feats)
    assert feats and all(len(v) == len(WEIGHTS) for _, v in feats)
    assert shares_stem("skin-tight", "tight") and shares_stem("tight-fitting", "tight") and not shares_stem("taut", "tight")

    def target(sub):
        orig, new = token_embed([text, text.replace("tight", sub)])
        return _target_similarity(orig, new, 2, 7, 2 + len(sub))

    assert target("tight") == pytest.approx(1.0, abs=1e-5)
    assert target("taut") > target("banana")


def test_token_cache_keeps_the_texts_asked_for_when_full():
    """A full cache is emptied before encoding, not after (the texts just asked for stay readable)."""
    from dpo_diff.spaces.context import _TokenEmbeddings

    cache = _TokenEmbeddings(limit=3)
    cache(["a red car", "a blue car"])
    out = cache(["a red car", "a green car", "a black car"])
    assert len(out) == 3 and all(v.shape[0] == len(spans) for v, spans in out)


def test_a_form_of_another_part_of_speech_is_not_the_same_word():
    from dpo_diff.constraints import MeaningConstraint

    check = MeaningConstraint("a happy child eating ice cream")
    assert not check("a happy child eating icing cream")  # "icing" is a form of the verb "ice", not the noun
    assert check("a happy child eating ice creams")  # the same noun, inflected
