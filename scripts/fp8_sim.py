#!/usr/bin/env python3
"""Simulates --precision fp8 schemes for ESM-2 in float64 numpy (no GPU), against the FP32 forward.

Used to choose how FP8 treats outlier channels (docs/cuda-notes.md, "FP8 with outlier channels").
The model is an ESM-2-shaped pre-LN transformer with rotary attention and exact GELU, random weights
drawn as vn_cuda_check draws them (cuda/tests/cuda_check.cpp), optionally with outlier channels: the
same 6 hidden channels with LayerNorm gains 20-50x the others in every layer. E4M3 rounding is
emulated exactly (round to nearest even, saturating at 448, subnormals below 2^-6); GEMMs use one
scale per weight row and one per token, as the CUDA backend does.

Schemes (--schemes, comma list): plain (all four GEMMs in E4M3); ext (+ hi/lo K extension of the
outlier channels in QKV and FC1); ext+rows (+ exact outlier rows in out and FC2); ext+wrows (+ exact
outlier weight rows only, activations still E4M3); ext+rows-out / ext+rows-fc2 (one of the two).

  python3 scripts/fp8_sim.py --config 35M --seqs 24 --outliers --schemes plain,ext,ext+rows
Needs numpy and scipy. A 35M run of 24 sequences takes ~1-2 minutes per scheme on 2 cores.
"""
import argparse

import numpy as np
from scipy.special import erf

CONFIGS = {"8M": (6, 320, 20, 1280), "35M": (12, 480, 20, 1920), "650M": (33, 1280, 20, 5120)}


def e4m3(x):
    e = np.maximum(np.floor(np.log2(np.maximum(np.abs(x), 1e-30))), -6)
    step = 2.0 ** (e - 3)
    return np.clip(np.round(x / step) * step, -448, 448)  # np.round: ties to even


def quantize_rows(x):
    amax = np.abs(x).max(axis=1, keepdims=True)
    scale = np.where(amax > 0, amax / 448.0, 1.0)
    return e4m3(x / scale), scale


def layernorm(x, g, b, eps=1e-5):
    m = x.mean(-1, keepdims=True)
    v = ((x - m) ** 2).mean(-1, keepdims=True)
    return (x - m) / np.sqrt(v + eps) * g + b


def make_model(layers, hidden, heads, inter, outliers, seed=1):
    r = np.random.default_rng(seed)
    sym = lambda shape, a: (r.random(shape) * 2 - 1) * a
    lin = lambda o, i: sym((o, i), 0.5 * np.sqrt(3.0 / i))
    channels = sorted({(i * 977 + 13) % hidden for i in range(6)})

    def gain():
        g = 1 + sym(hidden, 0.1)
        if outliers:
            g[channels] *= 20 + 30 * r.random(len(channels))
        return g

    model = {"emb": sym((33, hidden), 0.5), "heads": heads, "outliers": channels, "layers": []}
    for _ in range(layers):
        model["layers"].append(
            dict(g1=gain(), b1=sym(hidden, 0.05), qkv=lin(3 * hidden, hidden), bqkv=sym(3 * hidden, 0.02),
                 out=lin(hidden, hidden), bout=sym(hidden, 0.02), g2=gain(), b2=sym(hidden, 0.05),
                 fc1=lin(inter, hidden), bfc1=sym(inter, 0.02), fc2=lin(hidden, inter), bfc2=sym(hidden, 0.02)))
    model["gf"], model["bf"] = 1 + sym(hidden, 0.1), sym(hidden, 0.05)
    return model


def gemm(x, w, kind, scheme, channels):
    """x (tokens, k) times w (n, k)^T under a scheme (None = exact)."""
    if scheme is None:
        return x @ w.T
    xq, t = quantize_rows(x)
    wq, s = quantize_rows(w)
    y = (xq @ wq.T) * t * s.T
    if kind in ("qkv", "fc1") and scheme.get("ext"):
        xh, wh = xq[:, channels], wq[:, channels]
        xl = e4m3(x[:, channels] / t - xh)
        wl = e4m3(w[:, channels] / s - wh)
        y += (xh @ wl.T + xl @ wh.T) * t * s.T
    if kind in scheme.get("rows", ()):
        y[:, channels] = x @ w[channels].T
    if kind in scheme.get("wrows", ()):
        y[:, channels] = (xq * t) @ w[channels].T
    return y


def rotary(x, d):
    inv = 1.0 / 10000 ** (np.arange(0, d, 2) / d)
    f = np.outer(np.arange(x.shape[1]), inv)
    e = np.concatenate([f, f], -1)
    rot = np.concatenate([-x[..., d // 2:], x[..., : d // 2]], -1)
    return x * np.cos(e) + rot * np.sin(e)


def forward(model, seq, scheme):
    ch = model["outliers"]
    x = model["emb"][seq].astype(np.float64)
    T, H = x.shape
    nh = model["heads"]
    d = H // nh
    split = lambda a: a.reshape(T, nh, d).transpose(1, 0, 2)
    for L in model["layers"]:
        qkv = gemm(layernorm(x, L["g1"], L["b1"]), L["qkv"], "qkv", scheme, ch) + L["bqkv"]
        q, k, v = split(qkv[:, :H] * d ** -0.5), split(qkv[:, H:2 * H]), split(qkv[:, 2 * H:])
        a = rotary(q, d) @ rotary(k, d).transpose(0, 2, 1)
        a = np.exp(a - a.max(-1, keepdims=True))
        a /= a.sum(-1, keepdims=True)
        ctx = (a @ v).transpose(1, 0, 2).reshape(T, H)
        x = x + gemm(ctx, L["out"], "out", scheme, ch) + L["bout"]
        h = gemm(layernorm(x, L["g2"], L["b2"]), L["fc1"], "fc1", scheme, ch) + L["bfc1"]
        x = x + gemm(0.5 * h * (1 + erf(h / np.sqrt(2))), L["fc2"], "fc2", scheme, ch) + L["bfc2"]
    return layernorm(x, model["gf"], model["bf"])[1:-1].mean(0)


SCHEMES = {
    "plain": {},
    "ext": {"ext": 1},
    "ext+rows": {"ext": 1, "rows": ("out", "fc2")},
    "ext+wrows": {"ext": 1, "wrows": ("out", "fc2")},
    "ext+rows-out": {"ext": 1, "rows": ("out",)},
    "ext+rows-fc2": {"ext": 1, "rows": ("fc2",)},
}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", choices=sorted(CONFIGS), default="35M")
    p.add_argument("--seqs", type=int, default=24)
    p.add_argument("--outliers", action="store_true")
    p.add_argument("--schemes", default="plain,ext,ext+rows")
    a = p.parse_args()
    model = make_model(*CONFIGS[a.config], a.outliers)
    r = np.random.default_rng(7)
    seqs = [np.concatenate([[0], r.integers(4, 24, n), [2]]) for n in r.integers(20, 170, a.seqs)]
    ref = [forward(model, s, None) for s in seqs]
    for name in a.schemes.split(","):
        cos = []
        for s, want in zip(seqs, ref):
            got = forward(model, s, SCHEMES[name])
            cos.append(float(got @ want / np.linalg.norm(got) / np.linalg.norm(want)))
        print(f"{a.config} outliers={a.outliers} {name:14s} cosine min {min(cos):.5f} mean {np.mean(cos):.5f}", flush=True)


if __name__ == "__main__":
    main()
