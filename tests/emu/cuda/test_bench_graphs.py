#!/usr/bin/env python3
"""test_bench_graphs.py - the ctest emu_bench_graphs: `armo bench` on the
emulated CUDA path can measure CUDA graphs (issue 20, item 3).

Per-phase timing records cudaEvents between the phases of a forward pass,
which keeps the backend from replaying a captured graph; --no-phase-times
turns the timing off.  Three runs of one small workload (batches under the
graphs' 2048-token limit), each's JSON line read back:
  - ARMO_CUDA_GRAPHS=1 --no-phase-times: no phase times, and timed batches
    replayed from graphs (0 < cuda_graph_replays <= batches: a batch whose
    padded bucket exceeds the activation buffers runs without one);
  - ARMO_CUDA_GRAPHS=1 with phase times: phase times present, 0 replays
    (the timing keeps graphs off, as the bench's note says);
  - no ARMO_CUDA_GRAPHS, --no-phase-times: 0 replays;
and the graph run's score checksum equals the run without graphs within
bf16 noise (the same batches, the same kernels, replayed)."""
import argparse
import json
import os
import subprocess
import sys


def bench(exe, work, name, extra, graphs):
    out = os.path.join(work, name + ".json")
    if os.path.exists(out):
        os.remove(out)
    env = dict(os.environ)
    env.pop("ARMO_CUDA_GRAPHS", None)
    if graphs:
        env["ARMO_CUDA_GRAPHS"] = "1"
    cmd = [exe, "bench", "--device", "cuda", "--hidden", "128", "--layers", "1", "--sequences",
           "6", "--max-batch-tokens", "1024", "--ceiling", "64", "--warmup", "1", "--quiet",
           "--json", out] + extra
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if p.returncode != 0:
        sys.exit("FAIL: %s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    with open(out, encoding="utf-8") as f:
        r = json.loads(f.readline())
    return r, p.stdout, " ".join(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--armo-emu", required=True)
    ap.add_argument("--work", required=True)
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    bad = []
    g, g_out, g_cmd = bench(a.armo_emu, a.work, "graphs", ["--no-phase-times"], True)
    t, t_out, t_cmd = bench(a.armo_emu, a.work, "graphs_timed", [], True)
    n, n_out, n_cmd = bench(a.armo_emu, a.work, "plain", ["--no-phase-times"], False)
    wg, wt, wn = g["workloads"][0], t["workloads"][0], n["workloads"][0]
    if g["phase_times"] is not False or wg["phases"] is not None:
        bad.append("%s: phase times present with --no-phase-times" % g_cmd)
    if not (0 < wg["cuda_graph_replays"] <= wg["batches"]):
        bad.append("%s: %r of %r batches replayed from graphs, expected some"
                   % (g_cmd, wg["cuda_graph_replays"], wg["batches"]))
    if "CUDA graphs: %d of %d batches replayed" % (wg["cuda_graph_replays"], wg["batches"]) not in g_out:
        bad.append("%s: no 'CUDA graphs' line on stdout:\n%s" % (g_cmd, g_out))
    if wt["phases"] is None or wt["cuda_graph_replays"] != 0:
        bad.append("%s: phases %r, %r graph replays: expected phase times and no graphs"
                   % (t_cmd, wt["phases"], wt["cuda_graph_replays"]))
    if "phase timing keeps graphs off" not in t_out:
        bad.append("%s: stdout does not say that phase timing keeps graphs off:\n%s" % (t_cmd, t_out))
    if wn["cuda_graph_replays"] != 0:
        bad.append("%s: %r graph replays without ARMO_CUDA_GRAPHS" % (n_cmd, wn["cuda_graph_replays"]))
    sg, sn = wg["score_sum"], wn["score_sum"]
    if abs(sg - sn) > 1e-2 * (1.0 + abs(sn)):
        bad.append("score checksum with graphs %.6g, without %.6g" % (sg, sn))
    for b in bad:
        print("FAIL: " + b)
    if bad:
        return 1
    print("PASS: %d of %d batches replayed from graphs; score checksum %.6g, without graphs %.6g"
          % (wg["cuda_graph_replays"], wg["batches"], sg, sn))
    return 0


if __name__ == "__main__":
    sys.exit(main())
