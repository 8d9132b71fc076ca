"""References for scripts/device/fullsize.ts: Hugging Face EsmModel FP32 and the PyTorch
DNABERT-S FP32 reference on the same token ids and random weights; prints and writes the
cosine summary (goal: min >= 0.9995, mean >= 0.99995, no NaN/Inf; ESM-2 in fp8: min >= 0.995)."""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "golden"))
import dnabert_ref  # noqa: E402
import make_golden  # noqa: E402


def ragged(d, name):
    ids = np.fromfile(os.path.join(d, f"{name}_ids.bin"), dtype=np.int32)
    offs = np.fromfile(os.path.join(d, f"{name}_offsets.bin"), dtype=np.int32)
    return [ids[offs[i]:offs[i + 1]].tolist() for i in range(len(offs) - 1)]


def stats(ours, ref, lengths):
    """Cosine summary, plus where the tail is: the 10 worst sequences and min/mean by token count."""
    ours = torch.from_numpy(ours).double()
    ref = ref.double()
    cos = torch.nn.functional.cosine_similarity(ours, ref, dim=1)
    n = torch.tensor(lengths)
    worst = [{"index": int(i), "tokens": int(n[i]), "cos": cos[i].item()} for i in torch.argsort(cos)[:10].tolist()]
    by_tokens = []
    for lo, hi in ((0, 20), (20, 40), (40, 60), (60, 100), (100, 1 << 30)):
        sel = cos[(n >= lo) & (n < hi)]
        if sel.numel():
            by_tokens.append({"tokens": f"{lo}-{hi - 1}" if hi < (1 << 30) else f"{lo}+", "count": sel.numel(),
                              "min_cos": sel.min().item(), "mean_cos": sel.mean().item()})
    return {"min_cos": cos.min().item(), "mean_cos": cos.mean().item(), "max_abs": (ours - ref).abs().max().item(),
            "nonfinite": int((~torch.isfinite(ours)).sum().item()), "worst": worst, "by_tokens": by_tokens}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    res = {"meta": meta}
    # ESM-2: the Hub-layout safetensors into transformers EsmModel, FP32.
    from safetensors.torch import load_file

    sd = load_file(os.path.join(meta["esm"], "model.safetensors"))
    hub = {}
    for k, v in sd.items():
        k = k[4:] if k.startswith("esm.") else k
        if k.startswith("lm_head.") or "position" in k:
            continue
        hub[k] = v.float()
    inv = next(v for k, v in hub.items() if k.endswith("inv_freq"))
    model, _ = make_golden.hf_esm_from_state(hub, inv, meta["esm"], "sdpa")
    model = model.to("cuda", torch.float32)
    ids = ragged(a.dir, "esm")
    outs = []
    with torch.no_grad():
        for s in range(0, len(ids), 256):
            chunk = ids[s:s + 256]
            x, m = make_golden.pad_esm(chunk)
            h = make_golden.hf_esm_hidden(model, x.cuda(), m.cuda()).float()
            outs.extend(make_golden.esm_pool(h[i], len(chunk[i])) for i in range(len(chunk)))
    ref = torch.stack(outs).cpu()
    ours = np.fromfile(os.path.join(a.dir, "esm_emb.bin"), dtype=np.float32).reshape(len(ids), -1)
    res["esm"] = stats(ours, ref, [len(t) for t in ids])
    del model
    torch.cuda.empty_cache()
    # DNABERT-S: the PyTorch reference, FP32.
    dm = dnabert_ref.load_dnabert(meta["dnabert"], device="cuda", dtype=torch.float32)
    ids = ragged(a.dir, "dnabert")
    ref = dnabert_ref.embed(dm, ids, batch_size=256).float().cpu()
    ours = np.fromfile(os.path.join(a.dir, "dnabert_emb.bin"), dtype=np.float32).reshape(len(ids), -1)
    res["dnabert"] = stats(ours, ref, [len(t) for t in ids])
    # Goals: FP16 min >= 0.9995 and mean >= 0.99995; FP8 (ESM-2 only) min >= 0.995.
    fp8 = meta.get("precision") == "fp8"
    goal = {"esm": (0.995, 0.0) if fp8 else (0.9995, 0.99995), "dnabert": (0.9995, 0.99995)}
    ok = all(res[k]["min_cos"] >= goal[k][0] and res[k]["mean_cos"] >= goal[k][1] and res[k]["nonfinite"] == 0 for k in ("esm", "dnabert"))
    res["precision"] = meta.get("precision")
    res["outliers"] = meta.get("outliers", False)
    res["pass"] = ok
    json.dump(res, open(os.path.join(a.dir, "fullsize-summary.json"), "w"), indent=1)
    brief = {k: {f: res[k][f] for f in ("min_cos", "mean_cos", "max_abs", "nonfinite")} for k in ("esm", "dnabert")}
    print("fullsize summary:", json.dumps({**brief, "pass": res["pass"]}), flush=True)
    print("fullsize ESM-2 by token count:", json.dumps(res["esm"]["by_tokens"]), flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
