#!/usr/bin/python3
"""Checks a Wafer LoRA adapter the way Hugging Face PEFT reads it, without PEFT (not installable here).

  tools/peft_check.py BASE_DIR ADAPTER_DIR MERGED_DIR

BASE_DIR: the base model (config.json + model.safetensors); ADAPTER_DIR: adapter_config.json +
adapter_model.safetensors from `wafer finetune --method lora`; MERGED_DIR: the model Wafer merged
(`--merge` writes ADAPTER_DIR/merged). The script
  1. checks the adapter config and every key and shape against PEFT's conventions for GPT-2
     (base_model.model.transformer.h.N.<module>.lora_A.weight [r, in], lora_B.weight [out, r],
     fan_in_fan_out for Conv1D, task_type CAUSAL_LM);
  2. applies the adapter to the base model with PEFT's LoRA rule for Conv1D
     (W[in, out] += (B @ A)^T * lora_alpha / r), in float64 PyTorch (../shared/tools/torch_ref.py's model);
  3. compares the logits with those of Wafer's merged model, and with the base model's (the adapter
     must change them). Exits 1 on any mismatch.
"""
import json, os, re, sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "tools"))
import torch  # noqa: E402
import torch_ref  # noqa: E402

KEY = re.compile(r"^base_model\.model\.transformer\.(h\.\d+\.(?:attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj))\.lora_([AB])\.weight$")


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def main(base, adapter, merged):
    cfg, p = torch_ref.load(base)
    acfg = json.load(open(os.path.join(adapter, "adapter_config.json")))
    for k, want in [("peft_type", "LORA"), ("task_type", "CAUSAL_LM"), ("fan_in_fan_out", True), ("bias", "none")]:
        if acfg.get(k) != want:
            fail(f"adapter_config.json: {k} is {acfg.get(k)!r}, PEFT needs {want!r} for a GPT-2 causal-LM LoRA")
    r, alpha = acfg["r"], acfg["lora_alpha"]
    targets = acfg["target_modules"]
    tensors = torch_ref.st_read(os.path.join(adapter, "adapter_model.safetensors"))
    pairs = {}
    for k, v in tensors.items():
        m = KEY.match(k)
        if not m:
            fail(f"key {k} is not a PEFT LoRA key for GPT-2")
        mod, ab = m.group(1), m.group(2)
        if not any(mod == t or mod.endswith("." + t) for t in targets):
            fail(f"{k}: module {mod} is not in target_modules {targets}")
        pairs.setdefault(mod, {})[ab] = v.double()
    n = 0
    for mod, ab in sorted(pairs.items()):
        if set(ab) != {"A", "B"}:
            fail(f"{mod}: needs both lora_A and lora_B")
        w = p[mod + ".weight"]  # Conv1D [in, out]
        A, B = ab["A"], ab["B"]
        if tuple(A.shape) != (r, w.shape[0]) or tuple(B.shape) != (w.shape[1], r):
            fail(f"{mod}: lora_A {tuple(A.shape)} / lora_B {tuple(B.shape)}, PEFT expects ({r}, {w.shape[0]}) / ({w.shape[1]}, {r})")
        with torch.no_grad():
            w += (B @ A).t() * (alpha / r)
        n += 1
    _, pm = torch_ref.load(merged)
    _, pb = torch_ref.load(base)
    torch.manual_seed(0)
    idx = torch.randint(0, cfg["vocab_size"], (2, min(16, cfg["n_positions"])))
    with torch.no_grad():
        got, want, plain = torch_ref.forward(p, cfg, idx), torch_ref.forward(pm, cfg, idx), torch_ref.forward(pb, cfg, idx)
    scale = want.abs().max().item()
    diff = (got - want).abs().max().item() / scale
    moved = (plain - want).abs().max().item() / scale
    print(f"{n} LoRA modules, r={r}, alpha={alpha}; logits of base + adapter (PEFT's rule) vs Wafer's merged model: "
          f"max |diff| / max |logit| = {diff:.2e}; the adapter moves the base's logits by {moved:.2e}")
    if diff > 1e-5:
        fail("the adapter read with PEFT's rule does not give Wafer's merged model")
    if moved < 1e-4:
        fail("the adapter does not change the model (is lora_B still zero?)")
    print("OK")


if __name__ == "__main__":
    if len(sys.argv) != 4:
        print(__doc__)
        sys.exit(2)
    main(*sys.argv[1:])
