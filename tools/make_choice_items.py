#!/usr/bin/env python3
"""Makes data/brown/choice-val.jsonl: zero-shot multiple-choice items from the bundled Brown dev text.

Each item is a sentence cut in two: the context is its first half, the choices are its true second
half and the second halves of three other sentences of similar length, in a shuffled order; the
label is the index of the true one. A model that has learnt English continues its own sentence more
likely than a stranger's (the HellaSwag idea, on Brown). Deterministic: seed 0.
  python3 tools/make_choice_items.py > data/brown/choice-val.jsonl
"""
import json, random, re, sys

text = open("data/brown/val.txt", encoding="utf-8").read()
sents = []
for para in text.split("\n"):
    for s in re.split(r"(?<=[.!?])\s+", para.strip()):
        w = s.split()
        if 10 <= len(w) <= 30:
            sents.append(w)
rng = random.Random(0)
rng.shuffle(sents)
items = []
for i, w in enumerate(sents[:200]):
    cut = len(w) // 2
    ctx, true = " ".join(w[:cut]), " " + " ".join(w[cut:])
    others = [o for o in sents if o is not w and abs(len(o) - len(w)) <= 3]
    rng.shuffle(others)
    choices = [true] + [" " + " ".join(o[len(o) // 2:]) for o in others[:3]]
    order = list(range(4))
    rng.shuffle(order)
    items.append({"context": ctx, "choices": [choices[j] for j in order], "label": order.index(0)})
for it in items:
    print(json.dumps(it))
