//===- GGUFTensors.h - Decodes the tensors of a GGUF file -------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Float tensors (F32, F16, BF16, Q8_0) and ternary weight matrices (I2_S,
// TQ1_0, TQ2_0, or latent float weights ternarised with absmean as the
// numerics contract says), each value carried over exactly.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_GGUF_GGUFTENSORS_H
#define BITNET_IMPORT_GGUF_GGUFTENSORS_H

#include "bitnet/Import/Checkpoint/TensorData.h"
#include "bitnet/Import/GGUF/GGUFFile.h"

namespace mlir::bitnet::gguf {

/// The values of a float tensor. F16 and BF16 are kept as stored when
/// `keepHalf`; everything else (and they otherwise) is widened to f32 (Q8_0
/// as its blocks' d * q). Values that are not finite are an error.
llvm::Expected<FloatTensor> decodeFloat(const File &file, const Tensor &tensor,
                                        bool keepHalf = false);

/// A 2-D weight `dims = {K, N}` as an `N x K` ternary matrix. I2_S, TQ1_0
/// and TQ2_0 give their codes and scale as stored (TQ blocks whose scales
/// differ are an error: a BitLinear weight has one scale); float types are
/// ternarised (scale = max(mean|w|, 1e-5), codes = clamp(round(w/scale))).
llvm::Expected<TernaryMatrix> decodeTernary(const File &file,
                                            const Tensor &tensor);

} // namespace mlir::bitnet::gguf

#endif // BITNET_IMPORT_GGUF_GGUFTENSORS_H
