#!/usr/bin/env python3
"""serve_load.py — load test and throughput benchmark of `armo serve` (stdlib only).

Starts `armo serve` (or uses --url), then N concurrent keep-alive clients
send mixed requests drawn from a pool of records with unique prompts and
responses of mixed lengths: /score lists of 1-8 records, /get_reward with
1-4 templated queries (OpenRLHF), /classify with 1-4 inputs (vLLM shape).
Every response is checked against `armo score`'s offline output for the same
records (identical numbers); errors, lost and mismatched responses are
counted.  Reports requests/s, records/s, tokens/s, p50 / p99 latency, and
with --offline the server's throughput relative to `armo score` on the same
records (the records of every request, as one JSONL file; its start-up time,
measured on one record, subtracted).

    serve_load.py --armo build/armo --model build/models/tiny-armorm \
                  --clients 64 --requests 10000 --check            # the load test
    serve_load.py ... --clients 1,8,64 --requests 2000 --offline   # the benchmark

Exit status 1 when any request failed or any response did not match."""
import argparse
import http.client
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

WORDS = ("the of and to in is you that it he was for on are as with his they at be this have "
         "from or one had by word but not what all were we when your can said there use an each "
         "which she do how their if will up other about out many then them these so some her "
         "would make like him into time has look two more write go see number no way could "
         "people my than first water been call who oil its now find long down day did get come "
         "made may part reward model score gradient policy token batch").split()


def text(rng, n):
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def template(prompt, response):
    """Llama-3-Instruct, as DESIGN §3 defines it."""
    return ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n%s<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n%s<|eot_id|>" %
            (prompt.strip(), response.strip()))


def make_pool(n, seed, max_words):
    rng = random.Random(seed)
    pool = []
    sizes = [w for w in (2, 4, 8, 16, 32, 64, 128, 300) if w <= max_words] or [max_words]
    for i in range(n):
        # mixed sizes, from a few words to max_words
        plen = rng.choice(sizes)
        rlen = rng.choice(sizes)
        pool.append({"id": "r%d" % i, "prompt": "(%d) %s" % (i, text(rng, plen)),
                     "response": text(rng, rlen)})
    return pool


def offline_scores(armo, model, records, threads):
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False) as f:
        for r in records:
            f.write(json.dumps(r) + "\n")
        path = f.name
    try:
        t0 = time.time()
        out = subprocess.run([armo, "score", "--model", model, "--device", "cpu", "--quiet",
                              "--threads", str(threads), "--input", path],
                             capture_output=True, text=True, check=True)
        return [json.loads(l) for l in out.stdout.splitlines()], time.time() - t0
    finally:
        os.unlink(path)


def make_requests(pool, n, seed):
    """n requests: (path, body, [pool indices])."""
    rng = random.Random(seed + 1)
    reqs = []
    for _ in range(n):
        kind = rng.random()
        if kind < 0.4:
            idx = rng.sample(range(len(pool)), rng.randint(1, 8))
            reqs.append(("/score", [pool[i] for i in idx], idx))
        elif kind < 0.8:
            idx = rng.sample(range(len(pool)), rng.randint(1, 4))
            q = [template(pool[i]["prompt"], pool[i]["response"]) for i in idx]
            reqs.append(("/get_reward", {"query": q, "prompts": [""] * len(q),
                                         "labels": [""] * len(q)}, idx))
        else:
            idx = rng.sample(range(len(pool)), rng.randint(1, 4))
            q = [template(pool[i]["prompt"], pool[i]["response"]) for i in idx]
            reqs.append(("/classify", {"model": "m", "input": q}, idx))
    return reqs


def verify(path, out, idx, want):
    if path == "/score":
        return out == [want[i] for i in idx]
    if path == "/get_reward":
        return out.get("rewards") == [want[i]["score"] for i in idx]
    return [d["probs"][0] for d in out.get("data", [])] == [want[i]["score"] for i in idx]


def run_clients(port, reqs, nclients, want, check):
    lat, errors, lock = [], [], threading.Lock()
    nxt = [0]

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        while True:
            with lock:
                k = nxt[0]
                nxt[0] += 1
            if k >= len(reqs):
                break
            path, body, idx = reqs[k]
            data = json.dumps(body).encode()
            t0 = time.perf_counter()
            try:
                c.request("POST", path, body=data, headers={"Content-Type": "application/json"})
                r = c.getresponse()
                raw = r.read()
                dt = time.perf_counter() - t0
                ok = r.status == 200
                if ok and check:
                    ok = verify(path, json.loads(raw), idx, want)
                with lock:
                    lat.append(dt)
                    if not ok:
                        errors.append("%s %d %s" % (path, r.status, raw[:200]))
            except (OSError, http.client.HTTPException) as ex:
                with lock:
                    errors.append("%s: no response: %r" % (path, ex))
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
        c.close()

    threads = [threading.Thread(target=client) for _ in range(nclients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - t0, sorted(lat), errors


def pct(v, p):
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))] if v else float("nan")


def start_server(args):
    cmd = [args.armo, "serve", "--model", args.model, "--device", "cpu", "--port", "0",
           "--threads", str(args.threads), "--max-wait-ms", str(args.max_wait_ms),
           "--max-queue", "65536", "--quiet"] + args.server_arg
    p = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    while True:
        line = p.stderr.readline()
        if not line:
            sys.exit("armo serve did not start")
        m = re.search(r"listening on http://[^:]+:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()
            return p, int(m.group(1))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--armo", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--clients", default="64", help="a count, or a list: 1,8,64")
    ap.add_argument("--requests", type=int, default=10000)
    ap.add_argument("--pool", type=int, default=400, help="distinct records")
    ap.add_argument("--max-words", type=int, default=300,
                    help="longest prompt / response, in words (sizes 2, 4, 8, ... up to it)")
    ap.add_argument("--threads", type=int, default=1, help="CPU-backend threads (both sides)")
    ap.add_argument("--max-wait-ms", type=int, default=5)
    ap.add_argument("--check", action="store_true", help="check every response")
    ap.add_argument("--offline", action="store_true", help="throughput relative to armo score")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--server-arg", action="append", default=[])
    args = ap.parse_args()

    pool = make_pool(args.pool, args.seed, args.max_words)
    want, _ = offline_scores(args.armo, args.model, pool, args.threads)
    reqs = make_requests(pool, args.requests, args.seed)
    nrec = sum(len(r[2]) for r in reqs)
    ntok = sum(want[i]["tokens"] for r in reqs for i in r[2])
    offline_rps = None
    recs = [pool[i] for r in reqs for i in r[2]]

    def offline_run():
        """armo score on the same records, right before a server run (a shared
        machine's load drifts: each ratio is to the adjacent measurement)."""
        _, t_all = offline_scores(args.armo, args.model, recs, args.threads)
        _, t_one = offline_scores(args.armo, args.model, recs[:1], args.threads)
        rps = len(recs) / max(t_all - t_one, 1e-9)
        print("armo score offline: %d records (%d tokens) in %.2f s (%.2f s start-up "
              "subtracted): %.1f records/s, %.0f tokens/s" %
              (len(recs), ntok, t_all - t_one, t_one, rps, ntok / (t_all - t_one)))
        return rps
    p, port = start_server(args)
    failed = 0
    try:
        for n in [int(x) for x in args.clients.split(",")]:
            if args.offline:
                offline_rps = offline_run()
            wall, lat, errors = run_clients(port, reqs, n, want, args.check)
            # every request has a latency (a response) or a "no response" error
            lost = len(reqs) - len(lat) - sum(1 for e in errors if "no response" in e)
            rps = nrec / wall
            print("armo serve, %3d clients: %d requests (%d records, %d tokens) in %.2f s: "
                  "%.1f req/s, %.1f records/s, %.0f tokens/s; latency p50 %.1f ms, p99 %.1f ms; "
                  "%d errors%s%s" %
                  (n, len(reqs), nrec, ntok, wall, len(reqs) / wall, rps, ntok / wall,
                   1e3 * pct(lat, 50), 1e3 * pct(lat, 99), len(errors),
                   " (responses checked against armo score)" if args.check else "",
                   "; %.2fx offline" % (rps / offline_rps) if offline_rps else ""))
            for e in errors[:5]:
                print("  error:", e)
            failed += len(errors) + max(lost, 0)
    finally:
        os.kill(p.pid, signal.SIGTERM)
        rc = p.wait(timeout=120)
        if rc != 0:
            print("armo serve exited %d after SIGTERM" % rc)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
