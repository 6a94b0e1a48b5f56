#!/usr/bin/env python3
"""bitnet-tokenize against a reference tokenizer in Python, on random text.

The reference is tiktoken's algorithm written out: Llama 3's pre-tokenizer
regex (with the `regex` module), then for each piece its rank when it is a
token, else byte pair merges of the lowest-ranked concatenation, leftmost
first. It reads the tiktoken ranks file directly, so it checks the tool, the
runtime library and the conversion to the tokenizer JSON together.

usage: tokenizer_reference_test.py BITNET_TOKENIZE TOKENIZER.json RANKS

Exits 77 (skipped) when the `regex` module or the data is missing.
"""

import base64
import os
import random
import subprocess
import sys
import tempfile
import unicodedata

SKIP = 77

LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

# Pieces random text is made of, besides random characters.
PIECES = [" ", "  ", "\n", "\r\n", "\t", "\u00a0", "\u3000", "'s", "'LL",
          "'Re", "123456", "\u00bd", "\u0663", "Hello", "WORLD", " the",
          "F\u00fchrer", "\u043d\u0435\u0449\u043e", "\u65e5\u672c\u8a9e",
          "\U0001f999", "\U0001f44d\U0001f3fd", "...", "!!", "(x)", "{", "}",
          "a" * 30, " " * 12, "\u0301", "\u00df", "\u01c5", "\u0130",
          "\u200b", "\x7f", "\u2028", "<|eot_id|>"]


def random_text(rng, n):
    """n pieces: a known piece or a random assigned character. Characters
    the Unicode database of this Python does not know are left out: PCRE2
    and the `regex` module may follow other Unicode versions."""
    out = []
    while len(out) < n:
        if rng.random() < 0.6:
            out.append(rng.choice(PIECES))
            continue
        c = chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                            rng.randint(0x3000, 0xd7ff),
                            rng.randint(0xe000, 0x10ffff)]))
        if unicodedata.category(c) not in ("Cn", "Co", "Cs"):
            out.append(c)
    return "".join(out)


def reference(regex, ranks, text):
    pattern = regex.compile(LLAMA3_PATTERN)
    ids = []
    for piece in pattern.findall(text):
        b = piece.encode("utf-8")
        if b in ranks:
            ids.append(ranks[b])
            continue
        parts = [bytes([x]) for x in b]
        while True:
            best, best_rank = None, None
            for i in range(len(parts) - 1):
                r = ranks.get(parts[i] + parts[i + 1])
                if r is not None and (best_rank is None or r < best_rank):
                    best, best_rank = i, r
            if best is None:
                break
            parts[best:best + 2] = [parts[best] + parts[best + 1]]
        ids += [ranks[p] for p in parts]
    return ids


def main():
    tool, json_path, ranks_path = sys.argv[1:4]
    try:
        import regex
    except ImportError:
        print("skipped: no Python module 'regex' (python3-regex)")
        return SKIP
    if not os.path.exists(ranks_path) or not os.path.exists(json_path):
        print("skipped: no %s or %s" % (ranks_path, json_path))
        return SKIP
    ranks = {}
    with open(ranks_path, "rb") as f:
        for line in f:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(4):
            text = random_text(random.Random(seed), 5000)
            path = os.path.join(tmp, "text%d" % seed)
            with open(path, "wb") as f:
                f.write(text.encode("utf-8"))
            # The pre-tokenizer above knows no special tokens: their text is
            # plain text here.
            run = subprocess.run([tool, json_path, "--special-as-text", path],
                                 capture_output=True, check=True)
            got = [int(x) for x in run.stdout.split()]
            want = reference(regex, ranks, text)
            if got != want:
                failures += 1
                at = next((i for i, (g, w) in enumerate(zip(got, want))
                           if g != w), min(len(got), len(want)))
                print("seed %d: %d ids, the reference %d; first difference "
                      "at %d: %s against %s" %
                      (seed, len(got), len(want), at, got[at:at + 5],
                       want[at:at + 5]))
            else:
                print("seed %d: %d ids, %d bytes: same as the reference" %
                      (seed, len(got), len(text.encode("utf-8"))))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
