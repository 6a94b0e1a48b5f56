"""A BitNet b1.58 decoder: the torch model and the ONNX file bitnet-compile reads.

The ONNX graph is one step of the decoder over S new tokens:

  inputs   tokens [S] int32, position [] int32 (index of tokens[0]),
           cache.<l>.key / cache.<l>.value [C, Hkv, D] float32 per layer
  outputs  logits [S, V] float32,
           cache.<l>.key.out / cache.<l>.value.out (the caches with the S new
           rows written at [position, position + S))

Ternary layers, norms, rotary embedding and attention are operators of the
domain `bitnet` (version 1), each the ONNX form of the bitnet dialect op of the
same name:

  BitLinear(x [..., K], weight, scale []) -> [..., N]
      weight: int8 codes [N, K] in {-1, 0, 1}, or (attribute bits = 2) uint8
      [N, ceil(K / 4)] holding the codes w + 1 in two bits each, element k of a
      row at bits 2 * (k % 4) of byte k / 4. The numerics contract: per-token
      int8 absmax quantisation, exact integer dot product, times scale / s_x.
  RMSNorm(x, gamma; epsilon)
  Rope(x [S, H, D], position []; theta, style = "half" | "interleaved")
      rotates token s by the angle of position + s.
  Attention(q [S, Hq, D], k [S, Hkv, D], v, k_cache [C, Hkv, D], v_cache,
            position []) -> out [S, Hq, D], k_cache', v_cache'
      causal grouped-query attention that first writes k, v into the caches.
  SquaredRelu(x) = relu(x)^2

Embedding and head are standard ONNX (Gather, and Gemm with transB = 1 on the
same initializer when the embeddings are tied). The vocabulary, when the model
has one, is the metadata entry `bitnet.vocab`: a JSON list of token strings.
"""

import json
import math

import numpy as np

DOMAIN = "bitnet"


class Config:
    def __init__(self, vocab, dim, layers, heads, kv_heads, ffn, context,
                 theta=10000.0, eps=1e-5):
        self.vocab, self.dim, self.layers = vocab, dim, layers
        self.heads, self.kv_heads, self.ffn = heads, kv_heads, ffn
        self.context, self.theta, self.eps = context, theta, eps
        assert dim % heads == 0 and heads % kv_heads == 0
        self.head_dim = dim // heads

    def to_dict(self):
        return dict(vocab=self.vocab, dim=self.dim, layers=self.layers,
                    heads=self.heads, kv_heads=self.kv_heads, ffn=self.ffn,
                    context=self.context, theta=self.theta, eps=self.eps)


# --------------------------------------------------------------------------
# torch model (imported lazily so that the ONNX writer works without torch)
# --------------------------------------------------------------------------

def torch_model(cfg):
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    def ternarize(w):
        s = w.abs().mean().clamp(min=1e-5)
        return (w / s).round().clamp(-1, 1), s

    def quantize(x):
        m = x.abs().amax(-1, keepdim=True).clamp(min=1e-5)
        s = 127.0 / m
        return (x * s).round().clamp(-128, 127), s

    class BitLinear(nn.Linear):
        """Quantisation-aware training with the straight-through estimator;
        in eval mode, exactly the numerics contract."""

        def __init__(self, k, n):
            super().__init__(k, n, bias=False)
            self.frozen = None  # (codes, scale) of a loaded model

        def forward(self, x):
            wq, sw = self.frozen or ternarize(self.weight)
            xq, sx = quantize(x)
            if self.training:
                w = self.weight + (wq * sw - self.weight).detach()
                xs = x + (xq / sx - x).detach()
                return F.linear(xs, w)
            # Integer sums below 2^24 are exact in float32.
            return F.linear(xq, wq) * sw / sx

    class RMSNorm(nn.Module):
        def __init__(self, d):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(d))

        def forward(self, x):
            ms = (x * x).mean(-1, keepdim=True)
            return x / torch.sqrt(ms + cfg.eps) * self.weight

    def rope(x, pos):
        # x [B, S, H, D], pos [S]; "half" pairing.
        d = x.shape[-1]
        inv = cfg.theta ** (-torch.arange(0, d // 2, dtype=torch.float32) * 2 / d)
        ang = pos.float()[:, None] * inv[None, :]
        c, s = torch.cos(ang)[None, :, None, :], torch.sin(ang)[None, :, None, :]
        a, b = x[..., : d // 2], x[..., d // 2:]
        return torch.cat([a * c - b * s, b * c + a * s], -1)

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            hd, kvd = cfg.head_dim, cfg.kv_heads * cfg.head_dim
            self.attn_norm = RMSNorm(cfg.dim)
            self.q, self.k = BitLinear(cfg.dim, cfg.dim), BitLinear(cfg.dim, kvd)
            self.v, self.o = BitLinear(cfg.dim, kvd), BitLinear(cfg.dim, cfg.dim)
            self.attn_sub_norm = RMSNorm(cfg.dim)
            self.ffn_norm = RMSNorm(cfg.dim)
            self.gate, self.up = BitLinear(cfg.dim, cfg.ffn), BitLinear(cfg.dim, cfg.ffn)
            self.ffn_sub_norm = RMSNorm(cfg.ffn)
            self.down = BitLinear(cfg.ffn, cfg.dim)

        def forward(self, x, pos):
            B, S, _ = x.shape
            hd = cfg.head_dim
            h = self.attn_norm(x)
            q = rope(self.q(h).view(B, S, cfg.heads, hd), pos)
            k = rope(self.k(h).view(B, S, cfg.kv_heads, hd), pos)
            v = self.v(h).view(B, S, cfg.kv_heads, hd)
            rep = cfg.heads // cfg.kv_heads
            k = k.repeat_interleave(rep, dim=2)
            v = v.repeat_interleave(rep, dim=2)
            att = torch.einsum("bshd,bthd->bhst", q, k) / math.sqrt(hd)
            mask = torch.ones(S, S, dtype=torch.bool).triu(1)
            att = att.masked_fill(mask, float("-inf")).softmax(-1)
            o = torch.einsum("bhst,bthd->bshd", att, v).reshape(B, S, cfg.dim)
            x = x + self.o(self.attn_sub_norm(o))
            h = self.ffn_norm(x)
            f = F.relu(self.gate(h)) ** 2 * self.up(h)
            return x + self.down(self.ffn_sub_norm(f))

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(cfg.vocab, cfg.dim)
            nn.init.normal_(self.embed.weight, std=0.2)
            self.blocks = nn.ModuleList(Block() for _ in range(cfg.layers))
            self.norm = RMSNorm(cfg.dim)

        def forward(self, tokens):
            # tokens [B, S] -> logits [B, S, V] (tied head)
            pos = torch.arange(tokens.shape[1])
            x = self.embed(tokens)
            for blk in self.blocks:
                x = blk(x, pos)
            return self.norm(x) @ self.embed.weight.t()

    return Decoder()


def weights_from_torch(model, cfg):
    """The numpy weights write_onnx takes, ternarised as the contract says."""
    import torch

    def f32(t):
        return t.detach().to(torch.float32).numpy().copy()

    def tern(lin):
        w = lin.weight.detach()
        s = w.abs().mean().clamp(min=1e-5)
        q = (w / s).round().clamp(-1, 1)
        return q.to(torch.int8).numpy(), np.float32(s.item())

    layers = []
    for blk in model.blocks:
        L = {"attn_norm": f32(blk.attn_norm.weight),
             "attn_sub_norm": f32(blk.attn_sub_norm.weight),
             "ffn_norm": f32(blk.ffn_norm.weight),
             "ffn_sub_norm": f32(blk.ffn_sub_norm.weight)}
        for name in ("q", "k", "v", "o", "gate", "up", "down"):
            L[name] = tern(getattr(blk, name))
        layers.append(L)
    return {"embed": f32(model.embed.weight), "norm": f32(model.norm.weight),
            "layers": layers}


def load_torch_from_onnx(path):
    """The torch model with the weights of an ONNX file this module wrote."""
    import onnx
    import torch
    from onnx import numpy_helper

    m = onnx.load(path)
    meta = {p.key: p.value for p in m.metadata_props}
    cfg = Config(**json.loads(meta["bitnet.config"]))
    inits = {t.name: numpy_helper.to_array(t).copy() for t in m.graph.initializer}
    model = torch_model(cfg)
    model.eval()
    with torch.no_grad():
        model.embed.weight.copy_(torch.from_numpy(inits["embed"]))
        model.norm.weight.copy_(torch.from_numpy(inits["norm"]))
        for l, blk in enumerate(model.blocks):
            for n in ("attn_norm", "attn_sub_norm", "ffn_norm", "ffn_sub_norm"):
                getattr(blk, n).weight.copy_(torch.from_numpy(inits[f"l{l}.{n}"]))
            for n in ("q", "k", "v", "o", "gate", "up", "down"):
                codes = torch.from_numpy(inits[f"l{l}.{n}.weight"].astype(np.float32))
                scale = torch.tensor(float(inits[f"l{l}.{n}.scale"]))
                lin = getattr(blk, n)
                lin.weight.copy_(codes * scale)
                # Re-ternarising codes * scale would give another scale: use
                # the stored ones.
                lin.frozen = (codes, scale)
    vocab = json.loads(meta["bitnet.vocab"]) if "bitnet.vocab" in meta else None
    return model, cfg, vocab


# --------------------------------------------------------------------------
# ONNX writer
# --------------------------------------------------------------------------

class Packed:
    """A ternary weight already packed two bits a code (as pack2 writes it),
    with its number of columns K and its scale."""

    def __init__(self, data, cols, scale):
        self.data, self.cols, self.scale = data, cols, scale


def pack2(codes):
    """int8 codes [N, K] -> uint8 [N, ceil(K/4)], code + 1 in two bits."""
    n, k = codes.shape
    kp = (k + 3) // 4 * 4
    u = np.ones((n, kp), np.uint8)
    u[:, :k] = (codes + 1).astype(np.uint8)
    u = u.reshape(n, kp // 4, 4)
    return (u[..., 0] | (u[..., 1] << 2) | (u[..., 2] << 4) | (u[..., 3] << 6)).astype(np.uint8)


def write_onnx(path, cfg, weights, vocab=None, packed=False, external=None,
               doc=""):
    """Writes the decoder step graph. `weights` as weights_from_torch returns
    (ternary weights as (int8 codes, scale), or Packed); packed=True stores
    codes 2 bits each; external names a file for the initializers' data."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    C, Hkv, D, Hq = cfg.context, cfg.kv_heads, cfg.head_dim, cfg.heads

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op, ins, outs, domain="", **attrs):
        nodes.append(helper.make_node(op, ins, outs, domain=domain,
                                      name=outs[0], **attrs))
        return outs[0]

    def bitlinear(x, prefix, wq):
        if isinstance(wq, Packed):
            w = init(prefix + ".weight", wq.data)
            s = init(prefix + ".scale", np.array(wq.scale, np.float32))
            return node("BitLinear", [x, w, s], [prefix + ".out"], DOMAIN,
                        bits=2, in_features=int(wq.cols))
        codes, scale = wq
        if packed:
            w = init(prefix + ".weight", pack2(codes))
            extra = {"bits": 2, "in_features": int(codes.shape[1])}
        else:
            w = init(prefix + ".weight", codes.astype(np.int8))
            extra = {}
        s = init(prefix + ".scale", np.array(scale, np.float32))
        return node("BitLinear", [x, w, s], [prefix + ".out"], DOMAIN, **extra)

    def rms(x, name, gamma):
        g = init(name, gamma.astype(np.float32))
        return node("RMSNorm", [x, g], [name + ".out"], DOMAIN, epsilon=cfg.eps)

    shape_q = init("shape.q", np.array([-1, Hq, D], np.int64))
    shape_kv = init("shape.kv", np.array([-1, Hkv, D], np.int64))
    shape_flat = init("shape.flat", np.array([-1, cfg.dim], np.int64))
    embed = init("embed", weights["embed"].astype(np.float32))
    x = node("Gather", [embed, "tokens"], ["x.0"], axis=0)
    cache_in, cache_out = [], []
    for l, L in enumerate(weights["layers"]):
        p = f"l{l}"
        h = rms(x, p + ".attn_norm", L["attn_norm"])
        q = bitlinear(h, p + ".q", L["q"])
        k = bitlinear(h, p + ".k", L["k"])
        v = bitlinear(h, p + ".v", L["v"])
        q = node("Reshape", [q, shape_q], [p + ".q.heads"])
        k = node("Reshape", [k, shape_kv], [p + ".k.heads"])
        v = node("Reshape", [v, shape_kv], [p + ".v.heads"])
        q = node("Rope", [q, "position"], [p + ".q.rope"], DOMAIN,
                 theta=float(cfg.theta), style="half")
        k = node("Rope", [k, "position"], [p + ".k.rope"], DOMAIN,
                 theta=float(cfg.theta), style="half")
        kc, vc = f"cache.{l}.key", f"cache.{l}.value"
        cache_in += [kc, vc]
        cache_out += [kc + ".out", vc + ".out"]
        nodes.append(helper.make_node(
            "Attention", [q, k, v, kc, vc, "position"],
            [p + ".attn", kc + ".out", vc + ".out"], domain=DOMAIN,
            name=p + ".attn"))
        a = node("Reshape", [p + ".attn", shape_flat], [p + ".attn.flat"])
        a = rms(a, p + ".attn_sub_norm", L["attn_sub_norm"])
        a = bitlinear(a, p + ".o", L["o"])
        x = node("Add", [x, a], [p + ".attn.res"])
        h = rms(x, p + ".ffn_norm", L["ffn_norm"])
        g = bitlinear(h, p + ".gate", L["gate"])
        u = bitlinear(h, p + ".up", L["up"])
        g = node("SquaredRelu", [g], [p + ".gate.act"], DOMAIN)
        f = node("Mul", [g, u], [p + ".ffn.act"])
        f = rms(f, p + ".ffn_sub_norm", L["ffn_sub_norm"])
        f = bitlinear(f, p + ".down", L["down"])
        x = node("Add", [x, f], [p + ".ffn.res"])
    x = rms(x, "norm", weights["norm"])
    node("Gemm", [x, embed], ["logits"], transB=1)

    f32, i32 = TensorProto.FLOAT, TensorProto.INT32
    inputs = [helper.make_tensor_value_info("tokens", i32, ["S"]),
              helper.make_tensor_value_info("position", i32, [])]
    inputs += [helper.make_tensor_value_info(n, f32, [C, Hkv, D]) for n in cache_in]
    outputs = [helper.make_tensor_value_info("logits", f32, ["S", cfg.vocab])]
    outputs += [helper.make_tensor_value_info(n, f32, [C, Hkv, D]) for n in cache_out]
    graph = helper.make_graph(nodes, "bitnet_decoder", inputs, outputs, inits)
    model = helper.make_model(graph, producer_name="bitnet-mlir models",
                              opset_imports=[helper.make_opsetid("", 17),
                                             helper.make_opsetid(DOMAIN, 1)],
                              doc_string=doc)
    model.ir_version = 8
    meta = {"bitnet.config": json.dumps(cfg.to_dict())}
    if vocab is not None:
        meta["bitnet.vocab"] = json.dumps(vocab)
    helper.set_model_props(model, meta)
    if external:
        onnx.save_model(model, path, save_as_external_data=True,
                        all_tensors_to_one_file=True, location=external,
                        size_threshold=1024)
    else:
        onnx.save_model(model, path)
