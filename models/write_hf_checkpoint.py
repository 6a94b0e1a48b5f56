#!/usr/bin/python3
"""Writes a small random Hugging Face BitNet b1.58 checkpoint directory.

The layout of microsoft/bitnet-b1.58-2B-4T (see hf_bitnet.py) with random
weights and the 800-token vocabulary of tiny_vocab.py:

  config.json             BitNetForCausalLM, model_type bitnet, relu2, tied
                          embeddings, 2B-4T's quantization_config
  model.safetensors       packed form: each projection uint8 [N/4, K] and a
                          bf16 weight_scale [1] (linear_class autobitlinear:
                          the scale multiplies); with --bf16 the latent bf16
                          master weights instead (quantization_mode online)
  model-0000i-of-0000N.safetensors + model.safetensors.index.json
                          the same tensors in N shards (--shards N)
  tokenizer.json          tiny_vocab's byte-level BPE, Llama 3's form
  tokenizer_config.json   2B-4T's chat template, BOS / EOS tokens

    /usr/bin/python3 models/write_hf_checkpoint.py OUT [--bf16] [--shards N]
        [--seed S] [--hidden 256] [--heads 4] [--kv-heads 2]
        [--intermediate 512] [--layers 2] [--context 256] [--untied]

The weights depend on the seed and the shapes only, so the packed and --bf16
forms of one seed hold the same model: every latent weight is an integer
multiple of 2^-12 below 2^-4 (exact in bf16), the absolute values of each
tensor sum to exactly T * count * 2^-12 for an integer T in [72, 110], so the
absmean s_w = T * 2^-12 is exact in float32 whatever the summation order (and
exact in bf16, the packed weight_scale), and no |W| / s_w lies within 0.05 of
the rounding boundary 0.5. About a third of the codes are 0. (Exactness of
the sum needs count * T < 2^24: at most 2^17 weights a tensor.)
"""

import argparse
import json
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import hf_bitnet as hb  # noqa: E402
import tiny_vocab  # noqa: E402

# microsoft/bitnet-b1.58-2B-4T's tokenizer_config.json chat_template.
CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}"
    "{% for message in loop_messages %}"
    "{% set content = message['role'] | capitalize + ': '+ message['content'] "
    "| trim + '<|eot_id|>' %}"
    "{{ content }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}")

UNIT = 2.0 ** -12
ZERO_FRACTION = 1.0 / 3.0
MARGIN = 0.05  # |W| / s_w stays this far from 0.5


def ternary_tensor(rng, n, k):
    """Latent weights [n, k] (float32, exact in bf16), their codes and s_w."""
    count = n * k
    t_max = min(110, (2 ** 24 - 1) // count)
    if t_max < 72:
        raise ValueError("a [%d, %d] tensor is too large for an exact absmean" % (n, k))
    T = int(rng.integers(72, t_max + 1))
    zmax = int(np.floor((0.5 - MARGIN) * T))
    nzmin = int(np.ceil((0.5 + MARGIN) * T))
    nzmax = int(round(2 * (T - ZERO_FRACTION * zmax / 2) / (1 - ZERO_FRACTION))) - nzmin
    nzmax = min(nzmax, 255)
    zero = rng.random(count) < ZERO_FRACTION
    mag = np.where(zero, rng.integers(0, zmax + 1, count),
                   rng.integers(nzmin, nzmax + 1, count)).astype(np.int64)
    # Move nonzero-class magnitudes by one until they sum to T * count.
    deficit = T * count - int(mag.sum())
    while deficit:
        step = 1 if deficit > 0 else -1
        room = ~zero & ((mag < 255) if step > 0 else (mag > nzmin))
        idx = np.flatnonzero(room)
        if idx.size == 0:
            raise ValueError("cannot reach the absmean")
        take = rng.choice(idx, size=min(abs(deficit), idx.size), replace=False)
        mag[take] += step
        deficit -= step * take.size
    sign = np.where(rng.random(count) < 0.5, -1, 1)
    codes = np.where(zero, 0, sign).astype(np.int8).reshape(n, k)
    w = (sign * mag).astype(np.float32).reshape(n, k) * np.float32(UNIT)
    s_w = np.float32(T * UNIT)
    # What the reader will compute: the same codes and scale.
    got, s = hb.ternarize(w)
    assert s == s_w and np.array_equal(got, codes), "ternarisation differs"
    assert np.array_equal(hb.round_bf16(w), w)
    return w, codes, s_w


def make_weights(args):
    """dict name -> ("dense", float32 array) or ("ternary", (w, codes, s_w))."""
    rng = np.random.default_rng(args.seed)
    H, F, V = args.hidden, args.intermediate, args.vocab
    D = H // args.heads
    qd, kvd = args.heads * D, args.kv_heads * D
    shapes = {"q_proj": (qd, H), "k_proj": (kvd, H), "v_proj": (kvd, H),
              "o_proj": (H, qd), "gate_proj": (F, H), "up_proj": (F, H),
              "down_proj": (H, F)}
    out = {}

    def dense(name, arr):
        out[name] = ("dense", hb.round_bf16(arr.astype(np.float32)))

    dense("model.embed_tokens.weight", rng.normal(0.0, 0.1, (V, H)))
    for l in range(args.layers):
        p = "model.layers.%d." % l
        for norm, size in (("input_layernorm", H), ("post_attention_layernorm", H),
                           ("self_attn.attn_sub_norm", H), ("mlp.ffn_sub_norm", F)):
            dense(p + norm + ".weight", 1.0 + 0.1 * rng.normal(size=size))
        for block, proj in hb.PROJECTIONS:
            out[p + block + "." + proj] = ("ternary", ternary_tensor(rng, *shapes[proj]))
    dense("model.norm.weight", 1.0 + 0.1 * rng.normal(size=H))
    if args.untied:
        dense("lm_head.weight", rng.normal(0.0, 0.1, (V, H)))
    return out


def config_json(args, vocab):
    return {
        "architectures": ["BitNetForCausalLM"],
        "bos_token_id": vocab.bos_id,
        "eos_token_id": vocab.eos_id,
        "hidden_act": "relu2",
        "hidden_size": args.hidden,
        "initializer_range": 0.02,
        "intermediate_size": args.intermediate,
        "max_position_embeddings": args.context,
        "model_type": "bitnet",
        "num_attention_heads": args.heads,
        "num_hidden_layers": args.layers,
        "num_key_value_heads": args.kv_heads,
        "quantization_config": {
            "quant_method": "bitnet",
            "linear_class": "autobitlinear",
            "quantization_mode": "online" if args.bf16 else "offline",
        },
        "rms_norm_eps": 1e-05,
        "rope_theta": 500000.0,
        "tie_word_embeddings": not args.untied,
        "torch_dtype": "bfloat16",
        "use_cache": True,
        "vocab_size": args.vocab,
    }


def tokenizer_config_json(args, vocab):
    added = {}
    for i, s in enumerate(vocab.specials):
        added[str(vocab.num_normal + i)] = {
            "content": s, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}
    return {
        "added_tokens_decoder": added,
        "bos_token": vocab.specials[vocab.bos_id - vocab.num_normal],
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": True,
        "eos_token": vocab.specials[vocab.eos_id - vocab.num_normal],
        "model_input_names": ["input_ids", "attention_mask"],
        "model_max_length": args.context,
        "tokenizer_class": "PreTrainedTokenizerFast",
    }


def st_tensors(weights, bf16):
    """The safetensors tensors of the packed (or latent bf16) form."""
    tensors = {}
    for name, (kind, value) in weights.items():
        if kind == "dense":
            tensors[name] = hb.StTensor("BF16", value.shape, hb.f32_to_bf16_bits(value))
            continue
        w, codes, s_w = value
        if bf16:
            tensors[name + ".weight"] = hb.StTensor("BF16", w.shape, hb.f32_to_bf16_bits(w))
        else:
            packed = hb.pack_hf(codes)
            tensors[name + ".weight"] = hb.StTensor("U8", packed.shape, packed)
            tensors[name + ".weight_scale"] = hb.StTensor(
                "BF16", (1,), hb.f32_to_bf16_bits(np.array([s_w], np.float32)))
    return tensors


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out")
    ap.add_argument("--bf16", action="store_true",
                    help="latent bf16 master weights (the -bf16 form)")
    ap.add_argument("--shards", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--kv-heads", type=int, default=2)
    ap.add_argument("--intermediate", type=int, default=512)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--untied", action="store_true",
                    help="a separate lm_head.weight")
    args = ap.parse_args()
    if args.hidden % args.heads or args.heads % args.kv_heads:
        ap.error("hidden must divide by heads, heads by kv-heads")
    if args.shards < 1:
        ap.error("--shards must be at least 1")

    vocab = tiny_vocab.load()
    args.vocab = vocab.size
    weights = make_weights(args)
    tensors = st_tensors(weights, args.bf16)
    os.makedirs(args.out, exist_ok=True)
    meta = {"format": "pt"}
    if args.shards == 1:
        hb.write_safetensors(os.path.join(args.out, "model.safetensors"), tensors, meta)
    else:
        # The tensors in order, cut into shards of about equal size.
        names = list(tensors)
        sizes = [tensors[n].raw.nbytes for n in names]
        total = sum(sizes)
        parts, acc = [[] for _ in range(args.shards)], 0
        for n, sz in zip(names, sizes):
            parts[min(args.shards - 1, acc * args.shards // total)].append(n)
            acc += sz
        weight_map = {}
        for i, part in enumerate(parts):
            fname = "model-%05d-of-%05d.safetensors" % (i + 1, args.shards)
            hb.write_safetensors(os.path.join(args.out, fname),
                                 {n: tensors[n] for n in part}, meta)
            weight_map.update({n: fname for n in part})
        write_json(os.path.join(args.out, "model.safetensors.index.json"),
                   {"metadata": {"total_size": total},
                    "weight_map": dict(sorted(weight_map.items()))})
    write_json(os.path.join(args.out, "config.json"), config_json(args, vocab))
    with open(os.path.join(args.out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(vocab.hf_tokenizer_json(), f, ensure_ascii=False)
    write_json(os.path.join(args.out, "tokenizer_config.json"),
               tokenizer_config_json(args, vocab))
    zeros = np.mean([np.mean(v[1][1] == 0) for v in weights.values() if v[0] == "ternary"])
    print("%s: %s form, %d tensors, %.1f%% zero codes" %
          (args.out, "bf16" if args.bf16 else "packed", len(tensors), 100 * zeros),
          file=sys.stderr)


if __name__ == "__main__":
    main()
