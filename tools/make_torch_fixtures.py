#!/usr/bin/python3
"""Writes the PyTorch-format test fixtures under wafer-core/src/test/resources/fixtures/torch/ with real torch.save.

Each checkpoint is laid out as the Cerebras-GPT hub repositories are (config.json + pytorch_model.bin, or
pytorch_model-0000k-of-0000n.bin shards + pytorch_model.bin.index.json): keys with the `transformer.` prefix,
the attention-mask buffers Hugging Face's GPT-2 of that time saved (`attn.bias` bool [1,1,P,P],
`attn.masked_bias` a float scalar), and, when tied, `lm_head.weight` sharing wte's storage. The values are
those of the safetensors twins (gpt-tiny, gpt-untied), parsed here by hand (the safetensors package is not
installed): 8-byte little-endian header length, JSON header, raw little-endian data.

    /usr/bin/python3 tools/make_torch_fixtures.py                      # the fixtures (deterministic)
    /usr/bin/python3 tools/make_torch_fixtures.py --big DIR            # a random Cerebras-GPT-111M-shaped .bin (not committed)
"""
import argparse, collections, json, os, shutil, struct, zipfile
import torch

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
FIX = os.path.join(ROOT, "wafer-core/src/test/resources/fixtures")
OUT = os.path.join(FIX, "torch")
# the command the malicious pickle names; MaliciousPickle's test asserts this file never appears
MARKER = "/tmp/wafer-malicious-fixture-ran"


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    out = collections.OrderedDict()
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] == "F32", t
        b, e = t["data_offsets"]
        data = bytearray(raw[8 + n + b:8 + n + e])
        out[name] = torch.frombuffer(data, dtype=torch.float32).reshape(t["shape"]).clone()
    return out


def hub_state_dict(src, n_positions, dtype=torch.float32, tied=True):
    """A GPT2LMHeadModel.state_dict() as transformers 4.27 returned it: buffers included, lm_head sharing wte's storage."""
    sd = collections.OrderedDict()
    layers = sorted({int(k.split(".")[2]) for k in src if k.startswith("transformer.h.")})
    for k, v in src.items():
        if k == "lm_head.weight":
            continue
        sd[k] = v.to(dtype)
    for i in layers:
        sd[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones((n_positions, n_positions), dtype=torch.bool)).view(1, 1, n_positions, n_positions)
        sd[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    # state_dict() detaches each parameter: a new tensor object on the same storage, so the file stores it once
    sd["lm_head.weight"] = sd["transformer.wte.weight"].detach() if tied else src["lm_head.weight"].to(dtype)
    # state_dict() carries module versions as an attribute, pickled with BUILD
    sd._metadata = collections.OrderedDict([("", {"version": 1}), ("transformer", {"version": 1})])
    return sd


def config(twin):
    with open(os.path.join(FIX, twin, "config.json")) as f:
        return json.load(f)


def write_dir(name, twin, shards=None, **kw):
    d = os.path.join(OUT, name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(FIX, twin, "config.json"), d)
    cfg = config(twin)
    src = read_safetensors(os.path.join(FIX, twin, "model.safetensors"))
    sd = kw.pop("make", hub_state_dict)(src, cfg["n_positions"], tied=cfg["tie_word_embeddings"], **kw)
    if not shards:
        torch.save(sd, os.path.join(d, "pytorch_model.bin"))
        return d
    # as transformers' shard_checkpoint: consecutive keys, one file per group, and the index naming them
    keys = list(sd.keys())
    groups = [keys[len(keys) * i // shards:len(keys) * (i + 1) // shards] for i in range(shards)]
    weight_map, total = {}, 0
    for i, g in enumerate(groups):
        fname = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
        torch.save(collections.OrderedDict((k, sd[k]) for k in g), os.path.join(d, fname))
        for k in g:
            weight_map[k] = fname
            total += sd[k].numel() * sd[k].element_size()
    with open(os.path.join(d, "pytorch_model.bin.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        f.write("\n")
    return d


def parameters(src, n_positions, tied, dtype=torch.float32):
    """torch.save of nn.Parameter objects (pickled with _rebuild_parameter) rather than plain tensors."""
    sd = hub_state_dict(src, n_positions, dtype, tied)
    return collections.OrderedDict((k, torch.nn.Parameter(v, requires_grad=False) if v.is_floating_point() and v.dim() > 0 else v)
                                   for k, v in sd.items())


def views(src, n_positions, tied):
    """Every matrix stored transposed (a .t() view of a contiguous tensor: strides (1, rows)), every vector a slice
    of one shared storage (storage offsets): the values are unchanged, only how they sit in the file."""
    sd = hub_state_dict(src, n_positions, torch.float32, tied)
    vectors = [k for k, v in sd.items() if v.dim() == 1]
    flat = torch.cat([sd[k] for k in vectors])
    at = 0
    for k in vectors:
        n = sd[k].numel()
        sd[k] = flat[at:at + n]
        at += n
    for k, v in sd.items():
        if v.dim() == 2:
            sd[k] = v.t().contiguous().t()
            assert not sd[k].is_contiguous()
    return sd


def to_zip64(path):
    """Rewrites the archive's central directory in the zip64 form (64-bit sizes and offsets in extra fields, a zip64
    end record and its locator), as PyTorch writes a file over 4 GB, such as a Cerebras-GPT-13B shard; the entries
    themselves are unchanged."""
    raw = open(path, "rb").read()
    with zipfile.ZipFile(path) as z:
        start, infos = z.start_dir, z.infolist()
    cd, p = bytearray(), start
    for info in infos:
        fixed = bytearray(raw[p:p + 46])
        n, e, c = struct.unpack("<HHH", fixed[28:34])
        name, extra, comment = raw[p + 46:p + 46 + n], raw[p + 46 + n:p + 46 + n + e], raw[p + 46 + n + e:p + 46 + n + e + c]
        assert name.decode() == info.filename
        fixed[4:8] = struct.pack("<HH", 45, 45)
        fixed[20:28] = struct.pack("<II", 0xFFFFFFFF, 0xFFFFFFFF)
        fixed[30:32] = struct.pack("<H", e + 28)
        fixed[42:46] = struct.pack("<I", 0xFFFFFFFF)
        cd += fixed + name + extra + struct.pack("<HHQQQ", 1, 24, info.file_size, info.compress_size, info.header_offset) + comment
        p += 46 + n + e + c
    end64 = start + len(cd)
    tail = struct.pack("<IQHHIIQQQQ", 0x06064b50, 44, 45, 45, 0, 0, len(infos), len(infos), len(cd), start)
    tail += struct.pack("<IIQI", 0x07064b50, 0, end64, 1)
    tail += struct.pack("<IHHHHIIH", 0x06054b50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    open(path, "wb").write(raw[:start] + cd + tail)
    with zipfile.ZipFile(path) as z:  # still a valid archive, to Python's reader and to torch's
        assert z.testzip() is None
    torch.load(path)


class Malicious:
    def __reduce__(self):
        return os.system, ("touch " + MARKER,)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--big", help="write a random Cerebras-GPT-111M-shaped pytorch_model.bin + config.json here instead")
    a = ap.parse_args()
    if a.big:
        return big(a.big)
    torch.manual_seed(0)
    write_dir("tied", "gpt-tiny")
    write_dir("fp16", "gpt-tiny", dtype=torch.float16)
    to_zip64(os.path.join(write_dir("bf16", "gpt-untied", dtype=torch.bfloat16), "pytorch_model.bin"))
    write_dir("untied-sharded", "gpt-untied", shards=3, make=parameters)
    write_dir("view", "gpt-untied", make=views)

    d = os.path.join(OUT, "legacy")  # before PyTorch 1.6's zip format: one pickle stream, storages appended
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(FIX, "gpt-untied", "config.json"), d)
    src = read_safetensors(os.path.join(FIX, "gpt-untied", "model.safetensors"))
    torch.save(collections.OrderedDict((k, src[k]) for k in ["transformer.ln_f.weight", "transformer.ln_f.bias"]),
               os.path.join(d, "pytorch_model.bin"), _use_new_zipfile_serialization=False)

    d = os.path.join(OUT, "malicious")  # a zip checkpoint whose pickle calls os.system (posix.system) when unpickled
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(FIX, "gpt-untied", "config.json"), d)
    torch.save(collections.OrderedDict([("transformer.ln_f.weight", Malicious())]), os.path.join(d, "pytorch_model.bin"))
    with zipfile.ZipFile(os.path.join(d, "pytorch_model.bin")) as z:
        assert b"posix\nsystem" in z.read("pytorch_model/data.pkl")


def big(d):
    """Random weights in the shape of Cerebras-GPT-111M (10 layers, d 768, vocab 50257, 2048 positions), tied."""
    os.makedirs(d, exist_ok=True)
    L, C, V, P = 10, 768, 50257, 2048
    g = torch.Generator().manual_seed(0)
    sd = collections.OrderedDict()
    sd["transformer.wte.weight"] = torch.randn(V, C, generator=g) * 0.02
    sd["transformer.wpe.weight"] = torch.randn(P, C, generator=g) * 0.02
    for i in range(L):
        p = f"transformer.h.{i}."
        sd[p + "ln_1.weight"], sd[p + "ln_1.bias"] = torch.ones(C), torch.zeros(C)
        sd[p + "attn.c_attn.weight"], sd[p + "attn.c_attn.bias"] = torch.randn(C, 3 * C, generator=g) * 0.02, torch.zeros(3 * C)
        sd[p + "attn.c_proj.weight"], sd[p + "attn.c_proj.bias"] = torch.randn(C, C, generator=g) * 0.02, torch.zeros(C)
        sd[p + "ln_2.weight"], sd[p + "ln_2.bias"] = torch.ones(C), torch.zeros(C)
        sd[p + "mlp.c_fc.weight"], sd[p + "mlp.c_fc.bias"] = torch.randn(C, 4 * C, generator=g) * 0.02, torch.zeros(4 * C)
        sd[p + "mlp.c_proj.weight"], sd[p + "mlp.c_proj.bias"] = torch.randn(4 * C, C, generator=g) * 0.02, torch.zeros(C)
        sd[p + "attn.bias"] = torch.tril(torch.ones((P, P), dtype=torch.bool)).view(1, 1, P, P)
        sd[p + "attn.masked_bias"] = torch.tensor(-1e4)
    sd["transformer.ln_f.weight"], sd["transformer.ln_f.bias"] = torch.ones(C), torch.zeros(C)
    sd["lm_head.weight"] = sd["transformer.wte.weight"].detach()
    torch.save(sd, os.path.join(d, "pytorch_model.bin"))
    cfg = {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "vocab_size": V, "n_positions": P, "n_embd": C,
           "n_layer": L, "n_head": 12, "n_inner": 4 * C, "activation_function": "gelu", "layer_norm_epsilon": 1e-5,
           "scale_attn_weights": True, "tie_word_embeddings": True, "torch_dtype": "float32"}
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
