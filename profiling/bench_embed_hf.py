#!/usr/bin/env python3
"""bench_embed_hf.py — the reference's way of extracting ArmoRM training
embeddings (one conversation per forward, Hugging Face LlamaModel, the gating
position found by a Python loop over the token list), timed on the same
records and checkpoint as `armo embed`, and checked against armo's output.

    python3 profiling/bench_embed_hf.py --model DIR --input pairs.jsonl \
        [--armo-emb EMB_DIR] [--threads N] [--dtype float32|bfloat16]

Prints sequences/s and, with --armo-emb, the largest relative difference of
h_last / h_prompt from armo's (both fp32 on the CPU: should be ~1e-5).
profiling/bench_embed.sh runs both sides.
"""
import argparse
import json
import time

import numpy as np
import torch
from transformers import AutoTokenizer, LlamaModel

PATTERN = [128009, 128006, 78191, 128007, 271]


def gating_pos(ids):
    """Last occurrence of the pattern, its first token (as the reference's loop)."""
    for i in range(len(ids) - len(PATTERN), -1, -1):
        if ids[i:i + len(PATTERN)] == PATTERN:
            return i
    raise ValueError("gating pattern not found")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--armo-emb")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    tok = AutoTokenizer.from_pretrained(a.model)
    model = LlamaModel.from_pretrained(a.model, dtype=getattr(torch, a.dtype)).eval()
    recs = [json.loads(l) for l in open(a.input)]
    convs = []
    for r in recs:
        p = [{"role": "user", "content": r["prompt"]}]
        for side in ("chosen", "rejected"):
            convs.append(p + [{"role": "assistant", "content": r[side]}])
    out_last, out_prompt, ntok = [], [], 0
    t0 = time.time()
    with torch.no_grad():
        for m in convs:
            ids = tok.apply_chat_template(m, tokenize=True, return_dict=False)
            if isinstance(ids, dict) or hasattr(ids, "input_ids"):
                ids = ids["input_ids"]
            ids = list(ids)
            ntok += len(ids)
            h = model(torch.tensor([ids])).last_hidden_state[0].float()
            out_last.append(h[-1].numpy())
            out_prompt.append(h[gating_pos(ids)].numpy())
    dt = time.time() - t0
    print(f"hf one-at-a-time ({a.dtype}, {a.threads} threads): {len(convs)} sequences, {ntok} "
          f"tokens in {dt:.2f} s: {len(convs) / dt:.2f} sequences/s, {ntok / dt:.0f} tokens/s")
    if a.armo_emb:
        from safetensors.numpy import load_file
        idx = json.load(open(f"{a.armo_emb}/embeddings.json"))
        hl = np.concatenate([load_file(f"{a.armo_emb}/{s['file']}")["h_last"] for s in idx["shards"]])
        hp = np.concatenate([load_file(f"{a.armo_emb}/{s['file']}")["h_prompt"] for s in idx["shards"]])
        hl, hp = hl.reshape(-1, hl.shape[-1]), hp.reshape(-1, hp.shape[-1])
        el = np.abs(hl - np.stack(out_last)).max() / np.abs(np.stack(out_last)).max()
        ep = np.abs(hp - np.stack(out_prompt)).max() / np.abs(np.stack(out_prompt)).max()
        print(f"armo vs hf: max relative difference h_last {el:.2e}, h_prompt {ep:.2e}")


if __name__ == "__main__":
    main()
