"""Writers of the checkpoint formats the compiler reads, for test models.

GGUF (version 3, little-endian) with the BitNet tensor types (I2_S, TQ1_0,
TQ2_0, F16, F32, BF16), and Hugging Face directories (safetensors, single or
sharded, with config.json), written from the format descriptions:

- GGUF: magic "GGUF", u32 version, u64 tensor count, u64 metadata count, the
  metadata (string key, u32 type, value), the tensor table (string name, u32
  rank, u64 dims with dims[0] fastest, u32 type, u64 offset from the aligned
  start of the data), padding to `general.alignment`, the data.
- I2_S: the whole tensor row-major in 128-value blocks of 32 bytes, value j of
  a block in bits 6-2(j/32) of byte j % 32, codes 0, 1, 2 for -1, 0, +1, then
  one f32 scale and padding to 32 bytes.
- TQ2_0 / TQ1_0: 256-value blocks with an f16 scale last (see `tq2_0`,
  `tq1_0`).
- safetensors: u64 header length, JSON header {name: {dtype, shape,
  data_offsets}}, data.

`random_bitnet(...)` makes random ternary weights for a small decoder; the
writers below store the same weights in any format, so that tests can check
that every format gives the same model.
"""

import json
import os
import struct

import numpy as np

# GGUF metadata value types.
U8, I8, U16, I16, U32, I32, F32, BOOL, STRING, ARRAY, U64, I64, F64 = range(13)
# GGML tensor types.
T_F32, T_F16, T_BF16 = 0, 1, 30
T_Q8_0 = 8
T_TQ1_0, T_TQ2_0, T_I2_S = 34, 35, 36

_SCALAR = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i",
           F32: "<f", BOOL: "<?", U64: "<Q", I64: "<q", F64: "<d"}


def _string(s):
    b = s if isinstance(s, bytes) else s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def _value(vtype, value):
    if vtype == STRING:
        return _string(value)
    if vtype == ARRAY:
        etype, items = value
        out = struct.pack("<IQ", etype, len(items))
        return out + b"".join(_value(etype, v) for v in items)
    return struct.pack(_SCALAR[vtype], value)


class GGUFWriter:
    """Collects metadata and tensors; `data()` gives the file's bytes."""

    def __init__(self, version=3, alignment=32):
        self.version = version
        self.alignment = alignment
        self.kv = []
        self.tensors = []

    def add(self, key, vtype, value):
        self.kv.append((key, vtype, value))

    def add_tensor(self, name, dims, ttype, payload):
        """dims in GGUF order (dims[0] fastest); payload: bytes."""
        self.tensors.append((name, list(dims), ttype, bytes(payload)))

    def data(self, offsets=None, tensor_count=None, kv_count=None):
        """The file; `offsets` replaces the offsets written in the tensor
        table (the data stays where it would be), for malformed files."""
        out = bytearray(b"GGUF")
        out += struct.pack("<I", self.version)
        out += struct.pack("<Q", len(self.tensors) if tensor_count is None else tensor_count)
        out += struct.pack("<Q", len(self.kv) if kv_count is None else kv_count)
        for key, vtype, value in self.kv:
            out += _string(key) + struct.pack("<I", vtype) + _value(vtype, value)
        pos = 0
        placed = []
        for name, dims, ttype, payload in self.tensors:
            placed.append(pos)
            pos += len(payload)
            pos = (pos + self.alignment - 1) // self.alignment * self.alignment
        table = placed if offsets is None else offsets
        for (name, dims, ttype, payload), off in zip(self.tensors, table):
            out += _string(name) + struct.pack("<I", len(dims))
            out += b"".join(struct.pack("<Q", d) for d in dims)
            out += struct.pack("<IQ", ttype, off)
        while len(out) % self.alignment:
            out += b"\0"
        start = len(out)
        for (name, dims, ttype, payload), off in zip(self.tensors, placed):
            end = start + off + len(payload)
            if len(out) < end:
                out += b"\0" * (end - len(out))
            out[start + off:end] = payload
        while len(out) % self.alignment:
            out += b"\0"
        return bytes(out)

    def write(self, path, **kwargs):
        with open(path, "wb") as f:
            f.write(self.data(**kwargs))


# --- ternary encodings -----------------------------------------------------

def i2_s(codes, scale):
    """I2_S bytes of an N x K matrix of codes in {-1, 0, 1}."""
    flat = (np.asarray(codes, dtype=np.int8).reshape(-1) + 1).astype(np.uint8)
    assert flat.size % 128 == 0
    blocks = flat.reshape(-1, 4, 32)  # [block, group j // 32, position j % 32]
    packed = np.zeros((blocks.shape[0], 32), dtype=np.uint8)
    for g in range(4):
        packed |= blocks[:, g, :] << (6 - 2 * g)
    return packed.tobytes() + struct.pack("<f", scale) + b"\0" * 28


def tq2_0(codes, scales):
    """TQ2_0 bytes; `scales` has one value per 256-value block (f16)."""
    flat = (np.asarray(codes, dtype=np.int8).reshape(-1) + 1).astype(np.uint8)
    out = bytearray()
    for b, d in enumerate(scales):
        block = flat[b * 256:(b + 1) * 256]
        qs = np.zeros(64, dtype=np.uint8)
        for half in range(2):
            for l in range(4):
                qs[half * 32:(half + 1) * 32] |= block[half * 128 + l * 32: half * 128 + (l + 1) * 32] << (2 * l)
        out += qs.tobytes() + np.float16(d).tobytes()
    return bytes(out)


def _tq1_byte(digits):
    q = 0
    for d in digits:
        q = q * 3 + int(d)
    q *= 3 ** (5 - len(digits))
    return (q * 256 + 242) // 243


def tq1_0(codes, scales):
    """TQ1_0 bytes: 48 bytes of 5 base-3 digits, 4 of 4, an f16 scale."""
    flat = (np.asarray(codes, dtype=np.int8).reshape(-1) + 1).astype(np.uint8)
    out = bytearray()
    for b, d in enumerate(scales):
        v = flat[b * 256:(b + 1) * 256]
        qs = [_tq1_byte([v[m + n * 32] for n in range(5)]) for m in range(32)]
        qs += [_tq1_byte([v[160 + m + n * 16] for n in range(5)]) for m in range(16)]
        qh = [_tq1_byte([v[240 + m + n * 4] for n in range(4)]) for m in range(4)]
        out += bytes(qs) + bytes(qh) + np.float16(d).tobytes()
    return bytes(out)


# --- a random decoder ------------------------------------------------------

LINEARS = ["q", "k", "v", "o", "gate", "up", "down"]


def random_bitnet(seed=0, vocab=300, hidden=256, layers=1, heads=4, kv_heads=2,
                  ffn=512, context=64):
    """Random weights of a small BitNet b1.58 decoder (numpy arrays)."""
    rng = np.random.default_rng(seed)
    head_dim = hidden // heads
    shapes = {"q": (hidden, hidden), "k": (kv_heads * head_dim, hidden),
              "v": (kv_heads * head_dim, hidden), "o": (hidden, hidden),
              "gate": (ffn, hidden), "up": (ffn, hidden), "down": (hidden, ffn)}
    m = {"vocab": vocab, "hidden": hidden, "layers": layers, "heads": heads,
         "kv_heads": kv_heads, "ffn": ffn, "context": context,
         "embedding": (rng.standard_normal((vocab, hidden)) * 0.5).astype(np.float16),
         "output_norm": rng.uniform(0.5, 1.5, hidden).astype(np.float32),
         "layer": []}
    for _ in range(layers):
        layer = {}
        for name in LINEARS:
            codes = rng.integers(-1, 2, size=shapes[name]).astype(np.int8)
            # Scales exact in f16, so every format stores the same value.
            layer[name] = (codes, float(np.float16(rng.uniform(0.5, 2.0))))
        layer["attn_norm"] = rng.uniform(0.5, 1.5, hidden).astype(np.float32)
        layer["attn_sub_norm"] = rng.uniform(0.5, 1.5, hidden).astype(np.float32)
        layer["ffn_norm"] = rng.uniform(0.5, 1.5, hidden).astype(np.float32)
        layer["ffn_sub_norm"] = rng.uniform(0.5, 1.5, ffn).astype(np.float32)
        m["layer"].append(layer)
    return m


_GGUF_NAMES = {"q": "attn_q", "k": "attn_k", "v": "attn_v", "o": "attn_output",
               "gate": "ffn_gate", "up": "ffn_up", "down": "ffn_down"}


def _ternary_payload(codes, scale, ttype):
    if ttype == T_I2_S:
        return i2_s(codes, scale)
    blocks = codes.size // 256
    if ttype == T_TQ2_0:
        return tq2_0(codes, [scale] * blocks)
    if ttype == T_TQ1_0:
        return tq1_0(codes, [scale] * blocks)
    if ttype == T_F32:
        return (codes.astype(np.float32) * np.float32(scale)).tobytes()
    if ttype == T_F16:
        return (codes.astype(np.float32) * np.float32(scale)).astype(np.float16).tobytes()
    raise ValueError(ttype)


def gguf_bitnet(m, ttype=T_I2_S, arch="bitnet-b1.58", vocab=None):
    """A GGUFWriter holding decoder `m` with ternary weights of `ttype`.
    `vocab`: a tiny_vocab.TinyVocab for the tokenizer keys (or None)."""
    w = GGUFWriter()
    w.add("general.architecture", STRING, arch)
    w.add("general.name", STRING, "random bitnet")
    p = arch + "."
    w.add(p + "vocab_size", U32, m["vocab"])
    w.add(p + "context_length", U32, m["context"])
    w.add(p + "embedding_length", U32, m["hidden"])
    w.add(p + "block_count", U32, m["layers"])
    w.add(p + "feed_forward_length", U32, m["ffn"])
    w.add(p + "attention.head_count", U32, m["heads"])
    w.add(p + "attention.head_count_kv", U32, m["kv_heads"])
    w.add(p + "rope.freq_base", F32, 500000.0)
    w.add(p + "rope.dimension_count", U32, m["hidden"] // m["heads"])
    w.add(p + "attention.layer_norm_rms_epsilon", F32, 1e-5)
    if vocab is not None:
        w.add("tokenizer.ggml.model", STRING, "gpt2")
        w.add("tokenizer.ggml.pre", STRING, "llama-bpe")
        w.add("tokenizer.ggml.tokens", ARRAY, (STRING, vocab.all_tokens()))
        w.add("tokenizer.ggml.token_type", ARRAY, (I32, vocab.token_types()))
        w.add("tokenizer.ggml.merges", ARRAY, (STRING, vocab.merges))
        w.add("tokenizer.ggml.bos_token_id", U32, vocab.bos_id)
        w.add("tokenizer.ggml.eos_token_id", U32, vocab.eos_id)
        w.add("tokenizer.ggml.eot_token_id", U32, vocab.eot_id)
        w.add("tokenizer.ggml.add_bos_token", BOOL, True)
    else:
        # llama.cpp's mark of a model without a vocabulary: llama.cpp and
        # bitnet.cpp (llama-bench) load such a file, and refuse one without
        # the key.
        w.add("tokenizer.ggml.model", STRING, "no_vocab")
    w.add_tensor("token_embd.weight", [m["hidden"], m["vocab"]], T_F16,
                 m["embedding"].tobytes())
    w.add_tensor("output_norm.weight", [m["hidden"]], T_F32,
                 m["output_norm"].tobytes())
    for l, layer in enumerate(m["layer"]):
        for norm in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
            w.add_tensor("blk.%d.%s.weight" % (l, norm), [layer[norm].size], T_F32,
                         layer[norm].tobytes())
        for name in LINEARS:
            codes, scale = layer[name]
            w.add_tensor("blk.%d.%s.weight" % (l, _GGUF_NAMES[name]),
                         [codes.shape[1], codes.shape[0]], ttype,
                         _ternary_payload(codes, scale, ttype))
    return w


# --- safetensors and Hugging Face directories ------------------------------

_ST_DTYPES = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
              np.dtype(np.uint8): "U8", np.dtype(np.int8): "I8"}


def bf16_bytes(a):
    """float32 -> bfloat16 bits (round to nearest even)."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16).tobytes()


def safetensors_bytes(tensors, metadata=None):
    """tensors: {name: (dtype string, shape, raw bytes)} in order."""
    header = {}
    if metadata:
        header["__metadata__"] = metadata
    pos = 0
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": list(shape),
                        "data_offsets": [pos, pos + len(raw)]}
        pos += len(raw)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(
        raw for _, _, raw in tensors.values())


def packed_hf(codes):
    """The packed uint8 [N/4, K] form: row i*N/4 + r in bits 2i of byte r."""
    n, k = codes.shape
    q = (codes + 1).astype(np.uint8).reshape(4, n // 4, k)
    return (q[0] | (q[1] << 2) | (q[2] << 4) | (q[3] << 6)).astype(np.uint8)


def hf_bitnet_tensors(m, packed=True, scale_inverse=False):
    """{name: (dtype, shape, bytes)} of decoder `m` as BitNetForCausalLM;
    packed weights have a weight_scale of s_w (transformers' AutoBitLinear)
    or, with `scale_inverse`, 1 / s_w (its BitLinear)."""
    # A bf16 checkpoint (latent weights) stores its embedding in bf16 too.
    embedding = m["embedding"]
    t = {"model.embed_tokens.weight":
         ("F16", embedding.shape, embedding.tobytes()) if packed else
         ("BF16", embedding.shape, bf16_bytes(embedding.astype(np.float32)))}
    hf = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
          "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
          "down": "mlp.down_proj"}
    norms = {"attn_norm": "input_layernorm", "attn_sub_norm": "self_attn.attn_sub_norm",
             "ffn_norm": "post_attention_layernorm", "ffn_sub_norm": "mlp.ffn_sub_norm"}
    for l, layer in enumerate(m["layer"]):
        p = "model.layers.%d." % l
        for norm, name in norms.items():
            t[p + name + ".weight"] = ("F32", layer[norm].shape, layer[norm].tobytes())
        for name in LINEARS:
            codes, scale = layer[name]
            if packed:
                pk = packed_hf(codes)
                t[p + hf[name] + ".weight"] = ("U8", pk.shape, pk.tobytes())
                ws = np.array([1.0 / scale if scale_inverse else scale],
                              dtype=np.float32)
                t[p + hf[name] + ".weight_scale"] = ("F32", (1,), ws.tobytes())
            else:
                w = codes.astype(np.float32) * np.float32(scale)
                t[p + hf[name] + ".weight"] = ("BF16", codes.shape, bf16_bytes(w))
    t["model.norm.weight"] = ("F32", m["output_norm"].shape, m["output_norm"].tobytes())
    return t


def hf_config(m, linear_class="autobitlinear"):
    return {
        "architectures": ["BitNetForCausalLM"], "model_type": "bitnet",
        "vocab_size": m["vocab"], "hidden_size": m["hidden"],
        "intermediate_size": m["ffn"], "num_hidden_layers": m["layers"],
        "num_attention_heads": m["heads"], "num_key_value_heads": m["kv_heads"],
        "max_position_embeddings": m["context"], "rms_norm_eps": 1e-5,
        "rope_theta": 500000.0, "hidden_act": "relu2", "tie_word_embeddings": True,
        "quantization_config": {"quant_method": "bitnet",
                                "linear_class": linear_class,
                                "quantization_mode": "offline"},
    }


def write_hf_dir(path, m, packed=True, shards=1, tokenizer=None,
                 scale_inverse=False):
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(hf_config(m, "bitlinear" if scale_inverse else "autobitlinear"),
                  f, indent=1)
    tensors = hf_bitnet_tensors(m, packed, scale_inverse)
    names = list(tensors)
    if shards == 1:
        with open(os.path.join(path, "model.safetensors"), "wb") as f:
            f.write(safetensors_bytes(tensors))
    else:
        weight_map = {}
        for s in range(shards):
            part = {n: tensors[n] for n in names[s::shards]}
            fname = "model-%05d-of-%05d.safetensors" % (s + 1, shards)
            with open(os.path.join(path, fname), "wb") as f:
                f.write(safetensors_bytes(part))
            weight_map.update({n: fname for n in part})
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=1)
    if tokenizer is not None:
        with open(os.path.join(path, "tokenizer.json"), "w", encoding="utf-8") as f:
            json.dump(tokenizer, f, ensure_ascii=False)
