#!/usr/bin/env python3
"""count_removed.py: a static count of the stream operations (kernel
launches, GEMMs, device copies) and the bytes that issue 20 item 1 removed
from the CUDA forward pass (host/cuda/cuda_backend.c), before and after.
The counts are read off the code, not measured on a GPU.

Usage: count_removed.py [--layers 32 --hidden 4096 --heads 32 --kv-heads 8
                         --head-dim 128 --prompt 512 --responses 16
                         --response-len 256]
Prints, for Llama-3-8B by default: the stream operations per layer and per
forward (plain and prompt-shared batches), the bytes moved per token that
are gone, and for one best-of-N group the expanded attention rows, copies
and causal key-row pairs that prompt sharing no longer does.
Python 3 standard library only."""
import argparse


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--layers", type=int, default=32)
    ap.add_argument("--hidden", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--kv-heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=128)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--responses", type=int, default=16)
    ap.add_argument("--response-len", type=int, default=256)
    a = ap.parse_args()
    L, H = a.layers, a.hidden
    q = a.heads * a.head_dim
    kv = a.kv_heads * a.head_dim
    B = 2  # bytes per bf16

    # stream operations per layer but the last (GEMMs, kernels, copies)
    before = {"GEMM": 4, "kernel": 5, "copy (cudaMemcpy2DAsync q, k, v)": 3}
    before_shared_extra = {"kernel (gather q, k, v to the expanded layout; scatter back)": 4}
    after = {"GEMM": 4, "kernel": 5}
    nb, nbs, na = sum(before.values()), sum(before.values()) + 4, sum(after.values())
    # last layer: gathers of the head rows; head: fp32 gather + head
    last_before, last_after = 4, 1  # 2 gathers + 2 copies -> 1 two-source gather
    head_before, head_after = 2, 1  # gather_rows_f32 + head -> head
    pre = 2  # embed + first rmsnorm
    print("Stream operations (kernel launches + GEMMs + device copies), static count")
    print(f"  per layer, plain batch:  {nb} -> {na}  (the 3 cudaMemcpy2DAsync of q, k, v)")
    print(f"  per layer, shared batch: {nbs} -> {na}  (the copies, 3 gathers to and 1 from the "
          "expanded layout)")
    print(f"  last layer's head rows:  {last_before} -> {last_after};  head: {head_before} -> "
          f"{head_after}")
    fb = pre + L * nb + last_before + head_before
    fbs = pre + L * nbs + last_before + head_before
    fa = pre + L * na + last_after + head_after
    print(f"  per forward ({L} layers): plain {fb} -> {fa} ({fb - fa} fewer), "
          f"shared {fbs} -> {fa} ({fbs - fa} fewer)")
    print(f"  host->device uploads of a shared batch: 3 row maps -> 1 prefix_of array")

    split = 2 * (q + 2 * kv) * B  # read + write of q, k, v
    print("\nBytes moved per token that are gone (bf16, read + write)")
    print(f"  q/k/v split copies: {split} B per token per layer, {split * L / 1e6:.3f} MB per "
          f"token per forward")
    last = 2 * (q + H) * B  # the two device copies of the gathered rows
    head = H * 2 * B        # xn written in bf16 and read back by gather_rows_f32
    print(f"  last layer: {last} B per head row (2 copies of the gathered attention and "
          f"residual rows)")
    print(f"  head: {head} B per head row (bf16 normed rows written, then read back to fp32)")

    P, N, R = a.prompt, a.responses, a.response_len
    n_unique = P + N * R
    n_exp = N * (P + R)
    gather = (n_exp * 2 * (q + 2 * kv) + n_unique * 2 * q) * B
    pairs_before = N * (P * (P + 1) // 2 + R * P + R * (R + 1) // 2)
    pairs_after = P * (P + 1) // 2 + N * (R * P + R * (R + 1) // 2)
    flop_pair = 4 * a.head_dim * a.heads  # q.k and p.v, 2 FLOP per multiply-add
    print(f"\nPrompt sharing, one best-of-{N} group (prompt {P}, responses {R} tokens each)")
    print(f"  attention query rows per layer: {n_exp} -> {n_unique}")
    print(f"  gather/scatter bytes per layer: {gather / 1e6:.1f} MB -> 0 "
          f"({gather * L / 1e9:.2f} GB per forward)")
    print(f"  causal key-row pairs per layer: {pairs_before} -> {pairs_after} "
          f"({(pairs_before - pairs_after) * flop_pair * L / 1e12:.3f} TFLOP per forward fewer; "
          f"the GEMMs: {n_unique * 2 * 6.98e9 / 1e12:.1f} TFLOP)")


if __name__ == "__main__":
    main()
