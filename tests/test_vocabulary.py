"""Substitutes a model cannot read, or that the meaning check refuses alone, are left out of attack spaces."""

import json

import pytest

from dpo_diff.config import RunConfig
from dpo_diff.constraints import MeaningConstraint
from dpo_diff.errors import DpoDiffError, SpaceError
from dpo_diff.models.loading import bundled_models
from dpo_diff.spaces import build_space
from dpo_diff.spaces.vocabulary import known, read_vocabulary, resolve_vocabulary
from dpo_diff.world.parse import parse_prompt
from dpo_diff.world.scenes import caption, caption_words, random_scene, write_vocabulary

PROMPT = "a large red circle on the left"


def test_world_vocabulary_is_every_caption_word_and_ships_with_the_model(tmp_path):
    import random

    words = set(caption_words())
    rng = random.Random(0)
    seen = {w for _ in range(3000) for w in caption(random_scene(rng), rng).split()}
    assert seen <= words  # the list covers what training captions contain
    assert {"crimson", "violet", "tiny", "vast", "centre"} <= words and "sizable" not in words
    write_vocabulary(tmp_path)
    assert read_vocabulary(tmp_path / "vocabulary.txt") == frozenset(words)
    if "world" in bundled_models():  # the shipped file is the one train_world writes
        assert resolve_vocabulary("auto", "world") == frozenset(words)


def test_vocabulary_option_auto_none_and_path(tmp_path):
    assert resolve_vocabulary("auto", "tiny") is None  # presets and Hub models: open vocabulary
    assert resolve_vocabulary("none", "world") is None
    (tmp_path / "words.txt").write_text("# mine\nRed crimson\nlarge\n")
    assert resolve_vocabulary(str(tmp_path / "words.txt"), "tiny") == {"red", "crimson", "large"}
    assert known("ruby-red", frozenset({"ruby", "red"})) and not known("ruby-red", frozenset({"red"}))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(SpaceError, match="lists no words"):
        read_vocabulary(tmp_path / "empty.txt")
    with pytest.raises(DpoDiffError, match="no such file"):
        RunConfig(vocabulary=str(tmp_path / "missing.txt")).check("attack")


def test_space_keeps_only_known_words_and_lists_the_rest():
    words = frozenset(caption_words())
    free = build_space(PROMPT, "synonym")
    space = build_space(PROMPT, "synonym", vocabulary=words)
    cands = {c for s in space.slots for c in s.candidates[1:]}
    assert cands and all(known(c, words) for c in cands)
    assert {c for s in free.slots for c in s.candidates[1:]} - cands  # something was left out ...
    assert any("not in the model's vocabulary" in d for d in space.dropped)  # ... and listed with why
    # every rewrite the world space offers reads as the same scene to the world's parser
    import itertools

    scene = parse_prompt(PROMPT)
    for choice in itertools.product(*(range(n) for n in space.sizes)):
        assert parse_prompt(space.render(choice)[0]) == scene


def test_world_space_offers_the_worlds_rare_synonyms():
    """The rare synonyms the world learned badly on purpose are what a valid attack should find."""
    words = frozenset(caption_words())
    prompt = "a large pink triangle on the right"
    space = build_space(prompt, "synonym", vocabulary=words, meaning=MeaningConstraint(prompt))
    large = next(s for s in space.slots if s.label == "large")
    assert {"big", "vast", "great"} <= set(large.candidates)


def test_meaning_check_filters_candidates_before_the_cap():
    check = MeaningConstraint(PROMPT)
    free = build_space(PROMPT, "synonym", max_candidates=None)
    space = build_space(PROMPT, "synonym", meaning=check, max_candidates=None)
    for slot in space.slots:
        for cand in slot.candidates[1:]:
            start, end = slot.span
            assert check(PROMPT[:start] + cand + PROMPT[end:])
    refused = [d for d in space.dropped if "refused by the meaning check" in d]
    assert refused  # e.g. large -> "prominent", a sense not in use
    n_free = sum(len(s.candidates) - 1 for s in free.slots)  # substitutes, the original words aside
    assert sum(len(s.candidates) - 1 for s in space.slots) + len(refused) == n_free
    capped = build_space(PROMPT, "synonym", meaning=check, max_candidates=1)
    assert all(len(s.candidates) == 2 for s in capped.slots)  # the cap counts only what passed


def test_attack_on_the_world_searches_known_words_only(tmp_path):
    if "world" not in bundled_models():
        pytest.skip("the bundled world is not installed")
    import dpo_diff

    result = dpo_diff.attack(PROMPT, model="world", solver="random", budget=400, eval_seeds=0,
                             out=str(tmp_path / "run"))
    words = frozenset(caption_words())
    assert all(known(c, words) for s in result.space.slots for c in s.candidates)
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert any("vocabulary" in d for d in saved["space"]["dropped"])
    assert parse_prompt(result.best.prompt) == parse_prompt(PROMPT)


def test_user_file_synonyms_pass_the_same_meaning_check_and_vocabulary(tmp_path):
    path = tmp_path / "space.json"
    path.write_text(json.dumps({"synonym": {"field": ["zebra", "meadow"], "red": ["crimson", "sizzling"]}}))
    prompt = "a green field with a red barn"
    check = MeaningConstraint(prompt)
    space = build_space(prompt, "synonym", source=str(path), meaning=check)
    cands = {c for s in space.slots for c in s.candidates[1:]}
    assert "zebra" not in cands and "sizzling" not in cands  # another meaning: refused alone, listed
    assert {"field->zebra: refused by the meaning check on its own"} <= set(space.dropped)
    assert "crimson" in cands
    only = build_space(prompt, "synonym", source=str(path), vocabulary=frozenset({"meadow", "zebra"}))
    assert {c for s in only.slots for c in s.candidates[1:]} == {"meadow", "zebra"}


def test_a_space_emptied_by_the_filters_says_what_was_left_out():
    if "world" not in bundled_models():
        pytest.skip("the bundled world is not installed")
    import dpo_diff

    result = dpo_diff.attack("a green square at the top", model="world", budget=200, eval_seeds=0)
    assert result.space.is_empty and result.best.prompt == "a green square at the top"
    assert "candidates were left out" in result.message and "'dropped'" in result.message
