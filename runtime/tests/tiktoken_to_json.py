#!/usr/bin/env python3
"""Converts a tiktoken BPE ranks file to the runtime's tokenizer JSON.

A tiktoken file has one line per token, `base64(token bytes) rank`, ranks
0, 1, 2, ... in order. The tokenizer JSON (runtime/README.md, "Tokenizer")
lists the tokens in GPT-2's byte-to-unicode alphabet, in rank order, and the
merges in the order of the ranks of the tokens they make. Two ways to derive
the merges (--merges):

  all-pairs     (default) for each token of two bytes or more, every split
                into two tokens, ordered by the ranks of the left then the
                right part: tiktoken's rule (merge the adjacent pair whose
                concatenation ranks lowest) as a merge list, and what Hugging
                Face's tokenizer.json of Llama 3 holds (280147 merges).
  split-in-two  one merge per token: its bytes merged by BPE with the ranks
                below its own until two parts remain (tokens that never come
                down to two parts, such as Llama 3's '.:.:', get none).

usage: tiktoken_to_json.py RANKS OUTPUT.json [--specials llama3]
                           [--merges all-pairs|split-in-two]

With `--specials llama3` the 256 special tokens of Llama 3 follow the ranks
(ids 128000 to 128255: <|begin_of_text|>, <|end_of_text|>, ..., <|eot_id|>
and the reserved ones), with their BOS, EOS and EOT ids, add_bos_token and
ignore_merges as Llama 3 has them.
"""

import argparse
import base64
import json
import sys


def bytes_to_unicode():
    """GPT-2's table: printable Latin-1 bytes stand for themselves, the
    others for U+0100 and up, in byte order."""
    printable = (list(range(ord("!"), ord("~") + 1)) +
                 list(range(0xA1, 0xAC + 1)) + list(range(0xAE, 0xFF + 1)))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


def llama3_specials():
    """Llama 3's special tokens in id order (Meta's tokenizer.py)."""
    names = [
        "<|begin_of_text|>",
        "<|end_of_text|>",
        "<|reserved_special_token_0|>",
        "<|reserved_special_token_1|>",
        "<|reserved_special_token_2|>",
        "<|reserved_special_token_3|>",
        "<|start_header_id|>",
        "<|end_header_id|>",
        "<|reserved_special_token_4|>",
        "<|eot_id|>",
    ]
    names += ["<|reserved_special_token_%d|>" % i for i in range(5, 256 - 5)]
    return names


def read_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            fields = line.split()
            if len(fields) != 2:
                sys.exit("%s:%d: expected 'base64 rank'" % (path, number))
            token, rank = base64.b64decode(fields[0]), int(fields[1])
            if rank != len(ranks) or token in ranks:
                sys.exit("%s:%d: ranks must be 0, 1, 2, ... and tokens "
                         "distinct" % (path, number))
            ranks[token] = rank
    return ranks


def split_in_two(ranks, token, max_rank):
    """BPE over `token`'s bytes with ranks below max_rank (tiktoken's
    algorithm: merge the adjacent pair whose concatenation ranks lowest)."""
    parts = [bytes([b]) for b in token]
    while len(parts) > 2:
        best, best_rank = None, max_rank
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < best_rank:
                best, best_rank = i, r
        if best is None:
            break
        parts[best:best + 2] = [parts[best] + parts[best + 1]]
    return parts


def convert(ranks, specials, all_pairs):
    enc = bytes_to_unicode()
    mapped = lambda b: "".join(enc[x] for x in b)
    tokens = [None] * len(ranks)
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        tokens[rank] = mapped(token)
        if len(token) < 2:
            continue
        if all_pairs:
            pairs = [(token[:i], token[i:]) for i in range(1, len(token))
                     if token[:i] in ranks and token[i:] in ranks]
            pairs.sort(key=lambda p: (ranks[p[0]], ranks[p[1]]))
        else:
            parts = split_in_two(ranks, token, rank)
            pairs = [tuple(parts)] if len(parts) == 2 else []
        merges += [mapped(l) + " " + mapped(r) for l, r in pairs]
    token_type = [1] * len(tokens)
    out = {"model": "gpt2", "pre": "llama-bpe"}
    if specials == "llama3":
        first = len(tokens)
        names = llama3_specials()
        tokens += names
        token_type += [3] * len(names)
        out.update(bos_token_id=first, eos_token_id=first + 1,
                   eot_token_id=first + names.index("<|eot_id|>"),
                   add_bos_token=True, ignore_merges=True)
    out.update(tokens=tokens, token_type=token_type, merges=merges)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("ranks")
    parser.add_argument("output")
    parser.add_argument("--specials", choices=["llama3", "none"],
                        default="none")
    parser.add_argument("--merges", choices=["split-in-two", "all-pairs"],
                        default="all-pairs")
    args = parser.parse_args()
    out = convert(read_ranks(args.ranks), args.specials,
                  args.merges == "all-pairs")
    with open(args.output, "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    main()
