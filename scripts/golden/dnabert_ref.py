"""DNABERT-S (MosaicBERT-style) encoder in plain PyTorch.

Written from docs/models.md: post-LayerNorm BERT with ALiBi attention, a fused head-major
Wqkv projection and a gated-GELU feed-forward block. It is the golden reference for the
parity tests and, run batched with padding and an attention mask, the "as VirNucPro runs it"
peer for the benchmarks. Checkpoint names are those of DNABERT-S `pytorch_model.bin`
(optionally `bert.`-prefixed); `pooler.*` and `cls.*` are ignored.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

PAD_ID = 3  # [PAD] in the DNABERT-S vocabulary; padded rows are masked out anyway


@dataclass
class DnabertConfig:
    num_hidden_layers: int
    hidden_size: int
    num_attention_heads: int
    intermediate_size: int
    vocab_size: int
    layer_norm_eps: float = 1e-12
    type_vocab_size: int = 2

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_attention_heads

    @staticmethod
    def from_dict(d: Dict) -> "DnabertConfig":
        return DnabertConfig(
            num_hidden_layers=int(d["num_hidden_layers"]),
            hidden_size=int(d["hidden_size"]),
            num_attention_heads=int(d["num_attention_heads"]),
            intermediate_size=int(d["intermediate_size"]),
            vocab_size=int(d["vocab_size"]),
            layer_norm_eps=float(d.get("layer_norm_eps", 1e-12)),
            type_vocab_size=int(d.get("type_vocab_size", 2)),
        )


def alibi_slopes(n_heads: int) -> List[float]:
    """MosaicBERT slope rule: a geometric series for powers of two, else the nearest lower
    power of two plus every other slope of the next power of two."""

    def power_of_two(n: int) -> List[float]:
        start = 2.0 ** (-(2.0 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    if math.log2(n_heads).is_integer():
        return power_of_two(n_heads)
    closest = 2 ** math.floor(math.log2(n_heads))
    return power_of_two(closest) + alibi_slopes(2 * closest)[0::2][: n_heads - closest]


class Embeddings(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.token_type_embeddings = nn.Embedding(cfg.type_vocab_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # token_type_ids are always 0 in DNABERT-S inference
        return self.LayerNorm(self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0])


class SelfAttention(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.Wqkv = nn.Linear(cfg.hidden_size, 3 * cfg.hidden_size)


class AttentionOutput(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.dense = nn.Linear(cfg.hidden_size, cfg.hidden_size)
        self.LayerNorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class Attention(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.self = SelfAttention(cfg)
        self.output = AttentionOutput(cfg)


class GatedMlp(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.gated_layers = nn.Linear(cfg.hidden_size, 2 * cfg.intermediate_size, bias=False)
        self.wo = nn.Linear(cfg.intermediate_size, cfg.hidden_size)
        self.layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)


class Layer(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.attention = Attention(cfg)
        self.mlp = GatedMlp(cfg)


class Encoder(nn.Module):
    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.layer = nn.ModuleList([Layer(cfg) for _ in range(cfg.num_hidden_layers)])


class DnabertRef(nn.Module):
    """forward(input_ids [B, L], attention_mask [B, L]) -> last hidden state [B, L, H]."""

    def __init__(self, cfg: DnabertConfig):
        super().__init__()
        self.config = cfg
        self.embeddings = Embeddings(cfg)
        self.encoder = Encoder(cfg)
        self.register_buffer("slopes", torch.tensor(alibi_slopes(cfg.num_attention_heads)), persistent=False)

    def attention_bias(self, attention_mask: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        """alibi[h, i, j] = -slope_h * |i - j|, plus -inf on padded keys: [B, heads, L, L]."""
        L = attention_mask.shape[1]
        pos = torch.arange(L, device=attention_mask.device)
        dist = (pos[None, :] - pos[:, None]).abs().to(dtype)
        alibi = -self.slopes.to(dtype)[:, None, None] * dist[None]
        keys = attention_mask.bool()[:, None, None, :]
        return alibi[None].masked_fill(~keys, float("-inf"))

    def forward(self, input_ids: torch.Tensor, attention_mask: Optional[torch.Tensor] = None,
                use_sdpa: bool = False) -> torch.Tensor:
        cfg = self.config
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        B, L = input_ids.shape
        nh, hd, inter = cfg.num_attention_heads, cfg.head_dim, cfg.intermediate_size
        x = self.embeddings(input_ids)
        bias = self.attention_bias(attention_mask, x.dtype)
        for layer in self.encoder.layer:
            qkv = layer.attention.self.Wqkv(x)
            # rows of Wqkv: Q block, K block, V block, each head-major
            q, k, v = qkv.view(B, L, 3, nh, hd).permute(2, 0, 3, 1, 4)
            if use_sdpa:
                ctx = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
            else:
                scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd) + bias
                # half-precision inputs still get an fp32 softmax; fp32/fp64 keep their own
                low = scores.dtype in (torch.float16, torch.bfloat16)
                probs = torch.softmax(scores.float() if low else scores, dim=-1).to(v.dtype)
                ctx = torch.matmul(probs, v)
            ctx = ctx.transpose(1, 2).reshape(B, L, nh * hd)
            out = layer.attention.output
            x = out.LayerNorm(x + out.dense(ctx))
            u = layer.mlp.gated_layers(x)
            # gate = first intermediate_size columns, linear part = the rest
            h = F.gelu(u[..., :inter]) * u[..., inter:]
            x = layer.mlp.layernorm(x + layer.mlp.wo(h))
        return x


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Mean over every real token, [CLS] and [SEP] included: [B, L, H] -> [B, H]."""
    m = attention_mask.to(hidden.dtype)[..., None]
    return (hidden * m).sum(1) / m.sum(1)


def pad_batch(id_lists: Sequence[Sequence[int]], device: torch.device | str = "cpu"):
    """Right-pads token id lists: (input_ids [B, L] int64, attention_mask [B, L] int64)."""
    L = max(len(ids) for ids in id_lists)
    ids = torch.full((len(id_lists), L), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(id_lists), L), dtype=torch.long)
    for i, seq in enumerate(id_lists):
        ids[i, : len(seq)] = torch.tensor(list(seq), dtype=torch.long)
        mask[i, : len(seq)] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def embed(model: DnabertRef, id_lists: Sequence[Sequence[int]], batch_size: int = 64,
          use_sdpa: bool = False) -> torch.Tensor:
    """Mean-pooled embeddings [N, H] (float32 on the CPU), batches padded in input order."""
    device = next(model.parameters()).device
    out = []
    for start in range(0, len(id_lists), batch_size):
        ids, mask = pad_batch(id_lists[start : start + batch_size], device)
        out.append(mean_pool(model(ids, mask, use_sdpa=use_sdpa), mask).float().cpu())
    return torch.cat(out) if out else torch.zeros((0, model.config.hidden_size))


def strip_checkpoint(state: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """Drops the optional `bert.` prefix and the unused pooler/MLM-head tensors."""
    out = {}
    for name, t in state.items():
        if name.startswith("bert."):
            name = name[len("bert.") :]
        if name.startswith("pooler.") or name.startswith("cls.") or name.endswith("position_ids"):
            continue
        out[name] = t
    return out


def load_dnabert(model_dir: str, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> DnabertRef:
    """Loads config.json + pytorch_model.bin (or model.safetensors) from a DNABERT-S directory."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = DnabertConfig.from_dict(json.load(f))
    model = DnabertRef(cfg)
    bin_path = os.path.join(model_dir, "pytorch_model.bin")
    if os.path.exists(bin_path):
        state = torch.load(bin_path, map_location="cpu", weights_only=True)
    else:
        from safetensors.torch import load_file

        state = load_file(os.path.join(model_dir, "model.safetensors"))
    model.load_state_dict(strip_checkpoint(state), strict=True)
    return model.to(device=device, dtype=dtype).eval()
