"""The peers users would run instead of virnuc, timed on the same sequences (bench/engine.ts).

- ESM-2: Hugging Face transformers EsmModel, FP16, SDPA attention, length-sorted padded batches
  (the real configuration from the model directory's config.json, random weights: throughput
  does not depend on weight values).
- DNABERT-S as VirNucPro runs it: FP32, sorted padded batches; the published remote code
  `bert_layers.py` when --dnabert-remote-code is given, else the PyTorch reference
  scripts/golden/dnabert_ref.py (the JSON says which).
- The cuBLAS ceiling: FP16 GEMMs at ESM-2 3B shapes, and the GEMM-only token rate of 36 layers.

Usage: python3 scripts/bench/peers.py --esm DIR --dnabert DIR --out peers.json
         --workload LEN:PROTEINS.txt:NUCLEOTIDES.txt [...]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "golden"))
import dnabert_ref  # noqa: E402

ESM_VOCAB = "<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - <null_1> <mask>".split()
ESM_ID = {t: i for i, t in enumerate(ESM_VOCAB)}


def timed(fn, repeats: int):
    fn()  # warm-up
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), (max(times) - min(times)) / statistics.median(times)


def sorted_batches(lengths, budget):
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches, cur = [], []
    for i in order:
        longest = lengths[cur[0]] if cur else lengths[i]
        if cur and longest * (len(cur) + 1) > budget:
            batches.append(cur)
            cur = []
        cur.append(i)
    if cur:
        batches.append(cur)
    return batches


def pad(ids, idx, pad_id, device):
    L = max(len(ids[i]) for i in idx)
    x = torch.full((len(idx), L), pad_id, dtype=torch.long)
    m = torch.zeros((len(idx), L), dtype=torch.long)
    for r, i in enumerate(idx):
        x[r, : len(ids[i])] = torch.tensor(ids[i])
        m[r, : len(ids[i])] = 1
    return x.to(device), m.to(device)


def esm_peer(esm_dir, workloads, budget, repeats):
    from transformers import EsmConfig, EsmModel

    cfg = EsmConfig.from_pretrained(esm_dir)
    cfg._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = EsmModel(cfg, add_pooling_layer=False).to("cuda", torch.float16).eval()
    rows = []
    for L, proteins, _ in workloads:
        ids = [[0] + [ESM_ID.get(c, 3) for c in p] + [2] for p in proteins]
        lengths = [len(x) for x in ids]
        batches = [pad(ids, b, 1, "cuda") for b in sorted_batches(lengths, budget)]
        tokens = sum(lengths)

        @torch.inference_mode()
        def run():
            for x, m in batches:
                h = model(input_ids=x, attention_mask=m).last_hidden_state
                mm = m.clone()
                mm[:, 0] = 0
                mm[torch.arange(len(m)), m.sum(1) - 1] = 0
                (h * mm[..., None]).sum(1) / mm.sum(1, keepdim=True)

        t, spread = timed(run, repeats)
        rows.append({"read_length": L, "sequences": len(ids), "tokens": tokens, "seconds": t, "spread": spread,
                     "tokens_per_s": tokens / t, "seqs_per_s": len(ids) / t, "padded_budget": budget})
        print(f"peers: HF EsmModel fp16 sdpa L={L}: {tokens / t / 1e3:.1f} k tokens/s", flush=True)
    del model
    torch.cuda.empty_cache()
    return rows


def dnabert_peer(dna_dir, workloads, budget, repeats, remote_code):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(os.path.join(dna_dir, "tokenizer.json"))
    tok.no_padding()
    tok.no_truncation()
    cfg = json.load(open(os.path.join(dna_dir, "config.json")))
    used = "scripts/golden/dnabert_ref.py (PyTorch reference)"
    if remote_code:
        spec = importlib.util.spec_from_file_location("bert_layers", remote_code)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        from transformers import BertConfig

        model = mod.BertModel(BertConfig(**cfg)).to("cuda").eval()
        used = f"bert_layers.py remote code ({remote_code})"
        forward = lambda x, m: model(x, attention_mask=m)[0]  # noqa: E731
    else:
        model = dnabert_ref.DnabertRef(dnabert_ref.DnabertConfig.from_dict(cfg))
        torch.manual_seed(0)
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(0, 0.02)
        model = model.to("cuda").eval()
        forward = lambda x, m: model(x, attention_mask=m)  # noqa: E731
    rows = []
    for L, _, nucleotides in workloads:
        ids = [e.ids for e in tok.encode_batch(nucleotides)]
        lengths = [len(x) for x in ids]
        batches = [pad(ids, b, 3, "cuda") for b in sorted_batches(lengths, budget)]
        tokens = sum(lengths)

        @torch.inference_mode()
        def run():
            for x, m in batches:
                h = forward(x, m)
                (h * m[..., None]).sum(1) / m.sum(1, keepdim=True)

        t, spread = timed(run, repeats)
        rows.append({"read_length": L, "sequences": len(ids), "tokens": tokens, "seconds": t, "spread": spread,
                     "tokens_per_s": tokens / t, "seqs_per_s": len(ids) / t, "padded_budget": budget, "code": used})
        print(f"peers: DNABERT-S fp32 ({used}) L={L}: {tokens / t / 1e3:.1f} k tokens/s", flush=True)
    return rows


def gemm_ceiling(hidden=2560, inter=10240, layers=36, repeats=20):
    out = {}
    shapes = {"qkv": (hidden, 3 * hidden), "out": (hidden, hidden), "fc1": (hidden, inter), "fc2": (inter, hidden)}
    for M in (8192, 16384, 32768):
        per_layer = 0.0
        for name, (k, n) in shapes.items():
            a = torch.randn(M, k, device="cuda", dtype=torch.float16)
            b = torch.randn(k, n, device="cuda", dtype=torch.float16)
            t, _ = timed(lambda: [a @ b for _ in range(repeats)], 3)
            t /= repeats
            out[f"M{M}_{name}_tflops"] = 2 * M * k * n / t / 1e12
            per_layer += t
        out[f"M{M}_gemm_only_tokens_per_s"] = M / (per_layer * layers)
        flops = 2 * M * sum(k * n for k, n in shapes.values()) * layers
        out[f"M{M}_gemm_only_tflops"] = flops / (per_layer * layers) / 1e12
    print(f"peers: GEMM ceiling {json.dumps({k: round(v, 1) for k, v in out.items()})}", flush=True)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--esm", required=True)
    ap.add_argument("--dnabert", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--workload", action="append", default=[])
    ap.add_argument("--esm-budget", type=int, default=65536)
    ap.add_argument("--dnabert-budget", type=int, default=65536)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dnabert-remote-code")
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    workloads = []
    for w in a.workload:
        L, pf, nf = w.split(":")
        workloads.append((int(L), open(pf).read().split(), open(nf).read().split()))
    res = {
        "torch": torch.__version__,
        "gpu": torch.cuda.get_device_name(0),
        "gemm": gemm_ceiling(),
        "esm": esm_peer(a.esm, workloads, a.esm_budget, a.repeats),
        "dnabert": dnabert_peer(a.dnabert, workloads, a.dnabert_budget, a.repeats, a.dnabert_remote_code),
    }
    import transformers

    res["transformers"] = transformers.__version__
    json.dump(res, open(a.out, "w"), indent=1)


if __name__ == "__main__":
    main()
