#!/usr/bin/env python3
"""gen_train_golden.py — golden data for armo train (tests/train/test_train_*.c).

Writes, under tests/data/train/:

  ridge-emb/          an armo embeddings directory (embed_store.h layout) of
                      synthetic rated rows: h_last [n, 1, H], labels [n, K]
                      with NaNs (one objective labelled on fewer rows than H)
  ridge.golden.json   per objective: scikit-learn Ridge(fit_intercept=False)
                      validation MSE for each penalty of the grid on the split
                      rule of host/train/split.h, the chosen penalty (first
                      minimum), and the weights refit on every labelled row
  debias-ref/         embeddings of a reference set (h_last [n, 1, H])
  debias-head/        a head directory with regression.{json,safetensors}
  debias.golden.json  the recipe's reward transform matrix, computed with
                      NumPy + scipy.stats.spearmanr, for two verbosity
                      objectives / thresholds
  gating-pairs/, gating-head/, gating-init.safetensors, gating.golden.json
                      50 steps of the gating loop in PyTorch (the reference
                      GatingNetwork, BCE-with-logits on the debiased reward
                      difference, AdamW + CosineAnnealingLR, batches drawn by
                      the rule of host/train/gating.h, no dropout) from the
                      init it writes: the loss of every step
(The planted-gating case of tests/train/test_train_gating.c builds its data
in C: 20 000 pairs are too many to commit.)

Needs numpy, scipy, scikit-learn, safetensors (not needed by CI: the outputs
are committed).  Run: python3 tools/gen_train_golden.py [ROOT]
"""
import json
import os
import sys

import numpy as np
import torch
from safetensors.numpy import save_file
from scipy.stats import spearmanr
from sklearn.linear_model import Ridge

M64 = (1 << 64) - 1
ALPHAS = [10.0 ** k for k in range(-4, 5)]


def splitmix_u(seed, i):
    """host/train/split.h: armo_split_u(seed, i)."""
    z = (seed + (i + 1) * 0x9E3779B97F4A7C15) & M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    z ^= z >> 31
    return (z >> 11) * (1.0 / 9007199254740992.0)


def write_embeddings(d, h_last, labels, label_names):
    os.makedirs(d, exist_ok=True)
    n = h_last.shape[0]
    t = {"h_last": h_last.astype(np.float32), "h_prompt": h_last.astype(np.float32),
         "line": np.arange(1, n + 1, dtype=np.int64)}
    if label_names:
        t["labels"] = labels.astype(np.float32)
    save_file(t, os.path.join(d, "embeddings-00000.safetensors"))
    idx = {"format": "armo-embeddings/1", "model": "synthetic", "architecture": "synthetic",
           "hidden_size": int(h_last.shape[2]), "sequences": ["response"],
           "labels": label_names, "rows": n, "errors": 0,
           "shards": [{"file": "embeddings-00000.safetensors", "rows": n}]}
    with open(os.path.join(d, "embeddings.json"), "w") as f:
        json.dump(idx, f, indent=1)


def ridge_case(root):
    rng = np.random.default_rng(15)
    n, H = 400, 24
    scales = np.exp(rng.normal(0, 1.0, H))
    X = (rng.normal(size=(n, H)) * scales).astype(np.float32)
    names = ["clean", "noisy", "few-rows", "weak"]
    Y = np.full((n, len(names)), np.nan)
    w0 = rng.normal(size=H)
    Y[:, 0] = X @ w0 + 0.01 * rng.normal(size=n)
    Y[:, 1] = X @ (0.05 * rng.normal(size=H)) + 3.0 * rng.normal(size=n)
    Y[rng.random(n) < 0.3, 1] = np.nan
    few = rng.choice(n, 30, replace=False)
    Y[few, 2] = X[few] @ rng.normal(size=H) + 0.5 * rng.normal(size=30)
    Y[:, 3] = X @ (0.3 * rng.normal(size=H) / scales) + 1.0 * rng.normal(size=n)
    Y[rng.random(n) < 0.1, 3] = np.nan
    Y = Y.astype(np.float32)
    seed, frac = 7, 0.2
    is_val = np.array([splitmix_u(seed, i) < frac for i in range(n)])
    Xd, Yd = X.astype(np.float64), Y.astype(np.float64)
    fits = []
    for k, name in enumerate(names):
        lab = ~np.isnan(Yd[:, k])
        tr, va = lab & ~is_val, lab & is_val
        mse = []
        for a in ALPHAS:
            m = Ridge(alpha=a, fit_intercept=False, solver="cholesky", tol=1e-12)
            m.fit(Xd[tr], Yd[tr, k])
            mse.append(float(np.mean((m.predict(Xd[va]) - Yd[va, k]) ** 2)))
        best = int(np.argmin(mse))
        srt = sorted(mse)
        assert srt[1] - srt[0] > 1e-6 * srt[0], f"{name}: near tie in the grid"
        m = Ridge(alpha=ALPHAS[best], fit_intercept=False, solver="cholesky", tol=1e-12)
        m.fit(Xd[lab], Yd[lab, k])
        fits.append({"objective": name, "alpha": ALPHAS[best], "val_mse": mse,
                     "n_train": int(tr.sum()), "n_val": int(va.sum()),
                     "weight": m.coef_.tolist()})
        print(f"ridge {name}: alpha {ALPHAS[best]:g}, n_train {tr.sum()}, n_val {va.sum()}")
    write_embeddings(os.path.join(root, "ridge-emb"), X[:, None, :], Y, names)
    g = {"generator": "tools/gen_train_golden.py (scikit-learn Ridge(fit_intercept=False))",
         "seed": seed, "val_frac": frac, "alphas": ALPHAS, "hidden": H, "rows": n,
         "split_is_val": [int(v) for v in is_val], "fits": fits}
    with open(os.path.join(root, "ridge.golden.json"), "w") as f:
        json.dump(g, f)


def debias_ref(R, v, grid, thr):
    """The recipe, straightforwardly, with scipy's Spearman."""
    K = R.shape[1]
    pen = np.ones(K)
    for j in range(K):
        if j == v:
            continue
        for p in grid:
            rho = spearmanr(R[:, j] - p * R[:, v], R[:, v]).correlation
            if rho <= thr:
                pen[j] = p
                break
    T = np.eye(K)
    T[v, :] -= pen
    return T, pen


def debias_case(root):
    rng = np.random.default_rng(150)
    n, H = 300, 16
    names = ["a", "b", "helpsteer-verbosity", "c", "d", "e"]
    X = rng.normal(size=(n, H)).astype(np.float32)
    wv = rng.normal(size=H)
    coup = {0: 0.0, 1: 0.3, 3: 0.9, 4: 2.0, 5: 0.12}
    W = np.zeros((len(names), H))
    W[2] = wv
    for j, c in coup.items():
        W[j] = 0.6 * rng.normal(size=H) + c * wv
    W = W.astype(np.float32)
    head = os.path.join(root, "debias-head")
    os.makedirs(head, exist_ok=True)
    save_file({"regression_layer.weight": W}, os.path.join(head, "regression.safetensors"))
    with open(os.path.join(head, "regression.json"), "w") as f:
        json.dump({"objectives": names, "hidden_size": H}, f, indent=1)
    write_embeddings(os.path.join(root, "debias-ref"), X[:, None, :], None, [])
    R = X.astype(np.float64) @ W.astype(np.float64).T
    grid = [0, .01, .025, .05, .075, .1, .125, .15, .2, .25] + [i * 0.05 for i in range(6, 20)]
    cases = []
    for verb, thr in (("helpsteer-verbosity", 0.03), ("b", 0.1)):
        v = names.index(verb)
        T, pen = debias_ref(R, v, grid, thr)
        cases.append({"verbosity": verb, "threshold": thr, "penalty": pen.tolist(),
                      "transform": T.tolist()})
        print(f"debias {verb} {thr}: penalties {pen.tolist()}")
    with open(os.path.join(root, "debias.golden.json"), "w") as f:
        json.dump({"generator": "tools/gen_train_golden.py (NumPy + scipy.stats.spearmanr)",
                   "objectives": names, "cases": cases}, f)


class GatingNetwork(torch.nn.Module):
    """The reference architecture (ArmoRM's modeling code), dropout off."""

    def __init__(self, H, K, G, n_hidden, temperature):
        super().__init__()
        dims = [H] + [G] * n_hidden + [K]
        self.layers = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(dims, dims[1:]))
        self.logit_scale = torch.nn.Parameter(torch.ones(1))
        self.temperature = temperature

    def forward(self, x):
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < len(self.layers) - 1:
                x = torch.relu(x)
        return torch.softmax(x / self.temperature, dim=1) * self.logit_scale[0]


def state(net):
    t = {f"gating.layers.{i}.weight": l.weight.detach().numpy().copy() for i, l in enumerate(net.layers)}
    t.update({f"gating.layers.{i}.bias": l.bias.detach().numpy().copy() for i, l in enumerate(net.layers)})
    t["gating.logit_scale"] = net.logit_scale.detach().numpy().copy()
    return t


def write_pairs(d, h_prompt, h_last):
    os.makedirs(d, exist_ok=True)
    n, H = h_prompt.shape[0], h_prompt.shape[2]
    save_file({"h_last": h_last.astype(np.float32), "h_prompt": h_prompt.astype(np.float32),
               "line": np.arange(1, n + 1, dtype=np.int64)},
              os.path.join(d, "embeddings-00000.safetensors"))
    with open(os.path.join(d, "embeddings.json"), "w") as f:
        json.dump({"format": "armo-embeddings/1", "model": "synthetic", "architecture": "synthetic",
                   "hidden_size": H, "sequences": ["chosen", "rejected"], "labels": [],
                   "rows": n, "errors": 0,
                   "shards": [{"file": "embeddings-00000.safetensors", "rows": n}]}, f, indent=1)


def write_head(d, W, T, names):
    os.makedirs(d, exist_ok=True)
    save_file({"regression_layer.weight": W.astype(np.float32)}, os.path.join(d, "regression.safetensors"))
    save_file({"reward_transform_matrix": T.astype(np.float32)}, os.path.join(d, "debias.safetensors"))
    with open(os.path.join(d, "regression.json"), "w") as f:
        json.dump({"objectives": names, "hidden_size": int(W.shape[1])}, f, indent=1)


def split_rows(n, seed, frac):
    va = [i for i in range(n) if splitmix_u(seed, i) < frac]
    tr = [i for i in range(n) if splitmix_u(seed, i) >= frac]
    return tr, va


def debiased_diff(h_last, W, T):
    Wt, Tt = torch.from_numpy(W), torch.from_numpy(T)
    hl = torch.from_numpy(h_last)
    r = hl.reshape(-1, hl.shape[2]) @ Wt.T
    r = r.reshape(hl.shape[0], 2, -1)
    return (r[:, 0] - r[:, 1]) @ Tt


def gating_loop_case(root):
    """50 steps of the loop in PyTorch from an init it writes."""
    rng = np.random.default_rng(1500)
    n, H, K, G, nh, T_, B, steps, lr, seed, frac = 200, 12, 5, 16, 3, 10.0, 32, 50, 1e-2, 3, 0.2
    hp = rng.normal(size=(n, 1, H)).astype(np.float32).repeat(2, axis=1)
    hl = rng.normal(size=(n, 2, H)).astype(np.float32)
    W = rng.normal(size=(K, H)).astype(np.float32)
    T = np.eye(K, dtype=np.float32)
    T[2, :] -= np.array([0.1, 0.3, 1.0, 0.0, 0.5], dtype=np.float32)
    write_pairs(os.path.join(root, "gating-pairs"), hp, hl)
    write_head(os.path.join(root, "gating-head"), W, T, ["o0", "o1", "o2", "o3", "o4"])
    torch.manual_seed(0)
    net = GatingNetwork(H, K, G, nh, T_)
    save_file(state(net), os.path.join(root, "gating-init.safetensors"))
    d = debiased_diff(hl, W, T)
    X = torch.from_numpy(hp[:, 0].copy())
    tr, va = split_rows(n, seed, frac)
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=0.0)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    losses = []
    bseed = seed ^ 0xB47C4
    for t in range(steps):
        rows = [tr[int(splitmix_u(bseed, t * B + b) * len(tr))] for b in range(B)]
        g = net(X[rows])
        x = (g * d[rows]).sum(dim=1)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x, torch.ones_like(x))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        acc = float(((net(X[va]) * d[va]).sum(dim=1) > 0).float().mean())
    print(f"gating loop: loss {losses[0]:.6f} -> {losses[-1]:.6f}, val acc {acc:.4f}")
    with open(os.path.join(root, "gating.golden.json"), "w") as f:
        json.dump({"generator": "tools/gen_train_golden.py (PyTorch GatingNetwork, AdamW, "
                   "CosineAnnealingLR)", "hidden_dim": G, "n_hidden": nh, "temperature": T_,
                   "batch": B, "steps": steps, "lr": lr, "seed": seed, "val_frac": frac,
                   "losses": losses, "val_acc": acc}, f)


def main():
    root = os.path.join(sys.argv[1] if len(sys.argv) > 1 else
                        os.path.join(os.path.dirname(__file__), ".."), "tests", "data", "train")
    os.makedirs(root, exist_ok=True)
    ridge_case(root)
    debias_case(root)
    gating_loop_case(root)


if __name__ == "__main__":
    main()
