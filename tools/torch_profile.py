#!/usr/bin/python3
"""Where PyTorch's bf16 autocast step goes: the 111M model of ../shared/bench/torch_gpt_bench.py (B 4, T 256, 2 threads),
three warm-up steps, then torch.profiler over two steps, by operator and input shape (BENCHMARKS.md, issue 15).
Run from the repository root: /usr/bin/python3 tools/torch_profile.py"""
import os, sys, torch, torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'shared', 'bench'))
import torch_gpt_bench as b
torch.set_num_threads(2)
torch.manual_seed(0)
m = b.GPT(10, 768, 12, 50257, 2048)
opt = torch.optim.AdamW(m.parameters(), lr=1e-4, betas=(0.9, 0.95), weight_decay=0.1)
x = torch.randint(0, 50257, (4, 257))
def step():
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = m(x[:, :-1])
        loss = F.cross_entropy(logits.float().reshape(-1, 50257), x[:, 1:].reshape(-1))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
    opt.step()
import time
for i in range(3): step()
t=time.perf_counter(); step(); print("step ms", (time.perf_counter()-t)*1e3)
from torch.profiler import profile, ProfilerActivity
with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
    for i in range(2): step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=30))
print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=40, max_name_column_width=20,
                                                        max_shapes_column_width=70))
