"""A small real byte-level BPE vocabulary: the first ranks of Llama 3's.

Test models (GGUF files, Hugging Face directories) need a vocabulary that
tokenizes like a real one but is small enough to commit. The first N ranks of
Llama 3's BPE (the tiktoken file in `../shared/testdata/tokenizer`) are one: a
merge only ever joins two tokens of lower rank, so a prefix of the ranks is
closed under its own merges. The special tokens follow, in Llama 3's order,
at `N + (llama3 id - 128000)`.

    /usr/bin/python3 models/tiny_vocab.py --ranks 768 --hf-json tokenizer.json

As a module: `load(ranks_path, n)` returns a `TinyVocab` with `tokens` (strings
in GPT-2's byte-to-unicode alphabet), `token_bytes`, `merges` ("left right" in
rank order), `specials` and the ids of BOS, EOS and end-of-turn.
"""

import argparse
import base64
import json
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_RANKS = os.path.join(REPO, "..", "shared", "testdata", "tokenizer",
                             "llama3.tiktoken")

# Llama 3's 256 special tokens, ids 128000..128255.
_NAMED_SPECIALS = {
    0: "<|begin_of_text|>",
    1: "<|end_of_text|>",
    4: "<|finetune_right_pad_id|>",
    6: "<|start_header_id|>",
    7: "<|end_header_id|>",
    8: "<|eom_id|>",
    9: "<|eot_id|>",
    10: "<|python_tag|>",
}

# Llama 3's pre-tokenizer (the `Split` regex of its tokenizer.json).
LLAMA3_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")


def llama3_specials(count=256):
    """The first `count` special tokens of Llama 3, in id order."""
    names = []
    reserved = 0
    for i in range(count):
        if i in _NAMED_SPECIALS:
            names.append(_NAMED_SPECIALS[i])
        else:
            names.append("<|reserved_special_token_%d|>" % reserved)
            reserved += 1
    return names


def byte_to_unicode():
    """GPT-2's map from the 256 byte values to printable characters."""
    printable = (list(range(ord("!"), ord("~") + 1)) +
                 list(range(ord("\xa1"), ord("\xac") + 1)) +
                 list(range(ord("\xae"), ord("\xff") + 1)))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(printable, chars)}


def _split_in_two(token, rank, ranks):
    """The pair that BPE with the ranks below `rank` joins last into `token`."""
    parts = [token[i:i + 1] for i in range(len(token))]
    while len(parts) > 2:
        best = None
        for i in range(len(parts) - 1):
            r = ranks.get(parts[i] + parts[i + 1])
            if r is not None and r < rank and (best is None or r < best[0]):
                best = (r, i)
        if best is None:
            return None
        i = best[1]
        parts[i:i + 2] = [parts[i] + parts[i + 1]]
    return parts if len(parts) == 2 else None


class TinyVocab:
    def __init__(self, token_bytes, merges, specials):
        b2u = byte_to_unicode()
        self.token_bytes = token_bytes
        self.tokens = ["".join(b2u[b] for b in t) for t in token_bytes]
        self.merges = merges
        self.specials = specials
        self.num_normal = len(token_bytes)
        self.bos_id = self.num_normal + 0
        self.eos_id = self.num_normal + 1
        self.eot_id = self.num_normal + 9

    @property
    def size(self):
        return self.num_normal + len(self.specials)

    def all_tokens(self):
        return self.tokens + self.specials

    def token_types(self):
        """GGUF token types: 1 normal, 3 control."""
        return [1] * self.num_normal + [3] * len(self.specials)

    def hf_tokenizer_json(self):
        """A Hugging Face `tokenizer.json` in the form of Llama 3's."""
        added = [{"id": self.num_normal + i, "content": s, "single_word": False,
                  "lstrip": False, "rstrip": False, "normalized": False,
                  "special": True} for i, s in enumerate(self.specials)]
        return {
            "version": "1.0",
            "truncation": None,
            "padding": None,
            "added_tokens": added,
            "normalizer": None,
            "pre_tokenizer": {
                "type": "Sequence",
                "pretokenizers": [
                    {"type": "Split", "pattern": {"Regex": LLAMA3_PATTERN},
                     "behavior": "Isolated", "invert": False},
                    {"type": "ByteLevel", "add_prefix_space": False,
                     "trim_offsets": True, "use_regex": False},
                ],
            },
            "post_processor": {
                "type": "TemplateProcessing",
                "single": [{"SpecialToken": {"id": "<|begin_of_text|>", "type_id": 0}},
                           {"Sequence": {"id": "A", "type_id": 0}}],
                "pair": [],
                "special_tokens": {"<|begin_of_text|>": {
                    "id": "<|begin_of_text|>", "ids": [self.bos_id],
                    "tokens": ["<|begin_of_text|>"]}},
            },
            "decoder": {"type": "ByteLevel", "add_prefix_space": True,
                        "trim_offsets": True, "use_regex": True},
            "model": {
                "type": "BPE", "dropout": None, "unk_token": None,
                "continuing_subword_prefix": None, "end_of_word_suffix": None,
                "fuse_unk": False, "byte_fallback": False, "ignore_merges": True,
                "vocab": {t: i for i, t in enumerate(self.tokens)},
                "merges": self.merges,
            },
        }


def from_merges(merges, num_specials=32):
    """A vocabulary of the 256 bytes (in byte order), then one token per merge
    of `merges` (pairs of byte strings, each part already a token), then
    `num_specials` specials: a byte-level BPE vocabulary that needs no file."""
    token_bytes = [bytes([b]) for b in range(256)]
    known = set(token_bytes)
    b2u = byte_to_unicode()
    text = []
    for left, right in merges:
        if left not in known or right not in known:
            raise ValueError("merge %r %r joins a token that is not there yet"
                             % (left, right))
        token_bytes.append(left + right)
        known.add(left + right)
        text.append(" ".join("".join(b2u[b] for b in p) for p in (left, right)))
    return TinyVocab(token_bytes, text, llama3_specials(num_specials))


def load(ranks_path=DEFAULT_RANKS, n=768, num_specials=32, unmerged_ok=False):
    """The first `n` ranks of the tiktoken file and `num_specials` specials.
    A rank that is no merge of two lower ranks (Llama 3 has some past rank
    100000) is an error unless `unmerged_ok`: then it is a token no merge
    produces."""
    token_bytes = []
    with open(ranks_path, "rb") as f:
        for line in f:
            if len(token_bytes) == n:
                break
            b64, rank = line.split()
            if int(rank) != len(token_bytes):
                raise ValueError("%s: ranks are not in order at line %d" %
                                 (ranks_path, len(token_bytes) + 1))
            token_bytes.append(base64.b64decode(b64))
    if len(token_bytes) < n:
        raise ValueError("%s holds fewer than %d ranks" % (ranks_path, n))
    ranks = {t: i for i, t in enumerate(token_bytes)}
    b2u = byte_to_unicode()
    merges = []
    for rank, t in enumerate(token_bytes):
        if len(t) < 2:
            continue
        pair = _split_in_two(t, rank, ranks)
        if pair is None and unmerged_ok:
            continue
        if pair is None:
            raise ValueError("rank %d (%r) is not a merge of lower ranks" % (rank, t))
        merges.append(" ".join("".join(b2u[b] for b in p) for p in pair))
    return TinyVocab(token_bytes, merges, llama3_specials(num_specials))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiktoken", default=DEFAULT_RANKS)
    parser.add_argument("--ranks", type=int, default=768)
    parser.add_argument("--hf-json", help="write a Hugging Face tokenizer.json")
    args = parser.parse_args()
    vocab = load(args.tiktoken, args.ranks)
    if args.hf_json:
        with open(args.hf_json, "w", encoding="utf-8") as f:
            json.dump(vocab.hf_tokenizer_json(), f, ensure_ascii=False)
    print("%d tokens (%d merges, %d specials)" %
          (vocab.size, len(vocab.merges), len(vocab.specials)), file=sys.stderr)


if __name__ == "__main__":
    main()
