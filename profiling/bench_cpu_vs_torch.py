#!/usr/bin/env python3
"""bench_cpu_vs_torch.py — armo's CPU backend against Hugging Face transformers
fp32 on the CPU, in the same run, on the same sequences, with the same thread
count (issue 18).

It builds (once; reused from --workdir while its parameters match) an
ArmoRM-shaped checkpoint with random weights in the exact Hugging Face layout:
hidden 1024, 4 layers, 8 query / 2 KV heads of 128, intermediate 3584, the
real vocabulary (128257) and the real ArmoRM head (19 objectives, gating
1024 -> 1024 x 3 -> 19), backbone BF16 and head F32 like the published
checkpoint, plus the Llama-3 tokenizer bundled in tests/data.  It writes 48
deterministic chat conversations (about 21k tokens; system prompts, one to
three turns, 170 to 1296 tokens, 21349 in all) as armo's JSONL.

Then, --repeats times, interleaved (armo, torch, armo, torch, ...: the
machine is shared and noisy, so both sides see the same noise):
  armo   `armo score --device cpu --threads T` on the JSONL, as a user runs it;
         its tokens/s is the one armo prints on its "done:" line (tokenizing
         and scoring, the model load left out), and the process's wall time
         (load included) is shown beside it;
  torch  transformers LlamaModel in fp32 with sdpa attention, torch's threads
         set to T, length-sorted batches of --batch conversations right-padded
         with an attention mask, the two head rows gathered by index and the
         ArmoRM head in plain PyTorch fp32; the ids come from the tokenizer's
         apply_chat_template outside the timing.
Printed: tokens/s per repeat, min and median per side (tokens/s from the
fastest and the median run), the ratio armo / torch of both, tokens per
CPU-second of each side (less sensitive to other load on a shared machine,
though a busy-waiting thread pool counts its spinning), and the largest
score difference between the two sides (they must agree to --tol relative;
the exit status is 1 when they do not).  Tokens are real tokens (padding not
counted) and the two sides must count the same ids per conversation.

Usage (the venv has torch + transformers + safetensors + tokenizers):
    /work/venv/bin/python profiling/bench_cpu_vs_torch.py --armo build/armo
    [--threads 2] [--repeats 3] [--batch 8] [--workdir /tmp/armo-bench-cpu]
Record the result in profiling/RESULTS.md (date, machine, commit, command).
"""
import argparse
import json
import math
import os
import random
import re
import resource
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

VOCAB = 128257
PAD_ID = 128256
BOS_ID = 128000
EOT_ID = 128009
GATING_PATTERN = [128009, 128006, 78191, 128007, 271]
N_CONV = 48
SEED = 18

DIMS = {"hidden": 1024, "layers": 4, "heads": 8, "kv_heads": 2, "head_dim": 128,
        "intermediate": 3584, "objectives": 19, "gating_hidden": 1024, "gating_n_hidden": 3}


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- checkpoint

def config_json(d):
    return {
        "architectures": ["LlamaForRewardModelWithGating"],
        "attention_bias": False, "attention_dropout": 0.0,
        "bos_token_id": BOS_ID, "eos_token_id": EOT_ID,
        "gating_hidden_dim": d["gating_hidden"], "gating_n_hidden": d["gating_n_hidden"],
        "gating_temperature": 10, "head_dim": d["head_dim"], "hidden_act": "silu",
        "hidden_size": d["hidden"], "initializer_range": 0.02,
        "intermediate_size": d["intermediate"], "max_position_embeddings": 8192,
        "mlp_bias": False, "model_type": "llama",
        "num_attention_heads": d["heads"], "num_hidden_layers": d["layers"],
        "num_key_value_heads": d["kv_heads"], "num_objectives": d["objectives"],
        "pad_token_id": PAD_ID, "pretraining_tp": 1, "rms_norm_eps": 1e-05,
        "rope_scaling": None, "rope_theta": 500000.0, "tie_word_embeddings": False,
        "torch_dtype": "float32", "transformers_version": "4.40.2", "use_cache": True,
        "vocab_size": VOCAB,
    }


def random_weights(d):
    """Random weights at scales that keep every sublayer's update O(1)."""
    import torch
    g = torch.Generator().manual_seed(SEED)
    H, hd, I = d["hidden"], d["head_dim"], d["intermediate"]

    def lin(o, i, gain=1.0):
        return torch.randn(o, i, generator=g) * (gain / math.sqrt(i))

    def norm_w():
        return 0.6 + 0.8 * torch.rand(H, generator=g)

    w = {"model.embed_tokens.weight": torch.randn(VOCAB, H, generator=g)}
    for i in range(d["layers"]):
        p = f"model.layers.{i}."
        w[p + "self_attn.q_proj.weight"] = lin(d["heads"] * hd, H, 1.6)
        w[p + "self_attn.k_proj.weight"] = lin(d["kv_heads"] * hd, H, 1.6)
        w[p + "self_attn.v_proj.weight"] = lin(d["kv_heads"] * hd, H)
        w[p + "self_attn.o_proj.weight"] = lin(H, d["heads"] * hd)
        w[p + "mlp.gate_proj.weight"] = lin(I, H, 1.5)
        w[p + "mlp.up_proj.weight"] = lin(I, H, 1.5)
        w[p + "mlp.down_proj.weight"] = lin(H, I)
        w[p + "input_layernorm.weight"] = norm_w()
        w[p + "post_attention_layernorm.weight"] = norm_w()
    w["model.norm.weight"] = norm_w()
    w = {k: v.to(torch.bfloat16).contiguous() for k, v in w.items()}
    K, G = d["objectives"], d["gating_hidden"]
    w["regression_layer.weight"] = torch.randn(K, H, generator=g) / math.sqrt(H)
    dims = [H] + [G] * d["gating_n_hidden"] + [K]
    for i in range(d["gating_n_hidden"] + 1):
        last = i == d["gating_n_hidden"]
        gain = 14.0 if last else math.sqrt(2.0)
        w[f"gating.layers.{i}.weight"] = (torch.randn(dims[i + 1], dims[i], generator=g)
                                          * (gain / math.sqrt(dims[i])))
        w[f"gating.layers.{i}.bias"] = torch.randn(dims[i + 1], generator=g) * (2.0 if last else 0.6)
    w["gating.logit_scale"] = torch.tensor([1.7])
    w["reward_transform_matrix"] = torch.eye(K) + 0.3 * torch.randn(K, K, generator=g)
    return w


def build_checkpoint(mdir):
    """config.json + model.safetensors + the bundled tokenizer; kept while the
    stamp (dims + seed) matches."""
    stamp = json.dumps({"dims": DIMS, "seed": SEED}, sort_keys=True)
    if (mdir / ".stamp").exists() and (mdir / ".stamp").read_text() == stamp:
        return
    from safetensors.torch import save_file
    log(f"bench: writing the checkpoint to {mdir}")
    mdir.mkdir(parents=True, exist_ok=True)
    (mdir / "config.json").write_text(json.dumps(config_json(DIMS), indent=2) + "\n")
    save_file(random_weights(DIMS), str(mdir / "model.safetensors"), metadata={"format": "pt"})
    with tarfile.open(REPO / "tests/data/llama3-tokenizer.tar.xz") as tar:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            f = tar.extractfile(f"llama3-tokenizer/{name}")
            (mdir / name).write_bytes(f.read())
    (mdir / ".stamp").write_text(stamp)


# --------------------------------------------------------------------------- conversations

SYLLABLES = ("ka ri to mo sen da vel or in ta lu pe qua nor es ti bra col men ast "
             "gor fi lan dex um pro sil ver tan ob cre").split()
TOPICS = ["a sorting routine", "the history of bridges", "tax forms", "a garden plan",
          "unit tests", "a travel budget", "protein folding", "a short poem", "SQL joins",
          "the rules of chess", "a bread recipe", "network latency"]


def sentence(rng, n_words):
    words = []
    for _ in range(n_words):
        w = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 3)))
        words.append(w)
    s = " ".join(words).capitalize()
    if rng.random() < 0.15:
        s += f" ({rng.randint(2, 9999)})"
    return s + rng.choice([".", ".", ".", "?", "!"])


def paragraph(rng, n_words):
    out = []
    while n_words > 0:
        k = min(n_words, rng.randint(6, 18))
        out.append(sentence(rng, k))
        n_words -= k
    return " ".join(out)


def conversations(mean_log_words=5.17, sigma=0.5):
    """48 chat conversations, deterministic; their lengths follow a log-normal
    spread like real chat data (a few long ones carry much of the tokens).
    The shapes (turns, words) are drawn first, the words after, so the total
    moves smoothly with mean_log_words."""
    shape_rng, rng = random.Random(SEED), random.Random(SEED + 1)
    shapes = []
    for c in range(N_CONV):
        system = shape_rng.random() < 0.4
        turns = shape_rng.choice([1, 1, 1, 2, 2, 3])
        z = shape_rng.gauss(0.0, sigma)
        fracs = [(shape_rng.uniform(0.2, 0.5), shape_rng.uniform(0.5, 0.8)) for _ in range(turns)]
        shapes.append((system, turns, z, fracs))
    convs = []
    for c, (system, turns, z, fracs) in enumerate(shapes):
        msgs = []
        if system:
            msgs.append({"role": "system", "content": f"You are a careful assistant. Topic: {rng.choice(TOPICS)}."})
        budget = min(1100, max(25, int(math.exp(mean_log_words + z))))  # words of content
        for fu, fa in fracs:
            share = budget // turns
            msgs.append({"role": "user", "content": f"About {rng.choice(TOPICS)}: " +
                         paragraph(rng, max(5, int(share * fu)))})
            msgs.append({"role": "assistant", "content": paragraph(rng, max(5, int(share * fa)))})
        convs.append({"id": f"c{c:02d}", "messages": msgs})
    return convs


def find_gating_pos(ids):
    n = len(GATING_PATTERN)
    for j in range(len(ids) - n, -1, -1):
        if ids[j:j + n] == GATING_PATTERN:
            return j
    raise ValueError("gating pattern not found")


# --------------------------------------------------------------------------- the two sides

def run_armo(armo, mdir, inp, outp, threads):
    cmd = [str(armo), "score", "--model", str(mdir), "--input", str(inp), "--output", str(outp),
           "--device", "cpu", "--threads", str(threads)]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    if p.returncode != 0:
        sys.exit(f"bench: {' '.join(cmd)} failed ({p.returncode}):\n{p.stderr}")
    m = re.search(r"done: .*? (\d+) tokens in ([\d.]+) s: .*?([\d.]+) tok/s", p.stderr)
    if not m:
        sys.exit(f"bench: no 'done:' line in armo's output:\n{p.stderr}")
    tokens, tps = int(m.group(1)), float(m.group(3))
    res = {}
    for line in open(outp):
        r = json.loads(line)
        if "error" in r:
            sys.exit(f"bench: armo error on {r.get('id')}: {r['error']}")
        res[r["id"]] = r
    return {"tokens": tokens, "tps": tps, "wall": wall, "cpu": cpu, "results": res,
            "cmd": " ".join(cmd)}


class TorchSide:
    def __init__(self, mdir, convs, threads, batch):
        import torch
        from safetensors.torch import load_file
        from transformers import AutoTokenizer, LlamaConfig, LlamaModel
        self.torch = torch
        torch.set_num_threads(threads)
        tok = AutoTokenizer.from_pretrained(str(mdir))
        self.seqs = []
        for c in convs:
            r = tok.apply_chat_template(c["messages"], tokenize=True, add_generation_prompt=False)
            ids = list(r["input_ids"] if hasattr(r, "keys") else r)
            self.seqs.append((c["id"], ids, find_gating_pos(ids)))
        cfg = LlamaConfig.from_pretrained(str(mdir))
        cfg._attn_implementation = "sdpa"
        cfg.use_cache = False
        w = load_file(str(mdir / "model.safetensors"))
        with torch.device("cpu"):
            self.model = LlamaModel(cfg).to(torch.float32).eval()
        sd = {k[len("model."):]: v.float() for k, v in w.items() if k.startswith("model.")}
        missing, unexpected = self.model.load_state_dict(sd, strict=False)
        if unexpected or any("rotary" not in k for k in missing):
            sys.exit(f"bench: torch state dict mismatch: {missing} {unexpected}")
        self.head = {k: v.float() for k, v in w.items() if not k.startswith("model.")}
        self.n_gating = cfg.gating_n_hidden + 1
        self.temperature = float(cfg.gating_temperature)
        order = sorted(range(len(self.seqs)), key=lambda i: len(self.seqs[i][1]))
        self.batches = [order[i:i + batch] for i in range(0, len(order), batch)]
        self.tokens = sum(len(s[1]) for s in self.seqs)
        self.padded = sum(len(b) * max(len(self.seqs[i][1]) for i in b) for b in self.batches)

    def armo_head(self, h_last, h_prompt):
        t, hw = self.torch, self.head
        rewards = h_last @ hw["regression_layer.weight"].T
        z = h_prompt
        for i in range(self.n_gating):
            z = z @ hw[f"gating.layers.{i}.weight"].T + hw[f"gating.layers.{i}.bias"]
            if i < self.n_gating - 1:
                z = t.relu(z)
        gate = t.softmax(z / self.temperature, dim=-1) * hw["gating.logit_scale"]
        score = (gate * (rewards @ hw["reward_transform_matrix"])).sum(-1)
        return score

    def run(self):
        t = self.torch
        scores = {}
        c0 = time.process_time()
        t0 = time.perf_counter()
        with t.inference_mode():
            for b in self.batches:
                L = max(len(self.seqs[i][1]) for i in b)
                ids = t.full((len(b), L), PAD_ID, dtype=t.long)
                mask = t.zeros((len(b), L), dtype=t.long)
                for r, i in enumerate(b):
                    s = self.seqs[i][1]
                    ids[r, :len(s)] = t.tensor(s)
                    mask[r, :len(s)] = 1
                h = self.model(input_ids=ids, attention_mask=mask).last_hidden_state
                rows = t.arange(len(b))
                last = t.tensor([len(self.seqs[i][1]) - 1 for i in b])
                gpos = t.tensor([self.seqs[i][2] for i in b])
                sc = self.armo_head(h[rows, last], h[rows, gpos])
                for r, i in enumerate(b):
                    scores[self.seqs[i][0]] = float(sc[r])
        sec = time.perf_counter() - t0
        cpu = time.process_time() - c0
        return {"tps": self.tokens / sec, "sec": sec, "cpu": cpu, "scores": scores}


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--armo", default=str(REPO / "build/armo"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--workdir", default="/tmp/armo-bench-cpu")
    ap.add_argument("--tol", type=float, default=1e-3, help="score agreement, relative to max |score|")
    a = ap.parse_args()

    work = Path(a.workdir)
    mdir = work / "armorm-h1024-l4"
    build_checkpoint(mdir)
    convs = conversations()
    inp, outp = work / "conversations.jsonl", work / "armo-scores.jsonl"
    with open(inp, "w") as f:
        for c in convs:
            f.write(json.dumps(c) + "\n")

    import torch
    import transformers
    side = TorchSide(mdir, convs, a.threads, a.batch)
    log(f"bench: {len(convs)} conversations, {side.tokens} tokens (lengths "
        f"{min(len(s[1]) for s in side.seqs)}..{max(len(s[1]) for s in side.seqs)}); torch "
        f"batches of {a.batch} carry {side.padded - side.tokens} padding tokens")
    side.run()  # warm-up (oneDNN / MKL kernels, allocator)

    armo_runs, torch_runs = [], []
    for r in range(a.repeats):
        ar = run_armo(a.armo, mdir, inp, outp, a.threads)
        tr = side.run()
        armo_runs.append(ar)
        torch_runs.append(tr)
        log(f"bench: repeat {r + 1}/{a.repeats}: armo {ar['tps']:.0f} tok/s "
            f"(wall {ar['wall']:.2f} s with load), torch {tr['tps']:.0f} tok/s ({tr['sec']:.2f} s)")

    # the two sides on the same sequences
    ar, tr = armo_runs[-1], torch_runs[-1]
    bad_tokens = [c for c, ids, _ in side.seqs if ar["results"][c]["tokens"] != len(ids)]
    if ar["tokens"] != side.tokens or bad_tokens:
        sys.exit(f"bench: armo scored {ar['tokens']} tokens, torch {side.tokens}; "
                 f"differing conversations: {bad_tokens}")
    smax = max(abs(v) for v in tr["scores"].values())
    diff = max(abs(ar["results"][c]["score"] - tr["scores"][c]) for c in tr["scores"])

    a_tps = [x["tps"] for x in armo_runs]
    t_tps = [x["tps"] for x in torch_runs]
    a_wall = [side.tokens / x["wall"] for x in armo_runs]
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()
    print(f"armo CPU vs transformers fp32 on CPU, {a.threads} threads, {len(convs)} conversations, "
          f"{side.tokens} tokens, model hidden {DIMS['hidden']} x {DIMS['layers']} layers "
          f"({DIMS['heads']}/{DIMS['kv_heads']} heads, intermediate {DIMS['intermediate']})")
    print(f"  source tree at commit {commit} (--armo {a.armo}); torch {torch.__version__}, transformers {transformers.__version__}; "
          f"load average at the end {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"  armo : {ar['cmd']}")
    print(f"  torch: LlamaModel fp32, sdpa, length-sorted batches of {a.batch}, "
          f"torch.set_num_threads({a.threads})")
    print(f"  {'':28} {'best':>9} {'median':>9}   per repeat")
    print(f"  {'armo tokens/s (scoring)':28} {max(a_tps):9.0f} {statistics.median(a_tps):9.0f}   "
          + " ".join(f"{x:.0f}" for x in a_tps))
    print(f"  {'armo tokens/s (wall, load)':28} {max(a_wall):9.0f} {statistics.median(a_wall):9.0f}   "
          + " ".join(f"{x:.0f}" for x in a_wall))
    print(f"  {'torch tokens/s':28} {max(t_tps):9.0f} {statistics.median(t_tps):9.0f}   "
          + " ".join(f"{x:.0f}" for x in t_tps))
    a_cpu = [side.tokens / x["cpu"] for x in armo_runs]
    t_cpu = [side.tokens / x["cpu"] for x in torch_runs]
    print(f"  {'armo tokens per CPU-second':28} {max(a_cpu):9.0f} {statistics.median(a_cpu):9.0f}   "
          + " ".join(f"{x:.0f}" for x in a_cpu) + "   (whole process, load included)")
    print(f"  {'torch tokens per CPU-second':28} {max(t_cpu):9.0f} {statistics.median(t_cpu):9.0f}   "
          + " ".join(f"{x:.0f}" for x in t_cpu))
    print(f"  {'torch incl. padding':28} {max(t_tps) * side.padded / side.tokens:9.0f} "
          f"{statistics.median(t_tps) * side.padded / side.tokens:9.0f}   (padding "
          f"{(side.padded - side.tokens) / side.tokens:.0%} of the real tokens; armo packs, no padding)")
    print(f"  ratio armo / torch: best {max(a_tps) / max(t_tps):.2f}x, median "
          f"{statistics.median(a_tps) / statistics.median(t_tps):.2f}x "
          f"(wall with load: best {max(a_wall) / max(t_tps):.2f}x; per CPU-second: best "
          f"{max(a_cpu) / max(t_cpu):.2f}x)")
    ok = diff <= a.tol * smax
    print(f"  scores agree: max |armo - torch| = {diff:.3g} (max |score| {smax:.3g}, tolerance "
          f"{a.tol:g} relative): {'yes' if ok else 'NO'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
