//===- NormKernels.cpp - RMSNorm kernels for CPUs ---------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Lowers `bitnet.rmsnorm` of a static [rows, D] shape to a kernel
// specialised for that shape, vectorised along the row and spread over the
// runtime's thread pool by rows. When its input is relu(g)^2 * u (a gated
// feed-forward block: `bitnet.squared_relu` and an elementwise multiply,
// each used only there), the kernel reads g and u and forms the product
// itself, so that product never makes a round trip through memory of its
// own and the two elementwise loops leave the step.
//
// One row:
//  * pass 1: each 16-float vector of the row (the product, when gated, is
//    written to the output row) is squared and added into one of four
//    vector accumulators, vector c into accumulator c % 4; the four are
//    added pairwise ((a0 + a1) + (a2 + a3)) and their lanes in order, then
//    the squares of the D % 16 last elements one by one;
//  * inv = 1 / sqrt(sum / D + eps);
//  * pass 2: y = gamma * (x * inv), element by element as the reference.
//
// The sum of squares is in another order than the reference's (the float
// tolerance of the numerics contract). The order depends on D alone, not on
// the number of rows, the thread count or the vector width of the target,
// so a row's result is the same in a step of any size.
//
//===----------------------------------------------------------------------===//

#include "KernelLowerings.h"
#include "KernelSupport.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Bufferization/IR/Bufferization.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Vector/IR/VectorOps.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace mlir::bitnet;

/// Floats a vector of the kernel holds, on every target (LLVM splits it
/// where registers are narrower), so the order of the sum is the target's
/// own nowhere.
static constexpr int64_t kLanes = 16;
/// Vector accumulators of the sum of squares (independent additions in
/// flight).
static constexpr int64_t kAccumulators = 4;

namespace {
class NormKernelEmitter : KernelEmitterBase {
public:
  NormKernelEmitter(ModuleOp module, int64_t rows, int64_t dim, float eps,
                    bool gated)
      : KernelEmitterBase(module), rows(rows), dim(dim), eps(eps),
        gated(gated), vectors(dim / kLanes) {
    floatsV = VectorType::get({kLanes}, f32);
  }

  /// The memref wrapper (operands: x, gamma, y; or g, u, gamma, y when
  /// gated), created on first use.
  func::FuncOp getOrCreate(ArrayRef<Type> memrefTypes) {
    std::string wrapperName = baseName() + "_memref";
    if (auto existing = module.lookupSymbol<func::FuncOp>(wrapperName))
      return existing;
    ensureExecCtxGlobal(module);
    LLVM::LLVMFuncOp kernel = createMain(createChunk());
    return createMemRefWrapper(module, wrapperName, memrefTypes, kernel);
  }

private:
  std::string baseName() const {
    return llvm::formatv("__bitnet_rmsnorm{0}_{1}x{2}_{3:x}",
                         gated ? "_gated" : "", rows, dim,
                         llvm::bit_cast<uint32_t>(eps))
        .str();
  }
  int64_t numArgs() const { return gated ? 4 : 3; }
  Value cF32(OpBuilder &ob, float v) {
    return arith::ConstantOp::create(ob, loc, ob.getF32FloatAttr(v));
  }
  /// Element or vector `at` (in floats) of the row at `row`, of `type`.
  Value loadAt(OpBuilder &ob, Type type, Value row, Value at) {
    return load(ob, type, gep(ob, row, mul(ob, at, 4)));
  }
  void storeAt(OpBuilder &ob, Value v, Value row, Value at) {
    store(ob, v, gep(ob, row, mul(ob, at, 4)));
  }
  /// The normalised input at float `at` (a vector or an element, by
  /// `type`): relu(g)^2 * u written to `y` when gated, else x. Returns it.
  Value input(OpBuilder &ob, Type type, ArrayRef<Value> rowsIn, Value y,
              Value at) {
    if (!gated)
      return loadAt(ob, type, rowsIn[0], at);
    Value zero = isa<VectorType>(type)
                     ? arith::ConstantOp::create(
                           ob, loc,
                           DenseElementsAttr::get(cast<VectorType>(type),
                                                  ob.getF32FloatAttr(0.0f)))
                           .getResult()
                     : cF32(ob, 0.0f);
    Value r = arith::MaximumFOp::create(ob, loc, loadAt(ob, type, rowsIn[0], at),
                                        zero);
    Value h = arith::MulFOp::create(
        ob, loc, arith::MulFOp::create(ob, loc, r, r),
        loadAt(ob, type, rowsIn[1], at));
    storeAt(ob, h, y, at);
    return h;
  }

  LLVM::LLVMFuncOp createChunk();
  LLVM::LLVMFuncOp createMain(LLVM::LLVMFuncOp chunk);

  int64_t rows, dim;
  float eps;
  bool gated;
  int64_t vectors;
  VectorType floatsV;
};
} // namespace

// void chunk(args, begin, end): rows [begin, end). args = {x, gamma, y} or
// {g, u, gamma, y}.
LLVM::LLVMFuncOp NormKernelEmitter::createChunk() {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginChunk(baseName() + "_chunk");
  Block *entry = &func.getBody().front();
  Value args = entry->getArgument(0);
  Value begin = entry->getArgument(1), end = entry->getArgument(2);
  SmallVector<Value> in;
  for (int64_t i = 0; i + 2 < numArgs(); ++i)
    in.push_back(field(b, args, i));
  Value gamma = field(b, args, numArgs() - 2), y = field(b, args, numArgs() - 1);
  Value zeroV = arith::ConstantOp::create(
      b, loc, DenseElementsAttr::get(floatsV, b.getF32FloatAttr(0.0f)));

  loop(b, begin, end, 1, {}, [&](OpBuilder &rb, Value row, ValueRange) {
    SmallVector<Value> rowIn;
    for (Value base : in)
      rowIn.push_back(gep(rb, base, mul(rb, row, 4 * dim)));
    Value yRow = gep(rb, y, mul(rb, row, 4 * dim));
    auto square = [&](OpBuilder &ob, Type type, int64_t at, Value base) {
      Value v = input(ob, type, rowIn, yRow, add(ob, base, cI64(ob, at)));
      return arith::MulFOp::create(ob, loc, v, v).getResult();
    };
    // Pass 1: vectors of kAccumulators at a time, then the rest of the whole
    // vectors, then the tail.
    int64_t groups = vectors / kAccumulators;
    SmallVector<Value> acc(kAccumulators, zeroV);
    if (groups > 0)
      acc = llvm::to_vector_of<Value>(
          loop(rb, cI64(rb, 0), cI64(rb, groups), 1, acc,
               [&](OpBuilder &gb, Value g, ValueRange carried) {
                 Value base = mul(gb, g, kAccumulators * kLanes);
                 SmallVector<Value> next;
                 for (int64_t j = 0; j < kAccumulators; ++j)
                   next.push_back(arith::AddFOp::create(
                       gb, loc, carried[j],
                       square(gb, floatsV, j * kLanes, base)));
                 return next;
               })
              .getResults());
    for (int64_t v = groups * kAccumulators; v < vectors; ++v) {
      int64_t j = v % kAccumulators;
      acc[j] = arith::AddFOp::create(rb, loc, acc[j],
                                     square(rb, floatsV, v * kLanes,
                                            cI64(rb, 0)));
    }
    Value pairs[] = {arith::AddFOp::create(rb, loc, acc[0], acc[1]),
                     arith::AddFOp::create(rb, loc, acc[2], acc[3])};
    // Lanes in order (no reassociation: the same sum on every target).
    Value sum = vector::ReductionOp::create(
        rb, loc, vector::CombiningKind::ADD,
        arith::AddFOp::create(rb, loc, pairs[0], pairs[1]), Value(),
        arith::FastMathFlags::none);
    for (int64_t i = vectors * kLanes; i < dim; ++i)
      sum = arith::AddFOp::create(rb, loc, sum,
                                  square(rb, f32, i, cI64(rb, 0)));
    Value mean = arith::DivFOp::create(rb, loc, sum,
                                       cF32(rb, static_cast<float>(dim)));
    Value inv = math::RsqrtOp::create(
        rb, loc, arith::AddFOp::create(rb, loc, mean, cF32(rb, eps)));

    // Pass 2: y = gamma * (x * inv); x is the product in y when gated.
    Value src = gated ? yRow : rowIn[0];
    auto scale = [&](OpBuilder &ob, Type type, Value at) {
      Value invT = type == f32 ? inv
                               : vector::BroadcastOp::create(ob, loc, floatsV,
                                                             inv)
                                     .getResult();
      Value normed =
          arith::MulFOp::create(ob, loc, loadAt(ob, type, src, at), invT);
      storeAt(ob, arith::MulFOp::create(ob, loc, loadAt(ob, type, gamma, at),
                                        normed),
              yRow, at);
    };
    if (vectors > 0)
      loop(rb, cI64(rb, 0), cI64(rb, vectors), 1, {},
           [&](OpBuilder &vb, Value v, ValueRange) {
             scale(vb, floatsV, mul(vb, v, kLanes));
             return SmallVector<Value>{};
           });
    for (int64_t i = vectors * kLanes; i < dim; ++i)
      scale(rb, f32, cI64(rb, i));
    return SmallVector<Value>{};
  });
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

LLVM::LLVMFuncOp NormKernelEmitter::createMain(LLVM::LLVMFuncOp chunk) {
  OpBuilder::InsertionGuard guard(b);
  LLVM::LLVMFuncOp func = beginKernel(baseName(), numArgs());
  Block *entry = &func.getBody().front();
  SmallVector<Value> fields(entry->getArguments());
  Value args = pointerTable(b, fields);
  ExecCtxCalls calls(b, loc);
  Value name = LLVM::AddressOfOp::create(
      b, loc,
      getOrCreateKernelName(
          module, baseName() + "_name",
          llvm::formatv("rmsnorm{0} {1}x{2}", gated ? " relu2*up" : "", rows,
                        dim)
              .str()));
  // Read: the inputs and gamma; written: y (twice when gated: the product,
  // then the result over it, from cache).
  int64_t inputs = gated ? 2 : 1;
  calls.kernelBegin(name, 4 * dim * (rows * (inputs + 1) + 1),
                    rows * dim * (gated ? 7 : 4));
  calls.dispatch(chunk, args, rows,
                 /*spread=*/rows > 1 && rows * dim >= (1 << 15));
  calls.kernelEnd(name);
  LLVM::ReturnOp::create(b, loc, ValueRange{});
  return func;
}

/// relu(g)^2 * u: an elementwise multiply (`linalg.generic`) of the result of
/// a `bitnet.squared_relu` and another tensor of its shape, each used only
/// there.
struct GatedProduct {
  Value g, u;
  Operation *product, *relu;
};

/// `v` as relu(g)^2 * u, if it is one.
static std::optional<GatedProduct> gatedProduct(Value v) {
  auto generic = v.getDefiningOp<linalg::GenericOp>();
  if (!generic || !v.hasOneUse() || generic.getNumDpsInputs() != 2 ||
      generic.getNumDpsInits() != 1 || generic->getNumResults() != 1 ||
      !llvm::all_of(generic.getIndexingMapsArray(),
                    [](AffineMap m) { return m.isIdentity(); }) ||
      generic.getNumParallelLoops() != generic.getNumLoops())
    return std::nullopt;
  Block &body = generic.getRegion().front();
  if (body.getOperations().size() != 2)
    return std::nullopt;
  auto mulOp = dyn_cast<arith::MulFOp>(body.front());
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!mulOp || !yield || yield.getNumOperands() != 1 ||
      yield.getOperand(0) != mulOp.getResult() ||
      mulOp.getFastmath() != arith::FastMathFlags::none)
    return std::nullopt;
  // The body multiplies its two inputs (in either order: the product is the
  // same, bit for bit).
  auto argOf = [&](Value x) -> int {
    auto arg = dyn_cast<BlockArgument>(x);
    return arg && arg.getOwner() == &body ? static_cast<int>(arg.getArgNumber())
                                          : -1;
  };
  int a = argOf(mulOp.getLhs()), c = argOf(mulOp.getRhs());
  if (!((a == 0 && c == 1) || (a == 1 && c == 0)))
    return std::nullopt;
  Type type = v.getType();
  for (int i = 0; i < 2; ++i) {
    Value operand = generic.getDpsInputs()[i];
    Value other = generic.getDpsInputs()[1 - i];
    auto relu = operand.getDefiningOp<SquaredReluOp>();
    if (!relu || !operand.hasOneUse() || other.getType() != type ||
        relu.getInput().getType() != type)
      continue;
    return GatedProduct{relu.getInput(), other, generic, relu};
  }
  return std::nullopt;
}

bool mlir::bitnet::lowerRMSNormToKernel(ModuleOp module, RMSNormOp op) {
  auto xType = dyn_cast<RankedTensorType>(op.getInput().getType());
  if (!xType || !xType.hasStaticShape() || xType.getRank() < 1 ||
      !xType.getElementType().isF32() || xType.getNumElements() == 0)
    return false; // the reference lowering handles these
  int64_t dim = xType.getShape().back();
  int64_t rows = xType.getNumElements() / dim;
  auto gammaType = dyn_cast<RankedTensorType>(op.getGamma().getType());
  if (!gammaType || gammaType.getShape() != ArrayRef<int64_t>{dim} ||
      !gammaType.getElementType().isF32())
    return false;
  std::optional<GatedProduct> gated = gatedProduct(op.getInput());
  NormKernelEmitter emitter(module, rows, dim,
                            op.getEpsilon().convertToFloat(),
                            gated.has_value());

  OpBuilder b(op);
  Location loc = op.getLoc();
  SmallVector<Value> operands;
  if (gated) {
    operands.push_back(toReadOnlyBuffer(b, loc, gated->g));
    operands.push_back(toReadOnlyBuffer(b, loc, gated->u));
  } else {
    operands.push_back(toReadOnlyBuffer(b, loc, op.getInput()));
  }
  operands.push_back(toReadOnlyBuffer(b, loc, op.getGamma()));
  operands.push_back(memref::AllocOp::create(
      b, loc, MemRefType::get(xType.getShape(), b.getF32Type()),
      b.getI64IntegerAttr(64)));
  SmallVector<Type> types;
  for (Value v : operands)
    types.push_back(v.getType());
  auto call = func::CallOp::create(b, loc, emitter.getOrCreate(types), operands);
  call->setAttr(
      "bitnet.kernel",
      b.getDictionaryAttr(
          {b.getNamedAttr("family", b.getStringAttr("rmsnorm")),
           b.getNamedAttr("fused",
                          b.getStringAttr(gated ? "relu2_mul" : "none")),
           b.getNamedAttr("lanes", b.getI64IntegerAttr(kLanes))}));
  Value out = bufferization::ToTensorOp::create(b, loc, xType, operands.back(),
                                                b.getUnitAttr(), b.getUnitAttr());
  op.getResult().replaceAllUsesWith(out);
  op.erase();
  if (gated) {
    gated->product->erase();
    gated->relu->erase();
  }
  return true;
}
