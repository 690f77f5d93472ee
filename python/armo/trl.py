"""trl.py — trl_reward_func: armo as a TRL reward function.

TRL's GRPOTrainer(reward_funcs=[...]) calls each function as
f(prompts=..., completions=..., completion_ids=..., trainer_state=...,
**dataset_columns) and wants one float per completion.  Both of TRL's
formats are taken: standard (prompts and completions are strings: scored as
one user turn and one assistant turn, the model's chat template applied by
armo) and conversational (lists of {"role", "content"} messages: the prompt's
messages followed by the completion's)."""
from ._lib import ArmoError


class RewardFunc:
    """The callable trl_reward_func returns.  Has a __name__ (TRL logs each
    reward function's rewards under it)."""

    def __init__(self, scorer, objective=None, errors="raise", name=None):
        self.scorer = scorer
        self.objective = objective
        self.errors = errors
        self.__name__ = name or ("armo" if objective is None else f"armo_{objective}")

    @staticmethod
    def record(prompt, completion):
        if isinstance(completion, str):
            if isinstance(prompt, str):
                return {"prompt": prompt, "response": completion}
            completion = [{"role": "assistant", "content": completion}]
        messages = ([{"role": "user", "content": prompt}] if isinstance(prompt, str)
                    else list(prompt or []))
        return {"messages": messages + list(completion)}

    def _value(self, res):
        if self.objective is None:
            return float(res["score"])
        try:
            return float(res["rewards"][self.objective])
        except KeyError:
            raise ArmoError(f"the model has no objective {self.objective!r}") from None

    def __call__(self, prompts, completions, **kwargs):
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        results = self.scorer.score_records(
            [self.record(p, c) for p, c in zip(prompts, completions)])
        out = []
        for res in results:
            if "error" in res:
                if self.errors == "raise":
                    raise ArmoError(res["error"])
                out.append(None)  # TRL: not applicable to this sample
            else:
                out.append(self._value(res))
        return out


def trl_reward_func(model, *, objective=None, errors="raise", name=None, **open_kwargs):
    """A TRL reward function over armo:

        from trl import GRPOTrainer
        reward = armo.trl_reward_func("path/to/ArmoRM", device="cuda")
        trainer = GRPOTrainer(model=..., reward_funcs=[reward], ...)

    model: a RewardModel or Client, a checkpoint directory (opened here with
    open_kwargs: device, threads, max_batch_tokens) or an http(s) URL of a
    running `armo serve`.  objective: return that named reward (e.g.
    "helpsteer-helpfulness") instead of the score.  errors: "raise" (a
    record armo cannot score stops the step) or "none" (None for it, which
    TRL skips)."""
    from .client import Client
    from .model import RewardModel
    from .scorer import Scorer
    if isinstance(model, Scorer):
        scorer = model
    elif str(model).startswith(("http://", "https://")):
        scorer = Client(str(model), **open_kwargs)
    else:
        scorer = RewardModel(model, **open_kwargs)
    return RewardFunc(scorer, objective=objective, errors=errors, name=name)
