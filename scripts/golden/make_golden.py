#!/usr/bin/env python3
"""Makes the golden reference fixtures in test/fixtures/golden/.

Tiny random-weight models in their published on-disk formats (ESM-2 as Hugging Face
safetensors, a fair-esm .pt and fp16 pickle shards; DNABERT-S as pytorch_model.bin; a
VirNucPro-style whole-module classifier pickle) and the embeddings/probabilities that the
real implementations (transformers EsmModel, the DNABERT-S reference module in
dnabert_ref.py, the classifier module) compute for the VirNucPro parity frames plus
synthetic cases. Run as `python3 scripts/golden/make_golden.py` so that the classifier
class pickles as `__main__.MLPClassifier`. See README.md beside this file.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import random
import re
import struct
import sys
import traceback
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dnabert_ref  # noqa: E402

SEED = 20251128

# Tiny ESM-2: 3 layers, hidden 128, 2 heads of 64, FFN 512 (Hub config field names).
ESM_CONFIG = {
    "architectures": ["EsmForMaskedLM"],
    "model_type": "esm",
    "attention_probs_dropout_prob": 0.0,
    "classifier_dropout": None,
    "emb_layer_norm_before": False,
    "esmfold_config": None,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 512,
    "is_folding_model": False,
    "layer_norm_eps": 1e-05,
    "mask_token_id": 32,
    "max_position_embeddings": 1026,
    "num_attention_heads": 2,
    "num_hidden_layers": 3,
    "pad_token_id": 1,
    "position_embedding_type": "rotary",
    "token_dropout": True,
    "torch_dtype": "float32",
    "use_cache": True,
    "vocab_list": None,
    "vocab_size": 33,
}

# Tiny DNABERT-S: same field names as the real DNABERT-S config.json.
DNABERT_CONFIG = {
    "architectures": ["BertModel"],
    "model_type": "bert",
    "alibi_starting_size": 512,
    "attention_probs_dropout_prob": 0.0,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "hidden_size": 128,
    "initializer_range": 0.02,
    "intermediate_size": 256,
    "layer_norm_eps": 1e-12,
    "max_position_embeddings": 512,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "pad_token_id": 0,
    "position_embedding_type": "absolute",
    "torch_dtype": "float32",
    "type_vocab_size": 2,
    "vocab_size": 4096,
}

ESM_VOCAB = ("<cls> <pad> <eos> <unk> L A G V S E R T I D P K Q N F Y M H W C X B U Z O . - "
             "<null_1> <mask>").split()
ESM_CLS, ESM_PAD, ESM_EOS, ESM_MASK = 0, 1, 2, 32
ESM_POOL_LIMIT = 1024  # residues pooled, as VirNucPro does
STANDARD_AA = "LAGVSERTIDPKQNFYMHWC"

# models.md test vectors for the real DNABERT-S tokenizer
DNA_TOKENIZER_VECTORS = [
    ("ACGTAGCATCGGATCTATCTATCGACACTTGGTTATCGATCTACGAGCATCTCGTTAGC",
     [1, 5, 194, 32, 757, 1239, 2092, 294, 24, 359, 88, 93, 32, 75, 77, 19, 2]),
    ("ACGTNNACGT", [1, 5, 6, 1049, 0, 0, 5, 6, 1049, 2]),
    ("acgt", [1, 0, 0, 0, 0, 2]),
    ("ACG TAC", [1, 5, 3206, 14, 6, 2]),
]

# The reference is computed in float64 on the CPU; fp32 runs only measure the gap to it.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
torch.set_float32_matmul_precision("highest")


class MLPClassifier(nn.Module):
    """VirNucPro's classifier head, shrunk to 256 -> 32 -> 2."""

    def __init__(self, input_dim: int = 256, hidden_dim: int = 32, num_class: int = 2):
        super().__init__()
        self.hidden_layer = nn.Linear(input_dim, hidden_dim)
        self.bn1 = nn.BatchNorm1d(hidden_dim)
        self.relu = nn.ReLU()
        self.dropout = nn.Dropout(0.5)
        self.output_layer = nn.Linear(hidden_dim, num_class)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.hidden_layer(x)
        x = self.bn1(x)
        x = self.relu(x)
        x = self.dropout(x)
        return self.output_layer(x)


# ----------------------------------------------------------------------------- logging, checks

CHECKS: List[Dict] = []
NOTES: List[str] = []


def log(msg: str) -> None:
    print(msg, flush=True)


def check(name: str, ok: bool, detail: str = "", fatal: bool = True) -> bool:
    CHECKS.append({"name": name, "ok": bool(ok), "detail": detail})
    log(f"[{'ok' if ok else 'FAIL'}] {name}{': ' + detail if detail else ''}")
    if fatal and not ok:
        raise SystemExit(f"check failed: {name}: {detail}")
    return bool(ok)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.double().cpu() - b.double().cpu()).abs().max()) if a.numel() else 0.0


# ----------------------------------------------------------------------------- random weights

class Rand:
    """Seeded draws; one generator per model so that the models are independent."""

    def __init__(self, seed: int):
        self.g = torch.Generator().manual_seed(seed)

    def uniform(self, lo: float, hi: float, shape=()) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=self.g, dtype=torch.float64)

    def weight(self, shape, lo: float = 0.02, hi: float = 0.1) -> torch.Tensor:
        std = float(self.uniform(lo, hi))
        return (torch.randn(shape, generator=self.g, dtype=torch.float64) * std).float()

    def bias(self, shape) -> torch.Tensor:
        return self.uniform(-0.1, 0.1, shape).float()

    def ln_weight(self, shape) -> torch.Tensor:
        return (1.0 + self.uniform(-0.2, 0.2, shape)).float()


def esm_inv_freq(head_dim: int) -> torch.Tensor:
    """1/10000^(2i/d) rounded to fp16 as in the released checkpoints, stored as fp32."""
    exact = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))
    return exact.half().float()


def esm_hub_state(r: Rand) -> Dict[str, torch.Tensor]:
    """ESM-2 weights under the Hub EsmModel names (no `esm.` prefix)."""
    H, I, nl, V = ESM_CONFIG["hidden_size"], ESM_CONFIG["intermediate_size"], ESM_CONFIG["num_hidden_layers"], 33
    d = H // ESM_CONFIG["num_attention_heads"]
    sd: Dict[str, torch.Tensor] = {"embeddings.word_embeddings.weight": r.weight([V, H])}
    for n in range(nl):
        p = f"encoder.layer.{n}."
        for t in ("query", "key", "value"):
            sd[p + f"attention.self.{t}.weight"] = r.weight([H, H])
            sd[p + f"attention.self.{t}.bias"] = r.bias([H])
        sd[p + "attention.self.rotary_embeddings.inv_freq"] = esm_inv_freq(d)
        sd[p + "attention.output.dense.weight"] = r.weight([H, H])
        sd[p + "attention.output.dense.bias"] = r.bias([H])
        sd[p + "attention.LayerNorm.weight"] = r.ln_weight([H])
        sd[p + "attention.LayerNorm.bias"] = r.bias([H])
        sd[p + "intermediate.dense.weight"] = r.weight([I, H])
        sd[p + "intermediate.dense.bias"] = r.bias([I])
        sd[p + "output.dense.weight"] = r.weight([H, I])
        sd[p + "output.dense.bias"] = r.bias([H])
        sd[p + "LayerNorm.weight"] = r.ln_weight([H])
        sd[p + "LayerNorm.bias"] = r.bias([H])
    sd["encoder.emb_layer_norm_after.weight"] = r.ln_weight([H])
    sd["encoder.emb_layer_norm_after.bias"] = r.bias([H])
    # present in real EsmModel checkpoints; readers must ignore it
    sd["contact_head.regression.weight"] = r.weight([1, nl * ESM_CONFIG["num_attention_heads"]])
    sd["contact_head.regression.bias"] = r.bias([1])
    return sd


def esm_lm_head(r: Rand) -> Dict[str, torch.Tensor]:
    """An MLM head (Hub names), shipped in the fair-esm and sharded files to be ignored."""
    H = ESM_CONFIG["hidden_size"]
    return {
        "lm_head.dense.weight": r.weight([H, H]),
        "lm_head.dense.bias": r.bias([H]),
        "lm_head.layer_norm.weight": r.ln_weight([H]),
        "lm_head.layer_norm.bias": r.bias([H]),
        "lm_head.bias": r.bias([33]),
    }


HUB_TO_FAIR_LAYER = [
    ("attention.self.query.", "self_attn.q_proj."),
    ("attention.self.key.", "self_attn.k_proj."),
    ("attention.self.value.", "self_attn.v_proj."),
    ("attention.self.rotary_embeddings.inv_freq", "self_attn.rot_emb.inv_freq"),
    ("attention.output.dense.", "self_attn.out_proj."),
    ("attention.LayerNorm.", "self_attn_layer_norm."),
    ("intermediate.dense.", "fc1."),
    ("output.dense.", "fc2."),
    ("LayerNorm.", "final_layer_norm."),
]


def hub_to_fair_name(name: str) -> str:
    FS = "encoder.sentence_encoder."
    if name == "embeddings.word_embeddings.weight":
        return FS + "embed_tokens.weight"
    if name.startswith("encoder.emb_layer_norm_after."):
        return FS + name[len("encoder."):]
    if name.startswith("contact_head."):
        return "encoder." + name
    if name.startswith("lm_head."):
        rest = name[len("lm_head."):]
        return "encoder.lm_head." + rest
    m = re.match(r"encoder\.layer\.(\d+)\.(.*)$", name)
    if not m:
        raise KeyError(name)
    n, rest = m.group(1), m.group(2)
    for hub, fair in HUB_TO_FAIR_LAYER:
        if rest.startswith(hub):
            return f"{FS}layers.{n}.{fair}{rest[len(hub):]}"
    raise KeyError(name)


def esm_fair_state(hub: Dict[str, torch.Tensor], lm: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    sd = {hub_to_fair_name(k): v.clone() for k, v in hub.items()}
    for k, v in lm.items():
        sd[hub_to_fair_name(k)] = v.clone()
    # the fair-esm output projection is tied to the token embedding: same storage, two names
    sd["encoder.lm_head.weight"] = sd["encoder.sentence_encoder.embed_tokens.weight"]
    return sd


def dnabert_state(r: Rand) -> Dict[str, torch.Tensor]:
    """DNABERT-S weights under the checkpoint names of models.md, without the `bert.` prefix."""
    c = DNABERT_CONFIG
    H, I, V = c["hidden_size"], c["intermediate_size"], c["vocab_size"]
    sd = {
        "embeddings.word_embeddings.weight": r.weight([V, H]),
        "embeddings.token_type_embeddings.weight": r.weight([c["type_vocab_size"], H]),
        "embeddings.LayerNorm.weight": r.ln_weight([H]),
        "embeddings.LayerNorm.bias": r.bias([H]),
    }
    for n in range(c["num_hidden_layers"]):
        p = f"encoder.layer.{n}."
        sd[p + "attention.self.Wqkv.weight"] = r.weight([3 * H, H])
        sd[p + "attention.self.Wqkv.bias"] = r.bias([3 * H])
        sd[p + "attention.output.dense.weight"] = r.weight([H, H])
        sd[p + "attention.output.dense.bias"] = r.bias([H])
        sd[p + "attention.output.LayerNorm.weight"] = r.ln_weight([H])
        sd[p + "attention.output.LayerNorm.bias"] = r.bias([H])
        sd[p + "mlp.gated_layers.weight"] = r.weight([2 * I, H])
        sd[p + "mlp.wo.weight"] = r.weight([H, I])
        sd[p + "mlp.wo.bias"] = r.bias([H])
        sd[p + "mlp.layernorm.weight"] = r.ln_weight([H])
        sd[p + "mlp.layernorm.bias"] = r.bias([H])
    return sd


def make_classifier(r: Rand) -> MLPClassifier:
    model = MLPClassifier(256, 32, 2)
    with torch.no_grad():
        model.hidden_layer.weight.copy_(r.weight([32, 256], 0.08, 0.1))
        model.hidden_layer.bias.copy_(r.bias([32]))
        model.bn1.weight.copy_(r.ln_weight([32]))
        model.bn1.bias.copy_(r.bias([32]))
        model.bn1.running_mean.copy_(r.uniform(-0.5, 0.5, [32]).float())
        model.bn1.running_var.copy_(r.uniform(0.5, 2.0, [32]).float())
        model.bn1.num_batches_tracked.fill_(1234)
        # a larger output scale spreads the probabilities away from 0.5
        model.output_layer.weight.copy_(r.weight([2, 32], 0.3, 0.4))
        model.output_layer.bias.copy_(r.bias([2]))
    return model.eval()


# ----------------------------------------------------------------------------- file formats

ST_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.float64: "F64", torch.int32: "I32",
             torch.int64: "I64"}
ST_TORCH = {v: k for k, v in ST_DTYPES.items()}


def write_safetensors_plain(path: str, tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None) -> None:
    """safetensors writer used for the reference tensors (and when the library is missing)."""
    header: Dict[str, object] = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        data = t.numpy().tobytes()
        header[name] = {"dtype": ST_DTYPES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    if metadata:
        header["__metadata__"] = metadata
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keeps the data 8-byte aligned
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def read_safetensors_plain(path: str) -> Dict[str, torch.Tensor]:
    import numpy as np

    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt = ST_TORCH[info["dtype"]]
        b, e = info["data_offsets"]
        np_dtype = {torch.float32: np.float32, torch.float16: np.float16, torch.float64: np.float64,
                    torch.int32: np.int32, torch.int64: np.int64}[dt]
        arr = np.frombuffer(buf[base + b : base + e], dtype=np_dtype).copy()
        out[name] = torch.from_numpy(arr).reshape(info["shape"])
    return out


def save_model_safetensors(path: str, tensors: Dict[str, torch.Tensor]) -> str:
    try:
        from safetensors.torch import save_file
    except ImportError:
        write_safetensors_plain(path, tensors, {"format": "pt"})
        return "plain writer (safetensors library missing)"
    save_file({k: v.contiguous() for k, v in tensors.items()}, path, metadata={"format": "pt"})
    return "safetensors library"


def load_model_safetensors(path: str) -> Dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        return read_safetensors_plain(path)
    return load_file(path)


def write_json(path: str, obj) -> None:
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")


# ----------------------------------------------------------------------------- inputs

def find_input(shared: str, name: str, subdir: str) -> str:
    """Accepts both a flat copy (the device recipe) and the shared/fixtures layout."""
    for p in (os.path.join(shared, name), os.path.join(shared, subdir, name)):
        if os.path.exists(p):
            return p
    raise SystemExit(f"missing input {name}: copy it into {shared} (see README.md)")


def read_fasta(path: str) -> List[Tuple[str, str]]:
    records: List[Tuple[str, str]] = []
    rid, parts = None, []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\r\n")
            if line.startswith(">"):
                if rid is not None:
                    records.append((rid, "".join(parts)))
                rid, parts = (line[1:].split() or [""])[0], []
            elif rid is not None:
                parts.append("".join(line.split()))
    if rid is not None:
        records.append((rid, "".join(parts)))
    return records


def pipeline_cases(shared: str) -> List[Dict[str, str]]:
    cases = []
    for stem in ("test_with_orfs_identified", "test_sequences_chunk300_identified"):
        nuc = read_fasta(find_input(shared, stem + "_nucleotide.fa", "virnucpro"))
        pro = read_fasta(find_input(shared, stem + "_protein.faa", "virnucpro"))
        check(f"{stem}: nucleotide and protein ids pair up", [r[0] for r in nuc] == [r[0] for r in pro],
              f"{len(nuc)} records")
        for (rid, n), (_, p) in zip(nuc, pro):
            cases.append({"id": rid, "protein": p, "nucleotide": n, "source": stem})
    return cases


def random_protein(rng: random.Random, n: int, extra: str = "") -> str:
    s = [rng.choice(STANDARD_AA) for _ in range(n)]
    for ch in extra:
        if n:
            s[rng.randrange(n)] = ch
    return "".join(s)


def random_nucleotide(rng: random.Random, n: int, n_runs: int = 0, iupac: str = "") -> str:
    s = [rng.choice("ACGT") for _ in range(n)]
    for _ in range(n_runs):
        if n:
            start = rng.randrange(n)
            for i in range(start, min(n, start + rng.randint(1, 12))):
                s[i] = "N"
    for ch in iupac:
        if n:
            s[rng.randrange(n)] = ch
    return "".join(s)


def synthetic_cases(rng: random.Random) -> List[Dict[str, str]]:
    """40 extra protein/nucleotide pairs: edge lengths, X and rare residues, N runs."""
    specs = [(1, ""), (2, ""), (5, ""), (30, ""), (100, ""), (300, ""), (1100, ""), (7, "X"), (50, "XX"),
             (120, "X"), (64, "BZUO"), (1, "X")]
    while len(specs) < 40:
        n = rng.randint(1, 200)
        specs.append((n, "X" if rng.random() < 0.15 else ""))
    nuc_lengths = [1, 2, 3, 600, 301, 151]
    cases = []
    for k, (plen, extra) in enumerate(specs):
        nlen = nuc_lengths[k] if k < len(nuc_lengths) else rng.randint(1, 600)
        runs = rng.randint(1, 3) if rng.random() < 0.3 else 0
        iupac = rng.choice("RYKMSWBDHV") if rng.random() < 0.08 else ""
        cases.append({
            "id": f"synthetic_{k:02d}",
            "protein": random_protein(rng, plen, extra),
            "nucleotide": random_nucleotide(rng, nlen, runs, iupac),
            "source": "synthetic",
        })
    return cases


def tokenizer_strings(rng: random.Random, count: int) -> List[str]:
    """DNA strings for tokenizer parity: lowercase, N runs, IUPAC codes, spaces, punctuation."""
    out = [s for s, _ in DNA_TOKENIZER_VECTORS] + ["", " ", "N", "A", "ACGT" * 50, "  ACGT  TTGA ", "acgtACGTnnNN"]
    while len(out) < count:
        r = rng.random()
        n = rng.randint(0, 60) if r < 0.3 else rng.randint(0, 700)
        chars = []
        for _ in range(n):
            x = rng.random()
            if x < 0.80:
                chars.append(rng.choice("ACGT"))
            elif x < 0.86:
                chars.append(rng.choice("acgtn"))
            elif x < 0.91:
                chars.append("N" * rng.randint(1, 4))
            elif x < 0.95:
                chars.append(rng.choice("RYKMSWBDHVU"))
            elif x < 0.99:
                chars.append(" " * rng.randint(1, 3))
            else:
                chars.append(rng.choice("-.*"))
        out.append("".join(chars))
    return out[:count]


ESM_TOKENIZER_STRINGS = [
    "", "M", "MKV", "mkv", "MKVJ", "MK*", "MK**V", "M K V", "MKV<mask>LL", "<cls>MKV<eos>", "ABCDEFGHIJ",
    "XXXX", "MKV.-", "M1K2V", "BZUO", "MKVLLLAAAGGG", " MKV ", "J", "jj", "MKV\tLL",
]


def flat_with_offsets(lists: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    offsets = [0]
    flat: List[int] = []
    for ids in lists:
        flat.extend(int(i) for i in ids)
        offsets.append(len(flat))
    return torch.tensor(flat, dtype=torch.int32), torch.tensor(offsets, dtype=torch.int32)


# ----------------------------------------------------------------------------- ESM-2

def esm_ids_manual(protein: str) -> List[int]:
    index = {t: i for i, t in enumerate(ESM_VOCAB)}
    return [ESM_CLS] + [index[c] for c in protein] + [ESM_EOS]


def pad_esm(id_lists: Sequence[Sequence[int]]) -> Tuple[torch.Tensor, torch.Tensor]:
    T = max(len(x) for x in id_lists)
    ids = torch.full((len(id_lists), T), ESM_PAD, dtype=torch.long)
    mask = torch.zeros((len(id_lists), T), dtype=torch.long)
    for i, seq in enumerate(id_lists):
        ids[i, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, : len(seq)] = 1
    return ids, mask


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def esm_fair_forward(sd: Dict[str, torch.Tensor], tokens: torch.Tensor, scale_token_dropout: bool = True,
                     inv_freq: Optional[torch.Tensor] = None) -> torch.Tensor:
    """ESM-2 exactly as fair-esm computes it (token-dropout rescale at inference included),
    over fair-esm names; an independent check of the transformers model. [B, T] -> [B, T, H]."""
    P = "encoder.sentence_encoder."
    dtype = sd[P + "embed_tokens.weight"].dtype
    H, nh, nl = ESM_CONFIG["hidden_size"], ESM_CONFIG["num_attention_heads"], ESM_CONFIG["num_hidden_layers"]
    d = H // nh
    eps = ESM_CONFIG["layer_norm_eps"]
    pad = tokens.eq(ESM_PAD)
    x = F.embedding(tokens, sd[P + "embed_tokens.weight"])
    if scale_token_dropout:
        is_mask = tokens.eq(ESM_MASK)
        x = x.masked_fill(is_mask[..., None], 0.0)
        src_lengths = (~pad).sum(-1)
        observed = is_mask.sum(-1).to(dtype) / src_lengths
        x = x * (1 - 0.15 * 0.8) / (1 - observed)[:, None, None]
    x = x * (~pad)[..., None].to(dtype)
    B, T, _ = x.shape

    def ln(t, name):
        return F.layer_norm(t, (H,), sd[name + ".weight"], sd[name + ".bias"], eps)

    def heads(t):
        return t.view(B, T, nh, d).transpose(1, 2)

    for n in range(nl):
        p = f"{P}layers.{n}."
        h = ln(x, p + "self_attn_layer_norm")
        q = heads(F.linear(h, sd[p + "self_attn.q_proj.weight"], sd[p + "self_attn.q_proj.bias"]) * d**-0.5)
        k = heads(F.linear(h, sd[p + "self_attn.k_proj.weight"], sd[p + "self_attn.k_proj.bias"]))
        v = heads(F.linear(h, sd[p + "self_attn.v_proj.weight"], sd[p + "self_attn.v_proj.bias"]))
        freq = inv_freq if inv_freq is not None else sd[p + "self_attn.rot_emb.inv_freq"]
        t = torch.arange(T, dtype=freq.dtype)
        ang = torch.outer(t, freq)
        emb = torch.cat((ang, ang), dim=-1)
        cos, sin = emb.cos().to(dtype), emb.sin().to(dtype)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        s = torch.matmul(q, k.transpose(-1, -2)).masked_fill(pad[:, None, None, :], float("-inf"))
        ctx = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(B, T, H)
        x = x + F.linear(ctx, sd[p + "self_attn.out_proj.weight"], sd[p + "self_attn.out_proj.bias"])
        h = ln(x, p + "final_layer_norm")
        u = F.linear(h, sd[p + "fc1.weight"], sd[p + "fc1.bias"])
        u = u * 0.5 * (1.0 + torch.erf(u / math.sqrt(2.0)))
        x = x + F.linear(u, sd[p + "fc2.weight"], sd[p + "fc2.bias"])
    return ln(x, P + "emb_layer_norm_after")


def esm_pool(hidden: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """Mean over residue positions 1..min(1024, p) of one sequence's hidden states [T, H]."""
    p = n_tokens - 2
    return hidden[1 : 1 + min(ESM_POOL_LIMIT, p)].mean(0)


def normalise_name(name: str) -> str:
    n = name.lower()
    for a, b in (("q_proj", "query"), ("k_proj", "key"), ("v_proj", "value"), ("layer_norm", "layernorm")):
        n = n.replace(a, b)
    return n.replace("_", "")


def hf_ignorable(name: str) -> bool:
    return any(s in name for s in ("pooler.", "position_ids", "position_embeddings", "lm_head."))


def load_into_hf_esm(model: nn.Module, hub: Dict[str, torch.Tensor], inv_freq: torch.Tensor) -> Dict[str, str]:
    """Copies the Hub-layout weights into a transformers EsmModel, mapping names that differ,
    and fails loudly unless every model tensor then holds exactly these values."""
    msd = model.state_dict()
    by_norm = {normalise_name(k): k for k in hub}
    mapping: Dict[str, str] = {}
    unmatched, shape_mismatch = [], []
    for k, v in msd.items():
        if k.endswith("inv_freq"):
            continue  # per layer in the Hub files, one per model in transformers 5: set below
        src = k if k in hub else by_norm.get(normalise_name(k))
        if src is None:
            if not hf_ignorable(k):
                unmatched.append(k)
            continue
        if tuple(hub[src].shape) != tuple(v.shape):
            shape_mismatch.append(f"{k} {tuple(v.shape)} vs {src} {tuple(hub[src].shape)}")
            continue
        mapping[k] = src
    used = set(mapping.values())
    leftover = [k for k in hub if k not in used and not k.endswith("inv_freq")]
    if unmatched or shape_mismatch or leftover:
        log("EsmModel state_dict keys:\n  " + "\n  ".join(f"{k} {tuple(v.shape)}" for k, v in msd.items()))
    check("EsmModel names map onto the Hub layout", not (unmatched or shape_mismatch or leftover),
          f"unmatched model keys {unmatched}, shape mismatches {shape_mismatch}, unused hub keys {leftover}")
    result = model.load_state_dict({k: hub[s] for k, s in mapping.items()}, strict=False)
    missing = [k for k in result.missing_keys if k not in mapping and not hf_ignorable(k) and not k.endswith("inv_freq")]
    check("EsmModel load_state_dict leaves nothing unset", not missing and not result.unexpected_keys,
          f"missing {missing}, unexpected {list(result.unexpected_keys)}")
    # inv_freq can be a non-persistent buffer: set every rotary table to the checkpoint values
    n_freq = 0
    with torch.no_grad():
        for name, buf in model.named_buffers():
            if name.endswith("inv_freq"):
                check(f"rotary buffer {name} has the checkpoint shape", tuple(buf.shape) == tuple(inv_freq.shape),
                      str(tuple(buf.shape)))
                buf.copy_(inv_freq.to(buf.dtype))
                n_freq += 1
        for m in model.modules():
            orig = getattr(m, "original_inv_freq", None)
            if isinstance(orig, torch.Tensor) and "original_inv_freq" not in dict(m.named_buffers(recurse=False)):
                m.original_inv_freq = inv_freq.clone().to(orig.device)
    check("EsmModel has rotary inv_freq buffers to set", n_freq > 0, f"{n_freq} buffers")
    for m in model.modules():
        if hasattr(m, "_seq_len_cached"):
            m._seq_len_cached = None
    after = model.state_dict()
    bad = [k for k, s in mapping.items() if not torch.equal(after[k].cpu().float(), hub[s].float())]
    check("EsmModel holds exactly the Hub-layout values", not bad, f"{len(mapping)} tensors, differing: {bad}")
    return mapping


def hf_esm_from_state(hub: Dict[str, torch.Tensor], inv_freq: torch.Tensor, esm_dir: str, attn: Optional[str]):
    from transformers import EsmConfig, EsmModel

    cfg = EsmConfig.from_pretrained(esm_dir)
    # rotary positions have no limit; this only keeps position buffers long enough for the
    # 1100-residue case and changes no arithmetic
    cfg.max_position_embeddings = max(int(cfg.max_position_embeddings), 2048)
    if attn:
        try:
            cfg._attn_implementation = attn
        except Exception as e:  # noqa: BLE001
            NOTES.append(f"could not select attention '{attn}': {e}")
    try:
        model = EsmModel(cfg, add_pooling_layer=False)
    except TypeError:
        model = EsmModel(cfg)
    model.eval()
    mapping = load_into_hf_esm(model, hub, inv_freq)
    return model, mapping


@torch.no_grad()
def hf_esm_hidden(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    out = model(input_ids=ids, attention_mask=mask)
    return out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]


@torch.no_grad()
def hf_esm_embed(model: nn.Module, id_lists: List[List[int]], batch: int, device: str, dtype: torch.dtype) -> torch.Tensor:
    model = model.to(device=device, dtype=dtype)
    outs = []
    for s in range(0, len(id_lists), batch):
        chunk = id_lists[s : s + batch]
        ids, mask = pad_esm(chunk)
        h = hf_esm_hidden(model, ids.to(device), mask.to(device)).double().cpu()
        outs.extend(esm_pool(h[i], len(chunk[i])) for i in range(len(chunk)))
    return torch.stack(outs)


# ----------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", required=True, help="folder with tokenizer.json, vocab.txt and the VirNucPro frame files")
    ap.add_argument("--out", required=True, help="output folder (created)")
    ap.add_argument("--batch", type=int, default=8)
    args = ap.parse_args()
    out = args.out
    for sub in ("", "esm", "esm-sharded", "dnabert"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)

    import tokenizers
    import transformers

    versions = {"python": sys.version.split()[0], "torch": torch.__version__,
                "transformers": transformers.__version__, "tokenizers": tokenizers.__version__}
    try:
        import safetensors

        versions["safetensors"] = safetensors.__version__
    except ImportError:
        pass
    cuda = torch.cuda.is_available()
    versions["device"] = torch.cuda.get_device_name(0) if cuda else "cpu"
    log(f"versions: {versions}")
    torch.manual_seed(SEED)

    # ---- inputs
    rng = random.Random(SEED)
    cases = pipeline_cases(args.shared) + synthetic_cases(rng)
    tok_strings = tokenizer_strings(random.Random(SEED + 7), 300)
    log(f"{len(cases)} cases, {len(tok_strings)} tokenizer strings")

    # ---- DNA tokenizer: the real DNABERT-S tokenizer.json
    dna_tok = tokenizers.Tokenizer.from_file(find_input(args.shared, "tokenizer.json", "dnabert-s"))
    dna_tok.no_truncation()  # the file stores truncation 2000 and fixed padding 2000
    dna_tok.no_padding()
    for s, want in DNA_TOKENIZER_VECTORS:
        got = dna_tok.encode(s).ids
        check(f"DNABERT-S tokenizer vector {s[:16]!r}", got == want, f"{got}")
    tok_ids = [dna_tok.encode(s).ids for s in tok_strings]
    dnabert_ids = [dna_tok.encode(c["nucleotide"]).ids for c in cases]

    # ---- ESM tokenizer: transformers EsmTokenizer on the real vocab.txt
    vocab_path = find_input(args.shared, "vocab.txt", "esm2")
    with open(vocab_path) as f:
        check("vocab.txt is the 33-token ESM-2 alphabet", f.read().split() == ESM_VOCAB)
    esm_ids = [esm_ids_manual(c["protein"]) for c in cases]
    esm_tok_ids: Optional[List[List[int]]] = None
    try:
        from transformers import EsmTokenizer

        esm_tok = EsmTokenizer(vocab_file=vocab_path)
        hf_ids = [list(esm_tok(c["protein"])["input_ids"]) for c in cases]
        check("EsmTokenizer ids == <cls> + residues + <eos>", hf_ids == esm_ids, f"{len(hf_ids)} proteins")
        esm_tok_ids = [list(esm_tok(s)["input_ids"]) for s in ESM_TOKENIZER_STRINGS]
    except SystemExit:
        raise
    except Exception:  # noqa: BLE001
        NOTES.append("EsmTokenizer failed; protein ids were built from vocab.txt directly:\n" + traceback.format_exc())
        log(NOTES[-1])

    # ---- ESM-2 weights in three published layouts
    r_esm = Rand(SEED + 1)
    hub = esm_hub_state(r_esm)
    lm = esm_lm_head(r_esm)
    inv_freq = esm_inv_freq(ESM_CONFIG["hidden_size"] // ESM_CONFIG["num_attention_heads"])
    esm_dir = os.path.join(out, "esm")
    write_json(os.path.join(esm_dir, "config.json"), ESM_CONFIG)
    writer = save_model_safetensors(os.path.join(esm_dir, "model.safetensors"), hub)
    NOTES.append(f"esm/model.safetensors written with the {writer}")

    fair = esm_fair_state(hub, lm)
    ns = argparse.Namespace(
        arch="ESM2", _name="ESM2", encoder_layers=ESM_CONFIG["num_hidden_layers"],
        encoder_embed_dim=ESM_CONFIG["hidden_size"], encoder_attention_heads=ESM_CONFIG["num_attention_heads"],
        encoder_ffn_embed_dim=ESM_CONFIG["intermediate_size"], token_dropout=True, max_positions=1024,
        attention_dropout=0.0, dropout=0.0, emb_layer_norm_before=False)
    torch.save({"model": fair, "cfg": {"model": ns}}, os.path.join(out, "esm-fair.pt"))

    write_sharded_esm(os.path.join(out, "esm-sharded"), hub, lm)

    # ---- ESM-2 reference: transformers EsmModel in float64 on the CPU
    model, mapping = hf_esm_from_state(hub, inv_freq, esm_dir, "sdpa")
    log(f"EsmModel attention implementation: {getattr(model.config, '_attn_implementation', '?')}")
    log("EsmModel non-layer keys: " + ", ".join(k for k in model.state_dict() if ".layer." not in k))
    log("EsmModel layer-0 keys: " + ", ".join(k for k in model.state_dict() if ".layer.0." in k))
    renamed = {k: s for k, s in mapping.items() if k != s}
    if renamed:
        NOTES.append(f"EsmModel names that differ from the Hub layout: {renamed}")
    gpu_model = copy.deepcopy(model) if cuda else None
    model = model.double()
    esm_ref = hf_esm_embed(model, esm_ids, args.batch, "cpu", torch.float64)
    check("ESM embeddings are finite", bool(torch.isfinite(esm_ref).all()))

    # the same values through the fair-esm formula, from the saved .pt
    loaded = torch.load(os.path.join(out, "esm-fair.pt"), map_location="cpu", weights_only=False)
    fsd = loaded["model"]
    bad = [k for k in hub if not torch.equal(fsd[hub_to_fair_name(k)], hub[k])]
    check("esm-fair.pt holds the same values as model.safetensors", not bad and
          loaded["cfg"]["model"].encoder_layers == ESM_CONFIG["num_hidden_layers"], f"differing: {bad}")
    check("esm-fair.pt keeps lm_head tied to embed_tokens",
          fsd["encoder.lm_head.weight"].data_ptr() == fsd["encoder.sentence_encoder.embed_tokens.weight"].data_ptr())
    fsd64 = {k: v.double() for k, v in fsd.items()}
    fair_embed = []
    for s in range(0, len(esm_ids), args.batch):
        chunk = esm_ids[s : s + args.batch]
        ids, _ = pad_esm(chunk)
        h = esm_fair_forward(fsd64, ids)
        fair_embed.extend(esm_pool(h[i], len(chunk[i])) for i in range(len(chunk)))
    d_fair = max_diff(torch.stack(fair_embed), esm_ref)
    check("transformers EsmModel == fair-esm formula (pooled, float64)", d_fair < 1e-6, f"max abs diff {d_fair:.3e}", fatal=False)

    # token dropout: transformers must rescale at inference exactly as fair-esm does
    masked = []
    for i in (0, 3, 5):
        ids = list(esm_ids[i])
        for j in range(1, len(ids) - 1, 4):
            ids[j] = ESM_MASK
        masked.append(ids)
    ids, mask = pad_esm(masked)
    h_hf = hf_esm_hidden(model, ids, mask)
    valid = mask.bool()
    d_mask = max_diff(h_hf[valid], esm_fair_forward(fsd64, ids)[valid])
    d_noscale = max_diff(h_hf[valid], esm_fair_forward(fsd64, ids, scale_token_dropout=False)[valid])
    check("token-dropout rescale with <mask> tokens matches fair-esm", d_mask < 1e-6, f"max abs diff {d_mask:.3e}", fatal=False)
    check("token-dropout rescale is applied at inference (without it the output differs)", d_noscale > 1e-3,
          f"max abs diff without rescale {d_noscale:.3e}", fatal=False)
    ids, mask = pad_esm(esm_ids[:8])
    d_freq = max_diff(esm_fair_forward(fsd64, ids)[mask.bool()],
                      esm_fair_forward(fsd64, ids, inv_freq=1.0 / (10000 ** (torch.arange(0, 64, 2, dtype=torch.float64) / 64)))[mask.bool()])
    NOTES.append(f"ESM hidden states move by up to {d_freq:.3e} if inv_freq is recomputed instead of read (fp16-rounded)")

    # batch independence, fp32 GPU gap
    single = hf_esm_embed(model, esm_ids, 1, "cpu", torch.float64)
    d_single = max_diff(single, esm_ref)
    check("ESM embedding does not depend on batch-mates (float64)", d_single < 1e-9, f"max abs diff {d_single:.3e}", fatal=False)
    if gpu_model is not None:
        esm_gpu = hf_esm_embed(gpu_model, esm_ids, args.batch, "cuda", torch.float32)
        NOTES.append(f"ESM fp32 on {versions['device']} (TF32 off) vs float64 reference: max abs diff {max_diff(esm_gpu, esm_ref):.3e}")
        del gpu_model
    esm_hidden0 = hf_esm_hidden(model, *pad_esm([esm_ids[0]]))[0].float()

    # reload check: model.safetensors into a fresh EsmModel
    reloaded, _ = hf_esm_from_state(load_model_safetensors(os.path.join(esm_dir, "model.safetensors")), inv_freq, esm_dir, "sdpa")
    reloaded = reloaded.double()
    d_reload = max_diff(hf_esm_embed(reloaded, esm_ids, args.batch, "cpu", torch.float64), esm_ref)
    check("esm/model.safetensors reloads into a fresh EsmModel with the same output", d_reload <= 1e-12, f"max abs diff {d_reload:.3e}")
    del reloaded
    try_from_pretrained(esm_dir, hub, inv_freq, esm_ids[: args.batch], esm_ref[: args.batch])
    check_sharded(os.path.join(out, "esm-sharded"), hub, lm)

    # ---- DNABERT-S reference module
    dcfg = dnabert_ref.DnabertConfig.from_dict(DNABERT_CONFIG)
    check("ALiBi slopes for 12 heads follow the MosaicBERT rule",
          all(math.isclose(x, 2.0 ** -e, rel_tol=1e-12) for x, e in
              zip(dnabert_ref.alibi_slopes(12), (1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5), strict=True)),
          str(dnabert_ref.alibi_slopes(12)))
    dsd = dnabert_state(Rand(SEED + 2))
    dmodel = dnabert_ref.DnabertRef(dcfg)
    dmodel.load_state_dict(dsd, strict=True)
    dmodel.eval()
    r_extra = Rand(SEED + 3)
    checkpoint = {"bert." + k: v for k, v in dsd.items()}
    checkpoint["bert.pooler.dense.weight"] = r_extra.weight([dcfg.hidden_size, dcfg.hidden_size])
    checkpoint["bert.pooler.dense.bias"] = r_extra.bias([dcfg.hidden_size])
    checkpoint["cls.predictions.bias"] = r_extra.bias([dcfg.vocab_size])
    dn_dir = os.path.join(out, "dnabert")
    write_json(os.path.join(dn_dir, "config.json"), DNABERT_CONFIG)
    torch.save(checkpoint, os.path.join(dn_dir, "pytorch_model.bin"))
    gpu_dmodel = copy.deepcopy(dmodel) if cuda else None
    dmodel = dmodel.double()
    dn_ref = dnabert_ref.embed(dmodel, dnabert_ids, args.batch).double()
    dn_ref64 = torch.cat([dnabert_embed64(dmodel, dnabert_ids[s : s + args.batch]) for s in range(0, len(dnabert_ids), args.batch)])
    check("DNABERT embeddings are finite", bool(torch.isfinite(dn_ref64).all()))
    d_single = max_diff(torch.cat([dnabert_embed64(dmodel, [ids]) for ids in dnabert_ids]), dn_ref64)
    check("DNABERT embedding does not depend on batch-mates (float64)", d_single < 1e-9, f"max abs diff {d_single:.3e}", fatal=False)
    if hasattr(F, "scaled_dot_product_attention"):
        d_sdpa = max_diff(dnabert_ref.embed(dmodel, dnabert_ids, args.batch, use_sdpa=True).double(), dn_ref)
        check("DNABERT sdpa path == explicit attention", d_sdpa < 1e-5, f"max abs diff {d_sdpa:.3e}", fatal=False)
    reloaded_d = dnabert_ref.load_dnabert(dn_dir, dtype=torch.float64)
    d_reload = max_diff(torch.cat([dnabert_embed64(reloaded_d, dnabert_ids[s : s + args.batch]) for s in range(0, len(dnabert_ids), args.batch)]), dn_ref64)
    check("dnabert/pytorch_model.bin reloads into the reference module with the same output", d_reload <= 1e-12,
          f"max abs diff {d_reload:.3e}")
    if gpu_dmodel is not None:
        gpu_dmodel = gpu_dmodel.cuda()
        dn_gpu = dnabert_ref.embed(gpu_dmodel, dnabert_ids, args.batch)
        NOTES.append(f"DNABERT fp32 on {versions['device']} (TF32 off) vs float64 reference: max abs diff {max_diff(dn_gpu, dn_ref64):.3e}")
        dn_gpu16 = dnabert_ref.embed(gpu_dmodel.half(), dnabert_ids, args.batch)
        NOTES.append(f"DNABERT fp16 on {versions['device']} vs float64 reference: max abs diff {max_diff(dn_gpu16, dn_ref64):.3e}")
        del gpu_dmodel
    ids0, mask0 = dnabert_ref.pad_batch([dnabert_ids[0]])
    with torch.no_grad():
        dnabert_hidden0 = dmodel(ids0, mask0)[0].float()

    # ---- classifier
    clf = make_classifier(Rand(SEED + 4))
    features64 = torch.cat([dn_ref64, esm_ref], dim=1)
    with torch.no_grad():
        logits = copy.deepcopy(clf).double().eval()(features64)
        # shift the virus logit so that both calls occur about equally often in the fixtures
        clf.output_layer.bias[1] -= float((logits[:, 1] - logits[:, 0]).median()) + 1e-3
    clf_path = os.path.join(out, "classifier.pth")
    torch.save(clf, clf_path)
    clf64 = copy.deepcopy(clf).double().eval()
    with torch.no_grad():
        probs64 = torch.softmax(clf64(features64), dim=-1)
    clf_loaded = torch.load(clf_path, map_location="cpu", weights_only=False)
    check("classifier.pth unpickles as __main__.MLPClassifier",
          type(clf_loaded).__module__ == "__main__" and type(clf_loaded).__name__ == "MLPClassifier")
    with torch.no_grad():
        d_clf = max_diff(torch.softmax(clf_loaded.double().eval()(features64), dim=-1), probs64)
    check("classifier.pth gives the same probabilities", d_clf <= 1e-12, f"max abs diff {d_clf:.3e}")
    p_virus = probs64[:, 1]
    NOTES.append(f"P(virus) over the cases spans {float(p_virus.min()):.3f}..{float(p_virus.max()):.3f}, "
                 f"{int((p_virus > 0.5).sum())} of {len(cases)} called virus")

    # ---- reference tensors and description
    tensors = {
        "esm": esm_ref.float(),
        "dnabert": dn_ref64.float(),
        "features": features64.float(),
        "probs": probs64.float(),
        "esm_hidden0": esm_hidden0,
        "dnabert_hidden0": dnabert_hidden0,
    }
    tensors["esm_ids"], tensors["esm_offsets"] = flat_with_offsets(esm_ids)
    tensors["dnabert_ids"], tensors["dnabert_offsets"] = flat_with_offsets(dnabert_ids)
    tensors["tok_ids"], tensors["tok_offsets"] = flat_with_offsets(tok_ids)
    if esm_tok_ids is not None:
        tensors["esm_tok_ids"], tensors["esm_tok_offsets"] = flat_with_offsets(esm_tok_ids)
    write_safetensors_plain(os.path.join(out, "reference.safetensors"), tensors, {"format": "pt", "seed": str(SEED)})
    back = read_safetensors_plain(os.path.join(out, "reference.safetensors"))
    check("reference.safetensors reads back", all(torch.equal(back[k], tensors[k].contiguous()) for k in tensors))

    ok = all(c["ok"] for c in CHECKS)
    write_json(os.path.join(out, "reference.json"), {
        "cases": cases,
        "tokenizer_cases": tok_strings,
        "esm_tokenizer_cases": ESM_TOKENIZER_STRINGS if esm_tok_ids is not None else [],
        "versions": versions,
        "seed": SEED,
        "esm_config": ESM_CONFIG,
        "dnabert_config": DNABERT_CONFIG,
        "classifier": {"input_dim": 256, "hidden_dim": 32, "num_class": 2},
        "tensors": {k: {"dtype": str(v.dtype).replace("torch.", ""), "shape": list(v.shape)} for k, v in tensors.items()},
        "notes": [
            "Embeddings, features and probabilities were computed in float64 on the CPU and cast to float32.",
            "esm: transformers EsmModel last_hidden_state (after emb_layer_norm_after), mean over residue positions 1..min(1024, p).",
            "dnabert: scripts/golden/dnabert_ref.py, mean over all tokens including [CLS] and [SEP].",
            "features = concat(dnabert, esm); probs = softmax(MLPClassifier in eval mode); column 0 = others, 1 = virus.",
            "esm_hidden0 / dnabert_hidden0: the full last hidden state [T, 128] of case 0, for layer-level debugging.",
            "The reference EsmModel was built with max_position_embeddings 2048 (esm/config.json says 1026, as the Hub does); rotary positions ignore it.",
            "tok_ids/tok_offsets: the real DNABERT-S tokenizer.json (tokenizers library, truncation and padding off) on tokenizer_cases.",
            "esm_tok_ids/esm_tok_offsets: transformers EsmTokenizer on esm_tokenizer_cases (odd characters included).",
        ] + NOTES,
        "checks": CHECKS,
        "all_checks_ok": ok,
    })
    log("\n".join(NOTES))
    log(f"done: {len(CHECKS)} checks, {'all ok' if ok else 'SOME FAILED'}")
    if not ok:
        sys.exit(1)


@torch.no_grad()
def dnabert_embed64(model: dnabert_ref.DnabertRef, id_lists: Sequence[Sequence[int]]) -> torch.Tensor:
    ids, mask = dnabert_ref.pad_batch(id_lists)
    return dnabert_ref.mean_pool(model(ids, mask), mask).double()


def write_sharded_esm(folder: str, hub: Dict[str, torch.Tensor], lm: Dict[str, torch.Tensor]) -> None:
    """EsmForMaskedLM-style fp16 pickle shards with an index, as esm2_t36_3B ships on the Hub.
    Includes a stored-transposed (non-contiguous) view, two views into one storage and a tied
    output projection, which real checkpoints contain."""
    half = {"esm." + k: v.half() for k, v in hub.items()}
    half.update({k: v.half() for k, v in lm.items()})
    # stored-transposed copies: the saved tensors are transposed views of them
    for name in ("esm.encoder.layer.0.attention.self.query.weight", "esm.encoder.layer.2.intermediate.dense.weight"):
        half[name] = half[name].t().contiguous().t()
    # key and value of layer 1 are slices of one fused storage (the value at a non-zero offset)
    k1, v1 = "esm.encoder.layer.1.attention.self.key.weight", "esm.encoder.layer.1.attention.self.value.weight"
    fused = torch.cat([half[k1], half[v1]], dim=0)
    half[k1], half[v1] = fused[: half[k1].shape[0]], fused[half[k1].shape[0] :]
    half["lm_head.decoder.weight"] = half["esm.embeddings.word_embeddings.weight"]
    first = [k for k in half if k.startswith("esm.embeddings.") or re.match(r"esm\.encoder\.layer\.[01]\.", k)
             or k == "lm_head.decoder.weight"]
    second = [k for k in half if k not in first]
    names = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    weight_map = {}
    total = 0
    for fname, keys in zip(names, (first, second)):
        torch.save({k: half[k] for k in keys}, os.path.join(folder, fname))
        for k in keys:
            weight_map[k] = fname
            total += half[k].numel() * 2
    write_json(os.path.join(folder, "pytorch_model.bin.index.json"),
               {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    write_json(os.path.join(folder, "config.json"), {**ESM_CONFIG, "torch_dtype": "float16"})


def check_sharded(folder: str, hub: Dict[str, torch.Tensor], lm: Dict[str, torch.Tensor]) -> None:
    with open(os.path.join(folder, "pytorch_model.bin.index.json")) as f:
        index = json.load(f)
    merged: Dict[str, torch.Tensor] = {}
    for fname in sorted(set(index["weight_map"].values())):
        part = torch.load(os.path.join(folder, fname), map_location="cpu", weights_only=True)
        check(f"{fname} holds what the index says", all(index["weight_map"][k] == fname for k in part))
        merged.update(part)
    want = {"esm." + k: v for k, v in hub.items()}
    want.update(lm)
    bad = [k for k, v in want.items() if merged[k].dtype != torch.float16 or not torch.equal(merged[k], v.half())]
    check("esm-sharded holds the fp16-rounded Hub values", not bad and set(merged) == set(want) | {"lm_head.decoder.weight"},
          f"differing: {bad}")
    q = merged["esm.encoder.layer.0.attention.self.query.weight"]
    ffn = merged["esm.encoder.layer.2.intermediate.dense.weight"]
    v1 = merged["esm.encoder.layer.1.attention.self.value.weight"]
    check("esm-sharded keeps its non-contiguous and offset views",
          not q.is_contiguous() and not ffn.is_contiguous() and v1.storage_offset() > 0,
          f"query stride {q.stride()}, fc1 stride {ffn.stride()}, value offset {v1.storage_offset()}")


def try_from_pretrained(esm_dir: str, hub: Dict[str, torch.Tensor], inv_freq: torch.Tensor,
                        id_lists: List[List[int]], want: torch.Tensor) -> None:
    """EsmModel.from_pretrained on the written folder: a cross-check, recorded but not fatal."""
    try:
        from transformers import EsmModel

        try:
            m = EsmModel.from_pretrained(esm_dir, add_pooling_layer=False, attn_implementation="sdpa")
        except TypeError:
            m = EsmModel.from_pretrained(esm_dir)
        m.eval()
        sd = m.state_dict()
        freq = [k for k, v in m.named_buffers() if k.endswith("inv_freq") and not torch.equal(v.float().cpu(), inv_freq)]
        weights_same = all(torch.equal(sd[k].float().cpu(), hub[k]) for k in hub if k in sd and not k.endswith("inv_freq"))
        d = max_diff(hf_esm_embed(m.double(), id_lists, len(id_lists), "cpu", torch.float64), want)
        check("EsmModel.from_pretrained(esm/) loads the same weights", weights_same, fatal=False)
        check("EsmModel.from_pretrained(esm/) keeps the checkpoint inv_freq", not freq,
              f"recomputed in {freq}" if freq else "", fatal=False)
        check("EsmModel.from_pretrained(esm/) output == reference", d < 1e-9, f"max abs diff {d:.3e}", fatal=False)
    except Exception:  # noqa: BLE001
        NOTES.append("EsmModel.from_pretrained cross-check raised:\n" + traceback.format_exc())
        check("EsmModel.from_pretrained(esm/) ran", False, NOTES[-1].splitlines()[-1], fatal=False)


if __name__ == "__main__":
    main()
