#!/usr/bin/python3
"""Writes a model with the shapes of bitnet-b1.58-2B-4T and random weights as
a GGUF file (I2_S ternary weights, F16 embedding used as the tied head, as
bitnet.cpp's ggml-model-i2_s.gguf) or as a Hugging Face directory (packed
uint8 projections with weight_scale, as microsoft/bitnet-b1.58-2B-4T), for
benchmarks: hidden 2560, intermediate 6912, 30 layers, 20 heads, 5 KV heads,
vocabulary 128256, relu^2, rope theta 500000. The tokenizer is Llama 3's, as
the real model's (128000 BPE ranks read from --vocab, the tiktoken file, and
256 special tokens), so that servers and tokenizing tools can run the file;
--vocab none leaves it out (GGUF: tokenizer.ggml.model "no_vocab").

  /usr/bin/python3 models/gen_2b_checkpoint.py --format gguf OUT.gguf
  /usr/bin/python3 models/gen_2b_checkpoint.py --format hf OUT_DIR

About 1.2 GB either way; takes a minute and about 5 GB of memory.
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checkpoint_files as cf  # noqa: E402
import tiny_vocab  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--format", choices=("gguf", "hf"), required=True)
    ap.add_argument("--context", type=int, default=256,
                    help="context length written into the model (default 256)")
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--vocab", default=tiny_vocab.DEFAULT_RANKS,
                    help="Llama 3's tiktoken ranks file (default: %(default)s), "
                         "or 'none' for a model without a tokenizer")
    args = ap.parse_args()
    start = time.time()
    vocab = None
    if args.vocab != "none":
        if not os.path.exists(args.vocab):
            ap.error(f"--vocab {args.vocab}: no such file (give Llama 3's "
                     "tiktoken ranks, or --vocab none)")
        vocab = tiny_vocab.load(args.vocab, n=128000, num_specials=256,
                                unmerged_ok=True)
    m = cf.random_bitnet(seed=args.seed, vocab=128256, hidden=2560,
                         layers=args.layers, heads=20, kv_heads=5, ffn=6912,
                         context=args.context)
    if args.format == "gguf":
        cf.gguf_bitnet(m, cf.T_I2_S, vocab=vocab).write(args.out)
    else:
        cf.write_hf_dir(args.out, m, packed=True,
                        tokenizer=vocab.hf_tokenizer_json() if vocab else None)
    print(f"gen_2b_checkpoint: wrote {args.out} in {time.time() - start:.0f} s",
          file=sys.stderr)


if __name__ == "__main__":
    main()
