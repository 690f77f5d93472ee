#!/usr/bin/env python3
"""test_cli.py - the ctest emu_cli: `armo score` end to end on the emulated
CUDA path (armo_emu --device cuda: the CLI, scheduler and CUDA backend host
code with its kernels run on the CPU emulator, bf16 activations) against the
fp32 CPU backend (armo --device cpu, the oracle), record by record.

What it checks, per model (tiny-armorm, tiny-armorm-sharded: ArmoRM heads;
tiny-rm-llama3: single head) and per input (a generated file of every record
kind `armo score --help` lists, with bad records mixed in, and
examples/conversations.jsonl as a whole), in four settings: prompt-prefix
sharing on (default) and off (--no-share-prefix), each with the default token
budget and with a small one (--max-batch-tokens = --max-length = max(64, the
longest sequence), so that no batch is raised past the budget for a long
sequence; plus --window 4) so that records and shared groups are split over
several batches and windows:
  - same line count, line order, raw id text, key sets, exit status, token
    counts exactly; the same error lines (presence and text: errors come from
    host code before any backend);
  - ArmoRM: per sequence |score - score_cpu| <= 5e-2 * |rewards_cpu| *
    |coefficients_cpu| (Cauchy-Schwarz: score = rewards . coefficients), and
    relative L2 error of rewards, gating and coefficients <= 5e-2;
    single head: |score - score_cpu| <= 5e-2 * RMS of the run's CPU scores.
    These are the bf16-vs-fp32 bounds of tests/cuda/test_engine.c (see its
    header): a layout, row or position bug moves results by O(1) of the scale;
  - pairs: margin within the sum of both sides' score tolerances, preferred
    equal unless |margin_cpu| is inside that tolerance (then counted as
    skipped), each explanation term against the CPU's own c*r difference and
    the chosen objectives a top-K of the CPU's up to tolerance; best-of-N:
    ranking consistent with the CPU scores up to tolerance, best equal unless
    the CPU's top two are within tolerance (skipped, counted);
  - the emulated outputs with sharing on against sharing off (same bounds,
    scales from the CPU), and the CPU's own on/off (1e-4 of the scales);
  - data x tensor parallel (tiny-armorm, small budget): armo_emu on 4
    emulated devices (ARMO_EMU_DEVICES=4) as --devices 0,1,2,3 --tp 2 (2
    workers, each a TP group of 2 over the fake NCCL) against the CPU with
    --workers 2 --tp 2 (same bounds), and that CPU run against the plain
    one-worker unsharded CPU run (1e-4).
One line per comparison with the worst errors; on failure the record line,
id, field and values, and the exact command lines.  Small records (a few
dozen in all): armo_emu runs under AddressSanitizer, ~100x slower than the
CPU backend; two processes at a time, one thread each.  Everything written
goes under --work; nothing in the repository; no network.
"""
import argparse
import concurrent.futures
import json
import math
import os
import re
import shlex
import subprocess
import sys
import time

TOL = 5e-2        # bf16 vs fp32: score (of its scale) and vector relative L2
SELF_TOL = 1e-4   # CPU sharing on vs off (the README promises ~1e-6)
SMALL_BUDGET = 64
VECS = ("rewards", "gating", "coefficients")

# (record or raw line, which models must refuse it: None, "all" or "armorm")
PROMPT_LONG = "Summarise in one line why the sky looks blue on a clear day."
RECORDS = [
    ({"id": "msg", "messages": [{"role": "user", "content": "What is 2+2?"},
                                {"role": "assistant", "content": "It is 4."}]}, None),
    ({"id": "msg-multi", "messages": [
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "Seven."},
        {"role": "user", "content": "Another?"},
        {"role": "assistant", "content": "Eleven."}]}, None),
    ({"id": "pr", "prompt": "Write a short greeting.", "response": "Hello, and welcome!"}, None),
    ({"id": "pr-unicode", "prompt": "Ça va? 日本語で答えて。",
      "response": "  はい、元気です 🙂  "}, None),
    ({"id": "pair-prompt", "prompt": "How do I reverse a list in Python?",
      "chosen": "Use xs[::-1] or xs.reverse().", "rejected": "You cannot."}, None),
    ({"id": "pair-msgs", "messages": [{"role": "system", "content": "Be kind."},
                                      {"role": "user", "content": "I failed my exam."}],
      "chosen": "Sorry to hear that; you can retake it.", "rejected": "Too bad."}, None),
    ({"id": "pair-multi", "messages": [{"role": "user", "content": "Hi"},
                                       {"role": "assistant", "content": "Hello!"},
                                       {"role": "user", "content": "Tell a joke."}],
      "chosen": "Why did the chicken cross the road?", "rejected": "No."}, None),
    ({"id": "pair-tie", "prompt": "Say hi.", "chosen": "Hi!", "rejected": "Hi!"}, None),
    ({"id": "pair-prefix", "prompt": "Is the Earth round?", "chosen": "Yes, roughly.",
      "rejected": "Yes"}, None),
    ({"id": "pair-empty", "prompt": "Say something.", "chosen": "", "rejected": "Okay."}, None),
    # shared unit of 76 tokens > the small budget 64, expanded 102 <= 2*64:
    # the CUDA backend refuses it as one batch and the scheduler scores it unshared
    ({"id": "pair-budget", "prompt": PROMPT_LONG,
      "chosen": "Air molecules scatter short blue wavelengths of sunlight far more than red "
                "ones, so blue light reaches us from all over the sky.",
      "rejected": "Because the sky reflects the colour of the oceans, which cover most of the "
                  "planet's surface, as everyone knows."}, None),
    ({"id": "bon", "prompt": "Count to three.",
      "responses": ["1, 2, 3.", "One two three", "3 2 1", "I can't."]}, None),
    ({"id": "bon-msgs", "messages": [{"role": "system", "content": "Be terse."},
                                     {"role": "user", "content": "Capital of France?"}],
      "responses": ["Paris.", "Lyon.", "It is Paris, of course."]}, None),
    ({"id": "bon-dup", "prompt": "Pick a colour.",
      "responses": ["Blue.", "Blue.", "Green, probably."]}, None),
    ({"id": "bon-prefix", "prompt": "Is water wet?", "responses": ["Yes", "Yes, it is.", "Yes"]},
     None),
    ({"id": "bon-one", "prompt": "One?", "responses": ["Just one."]}, None),
    ({"id": "ids", "input_ids": [128000, 128006, 882, 128007, 271, 9906, 0, 128009, 128006,
                                 78191, 128007, 271, 13347, 1070, 0, 128009]}, None),
    ({"id": "ids-pad", "input_ids": [128000, 128006, 882, 128007, 271, 13347, 128009, 128006,
                                     78191, 128007, 271, 9906, 128009, 128256, 5, 6]}, None),
    ({"id": "ids-short", "input_ids": [128000, 9906]}, "armorm"),
    ({"id": 7, "prompt": "Numeric id?", "response": "Yes."}, None),
    ('{"id": 1.50, "prompt": "Float id?", "response": "Sure."}', None),
    ({"id": {"k": [1, None]}, "prompt": "Object id?", "response": "Fine."}, None),
    ({"prompt": "No id here.", "response": "Right."}, None),
    ("", None),  # a blank line: skipped, no output line
    ('{"id": "bad-json", "prompt": "x"', "all"),
    ({"id": "bad-no-response", "prompt": "x"}, "all"),
    ({"id": "bad-empty-messages", "messages": []}, "all"),
    ({"id": "bad-role", "messages": [{"role": "robot", "content": "x"},
                                     {"role": "assistant", "content": "y"}]}, "all"),
    ({"id": "bad-no-content", "messages": [{"role": "user"},
                                           {"role": "assistant", "content": "y"}]}, "all"),
    ({"id": "bad-no-assistant", "messages": [{"role": "user", "content": "Hello?"}]}, "armorm"),
    ({"id": "bad-half-pair", "prompt": "x", "chosen": "y"}, "all"),
    ({"id": "bad-no-responses", "prompt": "x", "responses": []}, "all"),
    ({"id": "bad-ids", "input_ids": [128000, "x"]}, "all"),
    ({"id": "bad-vocab", "input_ids": [128000, 999999999]}, "all"),
    ("[1, 2]", "all"),
]


class Fail(Exception):
    pass


def isnum(x):
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def norm(v):
    return math.sqrt(sum(x * x for x in v))


def raw_id(line):
    """The id's JSON text exactly as written on an output line (None if absent)."""
    m = re.match(r'\{"id":', line)
    if not m:
        return None
    _, end = json.JSONDecoder().raw_decode(line, m.end())
    return line[m.end():end]


class Run:
    def __init__(self, exe, model, inp, out, extra, dev, threads=1, env=None):
        self.cmd = [exe, "score", "--model", model, "--device", dev, "--input", inp,
                    "--output", out, "--threads", str(threads)] + extra
        self.env = dict(os.environ, **env) if env else None
        self.out = out
        self.rc = None
        self.stderr = ""
        self.lines = []
        self.recs = []
        self.seconds = 0.0

    def cmdline(self):
        return " ".join(shlex.quote(c) for c in self.cmd)

    def go(self):
        t = time.time()
        try:
            p = subprocess.run(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               timeout=600, env=self.env)
            self.rc, self.stderr = p.returncode, p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            self.rc, self.stderr = "timeout", "timed out after 600 s"
        self.seconds = time.time() - t
        if os.path.exists(self.out):
            with open(self.out, encoding="utf-8", errors="replace") as f:
                self.lines = f.read().splitlines()
        return self

    def parse(self):
        self.recs = []
        for i, line in enumerate(self.lines):
            try:
                self.recs.append(json.loads(line))
            except ValueError as ex:
                raise Fail("%s: output line %d is not JSON (%s): %.200s" % (self.out, i + 1, ex, line))

    def shared_tokens(self):
        m = re.search(r"prompt-prefix sharing ran (\d+) of the (\d+) tokens", self.stderr)
        return (int(m.group(1)), int(m.group(2))) if m else None

    def budget(self):
        m = re.search(r"batches of up to (\d+) tokens", self.stderr)
        return int(m.group(1)) if m else None


class Worst:
    """The largest errors seen in one comparison (value, where)."""
    def __init__(self):
        self.v = {}
        self.skipped = []

    def see(self, key, value, where):
        if key not in self.v or value > self.v[key][0]:
            self.v[key] = (value, where)

    def text(self):
        parts = []
        for key in ("score", "margin", "rewards", "gating", "coefficients", "scores",
                    "explanation"):
            if key in self.v:
                parts.append("%s %.2e" % (key, self.v[key][0]))
        if self.skipped:
            parts.append("near-tie, not compared: %s" % " ".join(self.skipped))
        return ", ".join(parts) if parts else "no scored records"


class Compare:
    """Compares run a (under test) with run b (reference); scales from cpu."""
    def __init__(self, a, b, cpu, tol, name, arch):
        self.a, self.b, self.cpu, self.tol, self.name, self.arch = a, b, cpu, tol, name, arch
        self.worst = Worst()
        self.rms = None

    def fail(self, where, msg):
        raise Fail("%s: %s" % (where, msg))

    @staticmethod
    def units_of(rec):
        if "chosen" in rec and isinstance(rec.get("chosen"), dict):
            return [("chosen", rec["chosen"]), ("rejected", rec["rejected"])]
        if "responses" in rec:
            return [("responses[%d]" % i, u) for i, u in enumerate(rec["responses"])]
        if "error" in rec:
            return []
        return [("", rec)]

    def scale(self, c):
        if self.arch == "armorm":
            return norm(list(c["rewards"].values())) * norm(list(c["coefficients"].values()))
        return self.rms

    def check_finite(self, where, x):
        if isinstance(x, dict):
            for k, v in x.items():
                self.check_finite(where + "." + k, v)
        elif isinstance(x, list):
            for i, v in enumerate(x):
                self.check_finite("%s[%d]" % (where, i), v)
        elif isnum(x) and not math.isfinite(x):
            self.fail(where, "value %r is not finite" % x)

    def unit(self, where, u, r, c):
        """One scored sequence u against reference r, with CPU c for scales."""
        if sorted(u) != sorted(r):
            self.fail(where, "keys %s, reference %s" % (sorted(u), sorted(r)))
        if u["tokens"] != r["tokens"]:
            self.fail(where + ".tokens", "%r, reference %r" % (u["tokens"], r["tokens"]))
        s = self.scale(c)
        tol = self.tol * s
        d = abs(u["score"] - r["score"])
        self.worst.see("score", d / s if s > 0 else d, where)
        if not d <= tol:
            self.fail(where + ".score", "%.9g, reference %.9g: |diff| %.3g > %.3g (= %g x scale %.4g)"
                      % (u["score"], r["score"], d, tol, self.tol, s))
        for k in VECS:
            if k not in r:
                continue
            if list(u[k]) != list(r[k]):
                self.fail(where + "." + k, "objectives %s, reference %s" % (list(u[k]), list(r[k])))
            uv, rv, cv = list(u[k].values()), list(r[k].values()), list(c[k].values())
            den = norm(cv)
            e = norm([x - y for x, y in zip(uv, rv)]) / (den if den > 0 else 1.0)
            self.worst.see(k, e, where)
            if not e <= self.tol:
                i = max(range(len(uv)), key=lambda j: abs(uv[j] - rv[j]))
                self.fail(where + "." + k, "relative L2 error %.3g > %g (largest at %s: %.9g, "
                          "reference %.9g)" % (e, self.tol, list(r[k])[i], uv[i], rv[i]))
        if "coefficients" in u:  # the run's own score = rewards . coefficients (fp32 sum)
            dot = sum(u["rewards"][k] * u["coefficients"][k] for k in u["rewards"])
            if not abs(dot - u["score"]) <= 1e-5 * s + 1e-7:
                self.fail(where + ".score", "%.9g is not its own rewards . coefficients %.9g"
                          % (u["score"], dot))
        if "scores" in r:  # several labels
            for i, (x, y) in enumerate(zip(u["scores"], r["scores"])):
                e = abs(x - y) / (s if s > 0 else 1.0)
                self.worst.see("scores", e, where)
                if not e <= self.tol:
                    self.fail("%s.scores[%d]" % (where, i), "%.9g, reference %.9g" % (x, y))
        return tol

    def pair(self, where, a, b, c, tol_ch, tol_rej):
        tol = tol_ch + tol_rej  # the bound on the margin's error, also the near-tie bound
        ch, rej, m = a["chosen"]["score"], a["rejected"]["score"], a["margin"]
        if not abs(m - (ch - rej)) <= 1e-6 * (abs(ch) + abs(rej)) + 1e-8:
            self.fail(where + ".margin", "%.9g is not its own chosen - rejected (%.9g - %.9g)"
                      % (m, ch, rej))
        if m != 0 and a["preferred"] != ("chosen" if m > 0 else "rejected"):
            self.fail(where + ".preferred", "%r with its own margin %.9g" % (a["preferred"], m))
        d = abs(a["margin"] - b["margin"])
        s = d / tol * self.tol if tol > 0 else d
        self.worst.see("margin", s, where)
        if not d <= tol:
            self.fail(where + ".margin", "%.9g, reference %.9g: |diff| %.3g > %.3g"
                      % (a["margin"], b["margin"], d, tol))
        near = min(abs(b["margin"]), abs(c["margin"])) < tol
        if near:
            self.worst.skipped.append("%s.preferred" % self.rec_id)
        elif a["preferred"] != b["preferred"]:
            self.fail(where + ".preferred", "%r, reference %r (margins %.9g, %.9g; tolerance %.3g)"
                      % (a["preferred"], b["preferred"], a["margin"], b["margin"], tol))
        if "explanation" not in b:
            return
        ea, eb = a["explanation"], b["explanation"]
        if len(ea) != len(eb):
            self.fail(where + ".explanation", "%d terms, reference %d" % (len(ea), len(eb)))
        cc, cr = c["chosen"], c["rejected"]
        contrib = {k: cc["coefficients"][k] * cc["rewards"][k] - cr["coefficients"][k] * cr["rewards"][k]
                   for k in cc["rewards"]}
        rtol_ch = self.tol * norm(list(cc["rewards"].values()))
        rtol_rej = self.tol * norm(list(cr["rewards"].values()))
        chosen_objs = set()
        for i, t in enumerate(ea):
            if sorted(t) != sorted(eb[i]):
                self.fail("%s.explanation[%d]" % (where, i), "keys %s, reference %s"
                          % (sorted(t), sorted(eb[i])))
            k = t["objective"]
            if k not in contrib:
                self.fail("%s.explanation[%d]" % (where, i), "unknown objective %r" % k)
            chosen_objs.add(k)
            d = abs(t["contribution"] - contrib[k])
            self.worst.see("explanation", d / tol * self.tol if tol > 0 else d, where)
            if not d <= tol:
                self.fail("%s.explanation[%d].contribution" % (where, i),
                          "%s: %.9g, CPU c*r difference %.9g: |diff| %.3g > %.3g"
                          % (k, t["contribution"], contrib[k], d, tol))
            for side, rt, cu in (("chosen_reward", rtol_ch, cc), ("rejected_reward", rtol_rej, cr)):
                if not abs(t[side] - cu["rewards"][k]) <= rt:
                    self.fail("%s.explanation[%d].%s" % (where, i, side), "%s: %.9g, CPU reward %.9g"
                              % (k, t[side], cu["rewards"][k]))
        if chosen_objs:  # a top-K by |contribution| of the CPU's, up to tolerance
            low = min(abs(contrib[k]) for k in chosen_objs)
            left = [abs(v) for k, v in contrib.items() if k not in chosen_objs]
            if left and max(left) > low + tol:
                self.fail(where + ".explanation", "objectives %s are not the top %d: an objective "
                          "left out moves the margin by %.9g (CPU), a listed one by %.9g"
                          % (sorted(chosen_objs), len(chosen_objs), max(left), low))

    def best_of_n(self, where, a, b, c, tols):
        n = len(b["responses"])
        if sorted(a["ranking"]) != list(range(n)):
            self.fail(where + ".ranking", "%r is not a permutation of 0..%d" % (a["ranking"], n - 1))
        if a["best"] != a["ranking"][0]:
            self.fail(where + ".best", "%r is not ranking[0] %r" % (a["best"], a["ranking"][0]))
        cs = [u["score"] for u in c["responses"]]
        rk = a["ranking"]
        own = [a["responses"][i]["score"] for i in rk]
        if any(x < y for x, y in zip(own, own[1:])):
            self.fail(where + ".ranking", "%r does not sort its own scores %r"
                      % (rk, [u["score"] for u in a["responses"]]))
        for i in range(n):
            for j in range(i + 1, n):
                x, y = rk[i], rk[j]
                if cs[x] < cs[y] - (tols[x] + tols[y]):
                    self.fail(where + ".ranking", "%r ranks response %d (CPU score %.9g) above %d "
                              "(CPU score %.9g), reference ranking %r" % (rk, x, cs[x], y, cs[y],
                                                                          b["ranking"]))
        top = sorted(range(n), key=lambda i: -cs[i])
        if n >= 2 and cs[top[0]] - cs[top[1]] < tols[top[0]] + tols[top[1]]:
            self.worst.skipped.append("%s.best" % self.rec_id)
        elif a["best"] != b["best"]:
            self.fail(where + ".best", "%r, reference %r (CPU scores %r)" % (a["best"], b["best"], cs))

    def run(self):
        a, b, c = self.a, self.b, self.cpu
        if a.rc != b.rc:
            self.fail("exit status", "%r, reference %r" % (a.rc, b.rc))
        want_rc = 1 if any("error" in r for r in a.recs) else 0
        if a.rc != want_rc:
            self.fail("exit status", "%r with %s error lines" % (a.rc, "some" if want_rc else "no"))
        if len(a.lines) != len(b.lines):
            self.fail("output", "%d lines, reference %d" % (len(a.lines), len(b.lines)))
        if self.arch == "single":
            all_scores = [u["score"] for rec in c.recs for _, u in self.units_of(rec)]
            self.rms = math.sqrt(sum(x * x for x in all_scores) / len(all_scores)) if all_scores else 1.0
        for n, (la, ra, rb, rc) in enumerate(zip(a.lines, a.recs, b.recs, c.recs)):
            ida, idb = raw_id(la), raw_id(b.lines[n])
            where = "line %d (id %s)" % (n + 1, ida if ida is not None else "absent")
            self.rec_id = ida.strip('"') if ida is not None else "line%d" % (n + 1)
            if ida != idb:
                self.fail(where, "id %s, reference id %s" % (ida, idb))
            if ("error" in ra) != ("error" in rb):
                self.fail(where, "%s, reference %s" % (
                    "error %r" % ra["error"] if "error" in ra else "scored",
                    "error %r" % rb["error"] if "error" in rb else "scored"))
            if "error" in rb:
                if ra["error"] != rb["error"]:
                    self.fail(where + ".error", "%r, reference %r" % (ra["error"], rb["error"]))
                continue
            if sorted(ra) != sorted(rb):
                self.fail(where, "keys %s, reference %s" % (sorted(ra), sorted(rb)))
            self.check_finite(where, ra)
            ua, ub, uc = self.units_of(ra), self.units_of(rb), self.units_of(rc)
            if len(ua) != len(ub):
                self.fail(where, "%d sequences, reference %d" % (len(ua), len(ub)))
            tols = [self.unit("%s%s%s" % (where, "." if k else "", k), x, y, z)
                    for (k, x), (_, y), (_, z) in zip(ua, ub, uc)]
            if "margin" in rb:
                self.pair(where, ra, rb, rc, tols[0], tols[1])
            if "ranking" in rb:
                self.best_of_n(where, ra, rb, rc, tols)
        return self.worst


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--armo", required=True)
    ap.add_argument("--armo-emu", required=True)
    ap.add_argument("--models", required=True)
    ap.add_argument("--examples", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    t0 = time.time()
    os.makedirs(args.work, exist_ok=True)
    for f in os.listdir(args.work):  # outputs of an earlier run must not be read
        if f.endswith((".jsonl", ".err")):
            os.remove(os.path.join(args.work, f))
    rec_path = os.path.join(args.work, "records.jsonl")
    with open(rec_path, "w", encoding="utf-8") as f:
        for r, _ in RECORDS:
            f.write((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n")
    inputs = [("records", rec_path), ("examples", os.path.join(args.examples, "conversations.jsonl"))]
    models = [("tiny-armorm", "armorm"), ("tiny-armorm-sharded", "armorm"), ("tiny-rm-llama3", "single")]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs))

    def mk(exe, dev, model, iname, ipath, setting, extra, threads=1, env=None):
        out = os.path.join(args.work, "%s.%s.%s.%s.jsonl" % (model, iname, setting, dev == "cuda" and "emu" or "cpu"))
        return Run(exe, os.path.join(args.models, model), ipath, out, extra, dev, threads, env)

    # pass 1: the CPU with its defaults, for the longest sequence of each input
    probes = {}
    for model, _ in models:
        for iname, ipath in inputs:
            probes[(model, iname)] = mk(args.armo, "cpu", model, iname, ipath, "probe", [])
    list(pool.map(Run.go, probes.values()))
    budgets = {}
    for key, r in probes.items():
        if r.rc not in (0, 1):
            print("FAIL: %s (%s) exited %r:\n%s\ncommand: %s" % (key, "probe", r.rc, r.stderr[-2000:], r.cmdline()))
            return 1
        r.parse()
        longest = max([u["tokens"] for rec in r.recs for u in
                       ([rec["chosen"], rec["rejected"]] if isinstance(rec.get("chosen"), dict)
                        else rec.get("responses", [rec]))
                       if "tokens" in u] or [1])
        budgets[key] = max(SMALL_BUDGET, longest)

    # pass 2: every setting on both backends, emulated runs first (the slow ones)
    settings = ["share", "no-share", "small-share", "small-no-share"]
    runs = {}
    for model, _ in models:
        for iname, ipath in inputs:
            B = str(budgets[(model, iname)])
            for s in settings:
                extra = (["--max-batch-tokens", B, "--max-length", B, "--window", "4"]
                         if s.startswith("small") else [])
                if s.endswith("no-share"):
                    extra.append("--no-share-prefix")
                runs[(model, iname, s, "emu")] = mk(args.armo_emu, "cuda", model, iname, ipath, s, extra)
                runs[(model, iname, s, "cpu")] = mk(args.armo, "cpu", model, iname, ipath, s, extra)
            if model == "tiny-armorm":  # data x tensor parallel: 2 workers x TP 2
                small = ["--max-batch-tokens", B, "--max-length", B, "--window", "4", "--tp", "2"]
                runs[(model, iname, "dp-tp", "emu")] = mk(
                    args.armo_emu, "cuda", model, iname, ipath, "dp-tp",
                    small + ["--devices", "0,1,2,3"], env={"ARMO_EMU_DEVICES": "4"})
                runs[(model, iname, "dp-tp", "cpu")] = mk(
                    args.armo, "cpu", model, iname, ipath, "dp-tp", small + ["--workers", "2"],
                    threads=2)
    order = sorted(runs, key=lambda k: k[3] != "emu")
    list(pool.map(Run.go, [runs[k] for k in order]))
    pool.shutdown()

    failed = []
    report = []

    def check(label, a, b, cpu, tol, arch, extra_checks=None):
        try:
            for r in (a, b, cpu):
                if r.rc not in (0, 1):
                    raise Fail("%s: exit status %r (expected 0 or 1); stderr:\n%s"
                               % (r.cmdline(), r.rc, r.stderr[-3000:]))
                if re.search(r"runtime error:|ERROR: \w+Sanitizer|armo emu:", r.stderr):
                    raise Fail("%s: sanitizer or emulator report on stderr:\n%s"
                               % (r.cmdline(), r.stderr[-3000:]))
                r.parse()
            if extra_checks:
                extra_checks()
            w = Compare(a, b, cpu, tol, label, arch).run()
            line = "ok   %-58s %s" % (label, w.text())
            print(line)
            report.append(line)
        except Fail as ex:
            print("FAIL %s\n  %s\n  commands:\n    %s\n    %s%s" % (
                label, ex, a.cmdline(), b.cmdline(),
                "" if cpu is b else "\n    " + cpu.cmdline()))
            failed.append(label)
        except (KeyError, TypeError, IndexError, ValueError) as ex:
            print("FAIL %s\n  malformed output (%s: %s)\n  commands:\n    %s\n    %s" % (
                label, type(ex).__name__, ex, a.cmdline(), b.cmdline()))
            failed.append(label)

    for model, arch in models:
        for iname, _ in inputs:
            B = budgets[(model, iname)]
            for s in settings:
                emu, cpu = runs[(model, iname, s, "emu")], runs[(model, iname, s, "cpu")]

                def extra(emu=emu, cpu=cpu, s=s, B=B, iname=iname):
                    # the setting took effect, and the CPU output is what the records intend
                    for r in (emu, cpu):
                        want = B if s.startswith("small") else None
                        if want and r.budget() != want:
                            raise Fail("%s: stderr says batches of up to %r tokens, expected %d"
                                       % (r.cmdline(), r.budget(), want))
                        st = r.shared_tokens()
                        if st and cpu.shared_tokens() and st[1] != cpu.shared_tokens()[1]:
                            raise Fail("%s: %d tokens scored, the CPU %d" % (r.cmdline(), st[1],
                                                                           cpu.shared_tokens()[1]))
                        if s.endswith("no-share") and st:
                            raise Fail("%s: prompt-prefix sharing ran with --no-share-prefix" % r.cmdline())
                        if not s.endswith("no-share") and not st:
                            raise Fail("%s: no prompt-prefix sharing reported" % r.cmdline())
                    if s.startswith("small"):
                        total = sum(u["tokens"] for rec in cpu.recs for _, u in Compare.units_of(rec))
                        if total <= 2 * B:
                            raise Fail("%d tokens in all: not split into 3+ batches of %d" % (total, B))
                    if iname == "records":
                        data = [(r, e) for r, e in RECORDS if r != ""]  # blank lines: no output
                        for n, ((rec, e), line) in enumerate(zip(data, cpu.recs)):
                            expect_err = e == "all" or (e == "armorm" and arch == "armorm")
                            if expect_err != ("error" in line):
                                raise Fail("test data: CPU output line %d %s, expected %s: %s"
                                           % (n + 1, "is an error" if "error" in line else "scored",
                                              "an error" if expect_err else "a score",
                                              json.dumps(line)[:300]))
                        if len(data) != len(cpu.recs):
                            raise Fail("CPU: %d output lines for %d records" % (len(cpu.recs), len(data)))

                st_e, st_c = emu.shared_tokens(), cpu.shared_tokens()
                note = ""
                if st_e:
                    note = " [sharing ran %d/%d tokens emu, %d/%d cpu]" % (st_e + st_c)
                check("%s %s %s: emu vs cpu%s" % (model, iname, s, note), emu, cpu, cpu, TOL, arch, extra)
            for small in ("", "small-"):
                on, off = small + "share", small + "no-share"
                check("%s %s %s: emu share on vs off" % (model, iname, small + "budget" if small else "default"),
                      runs[(model, iname, on, "emu")], runs[(model, iname, off, "emu")],
                      runs[(model, iname, on, "cpu")], TOL, arch)
                check("%s %s %s: cpu share on vs off" % (model, iname, small + "budget" if small else "default"),
                      runs[(model, iname, on, "cpu")], runs[(model, iname, off, "cpu")],
                      runs[(model, iname, on, "cpu")], SELF_TOL, arch)

    for iname, _ in inputs:  # data x tensor parallel
        emu, cpu = runs[("tiny-armorm", iname, "dp-tp", "emu")], runs[("tiny-armorm", iname, "dp-tp", "cpu")]

        def workers(emu=emu, cpu=cpu):
            for r, want in ((emu, "worker 1 on TP group of 2"), (cpu, "worker 1 on CPU")):
                if want not in r.stderr:
                    raise Fail("%s: stderr lacks %r:\n%s" % (r.cmdline(), want, r.stderr[-2000:]))

        check("tiny-armorm %s dp-tp: emu 4 devices as 2 workers x TP 2 vs cpu" % iname,
              emu, cpu, cpu, TOL, "armorm", workers)
        plain = runs[("tiny-armorm", iname, "small-share", "cpu")]
        check("tiny-armorm %s dp-tp: cpu 2 workers x TP 2 vs cpu plain" % iname,
              cpu, plain, plain, SELF_TOL, "armorm")

    emu_s = sum(r.seconds for k, r in runs.items() if k[3] == "emu")
    print("%d runs (%.0f s of armo_emu), %.0f s wall" % (len(runs) + len(probes), emu_s, time.time() - t0))
    if failed:
        print("FAILED: %d of %d comparisons:\n  %s" % (len(failed), len(failed) + len(report),
                                                       "\n  ".join(failed)))
        return 1
    print("PASS: %d comparisons" % len(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
