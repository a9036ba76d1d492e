#!/usr/bin/python3
"""Makes the µP fixture (wafer-core/src/test/resources/fixtures/gpt-mup): a tiny checkpoint in the form of Cerebras' µP
checkpoints (Cerebras-GPT-Intermediate *_muP: model_type "btlm", learned positions, GELU, tied embeddings) and
what a float64 PyTorch reference of Hugging Face's BTLM formulas (cerebras/btlm-3b-8k-base, modeling_btlm.py)
computes with it, in the layout of the other fixtures (see fixtures/README.md):

  (wte[x] + wpe[t]) * mup_embeddings_scale             BTLMModel.forward, before the first block
  q.k / d_head ** (1 if mup_scale_qk_dot_by_d else 0.5)  BTLMAttention._attn (scale_attn_weights true)
  logits = (ln_f(h) @ wte^T) * mup_output_alpha * mup_width_scale     BTLMLMHeadModel.forward

Training (three AdamW steps) follows Cerebras' modelzoo µP recipe: the learning rate of each block's four
matrices (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj weights) is times mup_width_scale (= base width /
width); embeddings, biases and LayerNorms keep it.

The weights and tokens come from ../shared/tools/torch_ref.py (its `make`, seed 14, and its token-shard and
safetensors helpers); the forward, loss and AdamW here are written out again with the µP factors.

  /usr/bin/python3 tools/mup_ref.py --out wafer-core/src/test/resources/fixtures/gpt-mup
"""
import argparse, importlib.util, json, math, os, re
import numpy as np
import torch

ap = argparse.ArgumentParser()
ap.add_argument("--out", required=True)
ap.add_argument("--ref", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared",
                                              "tools", "torch_ref.py"))
a = ap.parse_args()
spec = importlib.util.spec_from_file_location("torch_ref", a.ref)
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

L, C, H, V, P, B, T, STEPS = 2, 32, 4, 67, 16, 2, 8, 3
MUP = {"mup_embeddings_scale": 10.0, "mup_output_alpha": 2.2, "mup_width_scale": 0.25, "mup_scale_qk_dot_by_d": True}
LR, WD, B1, B2, EPS, CLIP = 1e-3, 0.1, 0.9, 0.95, 1e-8, 1.0

ref.cmd_make(argparse.Namespace(out=a.out, seed=14, n_layer=L, n_embd=C, n_head=H, vocab=V, n_positions=P,
                                n_inner=None, act="gelu", no_prefix=False, with_buffers=False, untied=False))
# the config as Cerebras' µP checkpoints write it (CerebrasGPT-1.3B_muP's keys, this model's sizes and scales)
cfg = {"attn_pdrop": 0.0, "scale_attn_weights": True, "resid_pdrop": 0.0, "mup_embeddings_scale": MUP["mup_embeddings_scale"],
       "n_inner": 4 * C, "n_embd": C, "layer_norm_epsilon": 1e-05, "n_positions": P, "activation_function": "gelu",
       "n_head": H, "n_layer": L, "mup_output_alpha": MUP["mup_output_alpha"], "mup_width_scale": MUP["mup_width_scale"],
       "position_embedding_type": "learned", "mup_scale_qk_dot_by_d": MUP["mup_scale_qk_dot_by_d"],
       "tie_word_embeddings": True, "vocab_size": V, "alibi_scaling": None, "embd_pdrop": 0.0, "model_type": "btlm",
       "use_cache": True, "auto_map": {
           "AutoConfig": "cerebras/btlm-3b-8k-base--configuration_btlm.BTLMConfig",
           "AutoModel": "cerebras/btlm-3b-8k-base--modeling_btlm.BTLMModel",
           "AutoModelForCausalLM": "cerebras/btlm-3b-8k-base--modeling_btlm.BTLMLMHeadModel"}}
json.dump(cfg, open(os.path.join(a.out, "config.json"), "w"), indent=2)
toks = np.random.default_rng(14).integers(0, V, 200)
ref.write_tokens(os.path.join(a.out, "tokens.bin"), toks)


def forward(p, idx):
    Bn, Tn = idx.shape
    hs = C // H
    x = (p["wte.weight"][idx] + p["wpe.weight"][torch.arange(Tn)]) * cfg["mup_embeddings_scale"]
    mask = torch.tril(torch.ones(Tn, Tn, dtype=torch.bool))
    for i in range(L):
        g = lambda n: p[f"h.{i}.{n}"]
        h = torch.nn.functional.layer_norm(x, (C,), g("ln_1.weight"), g("ln_1.bias"), 1e-5)
        q, k, v = (h @ g("attn.c_attn.weight") + g("attn.c_attn.bias")).split(C, dim=-1)
        q, k, v = (t.view(Bn, Tn, H, hs).transpose(1, 2) for t in (q, k, v))
        att = (q @ k.transpose(-1, -2)) / hs ** (1.0 if cfg["mup_scale_qk_dot_by_d"] else 0.5)
        att = att.masked_fill(~mask, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(1, 2).reshape(Bn, Tn, C) @ g("attn.c_proj.weight") + g("attn.c_proj.bias")
        h = torch.nn.functional.layer_norm(x, (C,), g("ln_2.weight"), g("ln_2.bias"), 1e-5)
        h = torch.nn.functional.gelu(h @ g("mlp.c_fc.weight") + g("mlp.c_fc.bias"))
        x = x + h @ g("mlp.c_proj.weight") + g("mlp.c_proj.bias")
    x = torch.nn.functional.layer_norm(x, (C,), p["ln_f.weight"], p["ln_f.bias"], 1e-5)
    return (x @ p["wte.weight"].t()) * (cfg["mup_output_alpha"] * cfg["mup_width_scale"])


HIDDEN = re.compile(r"h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight")
p = {k: v.clone().double().requires_grad_(True)
     for k, v in ref.canonical(ref.st_read(os.path.join(a.out, "model.safetensors"))).items()}
m = {k: torch.zeros_like(v) for k, v in p.items()}
s = {k: torch.zeros_like(v) for k, v in p.items()}
exp = os.path.join(a.out, "expected")
os.makedirs(exp, exist_ok=True)
losses = []
for step, (x, y) in enumerate(ref.batches(toks, B, T, STEPS), start=1):
    for v in p.values():
        v.grad = None
    logits = forward(p, x)
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
    loss.backward()
    losses.append(loss.item())
    if step == 1:
        ref.st_write(os.path.join(exp, "step1_logits.safetensors"), {"logits": logits.detach().float()})
        ref.st_write(os.path.join(exp, "step1_grads.safetensors"), {k: v.grad.float() for k, v in p.items()})
    with torch.no_grad():
        norm = math.sqrt(sum(float((v.grad ** 2).sum()) for v in p.values()))
        clip = min(1.0, CLIP / (norm + 1e-6))
        for k, v in p.items():
            lr = LR * (cfg["mup_width_scale"] if HIDDEN.fullmatch(k) else 1.0)
            gr = v.grad * clip
            m[k].mul_(B1).add_(gr, alpha=1 - B1)
            s[k].mul_(B2).addcmul_(gr, gr, value=1 - B2)
            mh, sh = m[k] / (1 - B1 ** step), s[k] / (1 - B2 ** step)
            v.mul_(1 - lr * (WD if v.dim() >= 2 else 0.0))
            v.sub_(lr * mh / (sh.sqrt() + EPS))
ref.st_write(os.path.join(exp, "final_params.safetensors"), {k: v.detach().float() for k, v in p.items()})
json.dump({"losses": losses}, open(os.path.join(exp, "losses.json"), "w"))
print(json.dumps({"losses": losses}))
