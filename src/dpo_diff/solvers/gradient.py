"""GPO: gradient-based prompt optimization over the Gumbel-softmax relaxation.

The learning phase runs ``iterations`` RMSprop steps on the slot logits, each with one
Gumbel-softmax sample shared by all seeds, the gradient from the chosen estimator, the
gradient clipped, and the logits clamped. It spends at most ``grad_fraction`` of the budget
left; the rest goes to candidates sampled from the learned distribution (its argmax first).

``style`` picks three details. ``"authors"`` (the default) follows the authors' release:
each gradient element clipped to +-0.025, the original word's (candidate 0's) logit starting
at 1 and the others at 0, and argmax ties (frequent once the logits hit the [0, 3] clamp)
broken at random. ``"previous"`` is what this package did before: the gradient's global norm
clipped to 0.025, all logits starting at 0, ties to the first candidate.

Multi-token candidates and words: the relaxation mixes single-token candidates only; a slot
without two of them is held at the user's word (or "nothing") during the gradient phase, and a
multi-token candidate of a relaxed slot gets no gradient (:mod:`dpo_diff.relaxation`). The
sampling phase draws from the learned distribution over the *whole* space: learned logits where
there are some, the starting logits (the prior) elsewhere, so every candidate stays reachable.
A space with no relaxed slot at all skips the gradient phase.
"""

from __future__ import annotations

import torch

from ..errors import DpoDiffError
from ..estimators import ShortcutEstimator, timestep_schedule
from ..problem import Problem
from ..relaxation import RelaxedChoice, encode_relaxed, tokenize_space

GPO_STYLES = ("authors", "previous")


class GradientSolver:
    name = "gpo"

    @classmethod
    def create(cls, options) -> GradientSolver:
        return cls(iterations=options.iterations, schedule=options.schedule, estimator=options.estimator,
                   style=options.gpo_style)

    def __init__(
        self,
        iterations: int = 20,
        lr: float = 0.1,
        momentum: float = 0.5,
        clip: float = 0.025,
        clamp: tuple[float, float] = (0.0, 3.0),
        tau: float = 1.0,
        schedule: str = "step-15-2",
        estimator=None,
        grad_fraction: float = 0.5,
        sample_batch: int = 8,
        style: str = "authors",
    ):
        if style not in GPO_STYLES:
            raise DpoDiffError(f"unknown GPO style '{style}': use {' or '.join(GPO_STYLES)}")
        self.style = style
        self.iterations = iterations
        self.lr = lr
        self.momentum = momentum
        self.clip = clip
        self.clamp = clamp
        self.tau = tau
        self.schedule = schedule
        self.estimator = estimator or ShortcutEstimator(1)
        self.grad_fraction = grad_fraction
        self.sample_batch = sample_batch

    def learn(self, problem: Problem) -> RelaxedChoice:
        """The gradient phase: the learned distribution over the space."""
        model = problem.model
        tspace = tokenize_space(problem.space, model, warn=False)  # a cut prompt was warned of when the run began
        if hasattr(model, "second_vocabulary"):  # SD3 / FLUX: record the slots T5 reads as text, not as a mixture
            from ..relaxation.t5 import t5_coverage

            problem.log("t5", not_mixed={k: v for k, v in t5_coverage(model, tspace).items() if v != "mixed"})
        # authors: the original word (negative slots: say nothing) starts at 1
        relaxed = RelaxedChoice(tspace.mask, first=1.0 if self.style == "authors" else None, space_mask=tspace.space_mask)
        left_out = tspace.dropped_from_relaxation()
        if left_out:  # recorded in the history (result.json): what the gradient cannot see, and why
            problem.log("relaxation", relaxed_slots=sum(tspace.relaxed_slots), not_relaxed=left_out)
        if not tspace.learns_anything:
            return relaxed  # nothing the relaxation can represent: the prior over the space
        optimizer = torch.optim.RMSprop(relaxed.parameters(), lr=self.lr, momentum=self.momentum)
        ts = timestep_schedule(self.schedule, self.iterations, problem.rng)
        limit = problem.meter.used + self.grad_fraction * problem.meter.left
        sign = -1.0 if problem.maximize else 1.0
        for i, t in enumerate(ts):
            cost = self.estimator.cost(t, problem.sampling, problem.meter)
            # keep one evaluation's worth for the sampling phase
            if problem.meter.used + cost > limit or not problem.meter.can_afford(cost + problem.eval_cost):
                break
            weights = relaxed.gumbel_weights(self.tau, problem.generator)
            loss = self.estimator.loss(
                model, problem.sampling, problem.objective, lambda: encode_relaxed(model, tspace, weights), t
            )
            optimizer.zero_grad()
            (sign * loss).backward()
            if self.style == "authors":
                torch.nn.utils.clip_grad_value_(relaxed.parameters(), self.clip)
            else:
                torch.nn.utils.clip_grad_norm_(relaxed.parameters(), self.clip)
            optimizer.step()
            relaxed.clamp_(*self.clamp)
            problem.log("gradient", iteration=i, t=t, relaxed_loss=float(loss.detach()))
        return relaxed

    def argmax(self, problem: Problem, relaxed: RelaxedChoice):
        """The learned distribution's mode; ties at random ("authors") or to the first candidate."""
        if self.style != "authors":
            return relaxed.argmax()
        logits = relaxed.masked_logits().detach()
        top = logits == logits.max(dim=-1, keepdim=True).values
        return tuple(problem.rng.choice(row.nonzero().flatten().tolist()) for row in top)

    def samples(self, problem: Problem, relaxed: RelaxedChoice, n: int, tries: int = 50) -> list:
        """The argmax (over what was learned), then up to ``n - 1`` distinct new samples of the
        learned distribution over the whole space (:meth:`RelaxedChoice.space_logits`)."""
        mode = self.argmax(problem, relaxed)
        out = [mode] if problem.is_new(mode) else []
        for _ in range(n * tries):
            if len(out) >= n:
                break
            c = relaxed.sample_space(problem.generator)
            if problem.is_new(c) and c not in out:
                out.append(c)
        return out

    def run(self, problem: Problem) -> None:
        relaxed = self.learn(problem)
        while not problem.done:
            batch = self.samples(problem, relaxed, self.sample_batch)
            if not batch:
                break
            problem.evaluate(batch)
