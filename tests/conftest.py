import json
import os
import warnings

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402
from diffusers.utils import logging as _diffusers_logging  # noqa: E402
from transformers.utils import logging as _transformers_logging  # noqa: E402

# The libraries give their loggers a handler on the sys.stderr of the moment they first log. Made
# here, it writes to the session's stream; made inside a test that captures output (capsys), it
# would write to that test's stream, closed after it, and every later warning would print a
# "Logging error" traceback into whatever output a later test reads.
_diffusers_logging.get_logger("diffusers")
_transformers_logging.get_logger("transformers")

PROMPT = "a red car parked on a quiet street"


@pytest.fixture(scope="session", autouse=True)
def _cache(tmp_path_factory):
    """A private cache (tokenizer files, WordNet copy, LLM replies) for the whole run."""
    os.environ["DPO_DIFF_CACHE"] = str(tmp_path_factory.mktemp("dpo-diff-cache"))
    warnings.filterwarnings("ignore", category=FutureWarning)
    # DPO_DIFF_TEST_THREADS=1 when the machine is busy: oversubscribed torch threads spin and crawl
    threads = int(os.environ.get("DPO_DIFF_TEST_THREADS") or min(2, os.cpu_count() or 1))
    torch.set_num_threads(max(1, threads))


@pytest.fixture(scope="session")
def engine(_cache):
    import dpo_diff

    return dpo_diff.load("tiny", device="cpu")


@pytest.fixture(scope="session")
def model(engine):
    return engine.model


@pytest.fixture
def fresh_meter(model):
    from dpo_diff.cost import CostMeter

    model.meter = CostMeter()
    return model.meter


# A user-file space (deterministic): "big" and "cat" have words of one T5 piece each in tiny-*'s
# T5 vocabulary, "red" has "reddish" (one CLIP token, two T5 pieces: "▁red" "dish").
USER_SPACE = {"synonym": {"big": ["large", "huge", "massive"], "red": ["maroon", "reddish", "ruby"],
                          "cat": ["kitty", "feline"]}}


@pytest.fixture(scope="module")
def user_space(tmp_path_factory):
    path = tmp_path_factory.mktemp("space") / "space.json"
    path.write_text(json.dumps(USER_SPACE))
    return str(path)
