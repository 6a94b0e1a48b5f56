//===- ONNXMicrosoftDomain.cpp - ONNX operations of com.microsoft ---------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The contrib operations of onnxruntime's com.microsoft domain that models
// exported for BitNet use: MatMulNBits.
//
//===----------------------------------------------------------------------===//

#include "ONNXNode.h"

#include "mlir/Dialect/Arith/IR/Arith.h"

using namespace mlir;
using namespace mlir::bitnet::onnx;

namespace {

/// com.microsoft MatMulNBits with a constant weight: dequantised at compile
/// time into a float MatMul.
FailureOr<Results> lowerMatMulNBits(Node &n) {
  if (failed(n.arity(3, 4)) || failed(n.elemIn(0, {n.f32()}, "A")) ||
      failed(n.elemIn(1, {n.u8()}, "B")) ||
      failed(n.elemIn(2, {n.f32()}, "scales")) ||
      failed(n.elemIn(3, {n.u8()}, "zero_points")))
    return failure();
  FailureOr<int64_t> K = n.intAttr("K", -1), N = n.intAttr("N", -1),
                     bits = n.intAttr("bits", 4),
                     block = n.intAttr("block_size", -1);
  if (failed(K) || failed(N) || failed(bits) || failed(block))
    return failure();
  std::optional<HostTensor> b = n.constant(1), scales = n.constant(2);
  std::optional<HostTensor> zps;
  if (n.input(3))
    zps = n.constant(3);
  if (!b || !scales || (n.input(3) && !zps))
    return n.error() << "B, scales and zero_points must be constants";
  if (n.in[0].rank() < 1 || n.in[0].shape().back() != *K)
    return n.error() << "A " << describe(n.in[0])
                     << " does not end in K = " << *K;
  std::string error;
  std::optional<HostTensor> w = dequantizeNBits(
      *b, *scales, zps ? &*zps : nullptr, *K, *N, *bits, *block, error);
  if (!w) {
    InFlightDiagnostic d = n.error() << "invalid packed weight: " << error;
    d.attachNote() << "expected B [N, ceil(K / block_size), block_size * "
                      "bits / 8], scales [N * blocks], packed zero points";
    return d;
  }
  Operand wOp{n.constantOf(*w).value, n.f32()};
  return matmulLike(
      n, n.in[0], wOp, n.f32(),
      [](OpBuilder &bb, Location loc, Value x, Value y, Value acc) -> Value {
        return arith::AddFOp::create(bb, loc, acc,
                                     arith::MulFOp::create(bb, loc, x, y));
      });
}

} // namespace

/// The com.microsoft domain.
ArrayRef<Lowering> mlir::bitnet::onnx::microsoftLowerings() {
  static const Lowering lowerings[] = {
      {"com.microsoft.MatMulNBits", {1}, lowerMatMulNBits},
  };
  return lowerings;
}
