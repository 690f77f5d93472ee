#!/usr/bin/env python3
"""bench_tokenizer.py — armo vs tiktoken vs HF tokenizers, single thread, same corpus, same run.

  /work/venv/bin/python profiling/bench_tokenizer.py [--bench build/bench_tokenizer]
        [--model build/models/_data/llama3-tokenizer]
        [--corpus tests/data/tokenizer/corpus.jsonl.xz | --stdlib-mb 4] [--passes 5] [--skip-long]

tiktoken gets the Llama-3 pattern and ranks built from tokenizer.json: rank =
token id for the 128 000 byte-level tokens, whose bytes come from the GPT-2
byte<->unicode map; the 256 added tokens are its special tokens.  HF
`tokenizers` runs Tokenizer.encode per text (one thread: RAYON_NUM_THREADS=1,
no batch API).  armo runs profiling/bench_tokenizer.c as a subprocess.  Every
tool encodes each text `passes` times with special tokens recognised; the
best pass counts (armo's first pass, whose piece cache starts empty, is shown
too: tiktoken has no such cache, HF tokenizers has one).  Prints a table (tokens/s, MB/s, ratio to tiktoken) and
whether the three tools' ids agree.
"""
import argparse
import json
import lzma
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def load_texts(path, skip_long):
    opener = lzma.open if path.endswith(".xz") else open
    out = []
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if skip_long and r.get("name", "").startswith("long"):
                continue
            out.append(r["text"])
    return out


def best_of(passes, fn, texts):
    best, ntok = 1e30, 0
    for _ in range(passes):
        t0 = time.perf_counter()
        ntok = 0
        for t in texts:
            ntok += len(fn(t))
        best = min(best, time.perf_counter() - t0)
    return best, ntok


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bench", default=os.path.join(root, "build", "bench_tokenizer"))
    ap.add_argument("--model", default=os.path.join(root, "build", "models", "_data",
                                                    "llama3-tokenizer"))
    ap.add_argument("--corpus", default=os.path.join(root, "tests", "data", "tokenizer",
                                                     "corpus.jsonl.xz"))
    ap.add_argument("--passes", type=int, default=5)
    ap.add_argument("--skip-long", action="store_true")
    ap.add_argument("--stdlib-mb", type=float, default=0,
                    help="instead of --corpus: this many MB of Python standard-library source "
                         "files (sorted, in 8 KB texts), a larger corpus of real code and prose "
                         "written to a temporary JSONL")
    args = ap.parse_args()
    if args.stdlib_mb > 0:
        import tempfile
        libdir = os.path.dirname(os.__file__)
        paths = sorted(os.path.join(d, f) for d, _, fs in os.walk(libdir) for f in fs
                       if f.endswith(".py") and "site-packages" not in d)
        budget, n = int(args.stdlib_mb * 1e6), 0
        tmp = tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8")
        for path in paths:
            try:
                src = open(path, encoding="utf-8").read()
            except (UnicodeDecodeError, OSError):
                continue
            for a in range(0, len(src), 8192):
                chunk = src[a:a + 8192]
                tmp.write(json.dumps({"name": "stdlib", "text": chunk}) + "\n")
                n += len(chunk.encode("utf-8"))
            if n >= budget:
                break
        tmp.close()
        args.corpus = tmp.name

    import tiktoken
    import tokenizers

    texts = load_texts(args.corpus, args.skip_long)
    nbytes = sum(len(t.encode("utf-8")) for t in texts)
    tj = json.load(open(os.path.join(args.model, "tokenizer.json"), encoding="utf-8"))
    u2b = {u: b for b, u in bytes_to_unicode().items()}
    ranks = {bytes(u2b[c] for c in tok): i for tok, i in tj["model"]["vocab"].items()}
    special = {a["content"]: a["id"] for a in tj["added_tokens"]}
    pattern = tj["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    enc = tiktoken.Encoding("llama3-from-tokenizer-json", pat_str=pattern, mergeable_ranks=ranks,
                            special_tokens=special)
    hf = tokenizers.Tokenizer.from_file(os.path.join(args.model, "tokenizer.json"))

    def tk(t):
        return enc.encode(t, allowed_special="all")

    def hfe(t):
        return hf.encode(t, add_special_tokens=False).ids

    disagree_tk = sum(1 for t in texts if tk(t) != hfe(t))

    rows = []
    s, n = best_of(args.passes, tk, texts)
    rows.append(("tiktoken " + tiktoken.__version__, n, s))
    s, n = best_of(args.passes, hfe, texts)
    rows.append(("HF tokenizers " + tokenizers.__version__, n, s))
    cmd = [args.bench, "--model", args.model, "--corpus", args.corpus, "--passes", str(args.passes)]
    if args.skip_long:
        cmd.append("--skip-long")
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    m = re.search(r"armo tokens=(\d+) bytes=(\d+) best_s=([\d.]+)", out)
    if not m:
        sys.exit("could not parse bench_tokenizer output:\n" + out)
    rows.append(("armo", int(m.group(1)), float(m.group(3))))
    cold = re.search(r"pass 0 \(cold cache\): ([\d.]+) s", out)
    if cold:  # armo caches piece -> ids per thread; its first pass starts empty
        rows.append(("armo, pass 0 (cold cache)", int(m.group(1)), float(cold.group(1))))

    tk_rate = rows[0][1] / rows[0][2]
    print(f"corpus: {args.corpus} ({len(texts)} texts, {nbytes} bytes), best of {args.passes} "
          f"passes, one thread")
    print(f"{'tokenizer':<24} {'tokens':>10} {'best s':>9} {'tokens/s':>12} {'MB/s':>7} "
          f"{'vs tiktoken':>11}")
    for name, ntok, sec in rows:
        rate = ntok / sec
        print(f"{name:<24} {ntok:>10} {sec:>9.4f} {rate:>12.0f} {nbytes / sec / 1e6:>7.2f} "
              f"{rate / tk_rate:>10.2f}x")
    print(f"token counts equal: {len(set(r[1] for r in rows)) == 1}; "
          f"texts where tiktoken ids != HF ids: {disagree_tk}")
    if args.stdlib_mb > 0:
        os.unlink(args.corpus)


if __name__ == "__main__":
    main()
