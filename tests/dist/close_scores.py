#!/usr/bin/env python3
"""close_scores.py A B TOL — two `armo score` outputs of the same input agree
within TOL: line for line the same ids and error lines, and every number
present in both (scores, rewards, gating, coefficients, margins) within
TOL * max(1, |b|).  Orderings and explanations (which may flip on a near
tie) are not compared.  For a bf16 run against another split of the same
arithmetic (tensor parallel vs one device).  Exit 1 naming the first
differences, else prints the largest difference."""
import json
import sys

SKIP = {"explanation", "ranking", "best", "preferred"}


def walk(a, b, path, tol, out):
    if isinstance(a, bool) or isinstance(b, bool):
        return
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        d = abs(a - b) / max(1.0, abs(b))
        out["worst"] = max(out["worst"], (d, path))
        if d > tol:
            out["bad"].append("%s: %r vs %r" % (path, a, b))
    elif isinstance(a, dict) and isinstance(b, dict):
        for k in a:
            if k in b and k not in SKIP:
                walk(a[k], b[k], path + "." + k, tol, out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            walk(x, y, "%s[%d]" % (path, i), tol, out)


def main():
    pa, pb, tol = sys.argv[1], sys.argv[2], float(sys.argv[3])
    la = open(pa).read().splitlines()
    lb = open(pb).read().splitlines()
    out = {"worst": (0.0, ""), "bad": []}
    if len(la) != len(lb):
        out["bad"].append("%d lines vs %d" % (len(la), len(lb)))
    for i, (x, y) in enumerate(zip(la, lb)):
        a, b = json.loads(x), json.loads(y)
        if a.get("id") != b.get("id") or ("error" in a) != ("error" in b):
            out["bad"].append("line %d: id / error differ" % (i + 1))
            continue
        walk(a, b, "line %d" % (i + 1), tol, out)
    print("largest relative difference %.3g at %s" % out["worst"])
    if out["bad"]:
        print("FAIL: %d differences over %g:\n  %s" % (len(out["bad"]), tol, "\n  ".join(out["bad"][:10])))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
