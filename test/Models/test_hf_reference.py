#!/usr/bin/python3
"""The Hugging Face BitNet reference (models/hf_bitnet.py) on its fixtures.

test/Models/hf/ holds one small random model in the two forms of a Hugging
Face BitNet b1.58 checkpoint (packed/: uint8 2-bit weights with weight_scale;
bf16/: latent bf16 master weights in two shards with an index), and what the
reference computed on them (<form>.reference.json: the prompt's ids and 32
greedy tokens; <form>.logits.npy: the logits of the 33 steps). This checks:

- the packed layout on the example of transformers' unpack_weights docstring,
  and pack/unpack round trips;
- the safetensors reader and writer (all five dtypes, a bad header refused);
- the tokenizer against plain rank-order BPE over tiny_vocab's bytes;
- that the reference reproduces the recorded ids exactly and the recorded
  logits within TOL;
- that the packed form is the bf16 form's absmean ternarisation: the same
  codes, weight_scale equal to the absmean, the other tensors identical, and
  the same logits;
- that models/bitnet_decoder.py's decoder (rope "half", the same norms) with
  these weights gives the same logits;
- that models/write_hf_checkpoint.py, run as test/Models/hf/README.md says,
  writes the committed files byte for byte (skipped when the Llama 3 ranks
  file tiny_vocab reads is absent).

Needs numpy, torch and python3-regex. Exits 1 on a failure.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "models"))

import hf_bitnet as hb  # noqa: E402

HF = os.path.join(ROOT, "test", "Models", "hf")
FORMS = ("packed", "bf16")
TOL = 1e-4
SEED_ARGS = ["--seed", "36", "--hidden", "64", "--intermediate", "128"]
WRITE_ARGS = {"packed": SEED_ARGS, "bf16": SEED_ARGS + ["--bf16", "--shards", "2"]}
# microsoft/bitnet-b1.58-2B-4T's quantization_config (bf16: "online").
QUANT = {"quant_method": "bitnet", "linear_class": "autobitlinear",
         "quantization_mode": "offline"}

failures = []


def check(ok, what):
    print("%s: %s" % ("ok" if ok else "FAIL", what))
    if not ok:
        failures.append(what)


def check_unpack():
    # transformers' unpack_weights docstring example.
    packed = np.array([[0b10100001, 0b00011000], [0b10010000, 0b00001010]], np.uint8)
    want = np.array([[0, -1], [-1, 1], [-1, 1], [-1, 1],
                     [1, 0], [0, -1], [1, -1], [1, -1]], np.int8)
    check(np.array_equal(hb.unpack_hf(packed), want),
          "unpack: transformers' unpack_weights example (rows i*N/4 + r from bits 2i)")
    rng = np.random.default_rng(1)
    codes = rng.integers(-1, 2, (24, 5)).astype(np.int8)
    p = hb.pack_hf(codes)
    check(p.shape == (6, 5) and np.array_equal(hb.unpack_hf(p), codes),
          "pack/unpack round trip [24, 5] -> [6, 5]")
    # Row 7 of 24 is block 1 (bits 2-3) of packed row 1.
    check(np.array_equal(((p[1] >> 2) & 3).astype(np.int8) - 1, codes[7]),
          "packed row 1 bits 2-3 hold output row 7 = 1 * 24/4 + 1")
    three = np.array([[0b11]], np.uint8)
    try:
        hb.unpack_hf(three)
        check(False, "unpack refuses the field value 3")
    except ValueError:
        check(True, "unpack refuses the field value 3")


def check_safetensors(tmp):
    rng = np.random.default_rng(2)
    f32 = rng.normal(size=(3, 4)).astype(np.float32)
    tensors = {
        "a.bf16": hb.StTensor("BF16", (3, 4), hb.f32_to_bf16_bits(f32)),
        "b.f16": hb.StTensor("F16", (2,), np.array([1.5, -2.25], np.float16)),
        "c.f32": hb.StTensor("F32", (3, 4), f32),
        "d.u8": hb.StTensor("U8", (5,), np.arange(5, dtype=np.uint8)),
        "e.i8": hb.StTensor("I8", (1, 3), np.array([[-128, 0, 127]], np.int8)),
        "f.scalar": hb.StTensor("F32", (), np.array(3.0, np.float32)),
    }
    path = os.path.join(tmp, "t.safetensors")
    hb.write_safetensors(path, tensors, {"format": "pt"})
    back, meta = hb.read_safetensors(path)
    same = set(back) == set(tensors) and all(
        back[k].dtype == t.dtype and back[k].shape == t.shape and
        np.array_equal(back[k].raw, t.raw) for k, t in tensors.items())
    check(same and meta == {"format": "pt"},
          "safetensors write/read round trip: BF16, F16, F32, U8, I8, a scalar, metadata")
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    check(n % 8 == 0 and data[8 + n - 1:8 + n] in (b" ", b"}"),
          "safetensors header padded to a multiple of 8")
    check(np.array_equal(back["a.bf16"].float32(), hb.round_bf16(f32)),
          "bf16 read back as the float32 rounding of the written values")
    bad = os.path.join(tmp, "bad.safetensors")
    with open(bad, "wb") as f:
        f.write(data[:-1])
    try:
        hb.read_safetensors(bad)
        check(False, "safetensors: a truncated file is refused")
    except ValueError:
        check(True, "safetensors: a truncated file is refused")
    for form in FORMS:
        d = os.path.join(HF, form)
        files = sorted(f for f in os.listdir(d) if f.endswith(".safetensors"))
        ok = all(hb.read_safetensors(os.path.join(d, f))[1] == {"format": "pt"}
                 for f in files)
        check(ok, "%s: %s read, metadata format=pt" % (form, ", ".join(files)))
    with open(os.path.join(HF, "bf16", "model.safetensors.index.json")) as f:
        index = json.load(f)
    shards = sorted(set(index["weight_map"].values()))
    tensors = hb.read_checkpoint_tensors(os.path.join(HF, "bf16"))
    total = sum(t.raw.nbytes for t in tensors.values())
    check(shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
          and index["metadata"]["total_size"] == total,
          "bf16: the index names 2 shards and the total size of the tensors (%d)" % total)


def check_tokenizer():
    import regex
    tok = hb.Tokenizer.from_file(os.path.join(HF, "packed", "tokenizer.json"))
    spec = json.load(open(os.path.join(HF, "packed", "tokenizer.json"), encoding="utf-8"))
    b2u = hb.byte_to_unicode()
    u2b = {c: b for b, c in b2u.items()}
    ranks = {bytes(u2b[c] for c in t): i for t, i in spec["model"]["vocab"].items()}
    pattern = regex.compile(spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"])

    def rank_bpe(text):
        ids = []
        for m in pattern.finditer(text):
            piece = m.group(0).encode("utf-8")
            if piece in ranks:
                ids.append(ranks[piece])
                continue
            parts = [piece[i:i + 1] for i in range(len(piece))]
            while True:
                best = None
                for i in range(len(parts) - 1):
                    r = ranks.get(parts[i] + parts[i + 1])
                    if r is not None and (best is None or r < best[0]):
                        best = (r, i)
                if best is None:
                    break
                i = best[1]
                parts[i:i + 2] = [parts[i] + parts[i + 1]]
            ids.extend(ranks[p] for p in parts)
        return ids

    texts = ["The quick brown fox", " Hello, world!\n\n  tabs\tand 1234567 numbers",
             "Führer нещо 🦙.cpp I'm you'LL don't", "   \n\n\n x"]
    sample = os.path.join(ROOT, "..", "shared", "testdata", "tokenizer", "llama-bpe.inp")
    if os.path.exists(sample):
        with open(sample, encoding="utf-8") as f:
            texts += f.read().split("\n__ggml_vocab_test__\n")
    bad = [t for t in texts if tok.encode(t, add_special_tokens=False) != rank_bpe(t)]
    check(not bad, "tokenizer: merges-order BPE = rank-order BPE on %d texts%s" %
          (len(texts), "" if not bad else " (differs on %r)" % bad[:3]))
    bad = [t for t in texts if tok.decode(tok.encode(t, add_special_tokens=False)) != t]
    check(not bad, "tokenizer: decode(encode(t)) == t on %d texts" % len(texts))
    bos = spec["post_processor"]["special_tokens"]["<|begin_of_text|>"]["ids"][0]
    eot = tok.added["<|eot_id|>"]
    ids = tok.encode("User: hi<|eot_id|>Assistant: ")
    check(ids[0] == bos and eot in ids and ids.count(bos) == 1,
          "tokenizer: BOS %d added, <|eot_id|> in the text is token %d" % (bos, eot))


def check_reference(models):
    for form in FORMS:
        with open(os.path.join(HF, form + ".reference.json"), encoding="utf-8") as f:
            ref = json.load(f)
        want_logits = np.load(os.path.join(HF, form + ".logits.npy"))
        model = models[form]
        ids = model.tokenizer.encode(ref["prompt"])
        check(ids == ref["prompt_ids"], "%s: prompt %r tokenizes to the recorded %d ids"
              % (form, ref["prompt"], len(ids)))
        gen, logits = model.greedy(ref["prompt_ids"], len(ref["generated_ids"]))
        check(gen == ref["generated_ids"], "%s: the %d greedy tokens as recorded"
              % (form, len(gen)))
        diff = (float(np.abs(logits - want_logits).max())
                if logits.shape == want_logits.shape else np.inf)
        check(want_logits.dtype == np.float32 and want_logits.shape == (33, model.V)
              and diff <= TOL, "%s: logits [33, %d] within %g of the recorded (max %.3g)"
              % (form, model.V, TOL, diff))
        full = model.forward(ref["prompt_ids"] + gen[:-1])[len(ids) - 1:]
        d2 = float(np.abs(full - logits[:-1]).max())
        check(d2 <= TOL, "%s: one step over the whole text = the cached steps (max %.3g)"
              % (form, d2))


def check_forms(models):
    cfg = {f: json.load(open(os.path.join(HF, f, "config.json"))) for f in FORMS}
    check(cfg["packed"]["quantization_config"] == QUANT and
          cfg["bf16"]["quantization_config"] == dict(QUANT, quantization_mode="online"),
          "configs: 2B-4T's quantization_config (offline packed, online bf16)")
    packed = hb.read_checkpoint_tensors(os.path.join(HF, "packed"))
    latent = hb.read_checkpoint_tensors(os.path.join(HF, "bf16"))
    tern_names = [n[:-len(".weight_scale")] for n in packed if n.endswith(".weight_scale")]
    check(len(tern_names) == 7 * cfg["packed"]["num_hidden_layers"],
          "packed: %d projections with weight_scale" % len(tern_names))
    n_codes = zeros = 0
    for name in sorted(tern_names):
        w, s = packed[name + ".weight"], packed[name + ".weight_scale"]
        lat = latent[name + ".weight"]
        codes = hb.unpack_hf(w.raw)
        want, s_w = hb.ternarize(lat.float32())
        n_codes += codes.size
        zeros += int((codes == 0).sum())
        ok = (w.dtype == "U8" and s.dtype == "BF16" and s.shape == (1,) and
              lat.dtype == "BF16" and lat.shape == codes.shape and
              np.array_equal(codes, want) and s.float32()[0] == s_w)
        check(ok, "%s: unpacked [%d, %d] = ternarised bf16, weight_scale %.8g = absmean"
              % (name, codes.shape[0], codes.shape[1], s_w))
        # No latent weight near a rounding boundary: |W| / s_w not in (0.45, 0.55).
        r = np.abs(lat.float32()) / s_w
        check(not ((r > 0.45) & (r < 0.55)).any(), "%s: no |W|/s_w within 0.05 of 0.5" % name)
    check(0.3 < zeros / n_codes < 0.37, "%.1f%% zero codes" % (100.0 * zeros / n_codes))
    dense = sorted(n for n in packed if n.endswith(".weight") and packed[n].dtype == "BF16")
    same = all(np.array_equal(packed[n].raw, latent[n].raw) for n in dense)
    check(same and set(dense) | {t + ".weight" for t in tern_names} == set(latent),
          "the %d other tensors identical in both forms" % len(dense))
    a, b = models["packed"], models["bf16"]
    same = all(np.array_equal(la[p].codes, lb[p].codes) and la[p].s_w == lb[p].s_w
               for la, lb in zip(a.layers, b.layers) for _, p in hb.PROJECTIONS)
    check(same, "loaded models: the same codes and s_w in both forms")
    la = np.load(os.path.join(HF, "packed.logits.npy"))
    lb = np.load(os.path.join(HF, "bf16.logits.npy"))
    check(np.array_equal(la, lb), "recorded logits of both forms identical")


def check_project_decoder(model):
    """The same weights in models/bitnet_decoder.py's torch decoder (the one
    the ONNX models come from): the same logits."""
    import torch
    import bitnet_decoder as bd
    cfg = bd.Config(vocab=model.V, dim=model.H, layers=model.L, heads=model.Hq,
                    kv_heads=model.Hkv, ffn=model.F, context=model.context,
                    theta=model.theta, eps=model.eps)
    dec = bd.torch_model(cfg)
    dec.eval()
    names = {"q": "q_proj", "k": "k_proj", "v": "v_proj", "o": "o_proj",
             "gate": "gate_proj", "up": "up_proj", "down": "down_proj"}
    with torch.no_grad():
        dec.embed.weight.copy_(model.embed)
        dec.norm.weight.copy_(model.norm)
        for blk, L in zip(dec.blocks, model.layers):
            blk.attn_norm.weight.copy_(L["input_layernorm"])
            blk.ffn_norm.weight.copy_(L["post_attention_layernorm"])
            blk.attn_sub_norm.weight.copy_(L["attn_sub_norm"])
            blk.ffn_sub_norm.weight.copy_(L["ffn_sub_norm"])
            for ours, theirs in names.items():
                t = L[theirs]
                getattr(blk, ours).frozen = (torch.from_numpy(t.codes.astype(np.float32)),
                                             torch.tensor(float(t.s_w)))
        with open(os.path.join(HF, "packed.reference.json"), encoding="utf-8") as f:
            ref = json.load(f)
        toks = ref["prompt_ids"] + ref["generated_ids"][:-1]
        want = dec(torch.tensor([toks]))[0].numpy()
    diff = float(np.abs(model.forward(toks) - want).max())
    check(diff <= TOL, "packed: bitnet_decoder.py's decoder with these weights gives "
          "the same logits over %d tokens (max %.3g)" % (len(toks), diff))


def check_regenerate(tmp):
    ranks = os.path.join(ROOT, "..", "shared", "testdata", "tokenizer", "llama3.tiktoken")
    if not os.path.exists(ranks):
        print("skipped: regenerating the fixtures (no %s)" % ranks)
        return
    for form in FORMS:
        out = os.path.join(tmp, form)
        subprocess.run([sys.executable, os.path.join(ROOT, "models", "write_hf_checkpoint.py"),
                        out] + WRITE_ARGS[form], check=True, stderr=subprocess.DEVNULL)
        committed = sorted(os.listdir(os.path.join(HF, form)))
        same = sorted(os.listdir(out)) == committed and all(
            open(os.path.join(out, f), "rb").read() ==
            open(os.path.join(HF, form, f), "rb").read() for f in committed)
        check(same, "%s: write_hf_checkpoint.py %s rewrites the %d files byte for byte"
              % (form, " ".join(WRITE_ARGS[form]), len(committed)))


def main():
    with tempfile.TemporaryDirectory() as tmp:
        check_unpack()
        check_safetensors(tmp)
        check_tokenizer()
        models = {f: hb.load(os.path.join(HF, f)) for f in FORMS}
        check_reference(models)
        check_forms(models)
        check_project_decoder(models["packed"])
        check_regenerate(tmp)
    if failures:
        print("%d check(s) failed" % len(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
