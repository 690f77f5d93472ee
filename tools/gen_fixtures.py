#!/usr/bin/env python3
"""gen_fixtures.py — tiny random-weight checkpoints in exact Hugging Face layout,
plus golden outputs computed with Hugging Face transformers (DESIGN §5, oracle 2).

For each model it writes
  tests/fixtures/NAME.tar.xz       one directory NAME/ with config.json and the
                                   safetensors file(s) (+ model.safetensors.index.json
                                   when sharded); no tokenizer files (the build copies
                                   the bundled Llama-3 tokenizer in, cmake/fixtures.cmake)
  tests/fixtures/NAME.golden.json  per case: input ids, gathered positions, hidden
                                   states and head outputs, all in fp32

Models:
  tiny-armorm          LlamaForRewardModelWithGating, backbone BF16, head F32, 1 file
  tiny-armorm-sharded  the same tensors split over 3 shards + index
  tiny-rm-llama3       LlamaForSequenceClassification (num_labels 1, score.weight BF16),
                       GQA 4:1 and "llama3" rope_scaling with a small original context

Why it is shaped so:
  * Golden numbers come from transformers' LlamaModel (eager attention, fp32) run on
    the weights read back from the written files (bf16 upcast), so the files and the
    goldens cannot disagree.  The ArmoRM head is re-written here in plain PyTorch from
    the published formula (no remote code).  A second, independent plain-torch
    backbone forward cross-checks transformers and measures how much each sublayer
    moves the hidden state.
  * Weight scales are chosen so that every part of the computation matters: a
    mutation table (each head formula changed in turn; default RoPE instead of
    llama3) is printed and asserted, so the C golden test (rel. tol. 1e-4) can see
    each mistake.
  * The 128257 x 64 embedding is built from two small random codebooks so that the
    archive compresses (every row stays distinct); all other weights are plain random.
  * Deterministic: fixed seeds, single-threaded torch, tar entries with fixed
    mtime/owner/mode, so re-running gives byte-identical files.

Run:  python tools/gen_fixtures.py [--out tests/fixtures] [--tokenizer DIR]
(see tools/README.md).
"""
import argparse
import io
import json
import lzma
import math
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import torch
import transformers
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification, LlamaModel

SEED = 20240523
REPO = Path(__file__).resolve().parent.parent

VOCAB = 128257            # 128256 Llama-3 tokens + [PAD]
PAD_ID = 128256
BOS_ID = 128000
EOT_ID = 128009
GATING_PATTERN_TEXT = "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
GATING_PATTERN_IDS = [128009, 128006, 78191, 128007, 271]

TAR_MTIME = 1716422400    # fixed (2024-05-23) so archives are reproducible

HIDDEN = 64
HEAD_DIM = 64  # > hidden/heads on purpose: the CUDA kernels need head_dim 64 or 128
INTERMEDIATE = 128
N_LAYERS = 2
N_HEADS = 4

# ArmoRM head
NUM_OBJ = 19
GATING_T = 10.0
GATING_HIDDEN = 32
GATING_N_HIDDEN = 3
LOGIT_SCALE = 1.7

# --------------------------------------------------------------------------- configs


def armorm_config():
    """Key set and order of the real RLHFlow/ArmoRM-Llama3-8B-v0.1 config.json,
    with tiny dimensions."""
    return {
        "architectures": ["LlamaForRewardModelWithGating"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOT_ID,
        "gating_hidden_dim": GATING_HIDDEN,
        "gating_n_hidden": GATING_N_HIDDEN,
        "gating_temperature": 10,
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "max_position_embeddings": 8192,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": N_HEADS,
        "num_hidden_layers": N_LAYERS,
        "num_key_value_heads": 2,
        "num_objectives": NUM_OBJ,
        "pad_token_id": PAD_ID,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "float32",
        "transformers_version": "4.40.2",
        "use_cache": True,
        "vocab_size": VOCAB,
    }


def rm_llama3_config():
    """Shaped like a Llama-3.1 sequence-classification RM (Skywork-Reward style)."""
    return {
        "architectures": ["LlamaForSequenceClassification"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": BOS_ID,
        "eos_token_id": [128001, 128008, EOT_ID],
        "head_dim": HEAD_DIM,
        "hidden_act": "silu",
        "hidden_size": HIDDEN,
        "id2label": {"0": "LABEL_0"},
        "initializer_range": 0.02,
        "intermediate_size": INTERMEDIATE,
        "label2id": {"LABEL_0": 0},
        "max_position_embeddings": 4096,
        "mlp_bias": False,
        "model_type": "llama",
        "num_attention_heads": N_HEADS,
        "num_hidden_layers": N_LAYERS,
        "num_key_value_heads": 1,
        "num_labels": 1,
        "pad_token_id": PAD_ID,
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": {
            "factor": 8.0,
            "high_freq_factor": 4.0,
            "low_freq_factor": 1.0,
            "original_max_position_embeddings": 32,
            "rope_type": "llama3",
        },
        "rope_theta": 10000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.44.0",
        "use_cache": False,
        "vocab_size": VOCAB,
    }

# --------------------------------------------------------------------------- weights


def structured_embedding(gen):
    """Row i = concat(A[i % 257], B[(i // 257) % 509]): distinct rows (257*509 >
    VOCAB), std ~1, and long repeats so that xz compresses the 16 MB tensor."""
    a = torch.randn(257, HIDDEN // 2, generator=gen)
    b = torch.randn(509, HIDDEN // 2, generator=gen)
    idx = torch.arange(VOCAB)
    return torch.cat([a[idx % 257], b[(idx // 257) % 509]], dim=1)


def backbone_weights(gen, n_kv_heads):
    """fp32 tensors (cast to bf16 when saved).  Scales: unit-variance embedding;
    projections ~1/sqrt(fan_in) so each sublayer adds an O(1) update; q and k a bit
    larger so attention is far from uniform; norm weights around 1, not all equal."""
    def lin(out_f, in_f, gain=1.0):
        return torch.randn(out_f, in_f, generator=gen) * (gain / math.sqrt(in_f))

    def norm_w():
        return 0.6 + 0.8 * torch.rand(HIDDEN, generator=gen)

    w = {"model.embed_tokens.weight": structured_embedding(gen)}
    kv = n_kv_heads * HEAD_DIM
    for i in range(N_LAYERS):
        p = f"model.layers.{i}."
        w[p + "input_layernorm.weight"] = norm_w()
        w[p + "self_attn.q_proj.weight"] = lin(N_HEADS * HEAD_DIM, HIDDEN, 1.6)
        w[p + "self_attn.k_proj.weight"] = lin(kv, HIDDEN, 1.6)
        w[p + "self_attn.v_proj.weight"] = lin(kv, HIDDEN)
        w[p + "self_attn.o_proj.weight"] = lin(HIDDEN, N_HEADS * HEAD_DIM)
        w[p + "post_attention_layernorm.weight"] = norm_w()
        w[p + "mlp.gate_proj.weight"] = lin(INTERMEDIATE, HIDDEN, 1.5)
        w[p + "mlp.up_proj.weight"] = lin(INTERMEDIATE, HIDDEN, 1.5)
        w[p + "mlp.down_proj.weight"] = lin(HIDDEN, INTERMEDIATE)
    w["model.norm.weight"] = norm_w()
    return w


GATING_OUT_GAIN = 14.0   # tuned so z / T has a spread (std) of ~1-2 per case


def armorm_head_weights(gen):
    """F32 head.  Gating biases of both signs (so ReLU cuts), the last gating layer
    scaled so softmax(z/10) is neither uniform nor one-hot, logit_scale != 1, a
    non-symmetric non-identity transform."""
    w = {"regression_layer.weight": torch.randn(NUM_OBJ, HIDDEN, generator=gen) / math.sqrt(HIDDEN)}
    dims = [HIDDEN] + [GATING_HIDDEN] * GATING_N_HIDDEN + [NUM_OBJ]
    for i in range(GATING_N_HIDDEN + 1):
        fan_in = dims[i]
        last = i == GATING_N_HIDDEN
        gain = GATING_OUT_GAIN if last else math.sqrt(2.0)
        w[f"gating.layers.{i}.weight"] = torch.randn(dims[i + 1], fan_in, generator=gen) * (gain / math.sqrt(fan_in))
        w[f"gating.layers.{i}.bias"] = torch.randn(dims[i + 1], generator=gen) * (2.0 if last else 0.6)
    w["gating.logit_scale"] = torch.tensor([LOGIT_SCALE])
    w["reward_transform_matrix"] = torch.eye(NUM_OBJ) + 0.3 * torch.randn(NUM_OBJ, NUM_OBJ, generator=gen)
    return w


def to_saved_dtypes(w):
    """Backbone (model.*) in BF16; everything else keeps its dtype as given."""
    return {k: (v.to(torch.bfloat16) if k.startswith("model.") else v).contiguous() for k, v in w.items()}

# --------------------------------------------------------------------------- writing


def hf_module_order(names):
    """Tensor order of a state_dict (module registration order), as save_pretrained
    walks it when it fills shards."""
    def key(n):
        if n.startswith("model.embed_tokens"):
            return (0, 0, 0, n)
        if n.startswith("model.layers."):
            parts = n.split(".")
            sub = [
                "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj",
                "input_layernorm", "post_attention_layernorm",
            ]
            rest = ".".join(parts[3:-1])
            return (1, int(parts[2]), sub.index(rest), n)
        if n == "model.norm.weight":
            return (2, 0, 0, n)
        return (3, 0, 0, n)     # head tensors, in insertion order below
    head = [n for n in names if not n.startswith("model.")]
    order = sorted((n for n in names if n.startswith("model.")), key=key)
    return order + head


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


def write_checkpoint(dirpath, config, tensors, n_shards):
    """config.json + model.safetensors, or n_shards shards + index (HF naming)."""
    dirpath.mkdir(parents=True)
    write_json(dirpath / "config.json", config)
    meta = {"format": "pt"}
    if n_shards == 1:
        save_file(tensors, str(dirpath / "model.safetensors"), metadata=meta)
        return
    order = hf_module_order(list(tensors))
    # Cut points chosen so that a decoder layer spans two shards, as in the real
    # 4-shard ArmoRM checkpoint: shard 1 = embedding + first part of layer 0,
    # shard 2 = rest of layer 0 + part of layer 1, shard 3 = the rest + norm + head.
    cuts = [order.index("model.layers.0.self_attn.v_proj.weight"),
            order.index("model.layers.1.mlp.up_proj.weight")]
    assert n_shards == 3
    groups = [order[:cuts[0]], order[cuts[0]:cuts[1]], order[cuts[1]:]]
    weight_map = {}
    total = 0
    for k, g in enumerate(groups):
        fname = f"model-{k + 1:05d}-of-{n_shards:05d}.safetensors"
        save_file({n: tensors[n] for n in g}, str(dirpath / fname), metadata=meta)
        for n in g:
            weight_map[n] = fname
            total += tensors[n].numel() * tensors[n].element_size()
    index = {"metadata": {"total_size": total},
             "weight_map": {n: weight_map[n] for n in sorted(weight_map)}}
    write_json(dirpath / "model.safetensors.index.json", index)


def write_tar_xz(out_path, src_dir, name):
    """Deterministic tar.xz of src_dir as NAME/ (sorted, fixed mtime and owner)."""
    def info(arcname, size, is_dir):
        ti = tarfile.TarInfo(arcname)
        ti.mtime = TAR_MTIME
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        if is_dir:
            ti.type = tarfile.DIRTYPE
            ti.mode = 0o755
        else:
            ti.size = size
            ti.mode = 0o644
        return ti
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        tar.addfile(info(name, 0, True))
        for p in sorted(src_dir.iterdir()):
            data = p.read_bytes()
            tar.addfile(info(f"{name}/{p.name}", len(data), False), io.BytesIO(data))
    with open(out_path, "wb") as f:
        f.write(lzma.compress(buf.getvalue(), format=lzma.FORMAT_XZ,
                              check=lzma.CHECK_CRC64, preset=9 | lzma.PRESET_EXTREME))


def read_checkpoint(dirpath):
    """All tensors of a written checkpoint (single file or via the index)."""
    idx = dirpath / "model.safetensors.index.json"
    if idx.exists():
        files = sorted(set(json.loads(idx.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out = {}
    for f in files:
        t = load_file(str(dirpath / f))
        assert not (set(t) & set(out)), f"duplicate tensors in {f}"
        out.update(t)
    return out

# --------------------------------------------------------------------------- cases


LONG_WORDS = (
    "the model reads each conversation once and scores the final answer while the "
    "gating network looks at the prompt to decide which objectives matter most for "
    "this kind of request such as code style safety honesty verbosity or helpfulness "
    "and a careful reviewer would check every number against an independent reference "
    "before trusting a faster engine with millions of rows of preference data"
).split()


def long_text(rng, n_words):
    words = [LONG_WORDS[i] for i in rng.integers(0, len(LONG_WORDS), n_words)]
    out, line = [], []
    for i, w in enumerate(words):
        line.append(w)
        if i % 17 == 16:
            out.append(" ".join(line).capitalize() + ".")
            line = []
    if line:
        out.append(" ".join(line).capitalize() + ".")
    return " ".join(out)


# one prompt, three responses: the score CLI test builds pairs and best-of-N from them
SHARED_PROMPT = "Why is the sky blue? Answer in one or two sentences."


def chat_cases(rng):
    """(name, messages) pairs rendered with the Llama-3 chat template."""
    return [
        ("single_turn", [
            {"role": "user", "content": "What is the capital of France?"},
            {"role": "assistant", "content": "The capital of France is Paris."},
        ]),
        ("system_prompt", [
            {"role": "system", "content": "You are a concise, careful assistant."},
            {"role": "user", "content": "Give me two tips for writing unit tests."},
            {"role": "assistant", "content": "1. Test one behaviour per test.\n2. Compare against an independent reference, not the code's own output."},
        ]),
        ("multi_turn", [
            {"role": "user", "content": "Let's plan a trip. I like mountains."},
            {"role": "assistant", "content": "Great! The Alps, the Rockies or the Andes?"},
            {"role": "user", "content": "The Alps, in summer."},
            {"role": "assistant", "content": "Then consider Chamonix or Zermatt; both have good hiking in July."},
            {"role": "user", "content": "Which one is cheaper?"},
            {"role": "assistant", "content": "Chamonix is usually cheaper than Zermatt for lodging and food."},
        ]),
        ("multi_turn_system", [
            {"role": "system", "content": "Answer in one sentence."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."},
            {"role": "user", "content": "And times 3?"},
            {"role": "assistant", "content": "12."},
            {"role": "user", "content": "Square root of that?"},
            {"role": "assistant", "content": "About 3.464."},
            {"role": "user", "content": "Thanks!"},
            {"role": "assistant", "content": "You're welcome!"},
        ]),
        ("ends_with_user", [
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "7 is prime."},
            {"role": "user", "content": "Another one, larger than 100?"},
        ]),
        ("unicode", [
            {"role": "user", "content": "Traduis « café crème » en 日本語, and add an emoji 🙂 please. Привет, Ελληνικά, e\u0301 (combining), \u00e9 (precomposed)."},
            {"role": "assistant", "content": "カフェ・クレーム ☕ 🙂 — naïve façade, Straße, 한국어, العربية, 🇫🇷👩‍💻."},
        ]),
        ("code", [
            {"role": "user", "content": "Write a Python function that reverses a string."},
            {"role": "assistant", "content": "```python\ndef reverse(s: str) -> str:\n    return s[::-1]\n```\n\tTabs\tand  double  spaces,\r\nCRLF too."},
        ]),
        ("whitespace_trim", [
            {"role": "user", "content": "   \n  padded question?  \n\n"},
            {"role": "assistant", "content": "\n\n  padded answer.   \t\n"},
        ]),
        ("very_short", [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hey"},
        ]),
        ("shared_prompt_r0", [
            {"role": "user", "content": SHARED_PROMPT},
            {"role": "assistant", "content": "Sunlight scatters off air molecules, and blue light scatters most because its wavelength is short, so the sky looks blue."},
        ]),
        ("shared_prompt_r1", [
            {"role": "user", "content": SHARED_PROMPT},
            {"role": "assistant", "content": "Because the ocean reflects onto it."},
        ]),
        ("shared_prompt_r2", [
            {"role": "user", "content": SHARED_PROMPT},
            {"role": "assistant", "content": "Rayleigh scattering: intensity goes as 1/wavelength^4, so blue (~450 nm) scatters about 5x more than red (~700 nm)."},
        ]),
        ("long_600", [
            {"role": "system", "content": "You are a meticulous technical reviewer."},
            {"role": "user", "content": "Summarise the following notes:\n" + long_text(rng, 260)},
            {"role": "assistant", "content": long_text(rng, 280)},
        ]),
    ]


def random_case(rng, length, pattern_positions):
    ids = rng.integers(0, PAD_ID, length).tolist()
    for p in pattern_positions:
        ids[p:p + len(GATING_PATTERN_IDS)] = GATING_PATTERN_IDS
    assert len(ids) == length
    return ids


def build_cases(tokenizer):
    rng = np.random.default_rng(SEED)
    cases = []
    for name, msgs in chat_cases(rng):
        r = tokenizer.apply_chat_template(msgs, tokenize=True, add_generation_prompt=False)
        ids = list(r["input_ids"] if hasattr(r, "keys") else r)
        assert ids[0] == BOS_ID and ids[-1] == EOT_ID, name
        cases.append((name, ids, msgs))
    rng2 = np.random.default_rng(SEED + 1)
    cases.append(("random_pattern_at_0", random_case(rng2, 40, [0]), None))
    cases.append(("random_pattern_at_end", random_case(rng2, 61, [56]), None))
    cases.append(("random_pattern_twice", random_case(rng2, 100, [9, 71]), None))
    cases.append(("random_pattern_mid", random_case(rng2, 200, [123]), None))
    cases.append(("random_pattern_then_one", random_case(rng2, 33, [27]), None))
    return cases


def find_gating_pos(ids, pattern):
    """As the reference does: the last occurrence, searching backwards."""
    n = len(pattern)
    for j in range(len(ids) - n, -1, -1):
        if ids[j:j + n] == pattern:
            return j
    raise ValueError("Token pattern not found in the list.")

# --------------------------------------------------------------------------- compute


def hf_backbone(dirpath, tensors_fp32, rope_override=None):
    """transformers LlamaModel (eager, fp32) built from the written config.json."""
    cfg = LlamaConfig.from_pretrained(str(dirpath))
    if rope_override is not None:
        cfg.rope_parameters = rope_override
    cfg._attn_implementation = "eager"
    cfg.use_cache = False
    with torch.device("cpu"):
        model = LlamaModel(cfg).to(torch.float32).eval()
    sd = {k[len("model."):]: v for k, v in tensors_fp32.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    assert not unexpected, unexpected
    # only non-persistent buffers (rotary inv_freq) may be missing
    assert all("rotary" in m for m in missing), missing
    return model, cfg


@torch.no_grad()
def run_hf(model, ids):
    x = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
    return out.last_hidden_state[0].to(torch.float32)


def rope_inv_freq(theta, scaling):
    """RoPE frequencies, written from the llama3 formula (independent of transformers)."""
    inv = 1.0 / (theta ** (torch.arange(0, HEAD_DIM, 2, dtype=torch.float64) / HEAD_DIM))
    if scaling is None:
        return inv
    factor = scaling["factor"]
    lo, hi = scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    wavelen = 2 * math.pi / inv
    out = inv.clone()
    for i in range(len(inv)):
        if wavelen[i] < old / hi:
            out[i] = inv[i]
        elif wavelen[i] > old / lo:
            out[i] = inv[i] / factor
        else:
            smooth = (old / wavelen[i] - lo) / (hi - lo)
            out[i] = (1 - smooth) * inv[i] / factor + smooth * inv[i]
    return out


@torch.no_grad()
def run_plain(cfg_json, w, ids, stats=None):
    """Independent fp64 backbone forward from DESIGN §2 (cross-check of transformers)."""
    d = torch.float64
    n_kv = cfg_json["num_key_value_heads"]
    eps = cfg_json["rms_norm_eps"]
    inv = rope_inv_freq(cfg_json["rope_theta"], cfg_json["rope_scaling"])
    T = len(ids)
    ang = torch.arange(T, dtype=d)[:, None] * inv[None, :]
    cos, sin = torch.cat([ang.cos()] * 2, 1), torch.cat([ang.sin()] * 2, 1)

    def rms(x, g):
        return x / torch.sqrt((x * x).mean(-1, keepdim=True) + eps) * g.to(d)

    def rope(x):  # [h, T, D]
        x1, x2 = x[..., :HEAD_DIM // 2], x[..., HEAD_DIM // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    def W(n):
        return w[n].to(d)

    x = W("model.embed_tokens.weight")[torch.tensor(ids)]
    mask = torch.full((T, T), float("-inf"), dtype=d).triu(1)
    for i in range(cfg_json["num_hidden_layers"]):
        p = f"model.layers.{i}."
        hn = rms(x, w[p + "input_layernorm.weight"])
        q = (hn @ W(p + "self_attn.q_proj.weight").T).view(T, N_HEADS, HEAD_DIM).transpose(0, 1)
        k = (hn @ W(p + "self_attn.k_proj.weight").T).view(T, n_kv, HEAD_DIM).transpose(0, 1)
        v = (hn @ W(p + "self_attn.v_proj.weight").T).view(T, n_kv, HEAD_DIM).transpose(0, 1)
        q, k = rope(q), rope(k)
        rep = N_HEADS // n_kv
        k, v = k.repeat_interleave(rep, 0), v.repeat_interleave(rep, 0)
        s = q @ k.transpose(1, 2) / math.sqrt(HEAD_DIM) + mask
        a = torch.softmax(s, -1) @ v
        attn = a.transpose(0, 1).reshape(T, N_HEADS * HEAD_DIM) @ W(p + "self_attn.o_proj.weight").T
        h = x + attn
        hn2 = rms(h, w[p + "post_attention_layernorm.weight"])
        g = hn2 @ W(p + "mlp.gate_proj.weight").T
        u = hn2 @ W(p + "mlp.up_proj.weight").T
        mlp = (torch.nn.functional.silu(g) * u) @ W(p + "mlp.down_proj.weight").T
        if stats is not None:
            stats.setdefault(f"L{i} attn |d|/|x|", []).append((attn.norm() / x.norm()).item())
            stats.setdefault(f"L{i} mlp |d|/|x|", []).append((mlp.norm() / h.norm()).item())
            stats.setdefault(f"L{i} attn max prob", []).append(torch.softmax(s, -1)[:, -1].max().item())
        x = h + mlp
    return rms(x, w["model.norm.weight"])


def armorm_head(w, h_last, h_prompt, mutation=None):
    """Faithful ArmoRM head (fp32).  mutation names one deliberately wrong formula
    (for the self-check); None is the reference."""
    f = torch.float32
    rewards = w["regression_layer.weight"].to(f) @ h_last
    x = h_prompt
    for i in range(GATING_N_HIDDEN + 1):
        x = w[f"gating.layers.{i}.weight"].to(f) @ x + w[f"gating.layers.{i}.bias"].to(f)
        if i < GATING_N_HIDDEN and mutation != "no_relu":
            x = torch.relu(x)
    z = x
    T = 1.0 if mutation == "no_temperature" else GATING_T
    gate = torch.softmax(z / T, dim=0)
    if mutation != "no_logit_scale":
        gate = gate * w["gating.logit_scale"].to(f)[0]
    M = w["reward_transform_matrix"].to(f)
    adjusted = (M @ rewards) if mutation == "transform_other_side" else (rewards @ M)
    score = torch.sum(gate * adjusted)
    coefficients = gate @ M.T
    return {"score": score, "rewards": rewards, "gating": gate, "coefficients": coefficients, "z": z}


MUTATIONS = ["no_temperature", "no_relu", "transform_other_side", "no_logit_scale", "gating_from_last",
             "gating_first_match", "gating_pattern_end"]
# Position mutations that coincide with the reference on some cases (one pattern
# occurrence only): asserted only on the cases where the position differs.
POSITION_MUTATIONS = {"gating_first_match", "gating_pattern_end"}


def find_first_pattern(ids, pattern):
    n = len(pattern)
    return next(j for j in range(len(ids) - n + 1) if ids[j:j + n] == pattern)


def floats(t):
    return [float(v) for v in t.reshape(-1).tolist()]


def rel(a, b):
    return abs(a - b) / max(abs(b), 1e-12)

# --------------------------------------------------------------------------- models


def golden_header(name, cfg):
    return {
        "model": name,
        "architecture": cfg["architectures"][0],
        "generator": {"seed": SEED, "torch": torch.__version__, "transformers": transformers.__version__},
    }


def golden_armorm(name, dirpath, cfg_json, cases, pattern):
    w = read_checkpoint(dirpath)
    wf = {k: v.to(torch.float32, copy=True) for k, v in w.items()}  # fresh aligned copies: BLAS results depend on alignment
    model, _ = hf_backbone(dirpath, wf)
    out = golden_header(name, cfg_json)
    out["objectives"] = NUM_OBJ
    out["cases"] = []
    mut_rel = {m: [] for m in MUTATIONS}
    stats = {}
    zt_std = []
    for cname, ids, msgs in cases:
        h = run_hf(model, ids)
        hp = run_plain(cfg_json, wf, ids, stats)
        err = ((h.double() - hp).norm() / hp.norm()).item()
        assert err < 1e-5, f"{name}/{cname}: transformers vs plain forward rel err {err}"
        last = len(ids) - 1
        gpos = find_gating_pos(ids, pattern)
        r = armorm_head(wf, h[last], h[gpos])
        s = r["score"].item()
        check = torch.sum(r["rewards"] * r["coefficients"]).item()
        assert abs(check - s) <= 1e-5 * max(1.0, abs(s)), (cname, s, check)
        zt_std.append((r["z"] / GATING_T).std().item())
        for m in MUTATIONS:
            if m == "gating_from_last":
                rm = armorm_head(wf, h[last], h[last])
            elif m == "gating_first_match":
                p = find_first_pattern(ids, pattern)
                if p == gpos:
                    mut_rel[m].append(None)
                    continue
                rm = armorm_head(wf, h[last], h[p])
            elif m == "gating_pattern_end":
                rm = armorm_head(wf, h[last], h[gpos + len(pattern) - 1])
            else:
                rm = armorm_head(wf, h[last], h[gpos], mutation=m)
            mut_rel[m].append(rel(rm["score"].item(), s))
        out["cases"].append({
            "name": cname, "input_ids": ids, "last_pos": last, "gating_pos": gpos,
            "score": s, "rewards": floats(r["rewards"]), "gating": floats(r["gating"]),
            "coefficients": floats(r["coefficients"]),
            "hidden_last": floats(h[last]), "hidden_prompt": floats(h[gpos]),
        })
        if msgs is not None:
            out["cases"][-1]["messages"] = msgs
    # ---- self-check report
    print(f"\n[{name}] {len(cases)} cases; sublayer effect (mean over cases):")
    for k, v in stats.items():
        print(f"  {k:22s} {np.mean(v):.3f}  (min {np.min(v):.3f})")
    scores = [c["score"] for c in out["cases"]]
    rw = np.array([c["rewards"] for c in out["cases"]])
    gt = np.array([c["gating"] for c in out["cases"]])
    print(f"  score range [{min(scores):.3f}, {max(scores):.3f}], rewards std {rw.std():.3f}, "
          f"z/T std per case {min(zt_std):.2f}..{max(zt_std):.2f}, max gate/scale {gt.max() / LOGIT_SCALE:.3f}")
    print("  relative score change per mutation:")
    print(f"  {'case':24s} {'len':>4s} {'gpos':>4s} {'score':>9s} " + " ".join(f"{m[:12]:>12s}" for m in MUTATIONS))
    for k, c in enumerate(out["cases"]):
        print(f"  {c['name']:24s} {len(c['input_ids']):4d} {c['gating_pos']:4d} {c['score']:9.5f} "
              + " ".join("           -" if mut_rel[m][k] is None else f"{mut_rel[m][k]:12.3g}" for m in MUTATIONS))
    print("  (-: same position as the reference on that case)")
    print(f"  mutation (relative score change)   min       median    cases>1e-2")
    for m in MUTATIONS:
        v = np.array([x for x in mut_rel[m] if x is not None])
        frac = float((v > 1e-2).mean())
        print(f"  {m:32s} {v.min():9.3g} {np.median(v):9.3g}   {int((v > 1e-2).sum())}/{len(v)}")
        assert frac >= 0.8, f"{name}: mutation {m} is detected on only {frac:.0%} of cases"
        if m in POSITION_MUTATIONS:
            assert len(v) >= 3, f"{name}: too few cases exercise {m}"
    for zs in zt_std:
        assert 0.5 <= zs <= 3.0, f"z/T std {zs} out of the intended range"
    return out


def golden_seqcls(name, dirpath, cfg_json, cases):
    w = read_checkpoint(dirpath)
    wf = {k: v.to(torch.float32, copy=True) for k, v in w.items()}  # fresh aligned copies: BLAS results depend on alignment
    model, cfg = hf_backbone(dirpath, wf)
    assert cfg.rope_parameters["rope_type"] == "llama3", cfg.rope_parameters
    plain_rope = {"rope_type": "default", "rope_theta": cfg_json["rope_theta"]}
    model_default, _ = hf_backbone(dirpath, wf, rope_override=plain_rope)
    out = golden_header(name, cfg_json)
    out["cases"] = []
    stats = {}
    print(f"\n[{name}] {len(cases)} cases")
    print("  case                       len   score       rel change with default RoPE")
    for cname, ids, msgs in cases:
        h = run_hf(model, ids)
        hp = run_plain(cfg_json, wf, ids, stats)
        err = ((h.double() - hp).norm() / hp.norm()).item()
        assert err < 1e-5, f"{name}/{cname}: transformers vs plain forward rel err {err}"
        last = len(ids) - 1
        scores = wf["score.weight"] @ h[last]
        hd = run_hf(model_default, ids)
        sd = (wf["score.weight"] @ hd[last])[0].item()
        rc = rel(sd, scores[0].item())
        print(f"  {cname:26s} {len(ids):4d} {scores[0].item():10.5f}  {rc:.3g}")
        if len(ids) >= 64:
            assert rc > 1e-3, f"{name}/{cname}: llama3 RoPE scaling barely matters ({rc})"
        out["cases"].append({
            "name": cname, "input_ids": ids, "last_pos": last, "gating_pos": -1,
            "score": scores[0].item(), "scores": floats(scores), "hidden_last": floats(h[last]),
        })
        if msgs is not None:
            out["cases"][-1]["messages"] = msgs
    for k, v in stats.items():
        print(f"  {k:22s} {np.mean(v):.3f}  (min {np.min(v):.3f})")
    return out


@torch.no_grad()
def verify_hf_load(dirpath, cfg_json, golden):
    """Load the written directory with transformers' own from_pretrained (the real
    loader: single file or sharded index, prefix handling) and compare with the
    golden: proves the layout is what Hugging Face reads."""
    import logging
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("transformers").setLevel(logging.ERROR)
    seqcls = cfg_json["architectures"][0] == "LlamaForSequenceClassification"
    cls = LlamaForSequenceClassification if seqcls else LlamaModel
    model = cls.from_pretrained(str(dirpath), dtype=torch.float32, attn_implementation="eager").eval()
    worst = 0.0
    for c in golden["cases"]:
        x = torch.tensor([c["input_ids"]])
        out = model(input_ids=x, attention_mask=torch.ones_like(x), use_cache=False)
        if seqcls:
            got, ref = out.logits[0].tolist(), c["scores"]
        else:
            got, ref = out.last_hidden_state[0, c["last_pos"]].tolist(), c["hidden_last"]
        err = max(abs(a - b) for a, b in zip(got, ref)) / max(max(abs(b) for b in ref), 1e-6)
        worst = max(worst, err)
    assert worst < 1e-5, f"{dirpath.name}: from_pretrained differs from golden by {worst}"
    print(f"  transformers {cls.__name__}.from_pretrained on the written files: max rel diff {worst:.2g}")


def dump_golden(path, g):
    """One case per line block; floats as Python repr (shortest exact round trip)."""
    head = {k: v for k, v in g.items() if k != "cases"}
    s = json.dumps(head, ensure_ascii=False)[:-1]
    parts = [json.dumps(c, ensure_ascii=False, separators=(",", ":")) for c in g["cases"]]
    s += ',\n "cases":[\n  ' + ",\n  ".join(parts) + "\n ]}\n"
    json.loads(s)
    Path(path).write_text(s, encoding="utf-8")


def verify_archive(path, name, expect):
    """Re-open the archive: file list, dtypes and shapes of every tensor."""
    with tarfile.open(path, "r:xz") as tar:
        names = sorted(m.name for m in tar.getmembers())
        assert names == sorted([name] + [f"{name}/{f}" for f in expect["files"]]), names
        with tempfile.TemporaryDirectory() as td:
            tar.extractall(td, filter="data")
            t = read_checkpoint(Path(td) / name)
            for k, (dt, shape) in expect["tensors"].items():
                assert k in t, f"{path}: {k} missing"
                assert t[k].dtype == dt and list(t[k].shape) == shape, (k, t[k].dtype, t[k].shape)
            assert set(t) == set(expect["tensors"]), set(t) ^ set(expect["tensors"])
            emb = t["model.embed_tokens.weight"].float()
            assert torch.unique(emb, dim=0).shape[0] == VOCAB, "embedding rows not distinct"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(REPO / "tests" / "fixtures"))
    ap.add_argument("--tokenizer", default=None,
                    help="Llama-3 tokenizer dir (default: extract tests/data/llama3-tokenizer.tar.xz)")
    args = ap.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        tok_dir = args.tokenizer
        if tok_dir is None:
            with tarfile.open(REPO / "tests" / "data" / "llama3-tokenizer.tar.xz", "r:xz") as tar:
                tar.extractall(work / "tok", filter="data")
            tok_dir = work / "tok" / "llama3-tokenizer"
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
        pattern = tokenizer.encode(GATING_PATTERN_TEXT, add_special_tokens=False)
        assert pattern == GATING_PATTERN_IDS, pattern
        cases = build_cases(tokenizer)
        for cname, ids, msgs in cases:
            assert PAD_ID not in ids and max(ids) < PAD_ID, cname

        gen = torch.Generator().manual_seed(SEED)
        armorm_w = backbone_weights(gen, n_kv_heads=2)
        armorm_w.update(armorm_head_weights(gen))
        armorm_w = to_saved_dtypes(armorm_w)

        gen2 = torch.Generator().manual_seed(SEED + 7)
        rm_w = backbone_weights(gen2, n_kv_heads=1)
        rm_w["score.weight"] = torch.randn(1, HIDDEN, generator=gen2) * (2.0 / math.sqrt(HIDDEN))
        rm_w = {k: v.to(torch.bfloat16).contiguous() for k, v in rm_w.items()}

        models = [
            ("tiny-armorm", armorm_config(), armorm_w, 1),
            ("tiny-armorm-sharded", armorm_config(), armorm_w, 3),
            ("tiny-rm-llama3", rm_llama3_config(), rm_w, 1),
        ]
        goldens = {}
        for name, cfg, w, n_shards in models:
            d = work / name
            write_checkpoint(d, cfg, w, n_shards)
            if cfg["architectures"][0] == "LlamaForRewardModelWithGating":
                g = golden_armorm(name, d, cfg, cases, pattern)
            else:
                g = golden_seqcls(name, d, cfg, cases)
            verify_hf_load(d, cfg, g)
            tar_path = out_dir / f"{name}.tar.xz"
            write_tar_xz(tar_path, d, name)
            files = sorted(p.name for p in d.iterdir())
            verify_archive(tar_path, name, {
                "files": files,
                "tensors": {k: (v.dtype, list(v.shape)) for k, v in w.items()},
            })
            dump_golden(out_dir / f"{name}.golden.json", g)
            goldens[name] = g
            print(f"  wrote {tar_path} ({tar_path.stat().st_size} bytes): {', '.join(files)}")

        a, b = goldens["tiny-armorm"], goldens["tiny-armorm-sharded"]
        assert a["cases"] == b["cases"], "sharded golden differs from single-file golden"
        print("\nall checks passed")


if __name__ == "__main__":
    sys.exit(main())
