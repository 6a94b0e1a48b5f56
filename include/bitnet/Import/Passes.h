//===- Passes.h - Passes of the model importers -----------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_PASSES_H
#define BITNET_IMPORT_PASSES_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/Pass/Pass.h"

namespace mlir::bitnet {

#define GEN_PASS_DECL
#include "bitnet/Import/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "bitnet/Import/Passes.h.inc"

/// Whether bitnet-legalize-onnx has a lowering for the operation `opType`
/// of `domain` (empty or "ai.onnx" for the default domain).
bool isLegalizableONNXOp(StringRef domain, StringRef opType);

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_PASSES_H
