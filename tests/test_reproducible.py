"""A seed reproduces a result in any process: nothing may depend on Python's hash seed."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = """
import json
from dpo_diff.spaces import build_space
from dpo_diff.models import clip_tokenizer
tok = clip_tokenizer()
ids = lambda text: tok(text, add_special_tokens=False).input_ids
out = [build_space(p, k, token_ids=ids).to_dict() for p, k in (
    ("a small blue circle on the left", "synonym"), ("a tiny cat on a dark wet street", "antonym"),
    ("a large red square at the top", "synonym"))]
print(json.dumps(out, sort_keys=True))
"""


def test_search_spaces_do_not_depend_on_the_hash_seed():
    """NLTK lists an adjective's similar-to synsets from a set; unsorted, the space changed per process."""
    outputs = []
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        outputs.append(done.stdout.strip().splitlines()[-1])
    assert outputs[0] == outputs[1] == outputs[2]
