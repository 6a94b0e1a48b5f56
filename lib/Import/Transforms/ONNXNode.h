//===- ONNXNode.h - One ONNX node as its lowering sees it -------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// What the lowerings of bitnet-legalize-onnx share: the node binder (`Node`,
// its `Operand`s and `Result`s), the checks that report what a node should
// have been, the builders of linalg/tensor/arith IR they all use, and the
// row type of the op table. Each op family (ONNX*.cpp beside this file)
// contributes its rows through one function declared at the end; the pass
// (LegalizeONNX.cpp) assembles them. Adding an operation is a lowering and a
// row in its family's file.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_LIB_IMPORT_TRANSFORMS_ONNXNODE_H
#define BITNET_LIB_IMPORT_TRANSFORMS_ONNXNODE_H

#include "HostEval.h"

#include "mlir/IR/AffineMap.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Operation.h"

#include <initializer_list>
#include <optional>
#include <string>

namespace mlir::bitnet::onnx {

/// An operand of an ONNX node after legalisation: a statically shaped tensor
/// with a signless element type, and its ONNX element type (signedness
/// included). `value` is null for an omitted optional input.
struct Operand {
  Value value;
  Type elem;
  explicit operator bool() const { return static_cast<bool>(value); }
  RankedTensorType type() const {
    return cast<RankedTensorType>(value.getType());
  }
  ArrayRef<int64_t> shape() const { return type().getShape(); }
  int64_t rank() const { return type().getRank(); }
};

/// A result of a lowering: the value that replaces the node's result and
/// its ONNX element type.
struct Result {
  Value value;
  Type elem;
};
using Results = SmallVector<Result>;

/// An ONNX element type for messages ("bool" for i1).
std::string describeType(Type elem);
/// An operand for messages, e.g. "tensor<2x3xui8>"; "nothing" if omitted.
std::string describe(const Operand &o);

/// Everything a lowering needs about the node it lowers.
class Node {
public:
  Node(Operation *op, OpBuilder &b, StringRef opType, int64_t version,
       SmallVector<Operand> in)
      : op(op), b(b), loc(op->getLoc()), opType(opType), version(version),
        in(std::move(in)), attrs(op->getAttrDictionary()) {}

  Operation *op;
  OpBuilder &b;
  Location loc;
  StringRef opType;
  int64_t version;
  SmallVector<Operand> in;
  DictionaryAttr attrs;

  MLIRContext *ctx() { return b.getContext(); }

  /// "node 'name' (OpType): " and the message.
  InFlightDiagnostic error() {
    return emitError(loc) << nodeDescription(op) << ": ";
  }
  /// "node 'name' (OpType)" for the ONNX operation `op`.
  static std::string nodeDescription(Operation *op);

  /// Input `k`, or an omitted operand past the last input.
  const Operand &input(size_t k);

  //===--------------------------------------------------------------------===//
  // Checks: each reports at the node what was expected
  //===--------------------------------------------------------------------===//

  /// Checks the number of inputs.
  LogicalResult arity(size_t min, size_t max);
  /// Checks that input `k` has one of the element types `allowed`.
  LogicalResult elemIn(size_t k, ArrayRef<Type> allowed, StringRef what);
  /// Checks that inputs `a` and `bIdx` have the same element type.
  LogicalResult sameElem(size_t a, size_t bIdx);
  /// Checks that input `k` has a rank in [lo, hi].
  LogicalResult rankIs(size_t k, int64_t lo, int64_t hi, StringRef what);

  /// Attribute `name`, or `dflt` if absent.
  FailureOr<int64_t> intAttr(StringRef name, int64_t dflt);
  FailureOr<float> floatAttr(StringRef name, float dflt);
  FailureOr<std::optional<SmallVector<int64_t>>> intsAttr(StringRef name);

  /// The constant value of input `k`, if it is one.
  std::optional<HostTensor> constant(size_t k);
  /// The integer values of constant input `k`.
  FailureOr<SmallVector<int64_t>> constInts(size_t k, StringRef what);

  //===--------------------------------------------------------------------===//
  // Builders
  //===--------------------------------------------------------------------===//

  Type f32() { return b.getF32Type(); }
  Type i1() { return b.getI1Type(); }
  Type i8() { return b.getIntegerType(8); }
  Type u8() { return IntegerType::get(ctx(), 8, IntegerType::Unsigned); }
  Type i32() { return b.getI32Type(); }
  Type i64() { return b.getI64Type(); }
  Type f64() { return b.getF64Type(); }
  Type f16() { return b.getF16Type(); }
  Type bf16() { return b.getBF16Type(); }
  Type u16() { return IntegerType::get(ctx(), 16, IntegerType::Unsigned); }
  Type u32() { return IntegerType::get(ctx(), 32, IntegerType::Unsigned); }
  Type u64() { return IntegerType::get(ctx(), 64, IntegerType::Unsigned); }
  /// Float types a lowering may compute with. f16 arithmetic rounds each
  /// operation to f16, as the ONNX reference (numpy) does. bf16 is not
  /// among them: without bf16 arithmetic in the C runtime it is only moved,
  /// compared and converted (allTypes, Cast).
  SmallVector<Type> floats() { return {f32(), f64(), f16()}; }
  SmallVector<Type> integers() {
    return {i8(), u8(), b.getIntegerType(16), u16(), i32(), u32(), i64(),
            u64()};
  }
  SmallVector<Type> numbers() {
    SmallVector<Type> t = floats();
    t.append(integers());
    return t;
  }
  SmallVector<Type> allTypes() {
    SmallVector<Type> t = numbers();
    t.push_back(bf16());
    t.push_back(i1());
    return t;
  }

  /// The scalar constant `v` of ONNX element type `elem`.
  Value scalar(Type elem, double v) { return scalarIn(b, loc, elem, v); }
  static Value scalarIn(OpBuilder &nb, Location nl, Type elem, double v);

  /// A `tensor.empty` of `shape`.
  Value empty(ArrayRef<int64_t> shape, Type elem);
  /// A tensor of `shape` filled with `v`.
  Value filled(ArrayRef<int64_t> shape, Type elem, Value v);

  /// The map that reads an operand of `inShape` broadcast (numpy style,
  /// aligned at the end) to a loop nest over `outShape`.
  AffineMap broadcastMap(ArrayRef<int64_t> inShape, ArrayRef<int64_t> outShape);

  using Body = function_ref<Value(OpBuilder &, Location, ValueRange)>;

  /// A parallel linalg.generic over `outShape` reading `inputs` with `maps`.
  Value generic(ArrayRef<Value> inputs, ArrayRef<AffineMap> maps,
                ArrayRef<int64_t> outShape, Type outElem, Body body);

  /// Elementwise over numpy-broadcast operands.
  FailureOr<Value> elementwise(ArrayRef<Operand> ops, Type outElem, Body body);

  /// A reduction of `x` over the dimensions marked in `reduce`; the result
  /// keeps the other dimensions (not the reduced ones).
  Value reduce(Value x, ArrayRef<bool> reduceDims, Type elem, Value init,
               function_ref<Value(OpBuilder &, Location, Value, Value)> comb);

  /// `v` with the same elements in `shape` (row-major order kept).
  Value reshape(Value v, ArrayRef<int64_t> shape);

  /// A constant tensor.
  Result constantOf(const HostTensor &t);
};

//===----------------------------------------------------------------------===//
// Scalar helpers used inside linalg bodies and by several families
//===----------------------------------------------------------------------===//

/// Whether ONNX element type `t` is unsigned (bool counts as unsigned).
inline bool isUnsigned(Type t) {
  return t.isUnsignedInteger() || t.isInteger(1);
}

/// Converts scalar `v` of ONNX type `from` to ONNX type `to` (Cast).
Value convertScalar(OpBuilder &b, Location loc, Value v, Type from, Type to);

/// max(x, y) and min(x, y) for ONNX element type `elem` (NaN propagating
/// for floats, unsigned comparisons for unsigned types).
Value maxOf(OpBuilder &b, Location loc, Value x, Value y, Type elem);
Value minOf(OpBuilder &b, Location loc, Value x, Value y, Type elem);

/// A scalar bound of Clip or a zero point: rank 0, or one element; returned
/// as a rank-0 tensor.
FailureOr<Value> scalarOperand(Node &n, size_t k, StringRef what);

/// A batched matrix product `sum_k f(a[.., m, k], b[.., k, n])` with numpy
/// batch broadcasting; `a`, `b` have rank >= 2. `transA`/`transB` read the
/// last two dimensions swapped. `body` takes a, b and the accumulator.
FailureOr<Value>
matmul(Node &n, const Operand &a, const Operand &b, bool transA, bool transB,
       Type accElem,
       function_ref<Value(OpBuilder &, Location, Value, Value, Value)> body);

/// MatMul's rules on top of `matmul`: 1-D operands are promoted to matrices
/// and the result reshaped back.
FailureOr<Results> matmulLike(
    Node &n, Operand a, Operand b, Type accElem,
    function_ref<Value(OpBuilder &, Location, Value, Value, Value)> body);

//===----------------------------------------------------------------------===//
// The op table
//===----------------------------------------------------------------------===//

/// A lowering: the node's replacement values, or failure after reporting at
/// the node.
using LowerFn = FailureOr<Results> (*)(Node &);

/// `Lowering::foldable` for operations the host evaluator folds.
constexpr bool kFoldable = true;

/// One row of the op table.
struct Lowering {
  /// `OpType` for the default domain, `domain.OpType` for the others (as in
  /// the operation name after `onnx.`).
  const char *opType;
  /// Operator versions (ONNX since_version) this lowering implements.
  std::initializer_list<int64_t> versions;
  LowerFn fn;
  /// Whether the node is evaluated on the host (HostEval.h `evaluate`) when
  /// all its inputs are constant, before `fn` is tried.
  bool foldable = false;
};

/// The rows of each op family, defined in the family's file.
ArrayRef<Lowering> elementwiseLowerings(); // ONNXElementwise.cpp
ArrayRef<Lowering> tensorLowerings();      // ONNXTensor.cpp
ArrayRef<Lowering> reductionLowerings();   // ONNXReduction.cpp
ArrayRef<Lowering> matmulLowerings();      // ONNXMatMul.cpp
ArrayRef<Lowering> bitnetLowerings();      // ONNXBitNetDomain.cpp
ArrayRef<Lowering> microsoftLowerings();   // ONNXMicrosoftDomain.cpp
ArrayRef<Lowering> normalizationLowerings(); // ONNXNormalization.cpp
ArrayRef<Lowering> indexingLowerings();    // ONNXIndexing.cpp
ArrayRef<Lowering> convLowerings();        // ONNXConv.cpp
ArrayRef<Lowering> activationLowerings();  // ONNXActivation.cpp

} // namespace mlir::bitnet::onnx

#endif // BITNET_LIB_IMPORT_TRANSFORMS_ONNXNODE_H
