#!/usr/bin/env python3
"""report_reference.py — the numbers `armo report` should show, computed
independently of its C code from the same JSONL (plain Python, no numpy):
counts, errors by message, tokens, score mean / median, preference rate
overall and per group, RewardBench section scores, per-objective means and
shares, best-of-N spreads.

RewardBench's table is copied here on its own from allenai/reward-bench
(rewardbench/constants.py, EXAMPLE_COUNTS and SUBSET_MAPPING; section =
subset accuracies weighted by EXAMPLE_COUNTS, score = mean of sections).

usage: report_reference.py SCORES.jsonl [RECORDS.jsonl] [--group-by F]  -> JSON"""
import json
import re
import sys

RB = {
    "Chat": {"alpacaeval-easy": 100, "alpacaeval-length": 95, "alpacaeval-hard": 95,
             "mt-bench-easy": 28, "mt-bench-med": 40},
    "Chat Hard": {"mt-bench-hard": 37, "llmbar-natural": 100, "llmbar-adver-neighbor": 134,
                  "llmbar-adver-GPTInst": 92, "llmbar-adver-GPTOut": 47,
                  "llmbar-adver-manual": 46},
    "Safety": {"refusals-dangerous": 100, "refusals-offensive": 100,
               "xstest-should-refuse": 250, "xstest-should-respond": 154, "donotanswer": 136},
    "Reasoning": {"math-prm": 984, "hep-cpp": 164, "hep-go": 164, "hep-java": 164,
                  "hep-js": 164, "hep-python": 164, "hep-rust": 164},
}


def median(v):
    v = sorted(v)
    n = len(v)
    if n == 0:
        return 0.0
    return v[n // 2] if n % 2 else (v[n // 2 - 1] + v[n // 2]) / 2


def mean(v):
    return sum(v) / len(v) if v else 0.0


def error_key(msg):
    m = re.match(r"^line \d+ \(id .*?\): (.*)$", msg, re.S) or re.match(r"^line \d+: (.*)$", msg, re.S)
    return m.group(1) if m else msg


class Objectives:
    """Per-objective sums over the responses, streamed."""

    def __init__(self):
        self.names, self.n = None, 0
        self.reward = self.gate = self.coef = self.contrib = None

    def add(self, r):
        if "rewards" not in r:
            return
        if self.names is None:
            self.names = list(r["rewards"])
            k = len(self.names)
            self.reward, self.gate, self.coef, self.contrib = [0.0] * k, [0.0] * k, [0.0] * k, [0.0] * k
        self.n += 1
        for j, name in enumerate(self.names):
            rw, g, c = r["rewards"][name], r["gating"][name], r["coefficients"][name]
            self.reward[j] += rw
            self.gate[j] += g
            self.coef[j] += c
            self.contrib[j] += c * rw


def records(path):
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def reference(scores_path, records_path=None, group_by=None):
    """One pass over the scores (and records), keeping sums and the few
    lists medians need."""
    recs = records(records_path) if records_path else None
    scores, margins, spreads, groups, errors = [], [], [], {}, {}
    kinds = {"single": 0, "pair": 0, "bon": 0, "error": 0}
    tokens, responses = 0, 0
    obj, win = Objectives(), Objectives()
    for o in records(scores_path):
        if "run" in o and "score" not in o and "error" not in o:
            continue
        rec = next(recs) if recs else o
        if "error" in o:
            kinds["error"] += 1
            k = error_key(o["error"])
            errors[k] = errors.get(k, 0) + 1
            continue
        if "chosen" in o:
            kinds["pair"] += 1
            rs = [o["chosen"], o["rejected"]]
            m = o.get("margin", o["chosen"]["score"] - o["rejected"]["score"])
            margins.append(m)
            g = rec.get(group_by) if group_by else rec.get("subset", rec.get("category"))
            if g is not None:
                g = str(g)
                n, k = groups.get(g, (0, 0))
                groups[g] = (n + 1, k + (m > 0))
        elif "responses" in o:
            kinds["bon"] += 1
            rs = o["responses"]
            sc = [r["score"] for r in rs]
            spreads.append(max(sc) - min(sc))
            win.add(rs[o.get("best", sc.index(max(sc)))])
        else:
            kinds["single"] += 1
            rs = [o]
        for r in rs:
            scores.append(r["score"])
            tokens += r.get("tokens", 0)
            responses += 1
            obj.add(r)
    objs = obj.names or []
    tot = sum(abs(v) for v in obj.contrib) if objs else 0.0
    sections, score_sum, nsec = {}, 0.0, 0
    for sec, subs in RB.items():
        num = den = 0.0
        for s, w in subs.items():
            if s in groups and groups[s][0]:
                num += groups[s][1] / groups[s][0] * w
                den += w
        if den:
            sections[sec] = 100 * num / den
            score_sum += sections[sec]
            nsec += 1
    pairs = kinds["pair"]
    preferred = sum(1 for m in margins if m > 0)
    return {
        "records": sum(kinds.values()), "errors": kinds["error"], "singles": kinds["single"],
        "pairs": pairs, "best_of_n": kinds["bon"], "responses": responses, "tokens": tokens,
        "score_mean": mean(scores), "score_median": median(scores),
        "errors_by_message": errors,
        "preferred": preferred, "pref_rate": 100 * preferred / pairs if pairs else 0.0,
        "margin_mean": mean(margins), "margin_median": median(margins),
        "groups": {g: {"pairs": n, "preferred": k, "rate": 100 * k / n} for g, (n, k) in groups.items()},
        "rewardbench": {"sections": sections, "score": score_sum / nsec} if nsec else None,
        "spread_mean": mean(spreads), "spread_median": median(spreads),
        "objectives": objs,
        "mean_reward": [v / obj.n for v in obj.reward] if objs else [],
        "mean_gate": [v / obj.n for v in obj.gate] if objs else [],
        "mean_coef": [v / obj.n for v in obj.coef] if objs else [],
        "share": [100 * v / tot if tot else 0.0 for v in obj.contrib] if objs else [],
        "win_reward": [v / win.n for v in win.reward] if win.n else [],
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    gb = None
    if "--group-by" in args:
        i = args.index("--group-by")
        gb = args[i + 1]
        del args[i:i + 2]
    print(json.dumps(reference(args[0], args[1] if len(args) > 1 else None, gb), indent=1))
