#!/usr/bin/env python3
"""compare_hf.py — armo against Hugging Face transformers on the same random
ArmoRM-shaped weights (DESIGN §5, oracle 5): is armo's bf16 path at least as
close to an fp32 reference as HF's own bf16 path is?

Steps (all in one run, on --device):
  1. write an ArmoRM-shaped checkpoint with random weights in exact HF layout
     (config.json with ArmoRM's keys, model.safetensors with the backbone in
     BF16 and the head in F32, the Llama-3 tokenizer files from
     tests/data/llama3-tokenizer.tar.xz).  Default: full ArmoRM widths (hidden
     4096, 32/8 heads, head_dim 128, intermediate 14336, vocab 128257, 19
     objectives, gating 1024 x 3) with --layers 4.  Weight scales follow
     weights/random_model.c so that every part of the forward matters;
  2. build >= 64 records (single conversations of 1-4 turns, 30-2000 tokens,
     and pairs sharing a prompt) as armo JSONL;
  3. score them with transformers' LlamaModel (sdpa attention, one
     conversation per call, no padding) + a PyTorch ArmoRM head written here
     from DESIGN §2 (no remote code): fp32 everywhere (the reference); bf16
     backbone with the head in fp32 on fp32 copies of the two hidden rows
     (what armo does); bf16 backbone and bf16 head (what the official
     pipeline does after model.to(bfloat16));
  4. run `armo score --device ...` on the same records;
  5. print, per variant, max / median |score - fp32 score| (absolute and
     relative), max / median relative L2 error of the rewards and gating
     vectors, and pair preferences that flip against fp32; write it as JSON
     to --out.  Exit 1 if armo's max or median score error exceeds HF-bf16's
     by more than 2x (and say which), or if anything fails to match up (token
     counts, record counts); 0 otherwise.

Relative score error: |d| / max(|ref|, 0.01 * max|ref|) (a floor so that
scores near zero do not dominate).  Relative L2: ||v - ref|| / ||ref||.

On a GPU machine (torch + transformers + safetensors; no network):
    python3 profiling/compare_hf.py --armo build/armo --layers 2 --out cmp.json
Here, on the CPU, with a tiny model (proves the plumbing; armo's CPU backend
computes in fp32, so its column is ~1e-6):
    python profiling/compare_hf.py --device cpu --hidden 64 --layers 2 --heads 4 \\
        --kv-heads 2 --head-dim 64 --intermediate 128 --gating-hidden 64
"""
import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
PAD_ID = 128256
BOS_ID = 128000
EOT_ID = 128009
GATING_PATTERN_IDS = [128009, 128006, 78191, 128007, 271]
OBJECTIVES = [
    "helpsteer-helpfulness", "helpsteer-correctness", "helpsteer-coherence",
    "helpsteer-complexity", "helpsteer-verbosity", "ultrafeedback-overall_score",
    "ultrafeedback-instruction_following", "ultrafeedback-truthfulness",
    "ultrafeedback-honesty", "ultrafeedback-helpfulness", "beavertails-is_safe",
    "prometheus-score", "argilla-overall_quality", "argilla-judge_lm", "code-complexity",
    "code-style", "code-explanation", "code-instruction-following", "code-readability",
]


def log(*a):
    print(*a, file=sys.stderr, flush=True)

# --------------------------------------------------------------------------- checkpoint


def armorm_config(a):
    """The key set of RLHFlow/ArmoRM-Llama3-8B-v0.1's config.json with the chosen dims."""
    return {
        "architectures": ["LlamaForRewardModelWithGating"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOT_ID,
        "gating_hidden_dim": a.gating_hidden,
        "gating_n_hidden": 3,
        "gating_temperature": 10,
        "head_dim": a.head_dim,
        "hidden_act": "silu",
        "hidden_size": a.hidden,
        "initializer_range": 0.02,
        "intermediate_size": a.intermediate,
        "max_position_embeddings": 8192,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": a.heads,
        "num_hidden_layers": a.layers,
        "num_key_value_heads": a.kv_heads,
        "num_objectives": 19,
        "pad_token_id": PAD_ID,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.40.2",
        "use_cache": True,
        "vocab_size": 128257,
    }


def uniform(gen, shape, mean, std, dtype):
    """Uniform with the given mean and standard deviation (as weights/random_model.c)."""
    t = torch.rand(shape, generator=gen, dtype=torch.float32)
    t.mul_(2.0 * math.sqrt(3.0) * std).add_(mean - math.sqrt(3.0) * std)
    return t.to(dtype)


def random_weights(a, seed):
    """Scales of weights/random_model.c: unit embedding, norm weights ~1 +- 0.1,
    q/k 2/sqrt(H), v 1/sqrt(H), o 0.5/sqrt(q), gate/up 1/sqrt(H), down
    0.5/sqrt(I); head: regression 1/sqrt(H), gating 1.6/sqrt(in) (last layer
    15/sqrt(in), so z / T has a spread of ~1.5), biases 0.3, logit_scale
    1.7, transform identity + 0.2 noise."""
    gen = torch.Generator().manual_seed(seed)
    H, q, kv, I = a.hidden, a.heads * a.head_dim, a.kv_heads * a.head_dim, a.intermediate
    bf = torch.bfloat16
    w = {"model.embed_tokens.weight": uniform(gen, (128257, H), 0.0, 1.0, bf)}
    for i in range(a.layers):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = uniform(gen, (H,), 1.0, 0.1, bf)
        w[p + "self_attn.q_proj.weight"] = uniform(gen, (q, H), 0.0, 2.0 / math.sqrt(H), bf)
        w[p + "self_attn.k_proj.weight"] = uniform(gen, (kv, H), 0.0, 2.0 / math.sqrt(H), bf)
        w[p + "self_attn.v_proj.weight"] = uniform(gen, (kv, H), 0.0, 1.0 / math.sqrt(H), bf)
        w[p + "self_attn.o_proj.weight"] = uniform(gen, (H, q), 0.0, 0.5 / math.sqrt(q), bf)
        w[p + "post_attention_layernorm.weight"] = uniform(gen, (H,), 1.0, 0.1, bf)
        w[p + "mlp.gate_proj.weight"] = uniform(gen, (I, H), 0.0, 1.0 / math.sqrt(H), bf)
        w[p + "mlp.up_proj.weight"] = uniform(gen, (I, H), 0.0, 1.0 / math.sqrt(H), bf)
        w[p + "mlp.down_proj.weight"] = uniform(gen, (H, I), 0.0, 0.5 / math.sqrt(I), bf)
    w["model.norm.weight"] = uniform(gen, (H,), 1.0, 0.1, bf)
    f32 = torch.float32
    K, G = 19, a.gating_hidden
    w["regression_layer.weight"] = uniform(gen, (K, H), 0.0, 1.0 / math.sqrt(H), f32)
    dims = [H, G, G, G, K]
    for i in range(4):
        gain = 15.0 if i == 3 else 1.6
        w[f"gating.layers.{i}.weight"] = uniform(gen, (dims[i + 1], dims[i]), 0.0,
                                                 gain / math.sqrt(dims[i]), f32)
        w[f"gating.layers.{i}.bias"] = uniform(gen, (dims[i + 1],), 0.0, 0.3, f32)
    w["gating.logit_scale"] = torch.tensor([1.7], dtype=f32)
    w["reward_transform_matrix"] = torch.eye(K) + uniform(gen, (K, K), 0.0, 0.2, f32)
    return {k: v.contiguous() for k, v in w.items()}


def write_checkpoint(a, outdir):
    from safetensors.torch import save_file
    outdir.mkdir(parents=True, exist_ok=True)
    cfg = armorm_config(a)
    (outdir / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    t0 = time.time()
    w = random_weights(a, a.seed)
    save_file(w, str(outdir / "model.safetensors"), metadata={"format": "pt"})
    head = {k: v for k, v in w.items() if not k.startswith("model.")}
    del w
    with tarfile.open(REPO / "tests/data/llama3-tokenizer.tar.xz") as tar:
        for name in ("tokenizer.json", "tokenizer_config.json"):
            src = tar.extractfile(f"llama3-tokenizer/{name}")
            (outdir / name).write_bytes(src.read())
    log(f"compare_hf: wrote the checkpoint to {outdir} in {time.time() - t0:.1f} s")
    return cfg, head

# --------------------------------------------------------------------------- records


WORDS = (
    "the model reads each conversation once and scores the final answer while the gating "
    "network looks at the prompt to decide which objectives matter most for this kind of "
    "request such as code style safety honesty verbosity or helpfulness and a careful "
    "reviewer would check every number against an independent reference before trusting a "
    "faster engine with millions of rows of preference data"
).split()
RARE = ["Zermatt", "Chamonix", "Rayleigh", "wavelength", "façade", "naïve", "日本語", "🙂",
        "λ-calculus", "O(n log n)", "3.14159", "2024-05-23", "```python\nprint(1)\n```"]


def text(rng, n_tokens):
    """About n_tokens tokens of English-like text (sentences, a rare word now and then)."""
    out, sentence = [], []
    for i in range(max(1, int(n_tokens * 0.8))):
        sentence.append(RARE[rng.randrange(len(RARE))] if rng.random() < 0.05
                        else WORDS[rng.randrange(len(WORDS))])
        if len(sentence) >= rng.randint(6, 18):
            out.append(" ".join(sentence).capitalize() + rng.choice([".", "?", "!", ":"]))
            sentence = []
    if sentence:
        out.append(" ".join(sentence).capitalize() + ".")
    return " ".join(out)


def build_records(n_single, n_pairs, seed):
    """Single conversations (1-4 user/assistant turns, some with a system
    prompt; total lengths log-uniform in ~30..2000 tokens) and pairs (one
    prompt, chosen / rejected responses of different lengths)."""
    import random
    rng = random.Random(seed)
    recs = []
    for i in range(n_single):
        total = int(math.exp(rng.uniform(math.log(30), math.log(2000))))
        turns = rng.randint(1, 4)
        msgs = []
        if rng.random() < 0.3:
            msgs.append({"role": "system", "content": text(rng, 12)})
        per = max(4, total // (2 * turns) - 6)
        for t in range(turns):
            msgs.append({"role": "user", "content": text(rng, max(3, int(per * rng.uniform(0.3, 1.2))))})
            msgs.append({"role": "assistant", "content": text(rng, max(3, int(per * rng.uniform(0.6, 1.7))))})
        recs.append({"id": f"s{i}", "messages": msgs})
    for i in range(n_pairs):
        plen = int(math.exp(rng.uniform(math.log(10), math.log(900))))
        prompt = text(rng, plen)
        recs.append({"id": f"p{i}", "prompt": prompt,
                     "chosen": text(rng, int(math.exp(rng.uniform(math.log(5), math.log(800))))),
                     "rejected": text(rng, int(math.exp(rng.uniform(math.log(5), math.log(800)))))})
    return recs


def record_sequences(rec):
    """The conversations a record scores, as message lists (pairs: chosen, rejected)."""
    if "messages" in rec:
        return [rec["messages"]]
    user = [{"role": "user", "content": rec["prompt"]}]
    return [user + [{"role": "assistant", "content": rec["chosen"]}],
            user + [{"role": "assistant", "content": rec["rejected"]}]]


def find_gating_pos(ids):
    n = len(GATING_PATTERN_IDS)
    for j in range(len(ids) - n, -1, -1):
        if ids[j:j + n] == GATING_PATTERN_IDS:
            return j
    raise ValueError("Token pattern not found in the list.")

# --------------------------------------------------------------------------- HF side


def armorm_head(w, h_last, h_prompt, dtype, temperature=10.0):
    """The ArmoRM head of DESIGN §2 (LlamaForRewardModelWithGating), computed
    in `dtype` (weights and inputs cast to it): rewards = W_r h_last; gating
    MLP 3 x (Linear + ReLU) + Linear on h_prompt; gate = softmax(z / T) *
    logit_scale; score = sum(gate * (rewards @ M)); coefficients = gate @ M^T."""
    c = lambda t: t.to(dtype)
    rewards = c(h_last) @ c(w["regression_layer.weight"]).T
    x = c(h_prompt)
    for i in range(4):
        x = x @ c(w[f"gating.layers.{i}.weight"]).T + c(w[f"gating.layers.{i}.bias"])
        if i < 3:
            x = torch.relu(x)
    gate = torch.softmax(x / temperature, dim=-1) * c(w["gating.logit_scale"])[0]
    M = c(w["reward_transform_matrix"])
    score = torch.sum(gate * (rewards @ M), dim=-1)
    coefs = gate @ M.T
    f = torch.float32
    return {"score": score.to(f), "rewards": rewards.to(f), "gating": gate.to(f),
            "coefficients": coefs.to(f)}


@torch.no_grad()
def hf_score(model_dir, head, seqs, dtype, device, head_dtype):
    """Scores each sequence alone (batch 1, no padding) with LlamaModel in
    `dtype` and the head in `head_dtype` on the two hidden rows."""
    import transformers
    from transformers import LlamaModel
    transformers.logging.set_verbosity_error()  # the head tensors are "unexpected" for LlamaModel
    t0 = time.time()
    model = LlamaModel.from_pretrained(str(model_dir), dtype=dtype, attn_implementation="sdpa")
    model = model.to(device).eval()
    log(f"compare_hf: HF LlamaModel {dtype} loaded on {device} in {time.time() - t0:.1f} s")
    hw = {k: v.to(device) for k, v in head.items()}
    out = {hd: [] for hd in head_dtype}
    t0 = time.time()
    for ids in seqs:
        x = torch.tensor([ids], dtype=torch.long, device=device)
        h = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False).last_hidden_state[0]
        g = find_gating_pos(ids)
        for hd in head_dtype:
            # the head reads the rows as the backbone left them, cast to the head's dtype
            r = armorm_head(hw, h[len(ids) - 1], h[g], hd)
            out[hd].append({k: v.detach().cpu().double() for k, v in r.items()})
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    log(f"compare_hf: HF {dtype} scored {len(seqs)} sequences in {time.time() - t0:.1f} s")
    del model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
    return out

# --------------------------------------------------------------------------- armo side


def armo_score(armo, model_dir, records, device, workdir):
    inp, outp = workdir / "records.jsonl", workdir / "armo_out.jsonl"
    inp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    cmd = [armo, "score", "--model", str(model_dir), "--device", device, "--input", str(inp),
           "--output", str(outp), "--quiet"]
    t0 = time.time()
    p = subprocess.run(cmd, capture_output=True, text=True)
    log(f"compare_hf: {' '.join(cmd)} -> exit {p.returncode} in {time.time() - t0:.1f} s")
    if p.returncode != 0:
        log(p.stderr)
        raise SystemExit(f"compare_hf: armo score failed (exit {p.returncode})")
    lines = [json.loads(l) for l in outp.read_text(encoding="utf-8").splitlines() if l.strip()]
    if len(lines) != len(records):
        raise SystemExit(f"compare_hf: armo wrote {len(lines)} lines for {len(records)} records")
    res = []
    for rec, o in zip(records, lines):
        if o.get("id") != rec["id"] or "error" in o:
            raise SystemExit(f"compare_hf: armo output for {rec['id']}: {o}")
        sides = [o] if "messages" in rec else [o["chosen"], o["rejected"]]
        for s in sides:
            res.append({"score": torch.tensor(float(s["score"]), dtype=torch.float64),
                        "rewards": torch.tensor(list(s["rewards"].values()), dtype=torch.float64),
                        "gating": torch.tensor(list(s["gating"].values()), dtype=torch.float64),
                        "coefficients": torch.tensor(list(s["coefficients"].values()), dtype=torch.float64),
                        "tokens": int(s["tokens"])})
    return res

# --------------------------------------------------------------------------- comparison


def median(v):
    v = sorted(v)
    n = len(v)
    return 0.0 if n == 0 else (v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2]))


def compare(ref, var, pairs):
    ref_s = [r["score"].item() for r in ref]
    floor = 0.01 * max(abs(s) for s in ref_s)
    abs_e = [abs(v["score"].item() - s) for v, s in zip(var, ref_s)]
    rel_e = [e / max(abs(s), floor) for e, s in zip(abs_e, ref_s)]

    def l2(key):
        return [((v[key] - r[key]).norm() / r[key].norm()).item() for v, r in zip(var, ref)]
    rw, gt = l2("rewards"), l2("gating")
    flips = sum(1 for i, j in pairs
                if (ref_s[i] - ref_s[j] >= 0) != (var[i]["score"].item() - var[j]["score"].item() >= 0))
    return {"max_abs": max(abs_e), "median_abs": median(abs_e), "max_rel": max(rel_e),
            "median_rel": median(rel_e), "max_rewards_rel_l2": max(rw),
            "median_rewards_rel_l2": median(rw), "max_gating_rel_l2": max(gt),
            "median_gating_rel_l2": median(gt), "pair_flips": flips, "pairs": len(pairs)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cuda", help="torch device and armo --device (cuda|cpu)")
    ap.add_argument("--armo", default=str(REPO / "build/armo"), help="path of the armo binary")
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--intermediate", type=int, default=14336)
    ap.add_argument("--gating-hidden", type=int, default=1024)
    ap.add_argument("--singles", type=int, default=40, help="single-conversation records")
    ap.add_argument("--pairs", type=int, default=24, help="pair records (chosen / rejected)")
    ap.add_argument("--seed", type=int, default=20240523)
    ap.add_argument("--workdir", default=None, help="where the checkpoint goes (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint and records")
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    ap.add_argument("--ratio", type=float, default=2.0,
                    help="fail if armo's score error exceeds HF-bf16's by more than this factor")
    a = ap.parse_args()
    if a.singles + a.pairs < 64:
        log("compare_hf: note: fewer than 64 records")
    armo_dev = "cuda" if a.device.startswith("cuda") else "cpu"
    torch.manual_seed(a.seed)
    # the reference must be true fp32: no TF32 in matmuls
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")

    work = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="armo-compare-"))
    model_dir = work / "model"
    try:
        _, head = write_checkpoint(a, model_dir)
        from transformers import AutoTokenizer
        tok = AutoTokenizer.from_pretrained(str(model_dir))
        records = build_records(a.singles, a.pairs, a.seed)
        seqs, pairs = [], []
        for rec in records:
            convs = record_sequences(rec)
            first = len(seqs)
            for m in convs:
                r = tok.apply_chat_template(m, tokenize=True, add_generation_prompt=False)
                seqs.append(list(r["input_ids"] if hasattr(r, "keys") else r))
            if len(convs) == 2:
                pairs.append((first, first + 1))
        lens = [len(s) for s in seqs]
        log(f"compare_hf: {len(records)} records, {len(seqs)} sequences, {len(pairs)} pairs, "
            f"{min(lens)}..{max(lens)} tokens (mean {sum(lens) / len(lens):.0f})")

        f32, bf16 = torch.float32, torch.bfloat16
        ref = hf_score(model_dir, head, seqs, f32, a.device, [f32])[f32]
        hb = hf_score(model_dir, head, seqs, bf16, a.device, [f32, bf16])
        armo = armo_score(a.armo, model_dir, records, armo_dev, work)
        bad = [i for i, (r, n) in enumerate(zip(armo, lens)) if r["tokens"] != n]
        if bad:
            raise SystemExit(f"compare_hf: armo's token counts differ from HF's on sequences {bad[:10]}")

        cols = {f"armo-{armo_dev}": compare(ref, armo, pairs),
                "hf-bf16 (head fp32)": compare(ref, hb[f32], pairs),
                "hf-bf16-head (official)": compare(ref, hb[bf16], pairs)}
        rows = [("max |score err|", "max_abs", "{:.3e}"), ("median |score err|", "median_abs", "{:.3e}"),
                ("max rel score err", "max_rel", "{:.3e}"), ("median rel score err", "median_rel", "{:.3e}"),
                ("max rewards rel L2", "max_rewards_rel_l2", "{:.3e}"),
                ("median rewards rel L2", "median_rewards_rel_l2", "{:.3e}"),
                ("max gating rel L2", "max_gating_rel_l2", "{:.3e}"),
                ("median gating rel L2", "median_gating_rel_l2", "{:.3e}"),
                ("pair flips vs fp32", "pair_flips", "{}")]
        ref_s = [r["score"].item() for r in ref]
        print(f"\narmo vs Hugging Face on random ArmoRM-shaped weights: hidden {a.hidden}, "
              f"{a.layers} layers, {a.heads}/{a.kv_heads} heads x {a.head_dim}, intermediate "
              f"{a.intermediate}; {len(seqs)} sequences ({min(lens)}..{max(lens)} tokens), "
              f"{len(pairs)} pairs; device {a.device}")
        print(f"reference: HF fp32 (sdpa) + fp32 head; fp32 scores in [{min(ref_s):.4f}, "
              f"{max(ref_s):.4f}]" + ("; armo's CPU backend computes in fp32" if armo_dev == "cpu" else ""))
        names = list(cols)
        print(f"{'':24s}" + "".join(f"{n:>26s}" for n in names))
        for label, key, fmt in rows:
            print(f"{label:24s}" + "".join(f"{fmt.format(cols[n][key]):>26s}" for n in names))
        armo_c, hf_c = cols[names[0]], cols[names[1]]
        failed = []
        for key in ("max_abs", "median_abs"):
            if armo_c[key] > a.ratio * hf_c[key]:
                failed.append(f"{key}: armo {armo_c[key]:.3e} > {a.ratio} x HF-bf16 {hf_c[key]:.3e}")
        result = {"device": a.device, "armo_device": armo_dev,
                  "model": {"hidden": a.hidden, "layers": a.layers, "heads": a.heads,
                            "kv_heads": a.kv_heads, "head_dim": a.head_dim,
                            "intermediate": a.intermediate, "gating_hidden": a.gating_hidden,
                            "seed": a.seed},
                  "sequences": len(seqs), "pairs": len(pairs), "min_len": min(lens),
                  "max_len": max(lens), "reference": "hf fp32 sdpa + fp32 head",
                  "columns": cols, "ratio": a.ratio, "failed": failed,
                  "torch": torch.__version__}
        try:
            import transformers
            result["transformers"] = transformers.__version__
        except Exception:
            pass
        if torch.cuda.is_available() and a.device.startswith("cuda"):
            result["gpu"] = torch.cuda.get_device_name()
        if a.out:
            Path(a.out).write_text(json.dumps(result, indent=1) + "\n")
        if failed:
            print("FAIL: armo's score error exceeds HF-bf16's by more than "
                  f"{a.ratio}x: " + "; ".join(failed))
            return 1
        print(f"OK: armo's score error is within {a.ratio}x of HF-bf16's (max and median)")
        return 0
    finally:
        if not a.keep and not a.workdir:
            shutil.rmtree(work, ignore_errors=True)
        elif a.keep:
            log(f"compare_hf: kept {work}")


if __name__ == "__main__":
    sys.exit(main())
