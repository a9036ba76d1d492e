#!/usr/bin/python3
"""Writes wafer-core/src/test/resources/fixtures/fisher/cases.json: the diagonal empirical Fisher information that EWC uses
(finetune/Ewc.estimate), as PyTorch computes it in float64 for a token classifier on the gpt-tiny checkpoint: the mean
over three examples of the squared gradient of each example's loss (cross-entropy averaged over its labelled tokens,
as a batch of one trains; -100 marks a token without a label). The classifier head (Linear(C, 3) with bias, Hugging
Face's GPT2ForTokenClassification) is seeded here and written out; the GPT's forward is torch_ref.py's, up to ln_f.

    /usr/bin/python3 tools/make_fisher.py        # from the repository root; deterministic; PyTorch 1.13
"""
import importlib.util, json, math, os
import torch

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
spec = importlib.util.spec_from_file_location("torch_ref", os.path.join(root, "..", "shared", "tools", "torch_ref.py"))
ref = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ref)

cfg, p = ref.load(os.path.join(root, "wafer-core/src/test/resources/fixtures/gpt-tiny"))
C, K = cfg["n_embd"], 3
g = torch.Generator().manual_seed(11)
p["classifier.weight"] = (torch.randn(K, C, generator=g, dtype=torch.float32) * 0.3).double().requires_grad_(True)
p["classifier.bias"] = (torch.randn(K, generator=g, dtype=torch.float32) * 0.1).double().requires_grad_(True)
examples = [([5, 17, 42, 99, 3], [0, 2, 1, -100, 2]), ([64, 8, 8], [1, 1, 0]), ([0, 31, 77, 12, 50, 2], [2, -100, 0, 0, 1, 2])]


def hidden(idx):
    """torch_ref.forward without the LM head: the final LayerNorm's output."""
    saved = p.get("lm_head.weight")
    eye = torch.eye(C, dtype=torch.float64)
    p["lm_head.weight"] = eye  # x @ eye.T = x
    try:
        return ref.forward(p, cfg, idx)
    finally:
        if saved is None:
            del p["lm_head.weight"]
        else:
            p["lm_head.weight"] = saved


names = [n for n in p if n != "lm_head.weight"]
fisher = {n: torch.zeros_like(p[n]) for n in names}
for ids, labels in examples:
    for n in names:
        p[n].grad = None
    x = hidden(torch.tensor([ids]))[0]
    logits = x @ p["classifier.weight"].T + p["classifier.bias"]
    loss = torch.nn.functional.cross_entropy(logits, torch.tensor(labels), ignore_index=-100)
    loss.backward()
    for n in names:
        fisher[n] += p[n].grad.detach() ** 2 / len(examples)

flat = lambda t: [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]
kept = ["classifier.weight", "classifier.bias", "ln_f.weight", "h.0.attn.c_attn.bias", "h.1.mlp.c_proj.bias", "wte.weight"]
out = {"labels": ["t0", "t1", "t2"], "examples": [{"ids": i, "labels": l} for i, l in examples],
       "head": {"classifier.weight": flat(p["classifier.weight"]), "classifier.bias": flat(p["classifier.bias"])},
       "fisher": {n: flat(fisher[n]) for n in kept}}
path = os.path.join(root, "wafer-core/src/test/resources/fixtures/fisher/cases.json")
os.makedirs(os.path.dirname(path), exist_ok=True)
with open(path, "w") as f:
    json.dump(out, f)
    f.write("\n")
print(path, {n: float(fisher[n].sum()) for n in kept})
