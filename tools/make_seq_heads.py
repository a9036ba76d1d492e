#!/usr/bin/python3
"""Writes wafer-core/src/test/resources/fixtures/seq-heads/cases.json: what PyTorch computes for Hugging Face's
GPT2ForSequenceClassification head (score = Linear(C, K, bias=False) on each row's last real token) with
problem_type multi_label_classification (BCEWithLogitsLoss, mean) and regression (MSELoss, mean, one output):
the pooled logits, the loss, and the gradients of the loss with respect to score.weight and the hidden states.
Plus, for the regression report, MSE, MAE and Pearson's r of one gold/prediction pair of vectors (float64).

    /usr/bin/python3 tools/make_seq_heads.py        # deterministic (seeded); PyTorch 1.13
"""
import json, os
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "wafer-core/src/test/resources/fixtures/seq-heads/cases.json")
B, T, C = 3, 5, 6
lengths, starts = [5, 2, 4], [0, 3, 1]  # row 1 and 2 left-padded


def case(problem, K, targets):
    g = torch.Generator().manual_seed(7 + K)
    hidden = torch.randn(B * T, C, generator=g, dtype=torch.float32).double().requires_grad_()
    weight = (torch.randn(K, C, generator=g, dtype=torch.float32) * 0.5).double().requires_grad_()
    rows = [b * T + starts[b] + lengths[b] - 1 for b in range(B)]
    logits = hidden[rows] @ weight.T
    y = torch.tensor(targets, dtype=torch.float64)
    if problem == "regression":
        loss = torch.nn.MSELoss()(logits.squeeze(-1), y)  # as GPT2ForSequenceClassification with num_labels 1
    else:
        loss = torch.nn.BCEWithLogitsLoss()(logits, y)
    loss.backward()
    flat = lambda t: [float(v) for v in t.detach().reshape(-1)]
    return {"problem": problem, "B": B, "T": T, "C": C, "K": K, "lengths": lengths, "starts": starts,
            "hidden": flat(hidden), "weight": flat(weight), "targets": flat(y), "logits": flat(logits),
            "loss": float(loss), "grad_weight": flat(weight.grad), "grad_hidden": flat(hidden.grad)}


gold = torch.tensor([0.5, 1.25, -2.0, 3.0, 0.0, 1.5], dtype=torch.float64)
pred = torch.tensor([0.75, 1.0, -1.5, 2.0, 0.25, 2.5], dtype=torch.float64)
report = {"gold": gold.tolist(), "pred": pred.tolist(), "mse": float(((pred - gold) ** 2).mean()),
          "mae": float((pred - gold).abs().mean()), "pearson": float(torch.corrcoef(torch.stack([gold, pred]))[0, 1])}
cases = {"multi_label": case("multi_label_classification", 4, [[1, 0, 1, 0], [0, 0, 0, 1], [1, 1, 0, 1]]),
         "regression": case("regression", 1, [0.7, -1.2, 2.5]), "regression_report": report}
os.makedirs(os.path.dirname(OUT), exist_ok=True)
with open(OUT, "w") as f:
    json.dump(cases, f, indent=1)
    f.write("\n")
