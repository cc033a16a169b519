"""``RunConfig``: every option of one optimization run, declared once.

The Python API (:func:`dpo_diff.optimize`), the CLI (its options are generated from these
fields), the batch store (which keeps the whole resolved configuration and refuses to resume
with another) and ``compare`` all read this one class. A new option is one field here, with its
help in the field's metadata.

This module imports nothing heavy: the CLI builds its options and checks numbers before torch
is imported.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .checks import check_guidance, parse_kind, parse_seeds, resolve_eval_seeds
from .errors import BudgetError, DpoDiffError
from .objectives import get_objective
from .task import get_task

DEFAULT_EVALUATIONS = 40  # default budget, in evaluations of one candidate
DEFAULT_GUIDANCE = 7.5  # unless the model's preset asks for another (few-step models: 0)


def option(default: Any, help: str, *, stored: bool = True, cli: bool = True, task: str | None = None,
           cli_type: type | None = None, envvar: str | None = None) -> Any:
    """A RunConfig field: its default, its CLI help, and how the store and the CLI treat it.

    ``stored``: the value changes results, so a batch store keeps it and refuses another on resume.
    ``task``: the option only exists for that task's commands. ``cli_type``: the CLI's type when it
    differs from the API's (seeds are text on the command line).
    """
    meta = {"help": help, "stored": stored, "cli": cli, "task": task, "cli_type": cli_type, "envvar": envvar}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunConfig:
    """The options of one run. Unset values (None) are resolved from the model when it is loaded."""

    model: str | None = option(
        None, "world (bundled, the default when installed), a preset (tiny, tiny-sdxl, tiny-sdxl-turbo, tiny-sd3, "
        "tiny-flux; sd15-random, sdxl-random, sd35-random, flux-random), a Hugging Face Hub id (SD 1.x/2.x, SDXL, "
        "Turbo, SD3/3.5, FLUX.1) or a local pipeline folder.")
    space: str | None = option(None, "synonym | antonym | nplib | antonym+nplib (default: by task).")
    solver: str = option("hybrid", "random | epo | gpo | hybrid")
    objective: str = option(
        "clip", "What the search optimizes: clip (spherical CLIP distance, the paper's) or pickscore "
        "(a preference model); see README.")
    budget: int | None = option(None, "denoiser forward passes to spend (default: 40 evaluations' worth).")
    seeds: int | str | tuple[int, ...] = option("1", "Image seeds: a count (2 means 0,1) or a list (3,7).",
                                                cli_type=str)
    eval_seeds: int | str | tuple[int, ...] | None = option(
        "4", "Held-out seeds the best prompt is re-rendered on after the search: a count of new seeds "
        "(from 1000 on) or a list; 0 turns it off.", cli_type=str)
    steps: int | None = option(None, "Sampling steps (default: 50; 20 for presets).")
    guidance: float | None = option(
        None, "Classifier-free guidance scale (default: 7.5; the model's own for few-step presets).")
    true_cfg: float | None = option(
        None, "FLUX: true classifier-free guidance with the negative prompt (default 1: off); the same scale as "
        "--guidance for other models.", stored=False)
    seed: int = option(0, "Seed of the search itself (sampling, mutations).")
    source: str = option("wordnet", "Where substitutes come from: wordnet | llm | PATH.json")
    vocabulary: str = option(
        "auto", "Words a prompt word's substitute may use: auto (the model's own list, vocabulary.txt in its "
        "folder, as the bundled world has; other models have none), none, or PATH to a word list.")
    estimator: str = option("shortcut", "shortcut | full | full-checkpoint")
    k: int = option(1, "Grad denoiser steps of the shortcut estimator.")
    checkpoint: bool = option(
        False, "Gradient checkpointing inside the denoiser for the gradient steps: less memory (SDXL, SD3, FLUX "
        "at full size), one more forward per differentiated pass, counted; values unchanged.")
    schedule: str = option("step-15-2", "t_i schedule in 50-step units: step-A-B | rand-A-B | fix-N.")
    iterations: int = option(20, "Gradient iterations of gpo / hybrid.")
    gpo_style: str = option(
        "authors", "GPO details: 'authors' (per-element clipping, original word's logit 1, random ties) or "
        "'previous' (global-norm clipping, zero logits, first candidate wins ties).")
    min_similarity: float = option(0.8, "Least sentence-embedding cosine to the prompt (0: off).", task="attack")
    nplib_size: int = option(4, "Negative-prompt library words per slot.", cli=False)
    scorer: str | None = option(
        None, "CLIP scorer id or folder (default: preset's, else openai/clip-vit-base-patch32).")
    allow_non_ascii: bool = option(False, "Accept non-ASCII text (such words are kept fixed).")
    llm_base_url: str | None = option(None, "OpenAI-compatible endpoint for --source llm.",
                                      envvar="DPO_DIFF_LLM_BASE_URL")
    llm_model: str | None = option(
        None, "Model for --source llm (key: $DPO_DIFF_LLM_API_KEY; $OPENAI_API_KEY only for api.openai.com).",
        envvar="DPO_DIFF_LLM_MODEL")
    eval_batch_size: int = option(8, "Candidates rendered per batch.", stored=False, cli=False)
    device: str | None = option(None, "cuda | mps | cpu (default: the best available).", stored=False)

    # ------------------------------------------------------------------ build
    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """A config from a dict of options; an unknown option is refused in one line."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise DpoDiffError(f"unknown option(s) {', '.join(unknown)}: see RunConfig for the options a run takes")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def replace(self, **changes: Any) -> RunConfig:
        return self.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)}

    # ----------------------------------------------------------------- checks
    def check(self, task: str) -> None:
        """Refuse bad values that need no model (cheap: called before anything heavy is imported)."""
        task_ = get_task(task)
        get_objective(self.objective)
        if self.budget is not None and self.budget <= 0:
            raise BudgetError(f"--budget must be a positive number of denoiser passes, not {self.budget}")
        if self.steps is not None and self.steps < 1:
            raise DpoDiffError(f"--steps must be at least 1, not {self.steps}")
        if self.k < 1:
            raise DpoDiffError(f"--k must be at least 1, not {self.k}")
        if self.iterations < 0:
            raise DpoDiffError(f"--iterations must be at least 0, not {self.iterations}")
        if self.vocabulary.strip().lower() not in ("auto", "none"):
            from pathlib import Path

            if not Path(self.vocabulary).expanduser().is_file():
                raise DpoDiffError(f"--vocabulary '{self.vocabulary}': no such file (give auto, none or a word list)")
        if not 0.0 <= self.min_similarity <= 1.0:
            raise DpoDiffError(f"--min-similarity {self.min_similarity:g}: give a cosine in [0, 1] (0 turns it off)")
        if self.guidance is not None and self.true_cfg is not None and self.guidance != self.true_cfg:
            raise DpoDiffError("--true-cfg and --guidance both set the classifier-free guidance scale: give one")
        if self.effective_guidance() is not None and self.effective_guidance() < 0:
            raise DpoDiffError(f"--guidance must be at least 0, not {self.effective_guidance():g}")
        parts = parse_kind(self.space_kind(task_.name))
        if task_.name == "attack" and parts != ("synonym",):
            raise DpoDiffError("an attack keeps the prompt's meaning: use --space synonym")
        if self.effective_guidance() is not None:
            check_guidance(self.space_kind(task), parts, self.effective_guidance(), self.guidance_option())
        resolve_eval_seeds(self.eval_seeds, parse_seeds(self.seeds))

    def effective_guidance(self) -> float | None:
        """The guidance scale asked for (``--guidance``, or FLUX's name for it, ``--true-cfg``); None: the model's."""
        return self.guidance if self.guidance is not None else self.true_cfg

    def guidance_option(self, default: str = "--guidance") -> str:
        """The option a message about guidance should name."""
        return "--true-cfg" if self.true_cfg is not None else default

    def space_kind(self, task: str) -> str:
        return self.space or get_task(task).default_space

    def seed_list(self) -> list[int]:
        return parse_seeds(self.seeds)

    def eval_seed_list(self) -> list[int]:
        return resolve_eval_seeds(self.eval_seeds, self.seed_list())

    def llm(self):
        """The LLM endpoint of ``--source llm`` (unset values from the environment)."""
        from .spaces.llm import LLMConfig

        config = LLMConfig()
        if self.llm_base_url:
            config.base_url = self.llm_base_url
        if self.llm_model:
            config.model = self.llm_model
        return config

    # ------------------------------------------------------------------ store
    def stored(self, task: str, guidance: float | None = None, llm=None) -> dict[str, Any]:
        """What a results store keeps: every option that changes results, resolved.

        Seeds become lists (2, "2" and [0, 1] are one configuration), guidance the model's value,
        and the LLM endpoint and model are kept only for ``--source llm``. The device, batch size
        and API keys are not kept.
        """
        data = {"task": get_task(task).name}
        for f in dataclasses.fields(self):
            if not f.metadata.get("stored", True) or f.name.startswith("llm_"):
                continue
            if f.metadata.get("task") not in (None, task):
                continue
            data[f.name] = _plain(getattr(self, f.name))
        data["guidance"] = self.effective_guidance()
        data["seeds"] = self.seed_list()
        data["eval_seeds"] = self.eval_seed_list()
        if guidance is not None and data["guidance"] is None:
            data["guidance"] = guidance
        if self.source == "llm":
            llm = llm or self.llm()
            data["llm"] = {"base_url": llm.base_url, "model": llm.model}
        return data


def fields_for(task: str | None) -> list[dataclasses.Field]:
    """The RunConfig fields a command for ``task`` (None: any task) shows on the command line."""
    return [f for f in dataclasses.fields(RunConfig)
            if f.metadata.get("cli", True) and (task is None or f.metadata.get("task") in (None, task))]


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def resolve_config(config: RunConfig | None, options: dict[str, Any]) -> RunConfig:
    """``config`` with ``options`` on top (either may be empty)."""
    if config is None:
        return RunConfig.from_dict(options)
    return config.replace(**options) if options else config


__all__ = ["DEFAULT_EVALUATIONS", "DEFAULT_GUIDANCE", "RunConfig", "fields_for", "resolve_config"]


