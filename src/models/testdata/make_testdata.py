# Regenerates the torch-written files in this folder (run with any torch >= 1.6; these came from 1.13).
# They check the reader against real torch.save output: a whole-module pickle, odd strides and dtypes,
# and a fair-esm style checkpoint ({"model": state dict in fp16, "cfg": {"model": Namespace}}).
import argparse, collections, torch, torch.nn as nn

torch.manual_seed(0)


class MLPClassifier(nn.Module):
    def __init__(self, i, h, c):
        super().__init__()
        self.hidden_layer = nn.Linear(i, h)
        self.bn1 = nn.BatchNorm1d(h, eps=1e-3)
        self.output_layer = nn.Linear(h, c)
        self.dropout = nn.Dropout(0.5)


m = MLPClassifier(16, 8, 2)
m.eval()
with torch.no_grad():
    m.bn1.running_mean.normal_()
    m.bn1.running_var.uniform_(0.5, 1.5)
torch.save(m, "mlp_module.pth")
with open("mlp_module.expect.txt", "w") as f:
    for name, t in m.state_dict().items():
        f.write(name + " " + " ".join(repr(float(x)) for x in t.flatten().tolist()) + "\n")

x = torch.arange(24, dtype=torch.float32).reshape(4, 6)
torch.save(
    {"t": x.t(), "s": x[1:3, ::2], "h": x.half(), "b": (x / 8).bfloat16(), "d": x.double(), "l": torch.arange(5),
     "bool": torch.tensor([True, False, True]), "scalar": torch.tensor(3.5), "size": x.size(),
     "shared": [x[0], x[2]], "expanded": torch.ones(3).expand(2, 3)},
    "mixed.pt",
)

H, L, F, V, heads = 8, 2, 32, 33, 2
sd = collections.OrderedDict()
p = "encoder.sentence_encoder."
sd[p + "embed_tokens.weight"] = torch.randn(V, H)
for l in range(L):
    q = f"{p}layers.{l}."
    for n in ["q_proj", "k_proj", "v_proj", "out_proj"]:
        sd[q + f"self_attn.{n}.weight"] = torch.randn(H, H)
        sd[q + f"self_attn.{n}.bias"] = torch.randn(H)
    sd[q + "self_attn.rot_emb.inv_freq"] = 1.0 / (10000 ** (torch.arange(0, H // heads, 2).float() / (H // heads)))
    for n in ["self_attn_layer_norm", "final_layer_norm"]:
        sd[q + f"{n}.weight"] = torch.randn(H)
        sd[q + f"{n}.bias"] = torch.randn(H)
    sd[q + "fc1.weight"] = torch.randn(F, H)
    sd[q + "fc1.bias"] = torch.randn(F)
    sd[q + "fc2.weight"] = torch.randn(H, F)
    sd[q + "fc2.bias"] = torch.randn(H)
sd[p + "emb_layer_norm_after.weight"] = torch.randn(H)
sd[p + "emb_layer_norm_after.bias"] = torch.randn(H)
sd["encoder.lm_head.weight"] = sd[p + "embed_tokens.weight"]
sd["encoder.lm_head.bias"] = torch.randn(V)
sd = collections.OrderedDict((k, v.half()) for k, v in sd.items())
ns = argparse.Namespace(encoder_layers=L, encoder_embed_dim=H, encoder_attention_heads=heads,
                        encoder_ffn_embed_dim=F, token_dropout=True)
torch.save({"model": sd, "cfg": {"model": ns}, "args": None}, "fair_esm_tiny.pt")
# per tensor: the first three values and the sum (in float64)
with open("fair_esm_tiny.expect.txt", "w") as f:
    for name, t in sd.items():
        v = t.float().flatten()
        f.write(name + " " + " ".join(repr(float(x)) for x in v[:3].tolist() + [v.double().sum().item()]) + "\n")
