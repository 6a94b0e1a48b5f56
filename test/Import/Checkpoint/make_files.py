"""Writes the GGUF and Hugging Face test files of the lit tests into a folder.

    /usr/bin/python3 make_files.py OUT_DIR

Well-formed files: the same random decoder in I2_S, TQ1_0, TQ2_0 and as f16
latent weights (GGUF), and as a packed and a bf16 Hugging Face directory (the
bf16 one in two shards). Malformed files: one per way a file can be wrong,
named after it.
"""

import json
import os
import shutil
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "models"))

import numpy as np  # noqa: E402

import checkpoint_files as cf  # noqa: E402
import tiny_vocab  # noqa: E402


def main():
    out = sys.argv[1]
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    # A vocabulary made here (the tests need no shared data): 256 bytes, 12
    # merges, 32 specials; 300 tokens, BOS 268.
    vocab = tiny_vocab.from_merges(
        [(b" ", b" "), (b"  ", b"  "), (b"i", b"n"), (b" ", b"t"),
         (b"    ", b"    "), (b"e", b"r"), (b"  ", b" "), (b"o", b"n"),
         (b" ", b"a"), (b"r", b"e"), (b"a", b"t"), (b"s", b"t")])
    m = cf.random_bitnet(seed=1, vocab=vocab.size)

    def path(name):
        return os.path.join(out, name)

    # Well-formed.
    for name, ttype in [("i2_s", cf.T_I2_S), ("tq1_0", cf.T_TQ1_0),
                        ("tq2_0", cf.T_TQ2_0), ("f16", cf.T_F16)]:
        cf.gguf_bitnet(m, ttype, vocab=vocab).write(path("tiny_%s.gguf" % name))
    cf.gguf_bitnet(m, cf.T_I2_S, arch="bitnet").write(path("tiny_bitnet_arch.gguf"))
    cf.write_hf_dir(path("hf_packed"), m, packed=True,
                    tokenizer=vocab.hf_tokenizer_json())
    cf.write_hf_dir(path("hf_bf16"), m, packed=False, shards=2,
                    tokenizer=vocab.hf_tokenizer_json())
    # The BitLinear class stores 1 / s_w.
    d = path("hf_packed_bitlinear")
    cf.write_hf_dir(d, m, packed=True, scale_inverse=True)

    good = cf.gguf_bitnet(m, cf.T_I2_S).data()

    def gguf_case(name, data):
        with open(path(name + ".gguf"), "wb") as f:
            f.write(data)

    def variant(name, edit, **kwargs):
        w = cf.gguf_bitnet(m, cf.T_I2_S)
        edit(w)
        gguf_case(name, w.data(**kwargs))

    # Malformed GGUF files.
    gguf_case("empty", b"")
    gguf_case("not_gguf", b"PK\x03\x04" + bytes(60))
    gguf_case("truncated_header", good[:20])
    gguf_case("truncated_data", good[:len(good) // 2])
    gguf_case("version1", b"GGUF" + struct.pack("<I", 1) + good[8:])
    gguf_case("big_endian", b"GGUF" + struct.pack(">I", 3) + good[8:])
    gguf_case("version9", b"GGUF" + struct.pack("<I", 9) + good[8:])
    gguf_case("huge_kv_count", good[:16] + struct.pack("<Q", 1 << 60) + good[24:])
    gguf_case("huge_tensor_count", good[:8] + struct.pack("<Q", 1 << 60) + good[16:])
    huge_array = cf.GGUFWriter()
    huge_array.add("general.architecture", cf.STRING, "bitnet-b1.58")
    blob = bytearray(huge_array.data())
    # An array claiming 2^40 u32 elements in a tiny file.
    key = b"tokenizer.ggml.token_type"
    entry = (struct.pack("<Q", len(key)) + key + struct.pack("<I", cf.ARRAY) +
             struct.pack("<IQ", cf.I32, 1 << 40))
    gguf_case("huge_array", bytes(blob[:16]) + struct.pack("<Q", 2) +
              bytes(blob[24:blob.index(b"bitnet-b1.58") + 12]) + entry)
    huge_string = bytearray(good)
    at = good.index(b"general.architecture") - 8
    huge_string[at:at + 8] = struct.pack("<Q", 1 << 62)
    gguf_case("huge_string", bytes(huge_string))
    bad_key = cf.GGUFWriter()
    bad_key.add("general.architecture", cf.STRING, "bitnet-b1.58")
    data = bytearray(bad_key.data())
    data[data.index(b"general.arch")] = 0xFF
    gguf_case("bad_utf8_key", bytes(data))
    unknown_vtype = bytearray(good)
    at = good.index(b"general.architecture") + len(b"general.architecture")
    unknown_vtype[at:at + 4] = struct.pack("<I", 99)
    gguf_case("unknown_value_type", bytes(unknown_vtype))
    # Rewrite the type of a u8 entry to bool with the value 7.
    w = cf.gguf_bitnet(m, cf.T_I2_S)
    w.kv.insert(0, ("general.flag", cf.U8, 7))
    bad_bool = bytearray(w.data())
    at = bad_bool.index(b"general.flag") + len(b"general.flag")
    bad_bool[at:at + 4] = struct.pack("<I", cf.BOOL)
    gguf_case("bad_bool", bytes(bad_bool))
    variant("duplicate_key", lambda w: w.kv.append(w.kv[0]))
    variant("duplicate_tensor", lambda w: w.tensors.append(w.tensors[1]))
    variant("bad_alignment", lambda w: w.kv.append(("general.alignment", cf.U32, 48)))

    def retype(name, ttype):
        def edit(w):
            for i, t in enumerate(w.tensors):
                if t[0] == name:
                    w.tensors[i] = (t[0], t[1], ttype, t[3])
        return edit

    variant("unknown_tensor_type", retype("blk.0.attn_q.weight", 77))
    variant("tl2_tensor", retype("blk.0.attn_q.weight", 39))
    variant("q4_weight", retype("output_norm.weight", 2))

    def dims(name, new):
        def edit(w):
            for i, t in enumerate(w.tensors):
                if t[0] == name:
                    w.tensors[i] = (t[0], new, t[2], t[3])
        return edit

    variant("zero_dim", dims("output_norm.weight", [0]))
    variant("rank5", dims("output_norm.weight", [1, 1, 1, 1, 256]))
    variant("huge_dims", dims("token_embd.weight", [1 << 30, 1 << 30]))
    variant("lying_shape", dims("blk.0.attn_q.weight", [256, 512]))
    variant("wrong_shape", dims("blk.0.attn_k.weight", [256, 256]))
    n = len(cf.gguf_bitnet(m, cf.T_I2_S).tensors)
    variant("offset_outside", lambda w: None, offsets=[0] * (n - 1) + [1 << 40])
    variant("misaligned_offset", lambda w: None, offsets=[0] * (n - 1) + [4])

    def drop_key(key):
        return lambda w: w.kv.__setitem__(slice(None), [kv for kv in w.kv if kv[0] != key])

    def set_key(key, vtype, value):
        def edit(w):
            w.kv[:] = [(k, t, v) if k != key else (k, vtype, value) for k, t, v in w.kv]
        return edit

    variant("missing_key", drop_key("bitnet-b1.58.block_count"))
    variant("wrong_key_type", set_key("bitnet-b1.58.embedding_length", cf.STRING, "256"))
    variant("unknown_arch", set_key("general.architecture", cf.STRING, "llama"))
    variant("heads_mismatch", set_key("bitnet-b1.58.attention.head_count_kv", cf.U32, 3))
    variant("partial_rope", set_key("bitnet-b1.58.rope.dimension_count", cf.U32, 32))
    variant("missing_tensor", lambda w: w.tensors.pop())
    bad_code = cf.gguf_bitnet(m, cf.T_I2_S)
    for i, t in enumerate(bad_code.tensors):
        if t[0] == "blk.0.attn_v.weight":
            payload = bytearray(t[3])
            payload[5] = 0xFF
            bad_code.tensors[i] = (t[0], t[1], t[2], bytes(payload))
    gguf_case("i2s_bad_code", bad_code.data())
    mixed = cf.gguf_bitnet(m, cf.T_TQ2_0)
    for i, t in enumerate(mixed.tensors):
        if t[0] == "blk.0.attn_q.weight":
            codes, scale = m["layer"][0]["q"]
            blocks = codes.size // 256
            mixed.tensors[i] = (t[0], t[1], t[2],
                                cf.tq2_0(codes, [scale] * (blocks - 1) + [scale * 2]))
    gguf_case("tq2_mixed_scales", mixed.data())
    nan_norm = cf.gguf_bitnet(m, cf.T_I2_S)
    for i, t in enumerate(nan_norm.tensors):
        if t[0] == "output_norm.weight":
            a = np.frombuffer(t[3], dtype=np.float32).copy()
            a[3] = np.nan
            nan_norm.tensors[i] = (t[0], t[1], t[2], a.tobytes())
    gguf_case("nan_norm", nan_norm.data())
    # An infinity in the f16 embedding, which is kept as stored.
    inf_embedding = cf.gguf_bitnet(m, cf.T_I2_S)
    for i, t in enumerate(inf_embedding.tensors):
        if t[0] == "token_embd.weight":
            a = np.frombuffer(t[3], dtype=np.uint16).copy()
            a[5] = 0x7C00
            inf_embedding.tensors[i] = (t[0], t[1], t[2], a.tobytes())
    gguf_case("inf_embedding", inf_embedding.data())

    # Malformed Hugging Face directories.
    def hf_case(name, edit):
        d = path("hf_" + name)
        cf.write_hf_dir(d, m, packed=True)
        edit(d)

    def rewrite(d, fname, fn):
        p = os.path.join(d, fname)
        with open(p, "rb") as f:
            data = f.read()
        with open(p, "wb") as f:
            f.write(fn(data))

    def header_edit(fn):
        def edit(data):
            n = struct.unpack("<Q", data[:8])[0]
            header = json.loads(data[8:8 + n])
            fn(header)
            text = json.dumps(header).encode()
            return struct.pack("<Q", len(text)) + text + data[8 + n:]
        return edit

    st = "model.safetensors"
    hf_case("truncated", lambda d: rewrite(d, st, lambda b: b[:len(b) // 2]))
    hf_case("header_too_long", lambda d: rewrite(d, st, lambda b: struct.pack("<Q", 1 << 40) + b[8:]))
    hf_case("bad_json", lambda d: rewrite(d, st, lambda b: b[:8] + b"{nope" + b[13:]))
    hf_case("unknown_dtype", lambda d: rewrite(d, st, header_edit(
        lambda h: h["model.norm.weight"].update(dtype="F8_E4M3"))))
    hf_case("offsets_mismatch", lambda d: rewrite(d, st, header_edit(
        lambda h: h["model.norm.weight"].update(shape=[999]))))
    hf_case("offsets_outside", lambda d: rewrite(d, st, header_edit(
        lambda h: h["model.norm.weight"].update(data_offsets=[1 << 40, (1 << 40) + 1024]))))

    def overlap(h):
        a = h["model.layers.0.input_layernorm.weight"]["data_offsets"]
        h["model.layers.0.self_attn.attn_sub_norm.weight"]["data_offsets"] = a

    hf_case("overlap", lambda d: rewrite(d, st, header_edit(overlap)))

    def config_edit(fn):
        def edit(d):
            p = os.path.join(d, "config.json")
            with open(p) as f:
                c = json.load(f)
            fn(c)
            with open(p, "w") as f:
                json.dump(c, f)
        return edit

    hf_case("wrong_model_type", config_edit(lambda c: c.update(model_type="llama")))
    hf_case("config_string", config_edit(lambda c: c.update(hidden_size="256")))
    hf_case("no_config", lambda d: os.remove(os.path.join(d, "config.json")))
    hf_case("no_weights", lambda d: os.remove(os.path.join(d, st)))

    def drop_scale(h):
        del h["model.layers.0.mlp.up_proj.weight_scale"]

    hf_case("missing_scale", lambda d: rewrite(d, st, header_edit(drop_scale)))

    def bad_packed(d):
        p = os.path.join(d, st)
        with open(p, "rb") as f:
            data = bytearray(f.read())
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        begin = header["model.layers.0.self_attn.k_proj.weight"]["data_offsets"][0]
        data[8 + n + begin] = 0xFF
        with open(p, "wb") as f:
            f.write(bytes(data))

    hf_case("bad_packed_code", bad_packed)
    d = path("hf_shard_escape")
    cf.write_hf_dir(d, m, packed=True, shards=2)
    p = os.path.join(d, "model.safetensors.index.json")
    with open(p) as f:
        index = json.load(f)
    first = next(iter(index["weight_map"]))
    index["weight_map"][first] = "../outside.safetensors"
    with open(p, "w") as f:
        json.dump(index, f)
    d = path("hf_shard_wrong")
    cf.write_hf_dir(d, m, packed=True, shards=2)
    p = os.path.join(d, "model.safetensors.index.json")
    with open(p) as f:
        index = json.load(f)
    shard_files = sorted(set(index["weight_map"].values()))
    index["weight_map"]["model.norm.weight"] = [
        s for s in shard_files if s != index["weight_map"]["model.norm.weight"]][0]
    with open(p, "w") as f:
        json.dump(index, f)


if __name__ == "__main__":
    main()
