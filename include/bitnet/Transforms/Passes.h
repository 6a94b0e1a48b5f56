//===- Passes.h - Transformation passes of bitnet ---------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_TRANSFORMS_PASSES_H
#define BITNET_TRANSFORMS_PASSES_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/EnumOptions.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/Pass/Pass.h"

namespace mlir::bitnet {

#define GEN_PASS_DECL
#include "bitnet/Transforms/Passes.h.inc"

/// Finds the entry function: the one named `name`, or, when `name` is empty,
/// the only public function with a body. Emits an error on `module` and
/// returns null when there is none or more than one.
func::FuncOp lookupEntryFunction(ModuleOp module, StringRef name);

/// The most stack that one function of `module` allocates with allocas of
/// static size (llvm.alloca of a constant count, memref.alloca of a static
/// shape): the kernels' stack buffers, for bitnet_model_info.stack_bytes.
int64_t staticStackBytes(ModuleOp module);

#define GEN_PASS_REGISTRATION
#include "bitnet/Transforms/Passes.h.inc"

} // namespace mlir::bitnet

#endif // BITNET_TRANSFORMS_PASSES_H
