//===- BitNet.h - The bitnet dialect ----------------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Declares the bitnet dialect, its types, attributes and operations.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_DIALECT_BITNET_IR_BITNET_H
#define BITNET_DIALECT_BITNET_IR_BITNET_H

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/Interfaces/InferTypeOpInterface.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "bitnet/Dialect/BitNet/IR/BitNetDialect.h.inc"
#include "bitnet/Dialect/BitNet/IR/BitNetEnums.h.inc"

#define GET_ATTRDEF_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetAttrs.h.inc"

namespace mlir::bitnet {
/// The module attribute that holds the #bitnet.target a module is compiled
/// for.
inline constexpr llvm::StringLiteral kTargetAttrName = "bitnet.target";
/// The module attribute that lists, as #bitnet.variant, the builds for other
/// CPUs linked beside the module.
inline constexpr llvm::StringLiteral kVariantsAttrName = "bitnet.variants";
} // namespace mlir::bitnet

#define GET_TYPEDEF_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetTypes.h.inc"

#define GET_OP_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetOps.h.inc"

#endif // BITNET_DIALECT_BITNET_IR_BITNET_H
