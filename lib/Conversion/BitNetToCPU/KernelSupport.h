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

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::bitnet {

/// Declares the thread-local exec ctx pointer once per module.
void ensureExecCtxGlobal(ModuleOp module);

/// An internal NUL-terminated string constant `symbol` (created once).
LLVM::GlobalOp getOrCreateKernelName(ModuleOp module, StringRef symbol,
                                     StringRef text);

/// The tensor's buffer, read-only (a kernel's input).
Value toReadOnlyBuffer(OpBuilder &b, Location loc, Value tensor);

/// A private `func.func @name(memrefs...)` that calls `kernel` with the
/// aligned pointer of each memref (kernels take plain pointers).
func::FuncOp createMemRefWrapper(ModuleOp module, StringRef name,
                                 ArrayRef<Type> memrefTypes,
                                 LLVM::LLVMFuncOp kernel);

/// Replaces `op` by a call `kernel(x, w, s_w, y, scratch)`, with `layout`
/// (the weight laid out for the kernel) as a constant, and the output and
/// `scratchBytes` of scratch allocated. `getKernel` returns the kernel's
/// memref wrapper for those five memref types; `choice` is recorded on the
/// call as `bitnet.kernel`.
void replaceByBitLinearKernel(
    BitLinearOp op, ArrayRef<int8_t> layout, int64_t scratchBytes,
    function_ref<func::FuncOp(ArrayRef<Type> memrefTypes)> getKernel,
    ArrayRef<NamedAttribute> choice);

/// What the kernel emitters share: the module they add functions to, a
/// builder, and helpers for byte addressing, unaligned loads and stores,
/// counted loops and the `void chunk(args, begin, end)` functions that a
/// thread pool runs over a range of work units.
class KernelEmitterBase {
protected:
  explicit KernelEmitterBase(ModuleOp module);

  Value cI64(OpBuilder &ob, int64_t v);
  Value gep(OpBuilder &ob, Value base, Value byteOffset);
  Value load(OpBuilder &ob, Type type, Value address);
  void store(OpBuilder &ob, Value value, Value address);
  Value mul(OpBuilder &ob, Value a, int64_t c);
  Value add(OpBuilder &ob, Value a, Value c);
  /// Prefetches, for reading, each 64-byte line of the `bytes` bytes from
  /// `offset` bytes past `base`: into every cache level with `locality` 3,
  /// into the outer ones with less.
  void prefetchLines(OpBuilder &ob, Value base, int64_t offset, int64_t bytes,
                     int64_t locality = 3);
  /// A table of pointers on the stack (the `args` of a chunk function).
  Value pointerTable(OpBuilder &ob, ArrayRef<Value> fields);
  /// Pointer `index` of a table of pointers.
  Value field(OpBuilder &ob, Value args, int64_t index);
  /// for (i = lo; i < hi; i += step) carrying `init`; `body` returns the
  /// values for the next iteration.
  scf::ForOp loop(OpBuilder &ob, Value lo, Value hi, int64_t step,
                  ValueRange init,
                  function_ref<SmallVector<Value>(OpBuilder &, Value,
                                                  ValueRange)>
                      body);
  /// Creates the internal `void name(ptr args, i64 begin, i64 end)` at the
  /// module's end and moves the builder into its entry block (callers keep
  /// an InsertionGuard).
  LLVM::LLVMFuncOp beginChunk(StringRef name);
  /// Likewise for the internal `void name(ptr, ... numArgs pointers)` a
  /// kernel's memref wrapper calls.
  LLVM::LLVMFuncOp beginKernel(StringRef name, int64_t numArgs);
  /// Quantises the `k` floats at `xRow` as the numerics contract says
  /// (s_x = 127 / max(max|x|, 1e-5), xq = clamp(roundeven(x * s_x))) into
  /// the int8 row `qRow`, zeroing it from `k` up to `kPadded`. Returns the
  /// exact i32 sum of the codes and the f32 scale s_x.
  /// Stores the 1-D vector `v` at `out` (rows `row0` .. of an output with
  /// `rows` rows, unaligned): whole when it fits, else its first
  /// `rows - row0` elements.
  void storeClipped(OpBuilder &tb, Value v, Value out, Value row0,
                    int64_t rows);
  std::pair<Value, Value> quantizeRow(OpBuilder &tb, Value xRow, Value qRow,
                                      int64_t k, int64_t kPadded);

  ModuleOp module;
  MLIRContext *ctx;
  OpBuilder b;
  Location loc;
  Type ptr, i64, f32;
};

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
  /// fn(args, 0, count) for an i64 `count` known at run time, through
  /// parallel_for when the caller offers one.
  void dispatch(LLVM::LLVMFuncOp fn, Value args, Value count);
  /// The threads the caller's parallel_for may use (i64, at least 1; 1
  /// without an exec ctx).
  Value numThreads();

private:
  Value field(int64_t offset, Type type = {});
  Value constant(int64_t v);

  OpBuilder &b;
  Location loc;
  Type ptr, i64;
  Value execCtx, hasCtx, null, user, parallelFor;
};

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_BITNETTOCPU_KERNELSUPPORT_H
