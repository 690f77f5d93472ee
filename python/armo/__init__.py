"""armo — Python bindings of armo, the C/CUDA engine for ArmoRM and Llama-3
reward models.

  RewardModel(path, device="auto")  the model in this process (libarmo.so,
                                    through ctypes): score, score_pairs,
                                    best_of_n, score_ids, score_records
  Client(url)                       the same calls answered by `armo serve`,
                                    plus get_reward (OpenRLHF) and classify
  trl_reward_func(...)              a reward function for TRL's GRPOTrainer

Results are dataclasses (Score, PairScore, BestOfN) holding the named
rewards, gating weights and coefficients `armo score` reports (numpy arrays
with as_numpy=True).  No torch needed; numpy only for as_numpy."""
from ._lib import ArmoError
from .client import Client
from .model import RewardModel
from .results import BestOfN, PairScore, Score
from .trl import RewardFunc, trl_reward_func

__all__ = ["ArmoError", "BestOfN", "Client", "PairScore", "RewardFunc", "RewardModel", "Score",
           "trl_reward_func"]
__version__ = "0.1.0"
