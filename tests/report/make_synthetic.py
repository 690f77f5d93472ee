#!/usr/bin/env python3
"""make_synthetic.py — writes N synthetic `armo score` output lines (and the
records they would answer) for the report tests: singles, pairs whose
records carry a RewardBench "subset", best-of-N records and errors, with 19
named objectives whose score is exactly sum(coefficients x rewards), from a
fixed seed.

usage: make_synthetic.py N SCORES.jsonl RECORDS.jsonl [SEED]"""
import json
import random
import sys

OBJ = ["helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence",
       "helpsteer-complexity", "helpsteer-verbosity", "ultrafeedback-overall_score",
       "ultrafeedback-instruction_following", "ultrafeedback-truthfulness",
       "ultrafeedback-honesty", "ultrafeedback-helpfulness", "beavertails-is_safe",
       "prometheus-score", "argilla-overall_quality", "argilla-judge_lm", "code-complexity",
       "code-style", "code-explanation", "code-instruction-following", "code-readability"]
SUBSETS = ["alpacaeval-easy", "mt-bench-hard", "llmbar-natural", "refusals-dangerous",
           "xstest-should-respond", "math-prm", "hep-python", "my-own-subset"]


def response(rng, gate, coef):
    rewards = [round(rng.gauss(0.1 * j % 1, 0.6), 6) for j in range(len(OBJ))]
    score = sum(c * r for c, r in zip(coef, rewards))
    return {"score": score, "rewards": dict(zip(OBJ, rewards)), "gating": dict(zip(OBJ, gate)),
            "coefficients": dict(zip(OBJ, coef)), "tokens": rng.randint(20, 900)}


def prompt_gate(rng):
    z = [rng.gauss(0, 1) for _ in OBJ]
    z[rng.randrange(len(OBJ))] += 3
    m = max(z)
    e = [2.718281828 ** (v - m) for v in z]
    s = sum(e)
    gate = [round(v / s, 6) for v in e]
    coef = [round(g * (0.5 + 0.5 * ((j * 7) % 5) / 4), 6) for j, g in enumerate(gate)]
    return gate, coef


def main():
    n, scores_path, records_path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    rng = random.Random(int(sys.argv[4]) if len(sys.argv) > 4 else 17)
    with open(scores_path, "w") as so, open(records_path, "w") as ro:
        for i in range(n):
            rid = f"rec-{i}"
            k = i % 10
            gate, coef = prompt_gate(rng)
            if k < 4:
                out = {"id": rid, **response(rng, gate, coef)}
                rec = {"id": rid, "prompt": f"question {i}", "response": f"answer {i}"}
            elif k < 8:
                ch, rj = response(rng, gate, coef), response(rng, gate, coef)
                m = ch["score"] - rj["score"]
                out = {"id": rid, "chosen": ch, "rejected": rj, "margin": m,
                       "preferred": "chosen" if m >= 0 else "rejected"}
                rec = {"id": rid, "prompt": f"question {i}", "chosen": "good", "rejected": "bad",
                       "subset": SUBSETS[rng.randrange(len(SUBSETS))]}
            elif k < 9:
                rs = [response(rng, gate, coef) for _ in range(rng.randint(2, 5))]
                ranking = sorted(range(len(rs)), key=lambda j: -rs[j]["score"])
                out = {"id": rid, "responses": rs, "ranking": ranking, "best": ranking[0]}
                rec = {"id": rid, "prompt": f"question {i}", "responses": ["r"] * len(rs)}
            else:
                which = rng.randrange(3)
                msg = ["Token pattern not found", "sequence of 9000 tokens exceeds --max-length 8192",
                       "record has neither messages nor prompt"][which]
                out = {"id": rid, "error": f"line {i + 1} (id \"{rid}\"): {msg}"}
                rec = {"id": rid, "oops": True}
            so.write(json.dumps(out) + "\n")
            ro.write(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
