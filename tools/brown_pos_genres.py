#!/usr/bin/env python3
"""Splits the Brown part-of-speech data by genre group, for the continual-learning runs (tools/continual.sh).

The shared POS files (../shared/data/brown/pos/{train,test}.conll) carry no document ids, but their sentences are
in document order, as are the documents of ../shared/data/brown/text/{split}.txt (one block each, a blank line
between); the genre files (../shared/data/brown/genre/{split}.jsonl) name each document's genre in the same order.
A document starts at the sentence whose letters and digits begin its text block's (quotes and spacing differ
between the two forms), so each sentence gets its document's genre.

Writes OUT/{informative,imaginative}-{train,test}.conll: the informative prose genres (news to learned, Brown's
categories A-J) and the imaginative ones (fiction to humor, K-R).

usage: python3 tools/brown_pos_genres.py [SHARED_DATA] OUT
"""
import json
import os
import re
import sys

IMAGINATIVE = {"fiction", "mystery", "science_fiction", "adventure", "romance", "humor"}


def key(s):
    return re.sub(r"[^0-9A-Za-z]", "", s)


def sentences(path):
    out, cur = [], []
    for line in open(path, encoding="utf-8"):
        line = line.rstrip("\n")
        if line:
            cur.append(line)
        elif cur:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def split(data, name, out):
    genres = []  # each document's genre, in file order
    for line in open(os.path.join(data, "genre", name + ".jsonl"), encoding="utf-8"):
        d = json.loads(line)
        if not genres or genres[-1][0] != d["doc"]:
            genres.append((d["doc"], d["label"]))
    text = open(os.path.join(data, "text", name + ".txt"), encoding="utf-8").read()
    blocks = [b for b in text.split("\n\n") if b.strip()]
    if len(blocks) != len(genres):
        sys.exit(f"{name}: {len(blocks)} text blocks but {len(genres)} documents in the genre file")
    sents = sentences(os.path.join(data, "pos", name + ".conll"))
    words = [key("".join(l.split("\t")[0] for l in s)) for s in sents]
    starts, i = [], 0
    for b in blocks:
        head = key(b)[:40]
        while i < len(sents):  # the document starts at the first sentence (from here) whose text, with the next ones, begins with head
            joined = ""
            for j in range(i, len(sents)):
                joined += words[j]
                if len(joined) >= len(head):
                    break
            if joined.startswith(head):
                break
            i += 1
        if i == len(sents):
            sys.exit(f"{name}: document {genres[len(starts)][0]} not found in the POS sentences")
        starts.append(i)
        i += 1
    starts.append(len(sents))
    files = {g: open(os.path.join(out, f"{g}-{name}.conll"), "w", encoding="utf-8") for g in ("informative", "imaginative")}
    counts = {g: 0 for g in files}
    for d, (doc, genre) in enumerate(genres):
        g = "imaginative" if genre in IMAGINATIVE else "informative"
        for s in sents[starts[d]:starts[d + 1]]:
            files[g].write("\n".join(s) + "\n\n")
            counts[g] += 1
    for f in files.values():
        f.close()
    print(f"{name}: {len(sents)} sentences, {len(genres)} documents: " + ", ".join(f"{g} {n}" for g, n in counts.items()))


if __name__ == "__main__":
    args = sys.argv[1:]
    data, out = (args[0], args[1]) if len(args) == 2 else ("../shared/data", args[0])
    os.makedirs(out, exist_ok=True)
    for name in ("train", "test"):
        split(os.path.join(data, "brown"), name, out)
