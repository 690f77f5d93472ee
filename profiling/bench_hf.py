#!/usr/bin/env python3
"""bench_hf.py — the Hugging Face side of the throughput comparison (DESIGN §6):
the same workloads as `armo bench`, scored with transformers' LlamaModel in bf16
with sdpa attention plus the ArmoRM head, on the same card.

The workloads are read from the JSONL that `armo bench --workload-out FILE`
writes (one {"id", "workload", "group", "gating_pos", "input_ids"} per
sequence), so both sides score exactly the same token ids.  The model has the
dims of armo's JSON (--armo-json, its "model" section) or of the flags, with
random weights initialised by transformers (speed does not depend on the
values).

Modes, each timed over the whole workload after one untimed warm-up batch:
  best      length-sorted batches of B sequences (B swept over --batch-sizes),
            right-padded to the batch's longest sequence with attention_mask,
            h_last / h_prompt gathered by index (positions known), fp32 head
            batched: HF at its best without custom kernels;
  card      as the model card uses it: one conversation per call (batch 1),
            the gating position found by a Python loop over the token list
            (as the reference's find_token_for_gating does), head in bf16.
Reported: tokens/s (real tokens, padding not counted), sequences/s, the
padding share of each batch size, and, with --armo-json, armo's tokens/s and
the ratio armo / HF-best and armo / HF-card per workload.  OOM at a batch
size is reported as such and the sweep goes on.

Usage (GPU machine):
    armo bench --workload all --layers 8 --sequences 256 --json armo.json \\
               --workload-out wl.jsonl
    python3 profiling/bench_hf.py --workloads wl.jsonl --armo-json armo.json --out hf.json
(profiling/bench.sh does both).  --device cpu with tiny dims works for a
plumbing check.
"""
import argparse
import json
import sys
import time
from collections import defaultdict

import torch

GATING_PATTERN_IDS = [128009, 128006, 78191, 128007, 271]
PAD_ID = 128256


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def find_token_for_gating(lst):
    """The reference's search, as a Python loop over the list (model card)."""
    token_pattern_len = len(GATING_PATTERN_IDS)
    search_end = len(lst)
    for j in range(search_end - token_pattern_len, -1, -1):
        if lst[j:j + token_pattern_len] == GATING_PATTERN_IDS:
            return j
    raise ValueError("Token pattern not found in the list.")


class Head(torch.nn.Module):
    """The ArmoRM head (DESIGN §2): regression layer, 3-hidden-layer gating MLP,
    softmax(z / T) * logit_scale, transform matrix."""

    def __init__(self, hidden, k=19, g=1024, temperature=10.0):
        super().__init__()
        self.regression = torch.nn.Linear(hidden, k, bias=False)
        dims = [hidden, g, g, g, k]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(dims[i], dims[i + 1]) for i in range(4))
        self.logit_scale = torch.nn.Parameter(torch.tensor([1.7]))
        self.transform = torch.nn.Parameter(torch.eye(k))
        self.temperature = temperature

    def forward(self, h_last, h_prompt):
        rewards = self.regression(h_last)
        x = h_prompt
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < 3:
                x = torch.relu(x)
        gate = torch.softmax(x / self.temperature, dim=-1) * self.logit_scale[0]
        return torch.sum(gate * (rewards @ self.transform), dim=-1)


def build_model(dims, device):
    from transformers import LlamaConfig, LlamaModel
    cfg = LlamaConfig(vocab_size=dims["vocab"], hidden_size=dims["hidden"],
                      intermediate_size=dims["intermediate"], num_hidden_layers=dims["layers"],
                      num_attention_heads=dims["heads"], num_key_value_heads=dims["kv_heads"],
                      head_dim=dims["head_dim"], max_position_embeddings=8192,
                      rms_norm_eps=1e-5, rope_theta=500000.0, tie_word_embeddings=False,
                      pad_token_id=PAD_ID, bos_token_id=128000, eos_token_id=128009)
    cfg._attn_implementation = "sdpa"
    cfg.use_cache = False
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device(device):
            model = LlamaModel(cfg).eval()
    finally:
        torch.set_default_dtype(old)
    return model


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


@torch.no_grad()
def run_best(model, head, seqs, bs, device):
    """Length-sorted batches of bs, right-padded; returns (seconds, padded tokens)."""
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]["input_ids"]))
    batches = [order[i:i + bs] for i in range(0, len(order), bs)]

    def one(batch):
        L = max(len(seqs[i]["input_ids"]) for i in batch)
        ids = torch.full((len(batch), L), PAD_ID, dtype=torch.long)
        mask = torch.zeros((len(batch), L), dtype=torch.long)
        last, gpos = [], []
        for r, i in enumerate(batch):
            s = seqs[i]["input_ids"]
            ids[r, :len(s)] = torch.tensor(s)
            mask[r, :len(s)] = 1
            last.append(len(s) - 1)
            gpos.append(seqs[i]["gating_pos"])
        ids, mask = ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)
        h = model(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
        rows = torch.arange(len(batch), device=device)
        hl = h[rows, torch.tensor(last, device=device)].float()
        hp = h[rows, torch.tensor(gpos, device=device)].float()
        return head(hl, hp), L * len(batch)

    one(batches[-1])  # warm-up on the longest batch (also the OOM probe)
    sync(device)
    t0 = time.perf_counter()
    padded = 0
    outs = []
    for b in batches:
        s, p = one(b)
        outs.append(s)
        padded += p
    sync(device)
    return time.perf_counter() - t0, padded


@torch.no_grad()
def run_card(model, head_bf16, seqs, device):
    """One conversation per call, Python gating search, bf16 head."""
    def one(s):
        ids = torch.tensor([s["input_ids"]], device=device)
        h = model(input_ids=ids).last_hidden_state
        g = find_token_for_gating(ids[0].tolist())
        return head_bf16(h[:, -1], h[:, g]).float().item()  # .item(): the card reads the score

    one(seqs[0])
    sync(device)
    t0 = time.perf_counter()
    for s in seqs:
        one(s)
    sync(device)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workloads", required=True, help="JSONL from armo bench --workload-out")
    ap.add_argument("--armo-json", help="armo bench --json output: dims and the ratio")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--batch-sizes", default="1,4,8,16,32,64")
    ap.add_argument("--no-card", action="store_true", help="skip the one-conversation-per-call mode")
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--intermediate", type=int, default=14336)
    ap.add_argument("--vocab", type=int, default=128257)
    ap.add_argument("--out", help="write the results as JSON here")
    a = ap.parse_args()

    armo = None
    dims = {"layers": a.layers, "hidden": a.hidden, "heads": a.heads, "kv_heads": a.kv_heads,
            "head_dim": a.head_dim, "intermediate": a.intermediate, "vocab": a.vocab}
    if a.armo_json:
        with open(a.armo_json) as f:
            armo = json.loads(f.readline())
        m = armo["model"]
        dims = {k: int(m[k]) for k in dims}
    wl = defaultdict(list)
    with open(a.workloads) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                wl[r["workload"]].append(r)
    torch.manual_seed(0)
    t0 = time.time()
    model = build_model(dims, a.device)
    head = Head(dims["hidden"]).to(a.device).float().eval()
    head_bf16 = Head(dims["hidden"]).to(a.device).to(torch.bfloat16).eval()
    log(f"bench_hf: LlamaModel bf16 sdpa, {dims}, built on {a.device} in {time.time() - t0:.1f} s")
    dev_name = torch.cuda.get_device_name() if a.device.startswith("cuda") else "cpu"
    sizes = [int(x) for x in a.batch_sizes.split(",") if x]

    results = {"device": dev_name, "dims": dims, "torch": torch.__version__, "workloads": {}}
    try:
        import transformers
        results["transformers"] = transformers.__version__
    except Exception:
        pass
    print(f"Hugging Face transformers on {dev_name}: LlamaModel bf16 + sdpa, {dims['layers']} layers, "
          f"hidden {dims['hidden']}")
    print(f"{'wl':3s} {'mode':12s} {'seqs':>6s} {'tokens':>9s} {'seconds':>9s} {'tokens/s':>11s} "
          f"{'seqs/s':>8s} {'padding':>8s}")
    for name in sorted(wl):
        seqs = wl[name]
        tokens = sum(len(s["input_ids"]) for s in seqs)
        res = {"sequences": len(seqs), "tokens": tokens, "best": {}, "card": None}
        for bs in sizes:
            try:
                secs, padded = run_best(model, head, seqs, bs, a.device)
            except torch.cuda.OutOfMemoryError:
                torch.cuda.empty_cache()
                print(f"{name:3s} {'batch ' + str(bs):12s} out of memory")
                res["best"][str(bs)] = {"oom": True}
                continue
            pad = 1.0 - tokens / padded
            res["best"][str(bs)] = {"seconds": secs, "tokens_per_s": tokens / secs,
                                    "sequences_per_s": len(seqs) / secs, "padding": pad}
            print(f"{name:3s} {'batch ' + str(bs):12s} {len(seqs):6d} {tokens:9d} {secs:9.3f} "
                  f"{tokens / secs:11.1f} {len(seqs) / secs:8.2f} {100 * pad:7.1f}%")
        if not a.no_card:
            secs = run_card(model, head_bf16, seqs, a.device)
            res["card"] = {"seconds": secs, "tokens_per_s": tokens / secs,
                           "sequences_per_s": len(seqs) / secs}
            print(f"{name:3s} {'card (bs 1)':12s} {len(seqs):6d} {tokens:9d} {secs:9.3f} "
                  f"{tokens / secs:11.1f} {len(seqs) / secs:8.2f} {0.0:7.1f}%")
        ok = {k: v for k, v in res["best"].items() if not v.get("oom")}
        if ok:
            bk = max(ok, key=lambda k: ok[k]["tokens_per_s"])
            res["best_batch_size"] = int(bk)
            res["best_tokens_per_s"] = ok[bk]["tokens_per_s"]
        results["workloads"][name] = res

    if armo:
        print("\narmo / Hugging Face (tokens/s, same workloads, same card)")
        print(f"{'wl':3s} {'armo':>11s} {'HF best':>11s} {'(batch)':>8s} {'ratio':>7s} "
              f"{'HF card':>11s} {'ratio':>7s}")
        for w in armo.get("workloads", []):
            name = w["workload"]
            r = results["workloads"].get(name)
            if not r or "best_tokens_per_s" not in r:
                continue
            if w["tokens"] != r["tokens"]:
                log(f"bench_hf: workload {name}: armo scored {w['tokens']} tokens, the file has "
                    f"{r['tokens']}: not the same workload")
                continue
            at = w["tokens_per_s"]
            r["armo_tokens_per_s"] = at
            r["ratio_best"] = at / r["best_tokens_per_s"]
            card = r["card"]["tokens_per_s"] if r["card"] else None
            r["ratio_card"] = at / card if card else None
            print(f"{name:3s} {at:11.1f} {r['best_tokens_per_s']:11.1f} {r['best_batch_size']:8d} "
                  f"{r['ratio_best']:6.2f}x " +
                  (f"{card:11.1f} {r['ratio_card']:6.2f}x" if card else f"{'-':>11s} {'-':>7s}"))
        results["armo_device"] = armo.get("device")
    if a.out:
        with open(a.out, "w") as f:
            json.dump(results, f, indent=1)
            f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
