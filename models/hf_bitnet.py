"""A torch reference of Hugging Face's `BitNetForCausalLM` (model_type "bitnet").

Reads a Hugging Face checkpoint directory of a BitNet b1.58 model (such as
microsoft/bitnet-b1.58-2B-4T, or its "-bf16" master weights) and runs it in
float32, with the ternary layers computed exactly as the project's numerics
contract says (README.md, "Numerics contract"). Written from the published
description of transformers' `models/bitnet/modeling_bitnet.py`,
`configuration_bitnet.py` and `integrations/bitnet.py`; needs numpy, torch and
`regex`, not transformers.

    import hf_bitnet
    model = hf_bitnet.load("path/to/checkpoint")
    ids = model.tokenizer.encode("The quick brown fox")    # BOS first
    logits = model.forward(ids)                             # [S, V] float32
    generated, step_logits = model.greedy(ids, 32)          # [33, V]

    /usr/bin/python3 models/hf_bitnet.py DIR --prompt "The quick brown fox" -n 32 \
        [--json OUT.json] [--logits OUT.npy]

What a checkpoint holds
-----------------------
config.json: hidden_size, intermediate_size, num_hidden_layers,
num_attention_heads, num_key_value_heads (GQA), head_dim (optional, else
hidden / heads), rms_norm_eps, rope_theta, max_position_embeddings,
vocab_size, tie_word_embeddings, hidden_act "relu2", and quantization_config.
microsoft/bitnet-b1.58-2B-4T has {"quant_method": "bitnet", "linear_class":
"autobitlinear", "quantization_mode": "offline"}, tie_word_embeddings true,
rope_theta 500000, rms_norm_eps 1e-5, 30 layers, hidden 2560, intermediate
6912, 20 heads, 5 KV heads, vocabulary 128256, bos 128000, eos 128001; the
"-bf16" variant the same with "quantization_mode": "online".

Tensors (model.safetensors, or shards listed by model.safetensors.index.json):
model.embed_tokens.weight [V, H]; per layer model.layers.<l>.
input_layernorm, post_attention_layernorm, self_attn.attn_sub_norm [H] and
mlp.ffn_sub_norm [F] (RMSNorm weights); self_attn.{q,k,v,o}_proj and
mlp.{gate,up,down}_proj; model.norm.weight; lm_head.weight only when the
embeddings are not tied.

A projection [N, K] comes in one of two forms:
- packed (quantization_mode "offline"): `weight` uint8 [N/4, K] and
  `weight_scale` of the model dtype (bf16 for 2B-4T), shape [1]. The codes
  w + 1 (0, 1, 2) are packed along the OUTPUT dimension in four blocks: output
  row i * N/4 + r is in bits 2i..2i+1 of packed row r (unpack_weights in
  integrations/bitnet.py: `unpacked[i*P:(i+1)*P] = (packed >> 2i) & 3`, then
  minus 1). The scale's meaning depends on linear_class:
    "autobitlinear" (2B-4T; AutoBitLinear with online_quant False):
        y = linear(ActQuant(x), W) * weight_scale, so weight_scale = s_w
        (the absmean of the latent weights);
    "bitlinear" (transformers' default when linear_class is absent;
        BitLinear.post_quant_process): y = (xq . W) / (s_x * weight_scale),
        so weight_scale = 1 / s_w.
- latent (quantization_mode "online", the -bf16 form): `weight` bf16 [N, K],
  ternarised on every forward (AutoBitLinear with online_quant, WeightQuant):
  s_w = mean|W| (at least 1e-5; summed in double here, as the contract
  says), Wq = clamp(round(W / s_w), -1, 1).

Every ternary layer then computes, per token (row) x:
  s_x = 127 / max(|x|) (max at least 1e-5), xq = clamp(round(x * s_x), -128, 127)
  (round half to even), y = (xq . Wq) * s_w / s_x, the integer dot product
  being exact in float32 (|sum| <= 128 * K < 2^24).

The decoder (BitNetModel / BitNetDecoderLayer):
  x = embed[tokens]
  per layer:
    h = RMSNorm(x; input_layernorm)
    q, k, v = q_proj(h), k_proj(h), v_proj(h)      heads of head_dim D
    q, k = RoPE(q), RoPE(k)                        rotate_half style, theta
    a = causal softmax(q k^T * D^-0.5) v           KV head of query head h:
                                                   h // (heads / kv_heads)
    x = x + o_proj(RMSNorm(a; attn_sub_norm))
    h = RMSNorm(x; post_attention_layernorm)
    x = x + down_proj(RMSNorm(relu(gate_proj(h))^2 * up_proj(h); ffn_sub_norm))
  logits = RMSNorm(x; norm) @ lm_head^T            lm_head = embed when tied
RMSNorm(x; w) = x * rsqrt(mean(x^2) + rms_norm_eps) * w. RoPE: inv_freq[j] =
theta^(-2j / D) for j < D/2, angle = position * inv_freq, and with x1, x2 the
two halves of a head, (x1 cos - x2 sin, x2 cos + x1 sin): the "half" style of
this project's Rope op, not the interleaved pairs.

Surprises met while checking the published source
-------------------------------------------------
- The two linear classes read weight_scale in opposite ways (multiplied by
  AutoBitLinear, divided by BitLinear), and the 2B-4T config names
  "autobitlinear"; a reader must look at linear_class, never guess. Other
  converters disagree here (llama.cpp's dequant_bitnet always divides, "the
  scale is inverted"; mlx-lm inverts unless linear_class is "autobitlinear";
  microsoft/BitNet PR #616 reports 2B-4T scales of about 1.555, the absmean,
  and garbled output from a converter that divided by them).
- The packing is along the output dimension in blocks of N/4 rows, not along
  K and not interleaved row by row (the unpack_weights docstring's example
  has N/4 = 2, where the two read alike). This project's ONNX BitLinear
  bits = 2 packs along K instead: the importer has to repack.
- modeling_bitnet.py itself uses plain nn.Linear: the ternary layers come only
  from the quantizer that quantization_config selects. A checkpoint without
  quantization_config would run in full precision there; this reader refuses
  one. lm_head is never quantized (modules_to_not_convert holds it).
- WeightQuant computes s = 1 / mean|W| and rounds W * s; the contract divides
  by the mean. The two differ only for a weight exactly on a rounding
  boundary (|W| / s_w = 0.5 in the last bit).
- transformers runs the model in bf16: ActQuant returns xq / s_x cast back to
  bf16 before the matmul, so its own outputs are not exactly the contract.
  This reference keeps float32 throughout.
- The subln norms: attn_sub_norm has hidden_size weights and normalises the
  attention output before o_proj; ffn_sub_norm has intermediate_size weights
  and normalises relu^2(gate) * up before down_proj.
- BitNetRMSNorm's own default eps is 1e-6, but every norm is built with
  config.rms_norm_eps (1e-5 in 2B-4T); BitNetConfig's default
  tie_word_embeddings is False while 2B-4T sets it true.
- Microsoft's own GPU inference code uses interleaved RoPE pairs and permutes
  the q/k rows when it converts these checkpoints; the HF layout itself is
  rotate_half.
- 2B-4T's chat template puts no BOS in the text: the tokenizer's
  post_processor adds it.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tiny_vocab import byte_to_unicode  # noqa: E402

# --------------------------------------------------------------------------
# bf16 <-> float32 (numpy has no bf16)
# --------------------------------------------------------------------------


def bf16_bits_to_f32(bits):
    """uint16 bf16 bit patterns -> float32, exactly."""
    return (np.asarray(bits, np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16_bits(x):
    """float32 -> uint16 bf16 bit patterns, round to nearest even."""
    u = np.ascontiguousarray(x, np.float32).view(np.uint32)
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(nan, ((u >> 16) | 0x40).astype(np.uint16), r)


def round_bf16(x):
    """float32 values rounded to the nearest bf16, as float32."""
    return bf16_bits_to_f32(f32_to_bf16_bits(x))


# --------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------

# dtype name -> (numpy dtype of the stored bytes, bytes per element)
ST_DTYPES = {
    "BF16": (np.uint16, 2),
    "F16": (np.float16, 2),
    "F32": (np.float32, 4),
    "U8": (np.uint8, 1),
    "I8": (np.int8, 1),
}


class StTensor:
    """A tensor of a safetensors file: its dtype name, shape and the stored
    values (`raw`: uint16 bit patterns for BF16)."""

    def __init__(self, dtype, shape, raw):
        self.dtype, self.shape, self.raw = dtype, tuple(shape), raw

    def float32(self):
        if self.dtype == "BF16":
            return bf16_bits_to_f32(self.raw)
        return self.raw.astype(np.float32)


def read_safetensors(path):
    """-> (dict name -> StTensor, metadata dict). Checks the header: JSON
    object, known dtypes, offsets in range and matching the shapes, no
    overlaps."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError("%s: shorter than the 8-byte header length" % path)
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8:
        raise ValueError("%s: header length %d past the end of the file" % (path, n))
    header = json.loads(data[8:8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError("%s: the header is not a JSON object" % path)
    body = memoryview(data)[8 + n:]
    meta = header.pop("__metadata__", None) or {}
    tensors, spans = {}, []
    for name, h in header.items():
        dtype, shape, (begin, end) = h["dtype"], h["shape"], h["data_offsets"]
        if dtype not in ST_DTYPES:
            raise ValueError("%s: %s has dtype %s (not one of %s)" %
                             (path, name, dtype, ", ".join(ST_DTYPES)))
        npdt, size = ST_DTYPES[dtype]
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not (0 <= begin <= end <= len(body)) or end - begin != count * size:
            raise ValueError("%s: %s: data_offsets %s do not hold %s %s" %
                             (path, name, [begin, end], dtype, shape))
        spans.append((begin, end, name))
        raw = np.frombuffer(body[begin:end], dtype=npdt).reshape(shape).copy()
        tensors[name] = StTensor(dtype, shape, raw)
    spans.sort()
    for (b0, e0, n0), (b1, e1, n1) in zip(spans, spans[1:]):
        if b1 < e0:
            raise ValueError("%s: %s and %s overlap" % (path, n0, n1))
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """Writes dict name -> StTensor. Tensors in order of decreasing element
    size then name, the header padded with spaces to a multiple of 8."""
    names = sorted(tensors, key=lambda k: (-ST_DTYPES[tensors[k].dtype][1], k))
    header, chunks, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name in names:
        t = tensors[name]
        npdt, _ = ST_DTYPES[t.dtype]
        little = np.dtype(npdt).newbyteorder("<")
        b = np.ascontiguousarray(t.raw, npdt).astype(little).tobytes()
        header[name] = {"dtype": t.dtype, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        chunks.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for c in chunks:
            f.write(c)


def read_checkpoint_tensors(directory):
    """All tensors of a checkpoint directory: model.safetensors, or the shards
    model.safetensors.index.json names (each tensor in the shard its
    weight_map says)."""
    index = os.path.join(directory, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index, encoding="utf-8") as f:
            weight_map = json.load(f)["weight_map"]
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            if os.path.basename(shard) != shard:
                raise ValueError("%s: shard %r is not a file name" % (index, shard))
            part, _ = read_safetensors(os.path.join(directory, shard))
            for name, t in part.items():
                if weight_map.get(name) != shard:
                    raise ValueError("%s: %s is in %s, the index says %s" %
                                     (index, name, shard, weight_map.get(name)))
                tensors[name] = t
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise ValueError("%s: tensors missing from their shards: %s" %
                             (index, ", ".join(missing)))
        return tensors
    return read_safetensors(os.path.join(directory, "model.safetensors"))[0]


# --------------------------------------------------------------------------
# ternary weights
# --------------------------------------------------------------------------


def unpack_hf(packed):
    """uint8 [N/4, K] -> int8 codes [N, K]: output row i * N/4 + r from bits
    2i of packed row r, code = field - 1."""
    packed = np.asarray(packed, np.uint8)
    blocks = [((packed >> (2 * i)) & 3) for i in range(4)]
    codes = np.concatenate(blocks, axis=0).astype(np.int8) - 1
    if (codes > 1).any():
        raise ValueError("packed ternary weight holds the field value 3")
    return codes


def pack_hf(codes):
    """int8 codes [N, K] in {-1, 0, 1}, N a multiple of 4 -> uint8 [N/4, K]."""
    codes = np.asarray(codes)
    n = codes.shape[0]
    if n % 4:
        raise ValueError("%d output rows: not a multiple of 4" % n)
    u = (codes + 1).astype(np.uint8).reshape(4, n // 4, *codes.shape[1:])
    return (u[0] | (u[1] << 2) | (u[2] << 4) | (u[3] << 6)).astype(np.uint8)


def ternarize(w):
    """The contract's absmean ternarisation of float32 latent weights (the
    mean summed in double, then float32): -> (int8 codes, float32 s_w)."""
    w = np.asarray(w, np.float32)
    s = np.float32(max(np.float32(np.abs(w.astype(np.float64)).mean()), np.float32(1e-5)))
    q = np.clip(np.round(w / s), -1, 1)
    return q.astype(np.int8), s


# --------------------------------------------------------------------------
# tokenizer: byte-level BPE from a tokenizer.json
# --------------------------------------------------------------------------

# GPT-2's pre-tokenizer, what ByteLevel with use_regex = true splits with.
GPT2_PATTERN = (r"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+"
                r"|\s+(?!\S)|\s+")


class Tokenizer:
    """The subset of Hugging Face's tokenizers that Llama 3 style byte-level
    BPE files use: added (special) tokens matched first, a Split regex and/or
    ByteLevel pre-tokenizer, BPE with merges (and ignore_merges), and a
    TemplateProcessing post-processor that adds BOS."""

    def __init__(self, spec):
        import regex
        model = spec["model"]
        if model.get("type") != "BPE":
            raise ValueError("tokenizer model %r is not BPE" % model.get("type"))
        self.vocab = dict(model["vocab"])
        self.ignore_merges = bool(model.get("ignore_merges", False))
        self.ranks = {}
        for i, m in enumerate(model["merges"]):
            pair = tuple(m.split(" ")) if isinstance(m, str) else tuple(m)
            self.ranks.setdefault(pair, i)
        self.added = {t["content"]: t["id"] for t in spec.get("added_tokens", [])}
        self.id_to_token = {i: t for t, i in self.vocab.items()}
        self.id_to_token.update({i: t for t, i in self.added.items()})
        self.special_ids = set(self.added.values()) - set(self.vocab.values())
        self.b2u = byte_to_unicode()
        self.u2b = {c: b for b, c in self.b2u.items()}
        self.patterns = []
        pre = spec.get("pre_tokenizer") or {}
        for p in pre.get("pretokenizers", [pre]) if pre else []:
            if p["type"] == "Split":
                if p.get("behavior") != "Isolated" or p.get("invert"):
                    raise ValueError("Split pre-tokenizer %r not supported" % p)
                self.patterns.append(regex.compile(p["pattern"]["Regex"]))
            elif p["type"] == "ByteLevel":
                if p.get("add_prefix_space"):
                    raise ValueError("ByteLevel add_prefix_space not supported")
                if p.get("use_regex", True):
                    self.patterns.append(regex.compile(GPT2_PATTERN))
            else:
                raise ValueError("pre-tokenizer %s not supported" % p["type"])
        self.prefix, self.suffix = [], []
        post = spec.get("post_processor") or {}
        posts = post.get("processors", [post]) if post else []
        for p in posts:
            if p.get("type") != "TemplateProcessing":
                continue
            seen = False
            for item in p["single"]:
                if "Sequence" in item:
                    seen = True
                    continue
                tok = item["SpecialToken"]["id"]
                ids = p["special_tokens"][tok]["ids"]
                (self.suffix if seen else self.prefix).extend(ids)
        specials = sorted(self.added, key=len, reverse=True)
        self.special_re = (regex.compile("|".join(regex.escape(s) for s in specials))
                           if specials else None)

    @classmethod
    def from_file(cls, path):
        with open(path, encoding="utf-8") as f:
            return cls(json.load(f))

    def _bpe(self, piece):
        word = "".join(self.b2u[b] for b in piece.encode("utf-8"))
        if self.ignore_merges and word in self.vocab:
            return [self.vocab[word]]
        parts = list(word)
        while len(parts) > 1:
            best = None
            for i in range(len(parts) - 1):
                r = self.ranks.get((parts[i], parts[i + 1]))
                if r is not None and (best is None or r < best[0]):
                    best = (r, i)
            if best is None:
                break
            a, b = parts[best[1]], parts[best[1] + 1]
            out, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == a and parts[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(parts[i])
                    i += 1
            parts = out
        return [self.vocab[p] for p in parts]

    def _pieces(self, text):
        pieces = [text]
        for pat in self.patterns:
            pieces = [m.group(0) for p in pieces for m in pat.finditer(p)]
        return pieces

    def encode(self, text, add_special_tokens=True):
        ids = list(self.prefix) if add_special_tokens else []
        pos = 0
        chunks = []
        if self.special_re is not None:
            for m in self.special_re.finditer(text):
                chunks.append((text[pos:m.start()], None))
                chunks.append((None, self.added[m.group(0)]))
                pos = m.end()
        chunks.append((text[pos:], None))
        for chunk, special in chunks:
            if special is not None:
                ids.append(special)
            elif chunk:
                for piece in self._pieces(chunk):
                    ids.extend(self._bpe(piece))
        if add_special_tokens:
            ids.extend(self.suffix)
        return ids

    def decode(self, ids, skip_special_tokens=False):
        out, pending = [], bytearray()
        for i in ids:
            tok = self.id_to_token[int(i)]
            if int(i) in self.special_ids:
                out.append(pending.decode("utf-8", "replace"))
                pending = bytearray()
                if not skip_special_tokens:
                    out.append(tok)
            else:
                pending.extend(self.u2b[c] for c in tok)
        out.append(pending.decode("utf-8", "replace"))
        return "".join(out)


# --------------------------------------------------------------------------
# the model
# --------------------------------------------------------------------------

PROJECTIONS = [("self_attn", "q_proj"), ("self_attn", "k_proj"),
               ("self_attn", "v_proj"), ("self_attn", "o_proj"),
               ("mlp", "gate_proj"), ("mlp", "up_proj"), ("mlp", "down_proj")]


class Ternary:
    """One ternary projection: int8 codes [N, K] and the float32 s_w of the
    contract (y = (xq . codes) * s_w / s_x), with where they came from."""

    def __init__(self, codes, s_w, form):
        self.codes, self.s_w, self.form = codes, np.float32(s_w), form


class HFBitNet:
    def __init__(self, config, tensors, tokenizer=None, directory=None):
        import torch
        self.config, self.tokenizer, self.directory = config, tokenizer, directory
        c = config
        if c.get("model_type") != "bitnet":
            raise ValueError("model_type %r is not bitnet" % c.get("model_type"))
        if c.get("hidden_act", "relu2") != "relu2":
            raise ValueError("hidden_act %r is not relu2" % c.get("hidden_act"))
        q = c.get("quantization_config")
        if not q or q.get("quant_method") != "bitnet":
            raise ValueError("no quantization_config with quant_method bitnet: "
                             "not a BitNet b1.58 checkpoint")
        if q.get("use_rms_norm"):
            raise ValueError("quantization_config.use_rms_norm is not supported")
        self.linear_class = q.get("linear_class", "bitlinear")
        self.mode = q.get("quantization_mode", "offline")
        if self.linear_class not in ("bitlinear", "autobitlinear"):
            raise ValueError("linear_class %r" % self.linear_class)
        if self.mode not in ("offline", "online"):
            raise ValueError("quantization_mode %r" % self.mode)
        self.H = c["hidden_size"]
        self.F = c["intermediate_size"]
        self.L = c["num_hidden_layers"]
        self.Hq = c["num_attention_heads"]
        self.Hkv = c.get("num_key_value_heads") or self.Hq
        self.D = c.get("head_dim") or self.H // self.Hq
        self.V = c["vocab_size"]
        self.eps = float(c.get("rms_norm_eps", 1e-5))
        self.theta = float(c.get("rope_theta", 500000.0))
        self.context = c.get("max_position_embeddings", 2048)
        self.tied = bool(c.get("tie_word_embeddings", False))
        if self.Hq % self.Hkv:
            raise ValueError("%d heads, %d KV heads" % (self.Hq, self.Hkv))
        torch.set_num_threads(1)

        def dense(name, shape):
            if name not in tensors:
                raise ValueError("missing tensor %s" % name)
            t = tensors[name]
            if t.dtype not in ("BF16", "F16", "F32") or t.shape != tuple(shape):
                raise ValueError("%s: %s %s, expected a float %s" %
                                 (name, t.dtype, list(t.shape), list(shape)))
            return torch.from_numpy(t.float32())

        self.embed = dense("model.embed_tokens.weight", (self.V, self.H))
        self.head = (self.embed if self.tied else
                     dense("lm_head.weight", (self.V, self.H)))
        self.norm = dense("model.norm.weight", (self.H,))
        qd, kvd = self.Hq * self.D, self.Hkv * self.D
        shapes = {"q_proj": (qd, self.H), "k_proj": (kvd, self.H),
                  "v_proj": (kvd, self.H), "o_proj": (self.H, qd),
                  "gate_proj": (self.F, self.H), "up_proj": (self.F, self.H),
                  "down_proj": (self.H, self.F)}
        self.layers = []
        for l in range(self.L):
            p = "model.layers.%d." % l
            layer = {
                "input_layernorm": dense(p + "input_layernorm.weight", (self.H,)),
                "post_attention_layernorm":
                    dense(p + "post_attention_layernorm.weight", (self.H,)),
                "attn_sub_norm": dense(p + "self_attn.attn_sub_norm.weight", (self.H,)),
                "ffn_sub_norm": dense(p + "mlp.ffn_sub_norm.weight", (self.F,)),
            }
            for block, proj in PROJECTIONS:
                name = p + block + "." + proj
                layer[proj] = self._ternary(tensors, name, shapes[proj])
                tern = layer[proj]
                layer[proj + ".w"] = torch.from_numpy(tern.codes.astype(np.float32))
            self.layers.append(layer)

    def _ternary(self, tensors, name, shape):
        if name + ".weight" not in tensors:
            raise ValueError("missing tensor %s.weight" % name)
        w = tensors[name + ".weight"]
        n, k = shape
        if w.dtype == "U8":
            if self.mode != "offline":
                raise ValueError("%s: packed weight with quantization_mode %s" %
                                 (name, self.mode))
            if w.shape != (n // 4, k) or n % 4:
                raise ValueError("%s.weight: %s, expected packed [%d, %d]" %
                                 (name, list(w.shape), n // 4, k))
            s = tensors.get(name + ".weight_scale")
            if s is None or s.dtype not in ("BF16", "F16", "F32") or s.raw.size != 1:
                raise ValueError("%s.weight_scale: missing or not one float" % name)
            scale = np.float32(s.float32().reshape(-1)[0])
            if not np.isfinite(scale) or scale <= 0:
                raise ValueError("%s.weight_scale = %r" % (name, scale))
            s_w = scale if self.linear_class == "autobitlinear" else np.float32(1) / scale
            return Ternary(unpack_hf(w.raw), s_w, "packed")
        if w.dtype in ("BF16", "F16", "F32"):
            if self.mode != "online":
                raise ValueError("%s: latent float weight needs quantization_mode "
                                 "online" % name)
            if w.shape != (n, k):
                raise ValueError("%s.weight: %s, expected [%d, %d]" %
                                 (name, list(w.shape), n, k))
            codes, s_w = ternarize(w.float32())
            return Ternary(codes, s_w, "latent")
        raise ValueError("%s.weight: dtype %s" % (name, w.dtype))

    # -- pieces ------------------------------------------------------------

    def _rms(self, x, w):
        import torch
        return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + self.eps) * w

    @staticmethod
    def _bitlinear(x, codes, s_w):
        m = x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
        s_x = 127.0 / m
        xq = (x * s_x).round().clamp(-128, 127)
        return (xq @ codes.t()) * float(s_w) / s_x

    def _rope(self, x, positions):
        import torch
        d = self.D
        inv = 1.0 / (self.theta ** (torch.arange(0, d, 2, dtype=torch.float32) / d))
        ang = positions.to(torch.float32)[:, None] * inv[None, :]
        cos, sin = torch.cos(ang)[:, None, :], torch.sin(ang)[:, None, :]
        x1, x2 = x[..., : d // 2], x[..., d // 2:]
        return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)

    # -- forward -----------------------------------------------------------

    def new_cache(self):
        return {"pos": 0, "k": [None] * self.L, "v": [None] * self.L}

    def forward(self, tokens, cache=None):
        """Logits [S, V] (numpy float32) of the S tokens. With a cache (from
        new_cache), the tokens follow those already in it, and their keys and
        values are appended."""
        import torch
        tokens = torch.as_tensor(np.asarray(tokens, np.int64))
        S = tokens.shape[0]
        pos0 = cache["pos"] if cache else 0
        if pos0 + S > self.context:
            raise ValueError("%d positions, max_position_embeddings %d" %
                             (pos0 + S, self.context))
        if tokens.numel() and (tokens.min() < 0 or tokens.max() >= self.V):
            raise ValueError("token id out of range")
        positions = torch.arange(pos0, pos0 + S)
        rep = self.Hq // self.Hkv
        with torch.no_grad():
            x = self.embed[tokens]
            for l, L in enumerate(self.layers):
                def lin(v, proj, L=L):
                    return self._bitlinear(v, L[proj + ".w"], L[proj].s_w)
                h = self._rms(x, L["input_layernorm"])
                q = lin(h, "q_proj").view(S, self.Hq, self.D)
                k = lin(h, "k_proj").view(S, self.Hkv, self.D)
                v = lin(h, "v_proj").view(S, self.Hkv, self.D)
                q, k = self._rope(q, positions), self._rope(k, positions)
                if cache is not None:
                    if cache["k"][l] is not None:
                        k = torch.cat([cache["k"][l], k], 0)
                        v = torch.cat([cache["v"][l], v], 0)
                    cache["k"][l], cache["v"][l] = k, v
                T = k.shape[0]
                kk = k.repeat_interleave(rep, dim=1)
                vv = v.repeat_interleave(rep, dim=1)
                att = torch.einsum("shd,thd->hst", q, kk) * (self.D ** -0.5)
                future = torch.arange(T)[None, :] > positions[:, None]
                att = att.masked_fill(future[None], float("-inf")).softmax(-1)
                a = torch.einsum("hst,thd->shd", att, vv).reshape(S, self.Hq * self.D)
                a = self._rms(a, L["attn_sub_norm"])
                x = x + lin(a, "o_proj")
                h = self._rms(x, L["post_attention_layernorm"])
                g, u = lin(h, "gate_proj"), lin(h, "up_proj")
                f = self._rms(torch.relu(g) ** 2 * u, L["ffn_sub_norm"])
                x = x + lin(f, "down_proj")
            logits = self._rms(x, self.norm) @ self.head.t()
        if cache is not None:
            cache["pos"] = pos0 + S
        return logits.numpy().astype(np.float32)

    def greedy(self, tokens, n, stop=None):
        """Greedy decoding with a KV cache: the prompt in one step, then one
        token a step. -> (n generated ids, logits [n + 1, V]: the prompt's
        last position, then the step of each generated token). Stops early
        at a token in `stop`."""
        cache = self.new_cache()
        rows = [self.forward(tokens, cache)[-1]]
        out = []
        for _ in range(n):
            t = int(np.argmax(rows[-1]))
            out.append(t)
            rows.append(self.forward([t], cache)[-1])
            if stop and t in stop:
                break
        return out, np.stack(rows)


def load(directory):
    """The model of a checkpoint directory (config.json, weights, and the
    tokenizer when tokenizer.json is there)."""
    with open(os.path.join(directory, "config.json"), encoding="utf-8") as f:
        config = json.load(f)
    tensors = read_checkpoint_tensors(directory)
    tok_path = os.path.join(directory, "tokenizer.json")
    tokenizer = Tokenizer.from_file(tok_path) if os.path.exists(tok_path) else None
    return HFBitNet(config, tensors, tokenizer, directory)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("directory")
    ap.add_argument("--prompt", default="The quick brown fox")
    ap.add_argument("-n", type=int, default=32, help="tokens to generate")
    ap.add_argument("--json", help="write prompt, prompt ids and generated ids here")
    ap.add_argument("--logits", help="write the logits of every step here (.npy)")
    args = ap.parse_args()
    model = load(args.directory)
    ids = model.tokenizer.encode(args.prompt)
    gen, logits = model.greedy(ids, args.n)
    print("prompt ids:", ids)
    print("generated ids:", gen)
    print("text:", repr(model.tokenizer.decode(ids + gen)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            f.write('{\n "prompt": %s,\n "prompt_ids": %s,\n "generated_ids": %s\n}\n'
                    % (json.dumps(args.prompt), json.dumps(ids), json.dumps(gen)))
    if args.logits:
        np.save(args.logits, logits.astype(np.float32))


if __name__ == "__main__":
    sys.exit(main())
