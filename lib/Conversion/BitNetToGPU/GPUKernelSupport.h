//===- GPUKernelSupport.h - Shared pieces of the GPU kernels ----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Every kernel of GPUKernels.h is built with OpBuilder as a gpu.func with the
// shapes baked in as constants, so that LLVM's NVPTX backend sees fixed trip
// counts. Parameters are flat, statically shaped memrefs (one pointer each
// under the bare-pointer calling convention). This header holds what the
// kernel families share: creating the kernel, thread ids, loops and
// conditionals, and warp and block reductions.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_CONVERSION_BITNETTOGPU_GPUKERNELSUPPORT_H
#define BITNET_CONVERSION_BITNETTOGPU_GPUKERNELSUPPORT_H

#include "bitnet/Conversion/GPUKernels.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"

namespace mlir::bitnet {

/// Threads per block of the kernels that reduce one row per block.
inline constexpr int64_t kReduceThreads = 256;
/// Threads per block of the kernels with one thread per element.
inline constexpr int64_t kElementwiseThreads = 256;

/// `memref<n x element>`.
MemRefType flatMemRef(int64_t n, Type element);
/// `memref<n x element, #gpu.address_space<workgroup>>`.
MemRefType workgroupMemRef(int64_t n, Type element);
/// The element type `name` stands for (f32, f16, i8, i32, i64, ...: the
/// builtin float, index and signless integer types as MLIR prints them).
Type elementType(MLIRContext *ctx, StringRef name);

/// Sets `kernel.func` to the kernel `kernel.name` of `module`, creating it at
/// the module's end when there is none: a gpu.func with arguments `args`,
/// the workgroup buffers `workgroup`, `kernel.block[0]` as its known block
/// size and an empty body. Returns whether it was created, that is, whether
/// its body is still to be built.
bool createKernel(gpu::GPUModuleOp module, GPUKernel &kernel, TypeRange args,
                  TypeRange workgroup = {});

/// How a reduction combines two values.
enum class Combine { AddI, AddF, MaximumF };

/// Builds the body of one kernel, before its gpu.return, with the shorthands
/// the kernels share.
class GPUKernelBuilder : public ImplicitLocOpBuilder {
public:
  /// Builds into `func`, at its ops' location (the gpu.module's).
  explicit GPUKernelBuilder(gpu::GPUFuncOp func);

  /// Argument `i` of the kernel.
  Value arg(unsigned i) { return func.getArgument(i); }
  /// Workgroup buffer `i` of the kernel.
  Value workgroup(unsigned i) { return func.getWorkgroupAttributions()[i]; }

  /// An index constant.
  Value idx(int64_t v);
  /// An i32 constant.
  Value i32(int64_t v);
  /// An f32 constant, exactly.
  Value f32(float v);
  /// A vector<4xi32> with every element `v`.
  Value splatI32x4(int32_t v);

  /// gpu.thread_id x.
  Value threadId();
  /// gpu.block_id `dim`.
  Value blockId(gpu::Dimension dim = gpu::Dimension::x);
  /// The global index of this thread in a 1-D grid of `threads`-wide blocks.
  Value globalIndex(int64_t threads);
  /// This thread's lane and warp.
  std::pair<Value, Value> laneAndWarp(Value tid);
  /// A position read from `pos[0]` (i32 or i64), clamped into [lo, hi], as
  /// an index.
  Value clampedPosition(Value pos, int64_t lo, int64_t hi);

  /// Shorthands for arith ops.
  Value addi(Value a, Value b) { return arith::AddIOp::create(*this, a, b); }
  Value subi(Value a, Value b) { return arith::SubIOp::create(*this, a, b); }
  Value muli(Value a, Value b) { return arith::MulIOp::create(*this, a, b); }
  Value divui(Value a, Value b) { return arith::DivUIOp::create(*this, a, b); }
  Value remui(Value a, Value b) { return arith::RemUIOp::create(*this, a, b); }
  Value andi(Value a, Value b) { return arith::AndIOp::create(*this, a, b); }
  Value ult(Value a, Value b) {
    return arith::CmpIOp::create(*this, arith::CmpIPredicate::ult, a, b);
  }
  Value eq(Value a, Value b) {
    return arith::CmpIOp::create(*this, arith::CmpIPredicate::eq, a, b);
  }
  Value select(Value c, Value a, Value b) {
    return arith::SelectOp::create(*this, c, a, b);
  }
  Value addf(Value a, Value b) { return arith::AddFOp::create(*this, a, b); }
  Value subf(Value a, Value b) { return arith::SubFOp::create(*this, a, b); }
  Value mulf(Value a, Value b) { return arith::MulFOp::create(*this, a, b); }
  Value divf(Value a, Value b) { return arith::DivFOp::create(*this, a, b); }
  Value maxnumf(Value a, Value b) {
    return arith::MaxNumFOp::create(*this, a, b);
  }
  /// `a` and `b` combined as `kind` says.
  Value combine(Combine kind, Value a, Value b);
  /// `v` (f32, f16 or an integer) as f32.
  Value widenToF32(Value v);

  /// memref.load and memref.store without the nontemporal attribute (they
  /// are not nontemporal).
  Value load(Value memref, Value index) {
    return memref::LoadOp::create(*this, memref, index, BoolAttr(),
                                  IntegerAttr());
  }
  void store(Value v, Value memref, Value index) {
    memref::StoreOp::create(*this, v, memref, index, BoolAttr(), IntegerAttr());
  }

  /// scf.if `cond` { then() }.
  void ifThen(Value cond, function_ref<void()> then);
  /// scf.if `cond` { then() } else { otherwise() }.
  void ifThenElse(Value cond, function_ref<void()> then,
                  function_ref<void()> otherwise);
  /// scf.if `cond` yielding then() or otherwise(), both of type `type`.
  Value ifValue(Type type, Value cond, function_ref<Value()> then,
                function_ref<Value()> otherwise);
  /// scf.for %iv = lb to ub step step { body(%iv) }.
  void forEach(Value lb, Value ub, Value step, function_ref<void(Value)> body);
  /// scf.for carrying `init`: body(%iv, carried) gives the next values;
  /// returns the last.
  ValueRange loop(Value lb, Value ub, Value step, ValueRange init,
                  function_ref<SmallVector<Value>(Value, ValueRange)> body);
  /// loop() with one carried value.
  Value fold(Value lb, Value ub, Value step, Value init,
             function_ref<Value(Value, Value)> body);

  /// Warp reduction with butterfly shuffles at offsets from, ..., to.
  Value warpReduce(Value v, Combine kind, int64_t from = 16, int64_t to = 1);
  /// Block reduction over `warps` warps through workgroup memory `smem`;
  /// every thread gets the result.
  Value blockReduce(Value v, Combine kind, Value smem, int64_t warps,
                    Value lane, Value warp);

private:
  gpu::GPUFuncOp func;
};

/// A copy of `count` elements of any type: (%x, %y).
GPUKernel copyKernel(gpu::GPUModuleOp module, int64_t count, Type element);

/// The kernel of an op that no specialised kernel takes
/// (GPUFallbackKernels.cpp): one thread per output element.
struct GPUFallback {
  GPUKernel kernel;
  /// The kernel's operands in order: the tensors it reads, then the op's
  /// results.
  SmallVector<Value> operands;
};

/// Builds the fallback kernel of `op` into `module`, named after the op and
/// `id`; emits an error at `op` that says why where the GPU cannot run it.
FailureOr<GPUFallback> fallbackKernel(gpu::GPUModuleOp module, Operation *op,
                                      unsigned id);

} // namespace mlir::bitnet

#endif // BITNET_CONVERSION_BITNETTOGPU_GPUKERNELSUPPORT_H
