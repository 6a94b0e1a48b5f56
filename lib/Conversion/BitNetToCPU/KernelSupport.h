//===- KernelSupport.h - Shared pieces of generated CPU kernels -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Generated CPU kernels reach the caller's bitnet_exec_ctx (thread pool,
// profiling hooks) through a thread-local the entry point sets for the
// duration of a run. These helpers emit, in the LLVM dialect, the code that
// reads it, reports a kernel to the profiler and spreads a loop over the
// caller's threads.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_BITNETTOCPU_KERNELSUPPORT_H
#define BITNET_CONVERSION_BITNETTOCPU_KERNELSUPPORT_H

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::bitnet {

/// Declares the thread-local exec ctx pointer once per module.
void ensureExecCtxGlobal(ModuleOp module);

/// An internal NUL-terminated string constant `symbol` (created once).
LLVM::GlobalOp getOrCreateKernelName(ModuleOp module, StringRef symbol,
                                     StringRef text);

/// A private `func.func @name(memrefs...)` that calls `kernel` with the
/// aligned pointer of each memref (kernels take plain pointers).
func::FuncOp createMemRefWrapper(ModuleOp module, StringRef name,
                                 ArrayRef<Type> memrefTypes,
                                 LLVM::LLVMFuncOp kernel);

/// The caller's services, read at the builder's insertion point.
class ExecCtxCalls {
public:
  ExecCtxCalls(OpBuilder &b, Location loc);

  /// kernel_begin(user, name, bytes, flops) when the hook is set.
  void kernelBegin(Value name, int64_t bytes, int64_t flops);
  /// kernel_end(user, name) when the hook is set.
  void kernelEnd(Value name);
  /// fn(args, 0, count), through parallel_for when the caller offers one and
  /// `spread` says the work is worth spreading. fn is void(ptr, i64, i64).
  void dispatch(LLVM::LLVMFuncOp fn, Value args, int64_t count, bool spread);

private:
  Value field(int64_t offset);
  Value constant(int64_t v);

  OpBuilder &b;
  Location loc;
  Type ptr, i64;
  Value execCtx, hasCtx, null, user, parallelFor;
};

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_BITNETTOCPU_KERNELSUPPORT_H
