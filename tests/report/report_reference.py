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


def reference(scores_path, records_path=None, group_by=None):
    lines = [l for l in open(scores_path, encoding="utf-8") if l.strip()]
    outs = [json.loads(l) for l in lines]
    outs = [o for o in outs if not ("run" in o and "score" not in o and "error" not in o)]
    recs = None
    if records_path:
        recs = [json.loads(l) for l in open(records_path, encoding="utf-8") if l.strip()]
    responses, errors, margins, spreads, groups = [], {}, [], [], {}
    win, others = [], []
    kinds = {"single": 0, "pair": 0, "bon": 0, "error": 0}
    for i, o in enumerate(outs):
        rec = recs[i] if recs else o
        if "error" in o:
            kinds["error"] += 1
            k = error_key(o["error"])
            errors[k] = errors.get(k, 0) + 1
        elif "chosen" in o:
            kinds["pair"] += 1
            responses += [o["chosen"], o["rejected"]]
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
            responses += rs
            sc = [r["score"] for r in rs]
            spreads.append(max(sc) - min(sc))
            best = o.get("best", sc.index(max(sc)))
            win.append(rs[best])
            others += [r for j, r in enumerate(rs) if j != best]
        else:
            kinds["single"] += 1
            responses.append(o)
    scores = [r["score"] for r in responses]
    objs = list(responses[0]["rewards"]) if responses and "rewards" in responses[0] else []
    contrib = {n: sum(r["coefficients"][n] * r["rewards"][n] for r in responses) for n in objs}
    tot = sum(abs(v) for v in contrib.values())
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
    return {
        "records": len(outs), "errors": kinds["error"], "singles": kinds["single"],
        "pairs": pairs, "best_of_n": kinds["bon"], "responses": len(responses),
        "tokens": sum(r.get("tokens", 0) for r in responses),
        "score_mean": mean(scores), "score_median": median(scores),
        "errors_by_message": errors,
        "preferred": sum(1 for m in margins if m > 0),
        "pref_rate": 100 * sum(1 for m in margins if m > 0) / pairs if pairs else 0.0,
        "margin_mean": mean(margins), "margin_median": median(margins),
        "groups": {g: {"pairs": n, "preferred": k, "rate": 100 * k / n} for g, (n, k) in groups.items()},
        "rewardbench": {"sections": sections, "score": score_sum / nsec} if nsec else None,
        "spread_mean": mean(spreads), "spread_median": median(spreads),
        "objectives": objs,
        "mean_reward": [mean([r["rewards"][n] for r in responses]) for n in objs],
        "mean_gate": [mean([r["gating"][n] for r in responses]) for n in objs],
        "mean_coef": [mean([r["coefficients"][n] for r in responses]) for n in objs],
        "share": [100 * contrib[n] / tot if tot else 0.0 for n in objs],
        "win_reward": [mean([r["rewards"][n] for r in win]) for n in objs],
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    gb = None
    if "--group-by" in args:
        i = args.index("--group-by")
        gb = args[i + 1]
        del args[i:i + 2]
    print(json.dumps(reference(args[0], args[1] if len(args) > 1 else None, gb), indent=1))
