//===- BitNetDialect.td - The bitnet dialect ---------------*- tablegen -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_BITNETDIALECT_TD
#define BITNET_DIALECT_BITNET_IR_BITNETDIALECT_TD

include "mlir/IR/OpBase.td"

def BitNet_Dialect : Dialect {
  let name = "bitnet";
  let cppNamespace = "::mlir::bitnet";
  let summary = "Model-level operations of BitNet b1.58 transformers";
  let description = [{
    The `bitnet` dialect holds the operations of a BitNet b1.58 model at the
    level a model author thinks of them: ternary linear layers (`bitlinear`),
    per-token activation quantisation, weight ternarisation and packing,
    RMSNorm, squared ReLU, rotary embeddings and attention over a KV cache.
    The `!bitnet.ternary` type says how a ternary weight matrix is stored.

    ### Numerics contract

    Every lowering of these operations, on every target, computes exactly this:

    * Weights, per tensor: `s_w = max(mean(|W|), 1e-5)` and
      `Wq = clamp(round(W / s_w), -1, 1)`.
    * Activations, per token (the last dimension is the token's features):
      `s_x = 127 / max(max(|x|), 1e-5)` and
      `xq = clamp(round(x * s_x), -128, 127)`.
    * `y = (xq . Wq) * s_w / s_x`, with the integer dot product accumulated
      exactly in 32-bit integers.
    * `round` is round-half-to-even (`torch.round`, ONNX `Round`): 0.5 rounds
      to 0, 1.5 and 2.5 round to 2, -2.5 rounds to -2.
    * Scales and float arithmetic are IEEE single precision. The integer parts
      (`xq`, `Wq`, the int32 dot products) match the scalar reference bit for
      bit; float results match it within a few ulp, since the order of float
      reductions (the mean, the maximum is exact) may differ between kernels.
  }];
  let useDefaultTypePrinterParser = 1;
  let useDefaultAttributePrinterParser = 1;
  let hasConstantMaterializer = 1;
  let dependentDialects = ["::mlir::arith::ArithDialect",
                           "::mlir::tensor::TensorDialect"];
  let extraClassDeclaration = [{
    void registerTypes();
  }];
}

class BitNet_Op<string mnemonic, list<Trait> traits = []>
    : Op<BitNet_Dialect, mnemonic, traits>;

#endif // BITNET_DIALECT_BITNET_IR_BITNETDIALECT_TD
