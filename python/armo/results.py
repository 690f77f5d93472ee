"""results.py — the result objects of armo, as Python dataclasses.

Each wraps one result object that `armo score` writes (README "Scoring"):
the named rewards, gating weights and coefficients of an ArmoRM score (or a
single-head RM's score and labels), a pair's two scores, margin and
explanation, a best-of-N's scores and ranking.  `raw` keeps the JSON object
as it came.  With as_numpy, rewards / gating / coefficients are numpy arrays
in the model's objective order (their names: `objectives`) instead of
dicts; numpy is needed only then."""
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Union

from ._lib import ArmoError

Vector = Union[Dict[str, float], "numpy.ndarray", None]  # noqa: F821


@dataclass
class Score:
    """One scored conversation."""
    score: float
    rewards: Vector = None         # ArmoRM: objective -> reward
    gating: Vector = None          # ArmoRM: objective -> gating weight
    coefficients: Vector = None    # ArmoRM: objective -> coefficient (score = sum r*c)
    scores: Optional[List[float]] = None  # a single-head RM with several labels
    tokens: int = 0
    id: Any = None
    objectives: Optional[List[str]] = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class PairScore:
    """A chosen / rejected pair."""
    chosen: Score
    rejected: Score
    margin: float
    preferred: str                 # "chosen" or "rejected"
    explanation: List[Dict[str, Any]] = field(default_factory=list)
    id: Any = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass
class BestOfN:
    """The responses of one prompt, ranked."""
    responses: List[Score]
    ranking: List[int]             # indices into responses, best first
    best: int
    id: Any = None
    raw: Dict[str, Any] = field(default_factory=dict, repr=False)


def _vector(d, as_numpy):
    if d is None or not as_numpy:
        return d
    import numpy as np
    return np.fromiter(d.values(), dtype=np.float64, count=len(d))


def _score(obj, as_numpy, rid=None):
    rewards = obj.get("rewards")
    return Score(score=obj["score"], rewards=_vector(rewards, as_numpy),
                 gating=_vector(obj.get("gating"), as_numpy),
                 coefficients=_vector(obj.get("coefficients"), as_numpy),
                 scores=obj.get("scores"), tokens=obj.get("tokens", 0), id=rid,
                 objectives=list(rewards) if rewards is not None else None, raw=obj)


def parse(obj, as_numpy=False, errors="raise"):
    """The dataclass of one result object; an {"error"} object raises
    ArmoError (errors="raise") or gives None (errors="none")."""
    if "error" in obj:
        if errors == "raise":
            raise ArmoError(obj["error"])
        return None
    rid = obj.get("id")
    if "chosen" in obj:
        return PairScore(chosen=_score(obj["chosen"], as_numpy),
                         rejected=_score(obj["rejected"], as_numpy), margin=obj["margin"],
                         preferred=obj["preferred"], explanation=obj.get("explanation", []),
                         id=rid, raw=obj)
    if "responses" in obj:
        return BestOfN(responses=[_score(r, as_numpy) for r in obj["responses"]],
                       ranking=obj["ranking"], best=obj["best"], id=rid, raw=obj)
    return _score(obj, as_numpy, rid)
