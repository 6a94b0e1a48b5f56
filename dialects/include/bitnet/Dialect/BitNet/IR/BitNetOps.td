//===- BitNetOps.td - Operations of the bitnet dialect -----*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_BITNETOPS_TD
#define BITNET_DIALECT_BITNET_IR_BITNETOPS_TD

include "mlir/IR/OpBase.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "mlir/Interfaces/InferTypeOpInterface.td"
include "bitnet/Dialect/BitNet/IR/BitNetDialect.td"
include "bitnet/Dialect/BitNet/IR/BitNetAttrs.td"
include "bitnet/Dialect/BitNet/IR/BitNetTypes.td"

def BitNet_F32Tensor : RankedTensorOf<[F32]>;
def BitNet_I8Tensor : RankedTensorOf<[I8]>;
def BitNet_I32Tensor : RankedTensorOf<[I32]>;
def BitNet_IntTensor : RankedTensorOf<[I32, I64]>;

//===----------------------------------------------------------------------===//
// Quantisation
//===----------------------------------------------------------------------===//

def BitNet_QuantizeActivationsOp : BitNet_Op<"quantize_activations", [Pure]> {
  let summary = "per-token absmax quantisation of activations to int8";
  let description = [{
    Quantises every token (every vector along the last dimension) of `input`
    on its own: `scale = 127 / max(max(|x|), 1e-5)` and
    `quantized = clamp(round_half_even(x * scale), -128, 127)`. `scale` has
    the shape of `input` without its last dimension. Dequantise with
    `quantized / scale`.

    ```mlir
    %q, %s = bitnet.quantize_activations %x : tensor<4x256xf32> -> tensor<4x256xi8>, tensor<4xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input);
  let results = (outs BitNet_I8Tensor:$quantized, BitNet_F32Tensor:$scale);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` type($quantized) `,` type($scale)
  }];
  let hasVerifier = 1;
}

def BitNet_TernarizeOp : BitNet_Op<"ternarize", [Pure]> {
  let summary = "absmean ternarisation of latent float weights";
  let description = [{
    Turns a float weight tensor into ternary values and one scale for the whole
    tensor: `scale = max(mean(|W|), 1e-5)` and
    `ternary = clamp(round_half_even(W / scale), -1, 1)`. The weight is
    recovered as `ternary * scale`. On a constant it folds at compile time, so a
    compiled model never carries the latent float weights.

    ```mlir
    %wq, %ws = bitnet.ternarize %w : tensor<256x512xf32> -> tensor<256x512xi8>, tensor<f32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input);
  let results = (outs BitNet_I8Tensor:$ternary, 0DTensorOf<[F32]>:$scale);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` type($ternary) `,` type($scale)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Ternary weight storage
//===----------------------------------------------------------------------===//

def BitNet_PackOp : BitNet_Op<"pack", [Pure]> {
  let summary = "stores an int8 ternary matrix in a ternary format";
  let description = [{
    Converts an `N x K` matrix of int8 values into the storage of the result's
    `!bitnet.ternary` type. A constant input must hold only -1, 0 and 1 (the
    verifier refuses anything else, which would be weights never ternarised);
    a value computed at run time is clamped to [-1, 1], so every input has a
    defined result. Packing a constant folds at compile time, and packing the
    result of `bitnet.unpack` of the same type folds to the unpacked value.

    ```mlir
    %p = bitnet.pack %wq : tensor<256x512xi8> -> !bitnet.ternary<256x512, i2>
    ```
  }];
  let arguments = (ins BitNet_I8Tensor:$input);
  let results = (outs BitNet_TernaryType:$result);
  let assemblyFormat = [{
    $input attr-dict `:` type($input) `->` qualified(type($result))
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def BitNet_UnpackOp : BitNet_Op<"unpack", [Pure]> {
  let summary = "expands a stored ternary matrix to int8 values";
  let description = [{
    The inverse of `bitnet.pack`: one int8 in {-1, 0, 1} per value.

    ```mlir
    %wq = bitnet.unpack %p : !bitnet.ternary<256x512, i2> -> tensor<256x512xi8>
    ```
  }];
  let arguments = (ins BitNet_TernaryType:$input);
  let results = (outs BitNet_I8Tensor:$result);
  let assemblyFormat = [{
    $input attr-dict `:` qualified(type($input)) `->` type($result)
  }];
  let hasVerifier = 1;
  let hasFolder = 1;
}

def BitNet_ConstantOp : BitNet_Op<"constant", [ConstantLike, Pure]> {
  let summary = "a ternary matrix known at compile time";
  let description = [{
    Holds the bytes of a `!bitnet.ternary` matrix, in exactly the storage type
    of that type (see `!bitnet.ternary`). The verifier checks that every byte
    is a valid encoding.

    ```mlir
    %w = bitnet.constant dense<[[36, 1], [145, 2]]> : tensor<2x2xi8> -> !bitnet.ternary<2x8, i2>
    ```
  }];
  let arguments = (ins ElementsAttr:$storage);
  let results = (outs BitNet_TernaryType:$result);
  let assemblyFormat = "$storage attr-dict `->` qualified(type($result))";
  let hasVerifier = 1;
  let hasFolder = 1;
  let extraClassDeclaration = [{
    /// The matrix as int8 values in {-1, 0, 1}, row-major; nothing when the
    /// storage is not a dense attribute or holds an invalid byte.
    std::optional<::llvm::SmallVector<int8_t>> getTernaryValues();
  }];
}

//===----------------------------------------------------------------------===//
// Linear layers
//===----------------------------------------------------------------------===//

def BitNet_TernaryMatmulOp : BitNet_Op<"ternary_matmul", [Pure]> {
  let summary = "int8 activations times a ternary matrix, accumulated in int32";
  let description = [{
    The integer core of a BitLinear layer:
    `result[..., n] = sum_k input[..., k] * weight[n, k]`, exact in int32
    (|sum| <= 128 * K, so K up to 16M cannot overflow). Leading dimensions of
    `input` (tokens, batch) are kept.

    ```mlir
    %acc = bitnet.ternary_matmul %xq, %w : tensor<4x512xi8>, !bitnet.ternary<256x512, i2> -> tensor<4x256xi32>
    ```
  }];
  let arguments = (ins BitNet_I8Tensor:$input, BitNet_TernaryType:$weight);
  let results = (outs BitNet_I32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight attr-dict `:` type($input) `,` qualified(type($weight))
    `->` type($result)
  }];
  let hasVerifier = 1;
}

def BitNet_BitLinearOp : BitNet_Op<"bitlinear", [Pure]> {
  let summary = "a BitNet b1.58 linear layer: float in, ternary weight, float out";
  let description = [{
    Quantises each token of `input` to int8 (as `bitnet.quantize_activations`),
    multiplies by the ternary `weight` (as `bitnet.ternary_matmul`) and rescales:
    `result[..., n] = acc[..., n] * weight_scale / s_x[...]`. `weight_scale` is
    the per-tensor scale `s_w` of the weight (as produced by
    `bitnet.ternarize`). The weight is `N x K` (outputs x inputs), as in
    `torch.nn.Linear`.

    ```mlir
    %y = bitnet.bitlinear %x, %w scale %ws : tensor<4x512xf32>, !bitnet.ternary<256x512, i2>, tensor<f32> -> tensor<4x256xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input, BitNet_TernaryType:$weight,
                       0DTensorOf<[F32]>:$weight_scale);
  let results = (outs BitNet_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight `scale` $weight_scale attr-dict `:` type($input) `,`
    qualified(type($weight)) `,` type($weight_scale) `->` type($result)
  }];
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Transformer building blocks
//===----------------------------------------------------------------------===//

def BitNet_RMSNormOp : BitNet_Op<"rmsnorm", [Pure]> {
  let summary = "root-mean-square normalisation over the last dimension";
  let description = [{
    `result = x / sqrt(mean(x^2) + epsilon) * gamma`, where the mean is over the
    last dimension D and `gamma` has shape `[D]`.

    ```mlir
    %y = bitnet.rmsnorm %x, %gamma {epsilon = 1.0e-05 : f32} : tensor<4x256xf32>, tensor<256xf32> -> tensor<4x256xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input, BitNet_F32Tensor:$gamma,
                       DefaultValuedAttr<F32Attr, "1.0e-5">:$epsilon);
  let results = (outs BitNet_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $gamma attr-dict `:` type($input) `,` type($gamma) `->` type($result)
  }];
  let hasVerifier = 1;
}

def BitNet_SquaredReluOp : BitNet_Op<"squared_relu",
    [Pure, Elementwise, SameOperandsAndResultType]> {
  let summary = "relu(x)^2, the BitNet b1.58 2B feed-forward activation";
  let description = [{
    ```mlir
    %y = bitnet.squared_relu %x : tensor<4x1024xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input);
  let results = (outs BitNet_F32Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` type($input)";
  let hasFolder = 1;
}

def BitNet_RopeOp : BitNet_Op<"rope", [Pure]> {
  let summary = "rotary position embedding";
  let description = [{
    Rotates feature pairs of every head of every token by angles that depend
    on the token's position `p`: for pair i of D/2,
    `angle = p * theta^(-2i / D)`, `(a, b) -> (a cos - b sin, b cos + a sin)`.
    `input` is `[tokens, heads, D]`, `positions` holds one position per token.
    `style = half` pairs feature i with i + D/2 (Llama, Hugging Face BitNet);
    `style = interleaved` pairs 2i with 2i + 1.

    ```mlir
    %y = bitnet.rope %q, %pos {theta = 500000.0 : f32} : tensor<4x8x64xf32>, tensor<4xi32> -> tensor<4x8x64xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input, RankedTensorOf<[I32, I64]>:$positions,
                       DefaultValuedAttr<F32Attr, "10000.0">:$theta,
                       DefaultValuedAttr<BitNet_RopeStyleAttr,
                                         "::mlir::bitnet::RopeStyle::Half">:$style);
  let results = (outs BitNet_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $positions attr-dict `:` type($input) `,` type($positions) `->` type($result)
  }];
  let hasVerifier = 1;
}

def BitNet_CacheTensor : RankedTensorOf<[F32, F16]>;

def BitNet_AttentionOp : BitNet_Op<"attention", [Pure]> {
  let summary = "causal grouped-query attention that appends to a KV cache";
  let description = [{
    Writes the keys and values of `S` new tokens into the caches at rows
    `[position, position + S)` and lets every new token attend to all cached
    tokens up to and including itself:

    ```
    k_cache'[position + s] = key[s]        v_cache'[position + s] = value[s]
    out[s, h] = softmax_{j <= position + s}(scale * query[s, h] . k_cache'[j, g])
                . v_cache'[j, g]           with g = h / (Hq / Hkv)
    ```

    `query` is `[S, Hq, D]`, `key` and `value` are `[S, Hkv, D]` with Hq a
    multiple of Hkv (grouped-query attention; Hkv = Hq is multi-head
    attention), the caches are `[C, Hkv, D]` for a capacity of C tokens, f32
    or f16 (new rows rounded to nearest even, read back widened), and
    `position` is a rank-0 integer tensor. `scale` defaults to `1/sqrt(D)`.
    A `position` outside `[0, C - S]` is clamped into it. The results are the
    attention output and the updated caches.

    ```mlir
    %o, %kc1, %vc1 = bitnet.attention %q, %k, %v, %kc, %vc, %pos
        : tensor<1x8x64xf32>, tensor<1x2x64xf32>, tensor<1x2x64xf32>,
          tensor<128x2x64xf32>, tensor<128x2x64xf32>, tensor<i32>
        -> tensor<1x8x64xf32>, tensor<128x2x64xf32>, tensor<128x2x64xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$query, BitNet_F32Tensor:$key,
                       BitNet_F32Tensor:$value, BitNet_CacheTensor:$k_cache,
                       BitNet_CacheTensor:$v_cache,
                       0DTensorOf<[I32, I64]>:$position,
                       OptionalAttr<F32Attr>:$scale);
  let results = (outs BitNet_F32Tensor:$result, BitNet_CacheTensor:$new_k_cache,
                      BitNet_CacheTensor:$new_v_cache);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $k_cache `,` $v_cache `,` $position attr-dict
    `:` type($query) `,` type($key) `,` type($value) `,` type($k_cache) `,`
    type($v_cache) `,` type($position) `->` type($result) `,`
    type($new_k_cache) `,` type($new_v_cache)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The softmax scale: the attribute if present, else 1/sqrt(D).
    float getEffectiveScale();
  }];
}

def BitNet_BatchedAttentionOp
    : BitNet_Op<"batched_attention", [Pure]> {
  let summary = "causal grouped-query attention of tokens of several "
                "sequences, each with a KV cache slot of its own";
  let description = [{
    The attention of a decoder step that carries tokens of up to `B`
    sequences: token `t` belongs to the sequence in cache slot `slots[t]`
    and sits at `positions[t]` of it. The tokens are taken in order; each
    writes its key and value at row `positions[t]` of its slot, then attends
    to the rows of its slot up to and including that one:

    ```
    s = slots[t], p = positions[t]
    k_cache'[s, p] = key[t]        v_cache'[s, p] = value[t]
    out[t, h] = softmax_{j <= p}(scale * query[t, h] . k_cache'[s, j, g])
                . v_cache'[s, j, g]          with g = h / (Hq / Hkv)
    ```

    so that consecutive positions of one sequence in one step are causal, as
    in `bitnet.attention`, and a token's output depends on its own
    sequence's rows only. A slot's tokens in one step come in increasing
    positions (a later one at an earlier row would change what an earlier
    one reads; which it sees is then unspecified). A token whose slot is outside `[0, B)` is
    padding: it writes nothing and its output is zero. Positions are clamped
    into `[0, C - 1]`.

    `query` is `[T, Hq, D]`, `key` and `value` are `[T, Hkv, D]`, the caches
    are `[B, C, Hkv, D]` (f32 or f16, as in `bitnet.attention`), `positions`
    and `slots` are `[T]` i32. `scale` defaults to `1/sqrt(D)`.

    ```mlir
    %o, %kc1, %vc1 = bitnet.batched_attention %q, %k, %v, %kc, %vc, %pos, %slot
        : tensor<4x8x64xf32>, tensor<4x2x64xf32>, tensor<4x2x64xf32>,
          tensor<4x128x2x64xf16>, tensor<4x128x2x64xf16>, tensor<4xi32>,
          tensor<4xi32>
        -> tensor<4x8x64xf32>, tensor<4x128x2x64xf16>, tensor<4x128x2x64xf16>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$query, BitNet_F32Tensor:$key,
                       BitNet_F32Tensor:$value, BitNet_CacheTensor:$k_cache,
                       BitNet_CacheTensor:$v_cache,
                       1DTensorOf<[I32]>:$positions,
                       1DTensorOf<[I32]>:$slots,
                       OptionalAttr<F32Attr>:$scale);
  let results = (outs BitNet_F32Tensor:$result, BitNet_CacheTensor:$new_k_cache,
                      BitNet_CacheTensor:$new_v_cache);
  let assemblyFormat = [{
    $query `,` $key `,` $value `,` $k_cache `,` $v_cache `,` $positions `,`
    $slots attr-dict
    `:` type($query) `,` type($key) `,` type($value) `,` type($k_cache) `,`
    type($v_cache) `,` type($positions) `,` type($slots) `->` type($result)
    `,` type($new_k_cache) `,` type($new_v_cache)
  }];
  let hasVerifier = 1;
  let extraClassDeclaration = [{
    /// The softmax scale: the attribute if present, else 1/sqrt(D).
    float getEffectiveScale();
  }];
}

//===----------------------------------------------------------------------===//
// Float layers with constant weights: embedding and head
//===----------------------------------------------------------------------===//

def BitNet_FloatWeightTensor : RankedTensorOf<[F32, F16, BF16, I8]>;

def BitNet_EmbeddingOp : BitNet_Op<"embedding", [Pure]> {
  let summary = "rows of a float table selected by token ids";
  let description = [{
    `result[..., d] = float(table[id, d])` for a table `[V, D]` of f32,
    f16 or bf16 (widened to f32 exactly), where `id` is `tokens[...]`, plus V when
    negative (counting from the end, as ONNX Gather), clamped into
    `[0, V - 1]` so that a bad id never reads outside the table. An i8 table
    has one scale per row: `float(table[id, d]) * scales[id]`.

    With `blocked = [B, C]`, the table is stored in blocks, as a head's
    kernel streams it (a table a language-model head shares): a tensor
    `[V / B, D / C, B, C]` holding `table[b * B + r, c * C + j]` at
    `[b, c, r, j]`, so that B rows of C columns are one run of memory.

    ```mlir
    %x = bitnet.embedding %table, %tokens : tensor<128x64xf16>, tensor<4xi32> -> tensor<4x64xf32>
    %y = bitnet.embedding %table8, %tokens scales %s : tensor<128x64xi8>, tensor<4xi32>, tensor<128xf32> -> tensor<4x64xf32>
    %z = bitnet.embedding %blocks, %tokens {blocked = array<i64: 16, 32>} : tensor<8x2x16x32xf16>, tensor<4xi32> -> tensor<4x64xf32>
    ```
  }];
  let arguments = (ins BitNet_FloatWeightTensor:$table, BitNet_IntTensor:$tokens,
                       Optional<BitNet_F32Tensor>:$scales,
                       OptionalAttr<DenseI64ArrayAttr>:$blocked);
  let results = (outs BitNet_F32Tensor:$result);
  let assemblyFormat = [{
    $table `,` $tokens (`scales` $scales^)? attr-dict `:` type($table) `,`
    type($tokens) (`,` type($scales)^)? `->` type($result)
  }];
  let extraClassDeclaration = [{
    /// Rows of the table (V) and their length (D), blocked or not.
    int64_t getVocabulary();
    int64_t getRowLength();
  }];
  let hasVerifier = 1;
}

def BitNet_DenseMatmulOp : BitNet_Op<"dense_matmul", [Pure]> {
  let summary = "float activations times a float weight stored N x K";
  let description = [{
    `result[..., n] = sum_k input[..., k] * float(weight[n, k])` in f32, the
    weight `[N, K]` (outputs x inputs, as `torch.nn.Linear`) of f32, f16 or
    bf16, or of i8 with one scale per row: `float(weight[n, k]) * scales[n]`.
    The language-model head of a decoder whose embeddings are tied is this op
    on the embedding table. The order of the sum is not fixed: kernels may
    add in any order (the float tolerance of the numerics contract).

    With `quantize_input` (an i8 weight only: W8A8), each input row is first
    quantised as the numerics contract quantises activations (`s_x = 127 /
    max(max|x|, 1e-5)`, `xq = clamp(roundeven(x * s_x), -128, 127)`), the
    products are summed exactly in int32, and `result[..., n] =
    (float(sum_k xq[..., k] * weight[n, k]) * scales[n]) / s_x`: every
    operation and its order fixed, so kernels match the reference bit for
    bit, and int8 dot-product instructions do the sum.

    ```mlir
    %logits = bitnet.dense_matmul %x, %table : tensor<4x64xf32>, tensor<128x64xf16> -> tensor<4x128xf32>
    %y = bitnet.dense_matmul %x, %w8 scales %s {quantize_input} : tensor<4x64xf32>, tensor<128x64xi8>, tensor<128xf32> -> tensor<4x128xf32>
    ```
  }];
  let arguments = (ins BitNet_F32Tensor:$input, BitNet_FloatWeightTensor:$weight,
                       Optional<BitNet_F32Tensor>:$scales,
                       UnitAttr:$quantize_input);
  let results = (outs BitNet_F32Tensor:$result);
  let assemblyFormat = [{
    $input `,` $weight (`scales` $scales^)? attr-dict `:` type($input) `,`
    type($weight) (`,` type($scales)^)? `->` type($result)
  }];
  let hasVerifier = 1;
}

#endif // BITNET_DIALECT_BITNET_IR_BITNETOPS_TD
