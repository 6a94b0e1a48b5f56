#!/usr/bin/env python3
"""Makes the SentencePiece test data of the tokenizer tests.

    spm_reference.py OUT_DIR CORPUS...

Trains a small SentencePiece BPE model (500 pieces, byte fallback, no
normalisation, as Llama's tokenizer is trained) on the CORPUS files with the
`sentencepiece` module (Debian python3-sentencepiece), and writes into OUT_DIR:

  spm-tokenizer.json  the model as the runtime's tokenizer JSON ("model":
                      "llama"), converted as llama.cpp's GGUF converter does:
                      tokens, scores and token types (1 normal, 2 unknown,
                      3 control, 5 unused, 6 byte);
  spm-cases.txt       one line per text: the text in hex, a tab, the ids
                      sentencepiece's encode gives, a tab, its decode of them
                      in hex. The texts are English lines of the corpus,
                      random mixes of its words with punctuation, digits,
                      spaces and characters the model lacks (byte fallback),
                      and the whole corpus as one text.

Exits with 77 (and writes nothing) when the module is missing.
"""

import json
import os
import random
import sys


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    try:
        import sentencepiece as spm
    except ImportError:
        print("spm_reference.py: no sentencepiece module", file=sys.stderr)
        sys.exit(77)
    out_dir = sys.argv[1]
    corpus = ""
    for path in sys.argv[2:]:
        with open(path, encoding="utf-8") as f:
            corpus += f.read()
    os.makedirs(out_dir, exist_ok=True)
    prefix = os.path.join(out_dir, "spm")
    lines = [line for line in corpus.split("\n") if line.strip()]
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_prefix=prefix,
        model_type="bpe",
        vocab_size=500,
        byte_fallback=True,
        character_coverage=0.995,
        normalization_rule_name="identity",
        remove_extra_whitespaces=False,
        add_dummy_prefix=True,
        split_digits=True,
        allow_whitespace_only_pieces=True,
        unk_id=0,
        bos_id=1,
        eos_id=2,
        pad_id=-1,
        num_threads=1,
        minloglevel=2,
    )
    sp = spm.SentencePieceProcessor(model_file=prefix + ".model")

    tokens, scores, types = [], [], []
    for i in range(sp.get_piece_size()):
        tokens.append(sp.id_to_piece(i))
        scores.append(sp.get_score(i))
        kind = 1
        if sp.is_unknown(i):
            kind = 2
        elif sp.is_control(i):
            kind = 3
        elif sp.is_unused(i):
            kind = 5
        elif sp.is_byte(i):
            kind = 6
        types.append(kind)
    description = {
        "model": "llama",
        "pre": "default",
        "tokens": tokens,
        "scores": scores,
        "token_type": types,
        "bos_token_id": sp.bos_id(),
        "eos_token_id": sp.eos_id(),
        "add_bos_token": True,
    }
    with open(os.path.join(out_dir, "spm-tokenizer.json"), "w",
              encoding="utf-8") as f:
        json.dump(description, f, ensure_ascii=False)

    rng = random.Random(20240607)
    words = corpus.split()
    foreign = ["café", "naïve", "Ωμέγα", "日本語", "中文字符", "😀", "🚀🚀",
               "∑∫", "e\u0301", "ẞ", "Привет", "עברית", "ﬁ", "\u2581x",
               "\u00a0", "\u3000", "𝔘𝔫𝔦"]
    separators = [" ", " ", " ", "  ", "   ", "\n", "\n\n", "\t", ", ", ". ",
                  "!", "?", " - ", "(", ")", "\"", "'", ":", ";", "/", "_"]
    texts = ["", " ", "  ", "\n", "Hello", " Hello", "Hello ", "  Hello  world",
             "hello world", "1234567890", "3.14159", "a\tb\nc", "<s>", "</s>",
             "<unk>", "<0x41>", "\u2581", "x" * 300, " " * 50, "日本語",
             "😀 emoji", "the the the the"]
    texts += lines[:400]
    for _ in range(1500):
        parts = []
        for _ in range(rng.randint(1, 12)):
            r = rng.random()
            if r < 0.6:
                parts.append(rng.choice(words))
            elif r < 0.75:
                parts.append(str(rng.randint(0, 10 ** rng.randint(1, 8))))
            elif r < 0.9:
                parts.append(rng.choice(foreign))
            else:
                parts.append("".join(chr(rng.randint(0x20, 0x2FFF))
                                     for _ in range(rng.randint(1, 4))))
            parts.append(rng.choice(separators))
        text = "".join(parts)
        if rng.random() < 0.3:
            text = " " * rng.randint(1, 3) + text
        if rng.random() < 0.5:
            text = text.rstrip(" ")
        texts.append(text)
    texts.append(corpus)

    with open(os.path.join(out_dir, "spm-cases.txt"), "w",
              encoding="ascii") as f:
        for text in texts:
            ids = sp.encode(text)
            decoded = sp.decode(ids)
            f.write("%s\t%s\t%s\n" % (text.encode("utf-8").hex(),
                                      " ".join(str(i) for i in ids),
                                      decoded.encode("utf-8").hex()))


if __name__ == "__main__":
    main()
