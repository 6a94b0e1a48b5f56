//===- BitNetToGPU.cpp - A model's entry function on an NVIDIA GPU -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Plans one device buffer per tensor value of the entry function, then
// rewrites the function into memref arguments and a list of gpu.launch_func
// ops over flat views of those buffers. See bitnet-lower-to-gpu in Passes.td.
//
//===----------------------------------------------------------------------===//

#include "GPUKernelSupport.h"
#include "bitnet/Conversion/GPUKernels.h"
#include "bitnet/Conversion/Passes.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/IR/Builders.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/SmallPtrSet.h"
#include "llvm/ADT/SetVector.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETLOWERTOGPU
#include "bitnet/Conversion/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

static constexpr StringLiteral kKernelModule = "bitnet_kernels";
static constexpr int64_t kWorkspaceAlignment = 256;

namespace {
/// Where a value lives on the device.
struct BufRef {
  enum Kind { Arg, Workspace, Global } kind = Workspace;
  unsigned arg = 0;   ///< argument of the new function
  int64_t offset = 0; ///< bytes into the workspace
  std::string global; ///< memref.global symbol
};

/// A kernel operand: a buffer seen as a flat memref of `count` `element`s.
struct Operand {
  BufRef buf;
  int64_t count;
  Type element;
};

/// The quantised activations of one input, for every bitlinear that reads
/// it (q/k/v, gate/up): one quantisation kernel, not one per layer.
struct Quantized {
  BufRef xq, xs, sx;
  int64_t rowBytes, tokens;
};

struct Launch {
  GPUKernel kernel;
  SmallVector<Operand> operands;
  Location loc;
};

struct BitNetLowerToGPUPass
    : bitnet::impl::BitNetLowerToGPUBase<BitNetLowerToGPUPass> {
  using Base::Base;
  void runOnOperation() override;

private:
  LogicalResult plan(func::FuncOp func);
  LogicalResult planOp(Operation *op);
  BufRef allocate(int64_t bytes);
  BufRef resultBuffer(Value v);
  std::string addGlobal(Location loc, DenseElementsAttr data);
  Operand operand(Value v);
  void launch(GPUKernel kernel, SmallVector<Operand> operands, Location loc);
  /// The shape and style of `rope` (static shape).
  RopeSpec ropeSpec(RopeOp rope);
  /// The inverse frequencies of `rope`, a new global.
  Operand ropeFrequencies(RopeOp rope);
  /// Whether `y` has readers and all are bitlinear layers that take it as
  /// their input (and it is no output of the function).
  bool readByBitlinearsOnly(Value y);
  /// The addition that is the only reader of `y`, with its other operand,
  /// when that operand is an f32 tensor of y's shape already on the device;
  /// null otherwise.
  std::pair<Operation *, Value> residualAdd(Value y);
  /// Chunks of the quantised rows of `x` that every bitlinear layer reading
  /// it fits: the largest of their layouts'.
  int64_t sharedRowChunks(Value x);
  /// `op` (arith.addf or arith.mulf) on f32 tensors `a` and `b` into
  /// `result` (the op's own result by default).
  LogicalResult planBinary(Operation *op, Value a, Value b,
                           Value result = Value());
  /// `op` as the generic kernel of GPUFallbackKernels.cpp.
  LogicalResult planFallback(Operation *op);

  ModuleOp module;
  func::FuncOp entryFunc;
  unsigned numInputs = 0, numOutputs = 0;
  int64_t workspaceBytes = 0;
  DenseMap<Value, BufRef> buffers;
  DenseMap<Value, Quantized> quantized;
  /// Ops whose work another op's kernel does (residual adds of GEMVs, the
  /// squared ReLU and multiply before an FFN's sub-norm, the ropes before an
  /// attention).
  llvm::SmallPtrSet<Operation *, 16> fused;
  /// Sub-norms whose input, relu(gate)^2 * up, their kernel computes: gate
  /// and up.
  DenseMap<Operation *, std::pair<Value, Value>> gatedNorms;
  /// Attentions whose query and key ropes their cache update does.
  DenseMap<Operation *, std::pair<RopeOp, RopeOp>> ropedAttention;
  /// For each result value, the output slot it is written to directly.
  DenseMap<Value, unsigned> directOutputs;
  /// For each result of the entry function, its output slot, or -1 for a KV
  /// cache updated in place (state: the input is the output).
  SmallVector<int> outputSlot;
  /// Arguments the run updates in place (the KV caches).
  llvm::SmallSetVector<unsigned, 4> stateArgs;
  SmallVector<Launch> launches;
  /// The kernels, in order of first launch.
  gpu::GPUModuleOp kernels;
  unsigned globalCounter = 0;
  unsigned fallbackCounter = 0;
};
} // namespace

static int64_t elementBytes(Type t) {
  return std::max<int64_t>(1, t.getIntOrFloatBitWidth() / 8);
}

int64_t BitNetLowerToGPUPass::sharedRowChunks(Value x) {
  int64_t chunks = 0;
  for (Operation *user : x.getUsers())
    if (auto bl = dyn_cast<BitLinearOp>(user); bl && bl.getInput() == x) {
      TernaryType w = bl.getWeight().getType();
      int64_t k = w.getCols(), m = bl.getInput().getType().getNumElements() / k;
      chunks = std::max(
          chunks, chooseGemvLayout(m, w.getRows(), k, gemvRows).paddedChunks);
    }
  return chunks;
}

BufRef BitNetLowerToGPUPass::allocate(int64_t bytes) {
  BufRef ref;
  ref.kind = BufRef::Workspace;
  ref.offset = workspaceBytes;
  workspaceBytes += llvm::alignTo(std::max<int64_t>(bytes, 1), kWorkspaceAlignment);
  return ref;
}

BufRef BitNetLowerToGPUPass::resultBuffer(Value v) {
  auto it = directOutputs.find(v);
  if (it != directOutputs.end()) {
    BufRef ref;
    ref.kind = BufRef::Arg;
    ref.arg = numInputs + it->second;
    return buffers[v] = ref;
  }
  auto type = cast<RankedTensorType>(v.getType());
  return buffers[v] = allocate(type.getNumElements() *
                               elementBytes(type.getElementType()));
}

std::string BitNetLowerToGPUPass::addGlobal(Location loc, DenseElementsAttr data) {
  std::string name = "__bitnet_gpu_const_" + std::to_string(globalCounter++);
  auto flat = MemRefType::get({data.getNumElements()}, data.getElementType());
  auto tensorType = RankedTensorType::get({data.getNumElements()},
                                          data.getElementType());
  OpBuilder b(module.getBodyRegion());
  b.setInsertionPointToStart(module.getBody());
  auto global = memref::GlobalOp::create(
      b, loc, name, b.getStringAttr("private"), flat, data.reshape(tensorType),
      /*constant=*/true, b.getI64IntegerAttr(64));
  (void)global;
  return name;
}

Operand BitNetLowerToGPUPass::operand(Value v) {
  auto type = cast<RankedTensorType>(v.getType());
  // A tensor.empty has a buffer only once something reads it (its
  // elements are undefined).
  if (!buffers.count(v))
    resultBuffer(v);
  return {buffers.lookup(v), type.getNumElements(), type.getElementType()};
}

void BitNetLowerToGPUPass::launch(GPUKernel kernel,
                                  SmallVector<Operand> operands, Location loc) {
  launches.push_back({std::move(kernel), std::move(operands), loc});
}

static BufRef globalBuffer(std::string name) {
  BufRef ref;
  ref.kind = BufRef::Global;
  ref.global = std::move(name);
  return ref;
}

/// The element type's name in kernel text (f32, f16, i32, i64).
static std::string typeName(Type t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  t.print(os);
  return s;
}

/// The arith.addf or arith.mulf of the two inputs that is the whole body of
/// an all-parallel, identity-mapped `generic`, or null.
static Operation *elementwiseBody(linalg::GenericOp generic) {
  if (generic.getNumDpsInputs() != 2 || generic.getNumDpsInits() != 1 ||
      generic.getNumReductionLoops() != 0 ||
      !llvm::all_of(generic.getIndexingMapsArray(),
                    [](AffineMap map) { return map.isIdentity(); }))
    return nullptr;
  Block &body = generic.getRegion().front();
  if (body.getOperations().size() != 2)
    return nullptr;
  Operation *op = &body.front();
  auto yield = dyn_cast<linalg::YieldOp>(body.getTerminator());
  if (!isa<arith::AddFOp, arith::MulFOp>(op) || !yield ||
      yield.getNumOperands() != 1 || yield.getOperand(0) != op->getResult(0) ||
      op->getOperand(0) != body.getArgument(0) ||
      op->getOperand(1) != body.getArgument(1))
    return nullptr;
  return op;
}

/// The 0-D tensor `s` of a `tensor.generate` that yields s[] + index, the
/// positions of a step's tokens; null for any other generate.
static Value positionRangeStart(tensor::GenerateOp gen) {
  RankedTensorType type = gen.getType();
  if (type.getRank() != 1 || !type.hasStaticShape())
    return Value();
  Block &body = gen.getBody().front();
  auto yield = dyn_cast<tensor::YieldOp>(body.getTerminator());
  auto add = yield ? yield.getValue().getDefiningOp<arith::AddIOp>()
                   : arith::AddIOp();
  if (!add || add->getBlock() != &body || body.getOperations().size() != 3)
    return Value();
  for (auto [x, y] : {std::pair(add.getLhs(), add.getRhs()),
                      std::pair(add.getRhs(), add.getLhs())}) {
    auto cast = x.getDefiningOp<arith::IndexCastOp>();
    auto extract = y.getDefiningOp<tensor::ExtractOp>();
    if (cast && cast->getBlock() == &body && cast.getIn() == body.getArgument(0) &&
        extract && extract->getBlock() != &body &&
        extract.getTensor().getType().getRank() == 0)
      return extract.getTensor();
  }
  return Value();
}

/// The int8 values of a constant ternary weight, or nothing.
static std::optional<SmallVector<int8_t>> constantTernary(Value weight) {
  if (auto constant = weight.getDefiningOp<bitnet::ConstantOp>())
    return constant.getTernaryValues();
  return std::nullopt;
}

/// Whether the specialised kernels add or multiply `a` and `b` into
/// `result`: f32 tensors of one shape.
static bool binaryFits(Value a, Value b, Value result) {
  auto type = dyn_cast<RankedTensorType>(result.getType());
  return type && type.getElementType().isF32() && a.getType() == type &&
         b.getType() == type;
}

LogicalResult BitNetLowerToGPUPass::planFallback(Operation *op) {
  FailureOr<GPUFallback> f = fallbackKernel(kernels, op, fallbackCounter++);
  if (failed(f))
    return failure();
  for (Value r : op->getResults())
    resultBuffer(r);
  SmallVector<Operand> operands;
  for (Value v : f->operands)
    operands.push_back(operand(v));
  launch(f->kernel, std::move(operands), op->getLoc());
  return success();
}

LogicalResult BitNetLowerToGPUPass::planBinary(Operation *op, Value a, Value b,
                                              Value result) {
  if (!result)
    result = op->getResult(0);
  auto type = dyn_cast<RankedTensorType>(result.getType());
  if (!type || !type.getElementType().isF32() || a.getType() != type ||
      b.getType() != type)
    return op->emitError("bitnet-lower-to-gpu: only f32 tensors of one "
                         "shape are added or multiplied on the GPU");
  resultBuffer(result);
  launch(elementwiseKernel(kernels,
                           isa<arith::AddFOp>(op) ? ElementwiseKind::Add
                                                  : ElementwiseKind::Mul,
                           type.getNumElements()),
         {operand(a), operand(b), operand(result)}, op->getLoc());
  return success();
}

RopeSpec BitNetLowerToGPUPass::ropeSpec(RopeOp rope) {
  RankedTensorType type = rope.getInput().getType();
  return {type.getDimSize(0), type.getDimSize(1), type.getDimSize(2),
          rope.getStyle() == RopeStyle::Interleaved,
          typeName(rope.getPositions().getType().getElementType())};
}

Operand BitNetLowerToGPUPass::ropeFrequencies(RopeOp rope) {
  int64_t dim = rope.getInput().getType().getDimSize(2);
  SmallVector<float> freqs =
      ropeInverseFrequencies(rope.getTheta().convertToFloat(), dim);
  auto freqType =
      RankedTensorType::get({dim / 2}, Float32Type::get(rope.getContext()));
  return Operand{globalBuffer(addGlobal(
                     rope.getLoc(), DenseElementsAttr::get(freqType, ArrayRef(freqs)))),
                 dim / 2, freqType.getElementType()};
}

bool BitNetLowerToGPUPass::readByBitlinearsOnly(Value y) {
  return !y.use_empty() && !directOutputs.count(y) &&
         llvm::all_of(y.getUsers(), [&](Operation *user) {
           auto bl = dyn_cast<BitLinearOp>(user);
           return bl && bl.getInput() == y;
         });
}

std::pair<Operation *, Value> BitNetLowerToGPUPass::residualAdd(Value y) {
  if (!y.hasOneUse())
    return {};
  Operation *user = *y.getUsers().begin();
  Value a, b;
  if (auto add = dyn_cast<arith::AddFOp>(user)) {
    a = add.getLhs();
    b = add.getRhs();
  } else if (auto generic = dyn_cast<linalg::GenericOp>(user)) {
    Operation *body = elementwiseBody(generic);
    if (!body || !isa<arith::AddFOp>(body))
      return {};
    a = generic.getInputs()[0];
    b = generic.getInputs()[1];
  } else {
    return {};
  }
  // IEEE addition is commutative: y + r and r + y give the same bits.
  Value residual = a == y ? b : a;
  if (residual.getType() != y.getType() ||
      user->getResult(0).getType() != y.getType() ||
      !cast<RankedTensorType>(y.getType()).getElementType().isF32() ||
      !buffers.count(residual))
    return {};
  return {user, residual};
}

LogicalResult BitNetLowerToGPUPass::planOp(Operation *op) {
  if (fused.contains(op))
    return success();
  Location loc = op->getLoc();
  MLIRContext *ctx = op->getContext();
  Type f32 = Float32Type::get(ctx), i8 = IntegerType::get(ctx, 8),
       i32 = IntegerType::get(ctx, 32);
  auto ws = [&](const BufRef &ref, int64_t count, Type t) {
    return Operand{ref, count, t};
  };
  if (auto c = dyn_cast<arith::ConstantOp>(op)) {
    // A scalar is computed again in each kernel that reads it.
    if (!isa<ShapedType>(c.getType()))
      return success();
    auto data = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!data || !isa<RankedTensorType>(c.getType()))
      return op->emitError("bitnet-lower-to-gpu: only dense tensor constants "
                           "can live on the GPU");
    BufRef ref;
    ref.kind = BufRef::Global;
    ref.global = addGlobal(loc, data);
    buffers[c.getResult()] = ref;
    if (directOutputs.count(c.getResult()))
      directOutputs.erase(c.getResult()); // copied by the return
    return success();
  }
  if (isa<bitnet::ConstantOp>(op))
    return success(); // read by the bitlinear ops that use it
  // Scalars (constants, elements of tensors, arithmetic on them) are
  // computed again in each kernel that reads them.
  if (op->getNumRegions() == 0 && isPure(op) && op->getNumResults() > 0 &&
      llvm::none_of(op->getResultTypes(),
                    [](Type t) { return isa<ShapedType>(t); }))
    return success();
  if (isa<tensor::ExpandShapeOp, tensor::CollapseShapeOp, tensor::ReshapeOp,
          tensor::CastOp, tensor::BitcastOp>(op)) {
    Value result = op->getResult(0);
    buffers[result] = operand(op->getOperand(0)).buf;
    directOutputs.erase(result);
    return success();
  }
  if (auto slice = dyn_cast<tensor::ExtractSliceOp>(op)) {
    // Whole rows of an intermediate (the last token's, for the head): a view
    // into the workspace at the first row.
    RankedTensorType src = slice.getSourceType(), type = slice.getType();
    BufRef ref = operand(slice.getSource()).buf;
    bool rows = src.hasStaticShape() && type.hasStaticShape() &&
                src.getRank() == type.getRank() && src.getRank() >= 1 &&
                slice.getOffsets().empty() && slice.getSizes().empty() &&
                slice.getStrides().empty() &&
                llvm::all_of(slice.getStaticStrides(),
                             [](int64_t stride) { return stride == 1; });
    for (int64_t d = 1; rows && d < src.getRank(); ++d)
      rows = slice.getStaticOffsets()[d] == 0 &&
             type.getDimSize(d) == src.getDimSize(d);
    if (!rows || ref.kind != BufRef::Workspace)
      return planFallback(op);
    ref.offset += slice.getStaticOffsets()[0] * (src.getNumElements() / src.getDimSize(0)) *
                  elementBytes(src.getElementType());
    buffers[slice.getResult()] = ref;
    directOutputs.erase(slice.getResult()); // copied by the return
    return success();
  }
  if (auto bl = dyn_cast<BitLinearOp>(op)) {
    std::optional<SmallVector<int8_t>> w = constantTernary(bl.getWeight());
    if (!w)
      return op->emitError("bitnet-lower-to-gpu: the GPU kernels need a "
                           "constant weight (bitnet.constant)");
    TernaryType wType = bl.getWeight().getType();
    int64_t n = wType.getRows(), k = wType.getCols();
    int64_t m = bl.getInput().getType().getNumElements() / k;
    GPUGemvLayout layout = chooseGemvLayout(m, n, k, gemvRows);
    layout.xRowChunks = sharedRowChunks(bl.getInput());
    std::vector<int8_t> bytes = layoutGemvWeights(*w, n, k, layout);
    auto dataType = RankedTensorType::get({(int64_t)bytes.size()}, i8);
    BufRef wRef =
        globalBuffer(addGlobal(loc, DenseElementsAttr::get(dataType, ArrayRef(bytes))));
    int64_t tokens = layout.paddedTokens(), rowBytes = layout.xRowBytes();
    // Layers that read one input share its quantisation, in rows that fit
    // every one's layout (every buffer is written once).
    auto known = quantized.find(bl.getInput());
    if (known != quantized.end() && (known->second.rowBytes != rowBytes ||
                                     known->second.tokens != tokens))
      return op->emitError("bitnet-lower-to-gpu: the quantised input's rows "
                           "do not fit this layer's layout");
    if (known == quantized.end()) {
      Quantized q{allocate(tokens * rowBytes), allocate(4 * tokens),
                  allocate(4 * tokens), rowBytes, tokens};
      launch(quantizeKernel(kernels, m, k, rowBytes, tokens),
             {operand(bl.getInput()), ws(q.xq, tokens * rowBytes, i8),
              ws(q.xs, tokens, i32), ws(q.sx, tokens, f32)},
             loc);
      known = quantized.insert_or_assign(bl.getInput(), q).first;
    }
    BufRef xq = known->second.xq, xs = known->second.xs, sx = known->second.sx;
    SmallVector<Operand> operands{Operand{wRef, (int64_t)bytes.size(), i8},
                                  ws(xq, tokens * rowBytes, i8),
                                  ws(xs, tokens, i32), ws(sx, tokens, f32),
                                  operand(bl.getWeightScale())};
    // A residual add of the output (o and down of a decoder layer) is the
    // GEMV's last step: it writes the sum, and the output is never stored.
    auto [add, residual] = residualAdd(bl.getResult());
    if (add) {
      operands.push_back(operand(residual));
      operands.push_back(ws(resultBuffer(add->getResult(0)), m * n, f32));
      fused.insert(add);
    } else {
      operands.push_back(ws(resultBuffer(bl.getResult()), m * n, f32));
    }
    launch(gemvKernel(kernels, m, n, k, layout, /*residual=*/add != nullptr),
           std::move(operands), loc);
    return success();
  }
  if (auto q = dyn_cast<QuantizeActivationsOp>(op)) {
    auto xType = q.getInput().getType();
    int64_t k = xType.getShape().back(), m = xType.getNumElements() / k;
    BufRef xq = resultBuffer(q.getQuantized());
    BufRef sx = resultBuffer(q.getScale());
    BufRef xs = allocate(4 * m);
    launch(quantizeKernel(kernels, m, k, k, m),
           {operand(q.getInput()), ws(xq, m * k, i8), ws(xs, m, i32),
            ws(sx, m, f32)},
           loc);
    return success();
  }
  if (auto norm = dyn_cast<RMSNormOp>(op)) {
    auto xType = norm.getInput().getType();
    int64_t d = xType.getShape().back(), rows = xType.getNumElements() / d;
    float eps = norm.getEpsilon().convertToFloat();
    // Read by bitlinear layers alone (each BitLinear's own norm, or the one
    // before q/k/v or gate/up): one kernel normalises and quantises, and the
    // normalised rows are never stored.
    Value y = norm.getResult();
    if (readByBitlinearsOnly(y)) {
      GPUGemvLayout layout = chooseGemvLayout(rows, 1, d);
      layout.xRowChunks = sharedRowChunks(y);
      int64_t tokens = layout.paddedTokens(), rowBytes = layout.xRowBytes();
      Quantized q{allocate(tokens * rowBytes), allocate(4 * tokens),
                  allocate(4 * tokens), rowBytes, tokens};
      SmallVector<Operand> operands;
      auto gated = gatedNorms.find(norm);
      if (gated != gatedNorms.end()) {
        operands.push_back(operand(gated->second.first));
        operands.push_back(operand(gated->second.second));
      } else {
        operands.push_back(operand(norm.getInput()));
      }
      operands.append({operand(norm.getGamma()), ws(q.xq, tokens * rowBytes, i8),
                       ws(q.xs, tokens, i32), ws(q.sx, tokens, f32)});
      launch(rmsnormQuantizeKernel(kernels, rows, d, eps, rowBytes, tokens,
                                   gated != gatedNorms.end()),
             std::move(operands), loc);
      quantized.insert_or_assign(y, q);
      return success();
    }
    resultBuffer(norm.getResult());
    launch(rmsnormKernel(kernels, rows, d, eps),
           {operand(norm.getInput()), operand(norm.getGamma()),
            operand(norm.getResult())},
           loc);
    return success();
  }
  if (auto relu = dyn_cast<SquaredReluOp>(op)) {
    resultBuffer(relu.getResult());
    launch(elementwiseKernel(kernels, ElementwiseKind::SquaredRelu,
                             relu.getType().getNumElements()),
           {operand(relu.getInput()), operand(relu.getResult())}, loc);
    return success();
  }
  if (isa<arith::AddFOp, arith::MulFOp>(op) &&
      binaryFits(op->getOperand(0), op->getOperand(1), op->getResult(0)))
    return planBinary(op, op->getOperand(0), op->getOperand(1));
  if (auto generic = dyn_cast<linalg::GenericOp>(op)) {
    // An elementwise add or multiply of two f32 tensors (ONNX Add and Mul)
    // has its kernel; any other generic the fallback's.
    Operation *body = elementwiseBody(generic);
    if (!body || !binaryFits(generic.getInputs()[0], generic.getInputs()[1],
                             generic.getResult(0)))
      return planFallback(op);
    return planBinary(body, generic.getInputs()[0], generic.getInputs()[1],
                      generic.getResult(0));
  }
  if (isa<tensor::EmptyOp>(op))
    return success(); // a buffer only where read (operand())
  if (auto gen = dyn_cast<tensor::GenerateOp>(op)) {
    Value start = positionRangeStart(gen);
    if (!start)
      return planFallback(op);
    RankedTensorType type = gen.getType();
    resultBuffer(gen.getResult());
    launch(positionRangeKernel(kernels, type.getNumElements(),
                               typeName(type.getElementType())),
           {operand(start), operand(gen.getResult())}, loc);
    return success();
  }
  if (auto emb = dyn_cast<EmbeddingOp>(op)) {
    RankedTensorType table = emb.getTable().getType();
    if (emb.getBlocked())
      return op->emitError("bitnet-lower-to-gpu: a blocked embedding table "
                           "is a CPU kernel's layout");
    if (!table.hasStaticShape() || !emb.getTokens().getType().hasStaticShape())
      return op->emitError("bitnet-lower-to-gpu: embedding needs static "
                           "shapes");
    int64_t vocab = table.getDimSize(0), dim = table.getDimSize(1);
    int64_t tokens = emb.getTokens().getType().getNumElements();
    resultBuffer(emb.getResult());
    SmallVector<Operand> operands{operand(emb.getTable()),
                                  operand(emb.getTokens())};
    if (emb.getScales())
      operands.push_back(operand(emb.getScales()));
    operands.push_back(operand(emb.getResult()));
    launch(embeddingKernel(kernels, tokens, vocab, dim,
                           typeName(table.getElementType()),
                           typeName(emb.getTokens().getType().getElementType()),
                           static_cast<bool>(emb.getScales())),
           std::move(operands), loc);
    return success();
  }
  if (auto dense = dyn_cast<DenseMatmulOp>(op)) {
    RankedTensorType w = dense.getWeight().getType();
    RankedTensorType x = dense.getInput().getType();
    if (!w.hasStaticShape() || !x.hasStaticShape())
      return op->emitError("bitnet-lower-to-gpu: dense_matmul needs static "
                           "shapes");
    if (dense.getQuantizeInput())
      return op->emitError("bitnet-lower-to-gpu: dense_matmul with "
                           "quantize_input (--float-weights=w8a8) is for "
                           "CPUs; use --float-weights=int8 on a GPU");
    int64_t n = w.getDimSize(0), k = w.getDimSize(1);
    int64_t m = x.getNumElements() / k;
    resultBuffer(dense.getResult());
    SmallVector<Operand> operands{operand(dense.getInput()),
                                  operand(dense.getWeight())};
    if (dense.getScales())
      operands.push_back(operand(dense.getScales()));
    operands.push_back(operand(dense.getResult()));
    launch(denseKernel(kernels, m, n, k, typeName(w.getElementType()),
                       static_cast<bool>(dense.getScales())),
           std::move(operands), loc);
    return success();
  }
  if (auto rope = dyn_cast<RopeOp>(op)) {
    if (!rope.getInput().getType().hasStaticShape())
      return op->emitError("bitnet-lower-to-gpu: rope needs a static shape");
    RopeSpec r = ropeSpec(rope);
    resultBuffer(rope.getResult());
    launch(ropeKernel(kernels, r.tokens, r.heads, r.dim, r.interleaved,
                      r.positionType),
           {operand(rope.getInput()), operand(rope.getPositions()),
            ropeFrequencies(rope), operand(rope.getResult())},
           loc);
    return success();
  }
  if (auto att = dyn_cast<AttentionOp>(op)) {
    RankedTensorType qType = att.getQuery().getType();
    RankedTensorType cType = att.getKCache().getType();
    if (!qType.hasStaticShape() || !cType.hasStaticShape() ||
        !att.getKey().getType().hasStaticShape())
      return op->emitError("bitnet-lower-to-gpu: attention needs static "
                           "shapes");
    // The caches are updated in place on the device: each must be an
    // argument that nothing else reads.
    for (Value cache : {att.getKCache(), att.getVCache()}) {
      auto arg = dyn_cast<BlockArgument>(cache);
      if (!arg || arg.getOwner() != &entryFunc.getBody().front() ||
          !cache.hasOneUse())
        return op->emitError("bitnet-lower-to-gpu: the KV caches must be "
                             "arguments of the entry function that only this "
                             "attention reads (the GPU updates them in place)");
      stateArgs.insert(arg.getArgNumber());
    }
    GPUAttentionShape shape{qType.getDimSize(0),
                            qType.getDimSize(1),
                            cType.getDimSize(1),
                            qType.getDimSize(2),
                            cType.getDimSize(0),
                            att.getEffectiveScale(),
                            typeName(cType.getElementType()),
                            typeName(att.getPosition().getType().getElementType())};
    if (shape.tokens > shape.capacity)
      return op->emitError("bitnet-lower-to-gpu: ")
             << shape.tokens << " new tokens do not fit a KV cache of "
             << shape.capacity;
    buffers[att.getNewKCache()] = buffers.lookup(att.getKCache());
    buffers[att.getNewVCache()] = buffers.lookup(att.getVCache());
    int64_t units = shape.tokens * shape.heads;
    BufRef scores = allocate(4 * units * shape.capacity);
    resultBuffer(att.getResult());
    auto roped = ropedAttention.find(att);
    if (roped != ropedAttention.end()) {
      // The query's and key's ropes, then the cache update, in one kernel:
      // the rotated keys go straight into the key cache.
      auto [rq, rk] = roped->second;
      resultBuffer(rq.getResult());
      launch(ropeCacheUpdateKernel(kernels, shape, ropeSpec(rq), ropeSpec(rk)),
             {operand(rq.getInput()), operand(rk.getInput()),
              operand(att.getValue()), operand(rq.getPositions()),
              operand(rk.getPositions()), ropeFrequencies(rq),
              ropeFrequencies(rk), operand(rq.getResult()),
              operand(att.getKCache()), operand(att.getVCache()),
              operand(att.getPosition())},
             loc);
    } else {
      launch(cacheUpdateKernel(kernels, shape),
             {operand(att.getKey()), operand(att.getValue()),
              operand(att.getKCache()), operand(att.getVCache()),
              operand(att.getPosition())},
             loc);
    }
    launch(attentionKernel(kernels, shape),
           {operand(att.getQuery()), operand(att.getKCache()),
            operand(att.getVCache()), operand(att.getPosition()),
            ws(scores, units * shape.capacity, f32), operand(att.getResult())},
           loc);
    return success();
  }
  if (auto ret = dyn_cast<func::ReturnOp>(op)) {
    for (auto [j, v] : llvm::enumerate(ret.getOperands())) {
      if (outputSlot[j] < 0)
        continue; // a KV cache, updated in place
      unsigned slot = outputSlot[j];
      BufRef ref = buffers.lookup(v);
      if (ref.kind == BufRef::Arg && ref.arg == numInputs + slot)
        continue;
      auto type = cast<RankedTensorType>(v.getType());
      Type element = type.getElementType();
      BufRef out;
      out.kind = BufRef::Arg;
      out.arg = numInputs + slot;
      GPUKernel copy = element.isF32()
                           ? elementwiseKernel(kernels, ElementwiseKind::Copy,
                                               type.getNumElements())
                           : copyKernel(kernels, type.getNumElements(),
                                        element);
      launch(copy,
             {operand(v), Operand{out, type.getNumElements(), element}}, loc);
    }
    return success();
  }
  if (op->getDialect() == op->getContext()->getLoadedDialect<BitNetDialect>())
    return op->emitError("bitnet-lower-to-gpu: '")
           << op->getName() << "' is not supported on the GPU in this form "
           << "(no GPU kernel takes it)";
  return planFallback(op);
}

LogicalResult BitNetLowerToGPUPass::plan(func::FuncOp func) {
  if (!func.getBody().hasOneBlock())
    return func.emitError("bitnet-lower-to-gpu: the entry function must be "
                          "one block");
  for (Type t : llvm::concat<const Type>(func.getArgumentTypes(),
                                          func.getResultTypes())) {
    auto type = dyn_cast<RankedTensorType>(t);
    if (!type || !type.hasStaticShape())
      return func.emitError("bitnet-lower-to-gpu: every argument and result "
                            "must be a statically shaped tensor, got ")
             << t;
  }
  numInputs = func.getNumArguments();
  for (BlockArgument arg : func.getArguments()) {
    BufRef ref;
    ref.kind = BufRef::Arg;
    ref.arg = arg.getArgNumber();
    buffers[arg] = ref;
  }
  // An updated KV cache returned is state, not an output: the attention
  // writes it into its input's buffer (checked when the attention is
  // planned).
  Operation *ret = func.getBody().front().getTerminator();
  numOutputs = 0;
  for (Value v : ret->getOperands()) {
    auto att = v.getDefiningOp<AttentionOp>();
    bool state = att && v != att.getResult() &&
                 isa<BlockArgument>(v == att.getNewKCache() ? att.getKCache()
                                                            : att.getVCache());
    outputSlot.push_back(state ? -1 : static_cast<int>(numOutputs++));
  }
  for (auto [j, v] : llvm::enumerate(ret->getOperands()))
    if (outputSlot[j] >= 0 && v.getDefiningOp() && !directOutputs.count(v))
      directOutputs[v] = outputSlot[j];
  // The ropes of an attention's query and key, read by it alone: one kernel
  // rotates both and updates the caches.
  func.walk([&](AttentionOp att) {
    auto rq = att.getQuery().getDefiningOp<RopeOp>();
    auto rk = att.getKey().getDefiningOp<RopeOp>();
    if (!rq || !rk || !att.getQuery().hasOneUse() ||
        !att.getKey().hasOneUse() ||
        !rq.getInput().getType().hasStaticShape() ||
        !rk.getInput().getType().hasStaticShape())
      return;
    ropedAttention[att] = {rq, rk};
    fused.insert(rq);
    fused.insert(rk);
  });
  // A gated FFN's relu(gate)^2 * up read by its sub-norm alone, whose output
  // bitlinear layers alone read: the fused norm kernel computes the product
  // too, and the squared ReLU and multiply kernels are left out.
  func.walk([&](RMSNormOp norm) {
    if (!readByBitlinearsOnly(norm.getResult()))
      return;
    Value x = norm.getInput();
    Operation *mul = x.getDefiningOp();
    if (!mul || !x.hasOneUse())
      return;
    Value p, q;
    if (isa<arith::MulFOp>(mul)) {
      p = mul->getOperand(0);
      q = mul->getOperand(1);
    } else if (auto generic = dyn_cast<linalg::GenericOp>(mul)) {
      Operation *body = elementwiseBody(generic);
      if (!body || !isa<arith::MulFOp>(body))
        return;
      p = generic.getInputs()[0];
      q = generic.getInputs()[1];
    } else {
      return;
    }
    // IEEE multiplication is commutative: either operand may be the gate's.
    auto relu = p.getDefiningOp<SquaredReluOp>();
    if (!relu || !p.hasOneUse()) {
      std::swap(p, q);
      relu = p.getDefiningOp<SquaredReluOp>();
    }
    if (!relu || !p.hasOneUse() || p == q || q.getType() != x.getType() ||
        relu.getInput().getType() != x.getType() ||
        !cast<RankedTensorType>(x.getType()).getElementType().isF32())
      return;
    gatedNorms[norm] = {relu.getInput(), q};
    fused.insert(relu);
    fused.insert(mul);
  });
  for (Operation &op : func.getBody().front())
    if (failed(planOp(&op)))
      return failure();
  return success();
}

void BitNetLowerToGPUPass::runOnOperation() {
  module = getOperation();
  MLIRContext *ctx = &getContext();
  if (module.lookupSymbol(kKernelModule)) {
    module.emitError("bitnet-lower-to-gpu: the module already has @")
        << kKernelModule;
    return signalPassFailure();
  }
  if (!isValidGemvRows(gemvRows)) {
    module.emitError("bitnet-lower-to-gpu: gemv-rows=")
        << gemvRows.getValue() << " is not 1, 2, 4, 8, 16 or 32";
    return signalPassFailure();
  }
  // The entry function: the named one, or the only public one.
  func::FuncOp func;
  for (auto f : module.getOps<func::FuncOp>()) {
    if (f.isExternal())
      continue;
    if (!entry.empty() ? f.getSymName() == entry : f.isPublic()) {
      if (func) {
        module.emitError("bitnet-lower-to-gpu: several public functions; "
                         "name the entry with entry=");
        return signalPassFailure();
      }
      func = f;
    }
  }
  if (!func) {
    module.emitError("bitnet-lower-to-gpu: no entry function") 
        << (entry.empty() ? std::string() : " '" + entry + "'");
    return signalPassFailure();
  }
  entryFunc = func;
  // The kernels, built as the plan launches them.
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  kernels = gpu::GPUModuleOp::create(b, func.getLoc(), kKernelModule);
  if (failed(plan(func))) {
    kernels.erase();
    return signalPassFailure();
  }
  module->setAttr(gpu::GPUDialect::getContainerModuleAttrName(),
                  b.getUnitAttr());

  // The host function: inputs, outputs, the device workspace.
  Location loc = func.getLoc();
  SmallVector<Type> argTypes;
  auto memrefOf = [](Type t) {
    auto type = cast<RankedTensorType>(t);
    return MemRefType::get(type.getShape(), type.getElementType());
  };
  for (Type t : func.getArgumentTypes())
    argTypes.push_back(memrefOf(t));
  for (auto [j, t] : llvm::enumerate(func.getResultTypes()))
    if (outputSlot[j] >= 0)
      argTypes.push_back(memrefOf(t));
  auto wsType = MemRefType::get({std::max<int64_t>(workspaceBytes, 1)},
                                b.getI8Type());
  argTypes.push_back(wsType);
  b.setInsertionPoint(func);
  auto host = func::FuncOp::create(b, loc, func.getSymName(),
                                   b.getFunctionType(argTypes, {}));
  host.setVisibility(func.getVisibility());
  for (NamedAttribute attr : func->getDiscardableAttrs())
    host->setAttr(attr.getName(), attr.getValue());
  // Names of the outputs that remain.
  if (auto names = func->getAttrOfType<ArrayAttr>("bitnet.output_names")) {
    SmallVector<Attribute> kept;
    for (auto [j, name] : llvm::enumerate(names.getValue()))
      if (j >= outputSlot.size() || outputSlot[j] >= 0)
        kept.push_back(name);
    host->setAttr("bitnet.output_names", b.getArrayAttr(kept));
  }
  for (unsigned i = 0; i < numInputs; ++i) {
    for (NamedAttribute attr : ::mlir::function_interface_impl::getArgAttrs(func, i))
      host.setArgAttr(i, attr.getName(), attr.getValue());
    if (stateArgs.contains(i))
      host.setArgAttr(i, "bitnet.state", b.getUnitAttr());
  }
  for (unsigned j = 0; j < func.getNumResults(); ++j) {
    if (outputSlot[j] < 0)
      continue;
    unsigned arg = numInputs + outputSlot[j];
    host.setArgAttr(arg, "bufferize.result", b.getUnitAttr());
    if (DictionaryAttr attrs = func.getResultAttrDict(j))
      for (NamedAttribute attr : attrs.getValue())
        host.setArgAttr(arg, attr.getName(), attr.getValue());
  }
  unsigned wsArg = numInputs + numOutputs;
  host.setArgAttr(wsArg, "bitnet.gpu_workspace", b.getUnitAttr());
  Block *body = host.addEntryBlock();
  b.setInsertionPointToStart(body);

  auto view = [&](const Operand &o) -> Value {
    auto flat = MemRefType::get({o.count}, o.element);
    switch (o.buf.kind) {
    case BufRef::Global:
      return memref::GetGlobalOp::create(b, loc, flat, o.buf.global);
    case BufRef::Workspace: {
      Value off = arith::ConstantIndexOp::create(b, loc, o.buf.offset);
      return memref::ViewOp::create(b, loc, flat, body->getArgument(wsArg), off,
                                    ValueRange{});
    }
    case BufRef::Arg: {
      Value arg = body->getArgument(o.buf.arg);
      auto type = cast<MemRefType>(arg.getType());
      if (type.getRank() == 1)
        return arg;
      if (type.getRank() == 0)
        return memref::ExpandShapeOp::create(b, loc, flat, arg,
                                             ArrayRef<ReassociationIndices>{});
      ReassociationIndices all;
      for (int64_t d = 0; d < type.getRank(); ++d)
        all.push_back(d);
      return memref::CollapseShapeOp::create(b, loc, arg,
                                             ArrayRef<ReassociationIndices>{all});
    }
    }
    llvm_unreachable("unknown buffer kind");
  };
  for (const Launch &l : launches) {
    SmallVector<Value> args;
    for (const Operand &o : l.operands)
      args.push_back(view(o));
    auto dim = [&](const std::array<int64_t, 3> &d) {
      return gpu::KernelDim3{arith::ConstantIndexOp::create(b, l.loc, d[0]),
                             arith::ConstantIndexOp::create(b, l.loc, d[1]),
                             arith::ConstantIndexOp::create(b, l.loc, d[2])};
    };
    auto kernelRef = SymbolRefAttr::get(
        ctx, kKernelModule, {FlatSymbolRefAttr::get(ctx, l.kernel.name)});
    auto op = gpu::LaunchFuncOp::create(b, l.loc, kernelRef, dim(l.kernel.grid),
                                        dim(l.kernel.block), Value(), args);
    op->setAttr("bitnet.bytes", b.getI64IntegerAttr(l.kernel.bytes));
    op->setAttr("bitnet.flops", b.getI64IntegerAttr(l.kernel.flops));
  }
  func::ReturnOp::create(b, loc);
  func.erase();
}
