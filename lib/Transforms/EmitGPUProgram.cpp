//===- EmitGPUProgram.cpp - The launch table of a GPU model ------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Turns the host function of bitnet-lower-to-gpu (gpu.launch_func ops over
// views of its arguments, the device workspace and constant globals) and the
// compiled `gpu.binary @bitnet_kernels` into the `bitnet_gpu_program` of
// runtime/include/bitnet_rt/model_abi.h, as LLVM-dialect globals. The host
// function is left with its inputs and outputs and an empty body, for
// bitnet-emit-entry-point to describe.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/LLVMIR/NVVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FileUtilities.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Program.h"
#include "llvm/Support/raw_ostream.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETEMITGPUPROGRAM
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

static constexpr StringLiteral kProgramSymbol = "__bitnet_gpu_program";
// bitnet_gpu_arg_kind (model_abi.h).
static constexpr int32_t kArgBuffer = 1, kArgWorkspace = 2, kArgWeight = 3;

namespace {
struct ArgRef {
  int32_t kind, index;
  int64_t offset;
};

struct BitNetEmitGPUProgramPass
    : bitnet::impl::BitNetEmitGPUProgramBase<BitNetEmitGPUProgramPass> {
  using Base::Base;
  void runOnOperation() override;
};
} // namespace

/// Runs ptxas on `ptx`; the cubin, or an error that shows how to reproduce.
static FailureOr<std::string> assemble(StringRef ptxas, StringRef arch,
                                       StringRef ptx, Location loc) {
  SmallString<128> in, out, err;
  if (llvm::sys::fs::createTemporaryFile("bitnet-kernels", "ptx", in) ||
      llvm::sys::fs::createTemporaryFile("bitnet-kernels", "cubin", out) ||
      llvm::sys::fs::createTemporaryFile("bitnet-ptxas", "log", err))
    return emitError(loc, "cannot create temporary files for ptxas");
  llvm::FileRemover removeOut(out), removeErr(err);
  {
    std::error_code ec;
    llvm::raw_fd_ostream os(in, ec);
    if (ec)
      return emitError(loc, "cannot write ") << in << ": " << ec.message();
    os << ptx;
  }
  std::string archFlag = ("-arch=" + arch).str();
  SmallVector<StringRef> args{ptxas, archFlag, "-O3", in, "-o", out};
  std::optional<StringRef> redirects[] = {std::nullopt, StringRef(err),
                                          StringRef(err)};
  std::string message;
  int rc = llvm::sys::ExecuteAndWait(ptxas, args, std::nullopt, redirects, 0, 0,
                                     &message);
  if (rc != 0) {
    std::string log;
    if (auto buf = llvm::MemoryBuffer::getFile(err))
      log = (*buf)->getBuffer().str();
    // Keep the PTX so the command can be rerun.
    return emitError(loc, "ptxas rejected the generated PTX")
           << (message.empty() ? "" : " (" + message + ")") << ":\n"
           << log << "reproduce with: " << llvm::join(args, " ");
  }
  llvm::sys::fs::remove(in);
  auto buf = llvm::MemoryBuffer::getFile(out, /*IsText=*/false);
  if (!buf)
    return emitError(loc, "cannot read the cubin ptxas wrote");
  return (*buf)->getBuffer().str();
}

void BitNetEmitGPUProgramPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = &getContext();
  // The host function: the one with a device workspace argument.
  func::FuncOp host;
  unsigned wsArg = 0;
  for (auto f : module.getOps<func::FuncOp>())
    for (unsigned i = 0; i < f.getNumArguments(); ++i)
      if (f.getArgAttr(i, "bitnet.gpu_workspace")) {
        host = f;
        wsArg = i;
      }
  if (!host)
    return; // not a GPU model
  auto binary = module.lookupSymbol<gpu::BinaryOp>("bitnet_kernels");
  if (!binary || binary.getObjects().size() != 1) {
    host.emitError("bitnet-emit-gpu-program: expected one compiled "
                   "gpu.binary @bitnet_kernels (run gpu-module-to-binary)");
    return signalPassFailure();
  }
  auto object = cast<gpu::ObjectAttr>(binary.getObjects()[0]);
  if (object.getFormat() != gpu::CompilationTarget::Assembly) {
    binary.emitError("bitnet-emit-gpu-program: expected PTX (format=isa)");
    return signalPassFailure();
  }
  auto target = dyn_cast<NVVM::NVVMTargetAttr>(object.getTarget());
  if (!target) {
    binary.emitError("bitnet-emit-gpu-program: expected an #nvvm.target");
    return signalPassFailure();
  }
  std::string ptx = object.getObject().str();
  std::string arch = target.getChip().str();
  std::string cubin;
  if (!ptxas.empty()) {
    FailureOr<std::string> assembled = assemble(ptxas, arch, ptx, binary.getLoc());
    if (failed(assembled))
      return signalPassFailure();
    cubin = std::move(*assembled);
  }

  // Trace every kernel operand to its buffer.
  SmallVector<std::string> kernelNames;
  llvm::StringMap<int32_t> kernelIndex;
  SmallVector<StringRef> weightGlobals;
  llvm::StringMap<int32_t> weightIndex;
  struct LaunchInfo {
    int32_t kernel;
    int64_t grid[3], block[3];
    SmallVector<ArgRef> args;
    int64_t bytes, flops;
  };
  SmallVector<LaunchInfo> launches;
  unsigned numBuffers = 0;
  SmallVector<int32_t> bufferSlot(host.getNumArguments(), -1);
  // Inputs, then outputs, as bitnet-emit-entry-point orders them.
  for (bool outputs : {false, true})
    for (unsigned i = 0; i < host.getNumArguments(); ++i)
      if (i != wsArg &&
          static_cast<bool>(host.getArgAttr(i, "bufferize.result")) == outputs)
        bufferSlot[i] = numBuffers++;
  auto constantOf = [](Value v) -> std::optional<int64_t> {
    APInt value;
    if (auto c = v.getDefiningOp<arith::ConstantIndexOp>())
      return c.value();
    return std::nullopt;
  };
  std::function<FailureOr<ArgRef>(Value)> trace = [&](Value v) -> FailureOr<ArgRef> {
    if (auto arg = dyn_cast<BlockArgument>(v)) {
      if (arg.getArgNumber() == wsArg)
        return ArgRef{kArgWorkspace, 0, 0};
      return ArgRef{kArgBuffer, bufferSlot[arg.getArgNumber()], 0};
    }
    Operation *op = v.getDefiningOp();
    if (isa<memref::CollapseShapeOp, memref::ExpandShapeOp>(op))
      return trace(op->getOperand(0));
    if (auto view = dyn_cast<memref::ViewOp>(op)) {
      FailureOr<ArgRef> base = trace(view.getSource());
      std::optional<int64_t> off = constantOf(view.getByteShift());
      if (failed(base) || !off || !view.getSizes().empty())
        return failure();
      base->offset += *off;
      return base;
    }
    if (auto get = dyn_cast<memref::GetGlobalOp>(op)) {
      StringRef name = get.getName();
      auto [it, inserted] = weightIndex.insert({name, (int32_t)weightGlobals.size()});
      if (inserted)
        weightGlobals.push_back(name);
      return ArgRef{kArgWeight, it->second, 0};
    }
    return failure();
  };
  for (Operation &op : host.getBody().front()) {
    auto launch = dyn_cast<gpu::LaunchFuncOp>(&op);
    if (!launch)
      continue;
    LaunchInfo info;
    StringRef name = launch.getKernelName();
    auto [it, inserted] = kernelIndex.insert({name, (int32_t)kernelNames.size()});
    if (inserted)
      kernelNames.push_back(name.str());
    info.kernel = it->second;
    gpu::KernelDim3 grid = launch.getGridSizeOperandValues();
    gpu::KernelDim3 block = launch.getBlockSizeOperandValues();
    Value dims[] = {grid.x, grid.y, grid.z, block.x, block.y, block.z};
    for (int d = 0; d < 6; ++d) {
      std::optional<int64_t> c = constantOf(dims[d]);
      if (!c) {
        launch.emitError("bitnet-emit-gpu-program: launch sizes must be "
                         "constants");
        return signalPassFailure();
      }
      (d < 3 ? info.grid[d] : info.block[d - 3]) = *c;
    }
    if (launch.getDynamicSharedMemorySize()) {
      launch.emitError("bitnet-emit-gpu-program: dynamic shared memory is "
                       "not supported");
      return signalPassFailure();
    }
    for (Value operand : launch.getKernelOperands()) {
      FailureOr<ArgRef> ref = trace(operand);
      if (failed(ref)) {
        launch.emitError("bitnet-emit-gpu-program: cannot tell which buffer "
                         "a kernel operand is");
        return signalPassFailure();
      }
      info.args.push_back(*ref);
    }
    auto intAttr = [&](StringRef attr) {
      auto a = launch->getAttrOfType<IntegerAttr>(attr);
      return a ? a.getInt() : 0;
    };
    info.bytes = intAttr("bitnet.bytes");
    info.flops = intAttr("bitnet.flops");
    launches.push_back(std::move(info));
  }
  int64_t workspaceBytes =
      cast<MemRefType>(host.getArgument(wsArg).getType()).getNumElements();

  // Globals (model_abi.h layouts).
  OpBuilder b(ctx);
  b.setInsertionPointToEnd(module.getBody());
  Location loc = host.getLoc();
  Type i8 = b.getI8Type(), i32 = b.getI32Type(), i64 = b.getI64Type();
  Type ptr = LLVM::LLVMPointerType::get(ctx);
  unsigned counter = 0;
  auto uniqueName = [&](StringRef kind) {
    return ("__bitnet_gpu_" + kind + "_" + Twine(counter++)).str();
  };
  auto bytesGlobal = [&](StringRef data, bool nul, StringRef kind,
                         unsigned alignment = 1) {
    std::string text = data.str();
    if (nul)
      text.push_back('\0');
    auto type = LLVM::LLVMArrayType::get(i8, std::max<size_t>(text.size(), 1));
    if (text.empty())
      text.push_back('\0');
    auto g = LLVM::GlobalOp::create(b, loc, type, true, LLVM::Linkage::Private,
                                    uniqueName(kind), b.getStringAttr(text));
    if (alignment > 1)
      g.setAlignment(alignment);
    return g;
  };
  auto aggregate = [&](Type type, StringRef name, LLVM::Linkage linkage,
                       function_ref<Value(OpBuilder &, Value)> fill) {
    auto g = LLVM::GlobalOp::create(b, loc, type, true, linkage, name,
                                    Attribute());
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPointToStart(b.createBlock(&g.getInitializerRegion()));
    LLVM::ReturnOp::create(b, loc, fill(b, LLVM::PoisonOp::create(b, loc, type)));
    return g;
  };
  auto cst = [&](OpBuilder &ib, Type t, int64_t v) -> Value {
    return LLVM::ConstantOp::create(ib, loc, t, ib.getIntegerAttr(t, v));
  };
  auto addr = [&](OpBuilder &ib, LLVM::GlobalOp g) -> Value {
    return LLVM::AddressOfOp::create(ib, loc, g);
  };
  auto insert = [&](OpBuilder &ib, Value agg, Value v, ArrayRef<int64_t> pos) {
    return LLVM::InsertValueOp::create(ib, loc, agg, v, pos).getResult();
  };

  // Weights: the constant globals' bytes, 64-byte aligned.
  SmallVector<std::pair<LLVM::GlobalOp, int64_t>> weightData;
  for (StringRef name : weightGlobals) {
    auto global = module.lookupSymbol<memref::GlobalOp>(name);
    auto init = global ? dyn_cast_or_null<DenseElementsAttr>(
                             global.getInitialValueAttr())
                       : DenseElementsAttr();
    if (!init) {
      host.emitError("bitnet-emit-gpu-program: @") << name
          << " is not a constant global";
      return signalPassFailure();
    }
    ArrayRef<char> raw = init.getRawData();
    std::string data;
    if (init.getElementType().isInteger(1)) {
      // Booleans are bits in the attribute and bytes (0 or 1) in memory.
      for (bool v : init.getValues<bool>())
        data.push_back(v ? 1 : 0);
    } else if (init.isSplat()) {
      int64_t elemBytes = raw.size();
      for (int64_t i = 0; i < init.getNumElements(); ++i)
        data.append(raw.data(), elemBytes);
    } else {
      data.assign(raw.data(), raw.size());
    }
    weightData.push_back({bytesGlobal(data, false, "weight", 64),
                          (int64_t)data.size()});
  }
  auto weightType = LLVM::LLVMStructType::getLiteral(ctx, {ptr, i64});
  LLVM::GlobalOp weightTable = aggregate(
      LLVM::LLVMArrayType::get(weightType, std::max<size_t>(weightData.size(), 1)),
      uniqueName("weights"), LLVM::Linkage::Private, [&](OpBuilder &ib, Value t) {
        if (weightData.empty())
          return LLVM::ZeroOp::create(ib, loc, t.getType()).getResult();
        for (auto [i, w] : llvm::enumerate(weightData)) {
          t = insert(ib, t, addr(ib, w.first), {(int64_t)i, 0});
          t = insert(ib, t, cst(ib, i64, w.second), {(int64_t)i, 1});
        }
        return t;
      });

  SmallVector<LLVM::GlobalOp> nameGlobals;
  for (StringRef name : kernelNames)
    nameGlobals.push_back(bytesGlobal(name, true, "kernel_name"));
  LLVM::GlobalOp nameTable = aggregate(
      LLVM::LLVMArrayType::get(ptr, std::max<size_t>(nameGlobals.size(), 1)),
      uniqueName("kernel_names"), LLVM::Linkage::Private,
      [&](OpBuilder &ib, Value t) {
        if (nameGlobals.empty())
          return LLVM::ZeroOp::create(ib, loc, t.getType()).getResult();
        for (auto [i, g] : llvm::enumerate(nameGlobals))
          t = insert(ib, t, addr(ib, g), {(int64_t)i});
        return t;
      });

  auto argType = LLVM::LLVMStructType::getLiteral(ctx, {i32, i32, i64});
  auto dim3 = LLVM::LLVMArrayType::get(i32, 3);
  auto launchType = LLVM::LLVMStructType::getLiteral(
      ctx, {i32, dim3, dim3, i32, i32, ptr, i64, i64});
  SmallVector<LLVM::GlobalOp> argTables;
  for (const LaunchInfo &l : launches)
    argTables.push_back(aggregate(
        LLVM::LLVMArrayType::get(argType, std::max<size_t>(l.args.size(), 1)),
        uniqueName("args"), LLVM::Linkage::Private, [&](OpBuilder &ib, Value t) {
          if (l.args.empty())
            return LLVM::ZeroOp::create(ib, loc, t.getType()).getResult();
          for (auto [i, a] : llvm::enumerate(l.args)) {
            int64_t at = i;
            t = insert(ib, t, cst(ib, i32, a.kind), {at, 0});
            t = insert(ib, t, cst(ib, i32, a.index), {at, 1});
            t = insert(ib, t, cst(ib, i64, a.offset), {at, 2});
          }
          return t;
        }));
  LLVM::GlobalOp launchTable = aggregate(
      LLVM::LLVMArrayType::get(launchType, std::max<size_t>(launches.size(), 1)),
      uniqueName("launches"), LLVM::Linkage::Private,
      [&](OpBuilder &ib, Value t) {
        if (launches.empty())
          return LLVM::ZeroOp::create(ib, loc, t.getType()).getResult();
        for (auto [i, l] : llvm::enumerate(launches)) {
          int64_t at = i;
          t = insert(ib, t, cst(ib, i32, l.kernel), {at, 0});
          for (int64_t d = 0; d < 3; ++d) {
            t = insert(ib, t, cst(ib, i32, l.grid[d]), {at, 1, d});
            t = insert(ib, t, cst(ib, i32, l.block[d]), {at, 2, d});
          }
          t = insert(ib, t, cst(ib, i32, 0), {at, 3});
          t = insert(ib, t, cst(ib, i32, l.args.size()), {at, 4});
          t = insert(ib, t, addr(ib, argTables[i]), {at, 5});
          t = insert(ib, t, cst(ib, i64, l.bytes), {at, 6});
          t = insert(ib, t, cst(ib, i64, l.flops), {at, 7});
        }
        return t;
      });

  LLVM::GlobalOp platformStr = bytesGlobal("cuda", true, "str");
  LLVM::GlobalOp archStr = bytesGlobal(arch, true, "str");
  LLVM::GlobalOp ptxStr = bytesGlobal(ptx, true, "ptx");
  LLVM::GlobalOp cubinData =
      cubin.empty() ? LLVM::GlobalOp() : bytesGlobal(cubin, false, "cubin", 64);
  auto programType = LLVM::LLVMStructType::getLiteral(
      ctx, {ptr, ptr, ptr, ptr, i64, i32, ptr, i32, ptr, i32, ptr, i64});
  aggregate(programType, kProgramSymbol, LLVM::Linkage::Internal,
            [&](OpBuilder &ib, Value p) {
              Value fields[] = {
                  addr(ib, platformStr),
                  addr(ib, archStr),
                  addr(ib, ptxStr),
                  cubinData ? addr(ib, cubinData)
                            : LLVM::ZeroOp::create(ib, loc, ptr).getResult(),
                  cst(ib, i64, cubin.size()),
                  cst(ib, i32, kernelNames.size()),
                  addr(ib, nameTable),
                  cst(ib, i32, weightData.size()),
                  addr(ib, weightTable),
                  cst(ib, i32, launches.size()),
                  addr(ib, launchTable),
                  cst(ib, i64, workspaceBytes),
              };
              for (auto [i, f] : llvm::enumerate(fields))
                p = insert(ib, p, f, {(int64_t)i});
              return p;
            });

  // The host function keeps only its signature (minus the workspace).
  Block &body = host.getBody().front();
  Operation *ret = body.getTerminator();
  for (Operation &op : llvm::make_early_inc_range(llvm::reverse(body)))
    if (&op != ret)
      op.erase();
  if (failed(host.eraseArgument(wsArg))) {
    host.emitError("cannot remove the workspace argument");
    return signalPassFailure();
  }
  binary.erase();
  for (StringRef name : weightGlobals)
    if (auto g = module.lookupSymbol<memref::GlobalOp>(name))
      g.erase();
  module->removeAttr(gpu::GPUDialect::getContainerModuleAttrName());
}
