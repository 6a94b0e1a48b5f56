//===- GPUFallbackKernels.cpp - Any tensor op as a simple kernel -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The kernel of an operation that no specialised GPU kernel takes: any linalg
// op (generic or named, with parallel and reduction loops), an elementwise
// arith/math op on tensors, and the tensor ops that move data (slices,
// concat, pad, generate, splat, from_elements). Each is one thread per
// output element, with its reductions as sequential loops in the thread:
//
//   linalg  the loops that every output's indexing map names (parallel ones)
//           are the threads; the others are loops inside each thread, in
//           their order, so that every output element is accumulated in the
//           same order as on the CPU. When the outputs' maps do not name
//           the same parallel loops (or are no projected permutations), one
//           thread runs the whole loop nest over memory, as the CPU does.
//   tensor  one thread per element of the result, which reads its source
//           element (or the padding, or the destination of an insert).
//
// Scalars the op reads from outside (constants, scalars of 0-D tensors and
// what is computed from them) are computed again at the start of the
// kernel; tensors it reads are kernel arguments, flat buffers, indexed with
// their row-major strides. Plain and slow next to the specialised kernels,
// but any graph of such ops runs on the GPU.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"

#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/SCF/IR/SCF.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/SmallBitVector.h"
#include "llvm/Support/FormatVariadic.h"

#include <algorithm>
#include <functional>

using namespace mlir;
using namespace mlir::bitnet;

namespace {

/// Builds the fallback kernel of one op.
class FallbackKernel {
public:
  FallbackKernel(gpu::GPUModuleOp module, Operation *op, unsigned id)
      : module(module), op(op), id(id) {}

  FailureOr<GPUFallback> build();

private:
  InFlightDiagnostic unsupported(const Twine &why) {
    return op->emitError("bitnet-lower-to-gpu: '")
           << op->getName() << "' " << why;
  }
  /// Whether `v` is defined outside the op (its regions excluded).
  bool outside(Value v) {
    return !op->isAncestor(v.getParentBlock()->getParentOp());
  }
  /// Notes what computing the outside value `v` in the kernel reads.
  LogicalResult collect(Value v);
  LogicalResult collectAll();
  /// The kernel's value of the outside scalar `v` (computed at its start).
  FailureOr<Value> materialize(Value v);
  /// A static, ranked tensor of an element type the kernels can store.
  LogicalResult checkTensor(Value v);

  Value index(int64_t v) { return b->idx(v); }
  /// The row-major linear index of `indices` in `shape`.
  Value linearize(ArrayRef<Value> indices, ArrayRef<int64_t> shape);
  /// The indices of the linear index `i` in `shape`.
  SmallVector<Value> delinearize(Value i, ArrayRef<int64_t> shape);
  /// The element of the tensor `t` at `indices` (zero for a tensor.empty,
  /// whose elements are undefined).
  Value loadAt(Value t, ArrayRef<Value> indices);
  Value zero(Type t) {
    return arith::ConstantOp::create(*b, cast<TypedAttr>(b->getZeroAttr(t)));
  }
  /// The value of `expr` at `dims`.
  Value affine(AffineExpr expr, ArrayRef<Value> dims);
  SmallVector<Value> affine(AffineMap map, ArrayRef<Value> dims) {
    SmallVector<Value> out;
    for (AffineExpr e : map.getResults())
      out.push_back(affine(e, dims));
    return out;
  }
  /// Clones `block` (a linalg, generate or pad body) with `args` for its
  /// arguments and `ivs` for linalg.index; returns what it yields.
  FailureOr<SmallVector<Value>> cloneBody(Block &block, ValueRange args,
                                          ArrayRef<Value> ivs);
  /// Creates the kernel of `threads` threads and points the builder at
  /// its body, after the outside scalars, inside `if (i < threads)`; `i` is
  /// the thread's index.
  LogicalResult startKernel(int64_t threads, function_ref<void(Value)> body);

  LogicalResult buildLinalg(linalg::LinalgOp lop);
  LogicalResult buildTensorOp();

  gpu::GPUModuleOp module;
  Operation *op;
  unsigned id;
  GPUFallback result;
  /// Tensors read, in the order of the kernel's arguments.
  llvm::SetVector<Value> reads;
  /// Outside scalars the op uses, in the order they are first needed.
  llvm::SetVector<Value> scalars;
  llvm::SmallPtrSet<Value, 8> visited;
  DenseMap<Value, unsigned> argIndex;
  IRMapping outsideValues;
  std::unique_ptr<GPUKernelBuilder> b;
};

} // namespace

static int64_t product(ArrayRef<int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

LogicalResult FallbackKernel::checkTensor(Value v) {
  auto type = dyn_cast<RankedTensorType>(v.getType());
  if (!type || !type.hasStaticShape())
    return unsupported("with a tensor of dynamic shape is not supported on "
                       "the GPU");
  Type e = type.getElementType();
  if (!isa<IntegerType, FloatType>(e))
    return unsupported("on tensors of ")
           << e << " is not supported on the GPU";
  return success();
}

LogicalResult FallbackKernel::collect(Value v) {
  if (!visited.insert(v).second)
    return success();
  if (isa<TensorType>(v.getType())) {
    if (failed(checkTensor(v)))
      return failure();
    if (!v.getDefiningOp<tensor::EmptyOp>())
      reads.insert(v);
    return success();
  }
  if (isa<ShapedType>(v.getType()))
    return unsupported("reads a ") << v.getType() << ", not supported on "
                                   << "the GPU";
  Operation *def = v.getDefiningOp();
  if (!def)
    return unsupported("reads a scalar argument, not supported on the GPU");
  if (!isa<tensor::ExtractOp, tensor::DimOp>(def) &&
      (def->getNumRegions() != 0 || !isPure(def)))
    return unsupported("reads a scalar computed by '")
           << def->getName() << "', which is not supported on the GPU";
  for (Value operand : def->getOperands())
    if (failed(collect(operand)))
      return failure();
  scalars.insert(v);
  return success();
}

LogicalResult FallbackKernel::collectAll() {
  for (Value operand : op->getOperands())
    if (failed(collect(operand)))
      return failure();
  LogicalResult status = success();
  op->walk([&](Operation *inner) {
    if (inner == op)
      return WalkResult::advance();
    for (Value operand : inner->getOperands()) {
      if (!outside(operand))
        continue;
      if (isa<TensorType>(operand.getType()) &&
          !isa<tensor::ExtractOp, tensor::DimOp>(inner)) {
        status = unsupported("uses a tensor in its body other than by "
                             "tensor.extract, which is not supported on the "
                             "GPU");
        return WalkResult::interrupt();
      }
      if (failed(collect(operand))) {
        status = failure();
        return WalkResult::interrupt();
      }
    }
    return WalkResult::advance();
  });
  if (failed(status))
    return failure();
  for (Value r : op->getResults())
    if (failed(checkTensor(r)))
      return failure();
  return success();
}

FailureOr<Value> FallbackKernel::materialize(Value v) {
  if (Value known = outsideValues.lookupOrNull(v))
    return known;
  Operation *def = v.getDefiningOp();
  Value out;
  if (auto extract = dyn_cast<tensor::ExtractOp>(def)) {
    SmallVector<Value> indices;
    for (Value i : extract.getIndices()) {
      FailureOr<Value> m = materialize(i);
      if (failed(m))
        return failure();
      indices.push_back(*m);
    }
    out = loadAt(extract.getTensor(), indices);
  } else if (auto dim = dyn_cast<tensor::DimOp>(def)) {
    std::optional<int64_t> d = dim.getConstantIndex();
    if (!d)
      return failure();
    out = index(cast<RankedTensorType>(dim.getSource().getType())
                    .getDimSize(*d));
  } else {
    for (Value operand : def->getOperands())
      if (failed(materialize(operand)))
        return failure();
    Operation *clone = b->clone(*def, outsideValues);
    out = clone->getResult(cast<OpResult>(v).getResultNumber());
  }
  outsideValues.map(v, out);
  return out;
}

Value FallbackKernel::linearize(ArrayRef<Value> indices,
                                ArrayRef<int64_t> shape) {
  Value at = index(0);
  for (auto [i, extent] : llvm::zip(indices, shape))
    at = b->addi(b->muli(at, index(extent)), i);
  return at;
}

SmallVector<Value> FallbackKernel::delinearize(Value i,
                                               ArrayRef<int64_t> shape) {
  SmallVector<Value> out(shape.size());
  for (int64_t d = shape.size() - 1; d >= 0; --d) {
    if (d == 0) {
      out[d] = i;
      break;
    }
    Value extent = index(shape[d]);
    out[d] = b->remui(i, extent);
    i = b->divui(i, extent);
  }
  return out;
}

Value FallbackKernel::loadAt(Value t, ArrayRef<Value> indices) {
  auto type = cast<RankedTensorType>(t.getType());
  auto it = argIndex.find(t);
  if (it == argIndex.end()) // a tensor.empty
    return zero(type.getElementType());
  return b->load(b->arg(it->second), linearize(indices, type.getShape()));
}

Value FallbackKernel::affine(AffineExpr expr, ArrayRef<Value> dims) {
  if (auto d = dyn_cast<AffineDimExpr>(expr))
    return dims[d.getPosition()];
  if (auto c = dyn_cast<AffineConstantExpr>(expr))
    return index(c.getValue());
  auto bin = cast<AffineBinaryOpExpr>(expr);
  Value l = affine(bin.getLHS(), dims), r = affine(bin.getRHS(), dims);
  switch (expr.getKind()) {
  case AffineExprKind::Add:
    return b->addi(l, r);
  case AffineExprKind::Mul:
    return b->muli(l, r);
  case AffineExprKind::Mod: {
    // Affine mod is never negative (the divisor is a positive constant).
    Value rem = arith::RemSIOp::create(*b, l, r);
    Value neg = arith::CmpIOp::create(*b, arith::CmpIPredicate::slt, rem,
                                      index(0));
    return b->select(neg, b->addi(rem, r), rem);
  }
  case AffineExprKind::FloorDiv:
  case AffineExprKind::CeilDiv: {
    // Rounded toward zero, then corrected: toward -inf or +inf.
    Value q = arith::DivSIOp::create(*b, l, r);
    Value rem = arith::RemSIOp::create(*b, l, r);
    bool floor = expr.getKind() == AffineExprKind::FloorDiv;
    Value inexact = arith::CmpIOp::create(*b, arith::CmpIPredicate::ne, rem,
                                          index(0));
    Value sameSign = arith::CmpIOp::create(
        *b, floor ? arith::CmpIPredicate::slt : arith::CmpIPredicate::sgt,
        arith::XOrIOp::create(*b, l, r), index(0));
    Value adjust = b->andi(inexact, sameSign);
    return b->select(adjust, b->addi(q, index(floor ? -1 : 1)), q);
  }
  default:
    llvm_unreachable("symbols are rejected before");
  }
}

FailureOr<SmallVector<Value>>
FallbackKernel::cloneBody(Block &block, ValueRange args, ArrayRef<Value> ivs) {
  IRMapping m = outsideValues;
  for (auto [arg, v] : llvm::zip(block.getArguments(), args))
    m.map(arg, v);
  // Replaces what only the kernel can do in `o` (a clone): linalg.index by
  // the loop's index, tensor.extract of an outside tensor by a load.
  auto fix = [&](Operation *o) -> LogicalResult {
    if (auto index = dyn_cast<linalg::IndexOp>(o)) {
      if (index.getDim() >= ivs.size())
        return failure();
      index.getResult().replaceAllUsesWith(ivs[index.getDim()]);
      index.erase();
      return success();
    }
    if (auto extract = dyn_cast<tensor::ExtractOp>(o)) {
      if (!argIndex.count(extract.getTensor()) &&
          !extract.getTensor().getDefiningOp<tensor::EmptyOp>())
        return success();
      OpBuilder::InsertionGuard guard(*b);
      b->setInsertionPoint(o);
      Value v = loadAt(extract.getTensor(),
                       SmallVector<Value>(extract.getIndices()));
      extract.getResult().replaceAllUsesWith(v);
      extract.erase();
      return success();
    }
    if (auto dim = dyn_cast<tensor::DimOp>(o)) {
      std::optional<int64_t> d = dim.getConstantIndex();
      auto type = cast<RankedTensorType>(dim.getSource().getType());
      if (!d)
        return failure();
      OpBuilder::InsertionGuard guard(*b);
      b->setInsertionPoint(o);
      dim.getResult().replaceAllUsesWith(index(type.getDimSize(*d)));
      dim.erase();
      return success();
    }
    return success();
  };
  for (Operation &o : block.without_terminator()) {
    // The same replacements where `o` is directly in the body: mapped, so
    // that the ops after it read the replacement.
    if (auto index = dyn_cast<linalg::IndexOp>(o)) {
      if (index.getDim() >= ivs.size())
        return op->emitError("bitnet-lower-to-gpu: linalg.index ")
               << index.getDim() << " is out of range";
      m.map(index.getResult(), ivs[index.getDim()]);
      continue;
    }
    if (auto extract = dyn_cast<tensor::ExtractOp>(o);
        extract && (argIndex.count(extract.getTensor()) ||
                    extract.getTensor().getDefiningOp<tensor::EmptyOp>())) {
      SmallVector<Value> indices;
      for (Value i : extract.getIndices())
        indices.push_back(m.lookupOrDefault(i));
      m.map(extract.getResult(), loadAt(extract.getTensor(), indices));
      continue;
    }
    if (auto dim = dyn_cast<tensor::DimOp>(o)) {
      std::optional<int64_t> d = dim.getConstantIndex();
      if (!d)
        return op->emitError("bitnet-lower-to-gpu: tensor.dim of a dynamic "
                             "dimension is not supported on the GPU");
      m.map(dim.getResult(),
            index(cast<RankedTensorType>(dim.getSource().getType())
                      .getDimSize(*d)));
      continue;
    }
    Operation *clone = b->clone(o, m);
    SmallVector<Operation *> nested;
    clone->walk([&](Operation *inner) {
      if (inner != clone)
        nested.push_back(inner);
    });
    for (Operation *inner : nested)
      if (failed(fix(inner)))
        return op->emitError("bitnet-lower-to-gpu: '")
               << o.getName() << "' in the body of '" << op->getName()
               << "' is not supported on the GPU";
  }
  SmallVector<Value> yielded;
  for (Value v : block.getTerminator()->getOperands())
    yielded.push_back(m.lookupOrDefault(v));
  return yielded;
}

LogicalResult FallbackKernel::startKernel(int64_t threads,
                                          function_ref<void(Value)> body) {
  GPUKernel &kernel = result.kernel;
  std::string opName = op->getName().getStringRef().str();
  std::replace(opName.begin(), opName.end(), '.', '_');
  kernel.name = llvm::formatv("bitnet_{0}_{1}", opName, id).str();
  int64_t block = std::clamp<int64_t>(threads, 1, kElementwiseThreads);
  kernel.block = {block, 1, 1};
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(threads, block)), 1, 1};
  SmallVector<Type> args;
  auto addArg = [&](Value v) {
    auto type = cast<RankedTensorType>(v.getType());
    argIndex[v] = args.size();
    args.push_back(flatMemRef(type.getNumElements(), type.getElementType()));
    kernel.bytes += type.getNumElements() *
                    std::max<int64_t>(1, type.getElementTypeBitWidth() / 8);
    result.operands.push_back(v);
  };
  for (Value v : reads)
    addArg(v);
  for (Value r : op->getResults()) {
    auto type = cast<RankedTensorType>(r.getType());
    args.push_back(flatMemRef(type.getNumElements(), type.getElementType()));
    kernel.bytes += type.getNumElements() *
                    std::max<int64_t>(1, type.getElementTypeBitWidth() / 8);
    result.operands.push_back(r);
  }
  if (!createKernel(module, kernel, args))
    return op->emitError("bitnet-lower-to-gpu: kernel @")
           << kernel.name << " exists already";
  b = std::make_unique<GPUKernelBuilder>(kernel.func);
  b->setLoc(op->getLoc());
  for (Value s : scalars)
    if (failed(materialize(s)))
      return unsupported("reads a scalar that the GPU cannot compute");
  Value i = b->globalIndex(block);
  b->ifThen(b->ult(i, index(threads)), [&] { body(i); });
  return success();
}

/// The kernel argument of result `r`: after the `reads` tensors read.
static unsigned resultArg(unsigned reads, unsigned r) { return reads + r; }

LogicalResult FallbackKernel::buildLinalg(linalg::LinalgOp lop) {
  if (!lop.hasPureTensorSemantics())
    return unsupported("on buffers is not supported on the GPU");
  SmallVector<int64_t> ranges = lop.getStaticLoopRanges();
  if (llvm::any_of(ranges, ShapedType::isDynamic))
    return unsupported("with dynamic loop bounds is not supported on the GPU");
  SmallVector<AffineMap> maps = lop.getIndexingMapsArray();
  for (AffineMap map : maps)
    if (map.getNumSymbols() != 0)
      return unsupported("with symbols in its indexing maps is not supported "
                         "on the GPU");
  unsigned loops = lop.getNumLoops();
  SmallVector<utils::IteratorType> iterators = lop.getIteratorTypesArray();
  // The threads: the parallel loops that every output's map names.
  SmallVector<bool> threaded(loops, false);
  for (unsigned d = 0; d < loops; ++d)
    threaded[d] = iterators[d] == utils::IteratorType::parallel;
  bool perThread = true;
  for (OpOperand &init : lop.getDpsInitsMutable()) {
    AffineMap map = lop.getMatchingIndexingMap(&init);
    SmallVector<bool> named(loops, false);
    for (AffineExpr e : map.getResults())
      if (auto d = dyn_cast<AffineDimExpr>(e))
        named[d.getPosition()] = true;
    for (unsigned d = 0; d < loops; ++d)
      threaded[d] = threaded[d] && named[d];
    perThread = perThread && map.isProjectedPermutation();
  }
  for (OpOperand &init : lop.getDpsInitsMutable())
    for (AffineExpr e : lop.getMatchingIndexingMap(&init).getResults()) {
      auto d = dyn_cast<AffineDimExpr>(e);
      perThread = perThread && d && threaded[d.getPosition()];
    }
  if (!perThread)
    threaded.assign(loops, false);
  SmallVector<unsigned> threadDims, loopDims;
  SmallVector<int64_t> threadShape;
  for (unsigned d = 0; d < loops; ++d) {
    if (threaded[d]) {
      threadDims.push_back(d);
      threadShape.push_back(ranges[d]);
    } else {
      loopDims.push_back(d);
    }
  }
  Block *body = lop.getBlock();
  unsigned numInits = lop.getNumDpsInits();
  unsigned reads0 = reads.size();
  bool failedBody = false;
  auto bodyAt = [&](ArrayRef<Value> ivs, ValueRange outs) {
    SmallVector<Value> args;
    for (OpOperand *in : lop.getDpsInputOperands()) {
      Value v = in->get();
      if (isa<RankedTensorType>(v.getType()))
        args.push_back(loadAt(v, affine(lop.getMatchingIndexingMap(in), ivs)));
      else
        args.push_back(outsideValues.lookup(v));
    }
    args.append(outs.begin(), outs.end());
    FailureOr<SmallVector<Value>> yielded = cloneBody(*body, args, ivs);
    if (failed(yielded)) {
      failedBody = true;
      return SmallVector<Value>(outs);
    }
    return *yielded;
  };
  auto outIndex = [&](unsigned k, ArrayRef<Value> ivs) {
    return affine(lop.getMatchingIndexingMap(lop.getDpsInitOperand(k)), ivs);
  };
  auto store = [&](Value v, unsigned k, ArrayRef<Value> ivs) {
    auto type = cast<RankedTensorType>(op->getResult(k).getType());
    b->store(v, b->arg(resultArg(reads0, k)),
             linearize(outIndex(k, ivs), type.getShape()));
  };
  auto load = [&](unsigned k, ArrayRef<Value> ivs) {
    auto type = cast<RankedTensorType>(op->getResult(k).getType());
    return b->load(b->arg(resultArg(reads0, k)),
                   linearize(outIndex(k, ivs), type.getShape()));
  };
  // The loops of `loopDims[from..]` inside this thread, carrying `outs`
  // (per thread) or reading and writing the outputs (whole nest).
  std::function<SmallVector<Value>(unsigned, SmallVector<Value> &, ValueRange)>
      nest = [&](unsigned from, SmallVector<Value> &ivs,
                 ValueRange outs) -> SmallVector<Value> {
    if (from == loopDims.size()) {
      if (perThread)
        return bodyAt(ivs, outs);
      SmallVector<Value> current;
      for (unsigned k = 0; k < numInits; ++k)
        current.push_back(load(k, ivs));
      SmallVector<Value> next = bodyAt(ivs, current);
      for (unsigned k = 0; k < numInits; ++k)
        store(next[k], k, ivs);
      return {};
    }
    unsigned d = loopDims[from];
    if (outs.empty()) {
      b->forEach(index(0), index(ranges[d]), index(1), [&](Value iv) {
        ivs[d] = iv;
        nest(from + 1, ivs, outs);
      });
      return {};
    }
    ValueRange last = b->loop(
        index(0), index(ranges[d]), index(1), outs,
        [&](Value iv, ValueRange carried) {
          ivs[d] = iv;
          return nest(from + 1, ivs, carried);
        });
    return SmallVector<Value>(last);
  };
  LogicalResult status = startKernel(product(threadShape), [&](Value i) {
    SmallVector<Value> ivs(loops);
    SmallVector<Value> at = delinearize(i, threadShape);
    for (auto [d, v] : llvm::zip(threadDims, at))
      ivs[d] = v;
    if (perThread) {
      SmallVector<Value> outs;
      for (unsigned k = 0; k < numInits; ++k) {
        OpOperand *init = lop.getDpsInitOperand(k);
        Value arg = body->getArgument(init->getOperandNumber());
        outs.push_back(arg.use_empty()
                           ? zero(arg.getType())
                           : loadAt(init->get(),
                                    affine(lop.getMatchingIndexingMap(init),
                                           ivs)));
      }
      SmallVector<Value> last = nest(0, ivs, outs);
      for (unsigned k = 0; k < numInits; ++k)
        store(last[k], k, ivs);
      return;
    }
    // The whole nest in this one thread: the outputs start as the inits.
    for (unsigned k = 0; k < numInits; ++k) {
      Value init = lop.getDpsInitOperand(k)->get();
      auto type = cast<RankedTensorType>(init.getType());
      b->forEach(index(0), index(type.getNumElements()), index(1),
                 [&](Value j) {
                   Value v = argIndex.count(init)
                                 ? b->load(b->arg(argIndex[init]), j)
                                 : zero(type.getElementType());
                   b->store(v, b->arg(resultArg(reads0, k)), j);
                 });
    }
    nest(0, ivs, ValueRange());
  });
  if (failed(status) || failedBody)
    return failure();
  int64_t points = product(ranges);
  result.kernel.flops = points * std::max<int64_t>(
                                     1, body->getOperations().size() - 1);
  return success();
}

LogicalResult FallbackKernel::buildTensorOp() {
  Value res = op->getResult(0);
  auto type = cast<RankedTensorType>(res.getType());
  ArrayRef<int64_t> shape = type.getShape();
  Type element = type.getElementType();
  unsigned reads0 = reads.size();
  auto constantOf = [&](OpFoldResult r) -> Value {
    if (auto attr = dyn_cast<Attribute>(r))
      return index(cast<IntegerAttr>(attr).getInt());
    return outsideValues.lookup(cast<Value>(r));
  };
  auto constants = [&](ArrayRef<OpFoldResult> rs) {
    SmallVector<Value> out;
    for (OpFoldResult r : rs)
      out.push_back(constantOf(r));
    return out;
  };
  auto sge = [&](Value a, Value c) {
    return arith::CmpIOp::create(*b, arith::CmpIPredicate::sge, a, c);
  };
  auto slt = [&](Value a, Value c) {
    return arith::CmpIOp::create(*b, arith::CmpIPredicate::slt, a, c);
  };
  // Every op below: the element at `ivs` of the (first) result.
  std::function<Value(ArrayRef<Value>)> elementAt;
  bool failedBody = false;
  if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
    llvm::SmallBitVector dropped = slice.getDroppedDims();
    elementAt = [&, slice, dropped](ArrayRef<Value> ivs) mutable {
      SmallVector<Value> offsets = constants(slice.getMixedOffsets());
      SmallVector<Value> strides = constants(slice.getMixedStrides());
      SmallVector<Value> at;
      unsigned k = 0;
      for (unsigned d = 0; d < offsets.size(); ++d)
        at.push_back(dropped.test(d)
                         ? offsets[d]
                         : b->addi(offsets[d], b->muli(ivs[k++], strides[d])));
      return loadAt(slice.getSource(), at);
    };
  } else if (auto insert = dyn_cast<tensor::InsertSliceOp>(op)) {
    llvm::SmallBitVector dropped = insert.getDroppedDims();
    elementAt = [&, insert, dropped](ArrayRef<Value> ivs) mutable {
      SmallVector<Value> offsets = constants(insert.getMixedOffsets());
      SmallVector<Value> sizes = constants(insert.getMixedSizes());
      SmallVector<Value> strides = constants(insert.getMixedStrides());
      Value inside = arith::ConstantIntOp::create(*b, 1, 1);
      SmallVector<Value> at;
      for (unsigned d = 0; d < ivs.size(); ++d) {
        Value rel = b->subi(ivs[d], offsets[d]);
        Value q = arith::DivSIOp::create(*b, rel, strides[d]);
        Value r = arith::RemSIOp::create(*b, rel, strides[d]);
        inside = b->andi(inside, sge(rel, index(0)));
        inside = b->andi(inside, b->eq(r, index(0)));
        inside = b->andi(inside, slt(q, sizes[d]));
        if (!dropped.test(d))
          at.push_back(q);
      }
      return b->ifValue(
          element, inside, [&] { return loadAt(insert.getSource(), at); },
          [&] { return loadAt(insert.getDest(), ivs); });
    };
  } else if (auto concat = dyn_cast<tensor::ConcatOp>(op)) {
    elementAt = [&, concat](ArrayRef<Value> ivs) mutable {
      int64_t dim = concat.getDim();
      std::function<Value(unsigned, int64_t)> pick =
          [&](unsigned j, int64_t offset) -> Value {
        Value in = concat.getInputs()[j];
        int64_t size = cast<RankedTensorType>(in.getType()).getDimSize(dim);
        auto read = [&] {
          SmallVector<Value> at(ivs);
          at[dim] = b->subi(ivs[dim], index(offset));
          return loadAt(in, at);
        };
        if (j + 1 == concat.getInputs().size())
          return read();
        return b->ifValue(element, b->ult(ivs[dim], index(offset + size)),
                          read, [&] { return pick(j + 1, offset + size); });
      };
      return pick(0, 0);
    };
  } else if (auto pad = dyn_cast<tensor::PadOp>(op)) {
    elementAt = [&, pad](ArrayRef<Value> ivs) mutable {
      SmallVector<Value> low = constants(pad.getMixedLowPad());
      auto srcType = pad.getSourceType();
      Value inside = arith::ConstantIntOp::create(*b, 1, 1);
      SmallVector<Value> at;
      for (unsigned d = 0; d < ivs.size(); ++d) {
        Value rel = b->subi(ivs[d], low[d]);
        inside = b->andi(inside, sge(rel, index(0)));
        inside = b->andi(inside, slt(rel, index(srcType.getDimSize(d))));
        at.push_back(rel);
      }
      return b->ifValue(
          element, inside, [&] { return loadAt(pad.getSource(), at); },
          [&]() -> Value {
            FailureOr<SmallVector<Value>> y =
                cloneBody(pad.getRegion().front(), ivs, ivs);
            if (failed(y)) {
              failedBody = true;
              return zero(element);
            }
            return y->front();
          });
    };
  } else if (auto gen = dyn_cast<tensor::GenerateOp>(op)) {
    elementAt = [&, gen](ArrayRef<Value> ivs) mutable -> Value {
      FailureOr<SmallVector<Value>> y =
          cloneBody(gen.getBody().front(), ivs, ivs);
      if (failed(y)) {
        failedBody = true;
        return zero(element);
      }
      return y->front();
    };
  } else if (auto splat = dyn_cast<tensor::SplatOp>(op)) {
    elementAt = [&, splat](ArrayRef<Value>) mutable {
      return outsideValues.lookup(splat.getInput());
    };
  } else if (auto from = dyn_cast<tensor::FromElementsOp>(op)) {
    elementAt = [&, from](ArrayRef<Value> ivs) mutable {
      Value i = linearize(ivs, shape);
      Value v = outsideValues.lookup(from.getElements()[0]);
      for (auto [j, e] : llvm::enumerate(from.getElements()))
        if (j)
          v = b->select(b->eq(i, index(j)), outsideValues.lookup(e), v);
      return v;
    };
  } else if (op->hasTrait<OpTrait::Elementwise>() && op->getNumRegions() == 0 &&
             isPure(op)) {
    // arith and math ops on tensors of one shape: the scalar op per element.
    for (Value v : llvm::concat<Value>(op->getOperands(), op->getResults()))
      if (auto t = dyn_cast<RankedTensorType>(v.getType());
          t && t.getShape() != shape)
        return unsupported("on tensors of different shapes is not supported "
                           "on the GPU");
    LogicalResult status = startKernel(product(shape), [&](Value i) {
      SmallVector<Value> ivs = delinearize(i, shape);
      OperationState state(op->getLoc(), op->getName());
      for (Value v : op->getOperands())
        state.addOperands(isa<RankedTensorType>(v.getType())
                              ? loadAt(v, ivs)
                              : outsideValues.lookup(v));
      for (Value r : op->getResults())
        state.addTypes(cast<RankedTensorType>(r.getType()).getElementType());
      state.addAttributes(op->getAttrs());
      Operation *scalar = b->create(state);
      for (unsigned k = 0; k < op->getNumResults(); ++k)
        b->store(scalar->getResult(k), b->arg(resultArg(reads0, k)),
                 i);
    });
    result.kernel.flops = product(shape);
    return status;
  } else {
    return unsupported("has no GPU kernel (it is not supported on the GPU)");
  }
  if (op->getNumResults() != 1)
    return unsupported("with several results is not supported on the GPU");
  LogicalResult status = startKernel(product(shape), [&](Value i) {
    SmallVector<Value> ivs = delinearize(i, shape);
    b->store(elementAt(ivs), b->arg(resultArg(reads0, 0)), i);
  });
  if (failed(status) || failedBody)
    return failure();
  return success();
}

FailureOr<GPUFallback> FallbackKernel::build() {
  if (op->getNumResults() == 0)
    return unsupported("has no results to compute on the GPU (not "
                       "supported)");
  if (failed(collectAll()))
    return failure();
  LogicalResult status = failure();
  if (auto lop = dyn_cast<linalg::LinalgOp>(op))
    status = buildLinalg(lop);
  else
    status = buildTensorOp();
  if (failed(status)) {
    if (result.kernel.func)
      result.kernel.func.erase();
    return failure();
  }
  return result;
}

FailureOr<GPUFallback> mlir::bitnet::fallbackKernel(gpu::GPUModuleOp module,
                                                    Operation *op,
                                                    unsigned id) {
  return FallbackKernel(module, op, id).build();
}

GPUKernel mlir::bitnet::copyKernel(gpu::GPUModuleOp module, int64_t count,
                                   Type element) {
  GPUKernel kernel;
  std::string type;
  llvm::raw_string_ostream os(type);
  element.print(os);
  kernel.name = llvm::formatv("bitnet_copy_{0}_{1}", count, type).str();
  int64_t block = std::clamp<int64_t>(count, 1, kElementwiseThreads);
  kernel.block = {block, 1, 1};
  kernel.grid = {std::max<int64_t>(1, llvm::divideCeil(count, block)), 1, 1};
  kernel.bytes =
      2 * count * std::max<int64_t>(1, element.getIntOrFloatBitWidth() / 8);
  MemRefType flat = flatMemRef(count, element);
  if (!createKernel(module, kernel, {flat, flat}))
    return kernel;
  GPUKernelBuilder b(kernel.func);
  Value i = b.globalIndex(block);
  b.ifThen(b.ult(i, b.idx(count)), [&] { b.store(b.load(b.arg(0), i), b.arg(1), i); });
  return kernel;
}
