//===- NVPTXTarget.cpp - Models compiled for NVIDIA GPUs ---------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The nvptx target: the model's ops become GPU kernels (bitnet-lower-to-gpu),
// PTX through NVVM and LLVM's NVPTX backend, and a launch list embedded in
// host code (bitnet-emit-gpu-program); the host side is CPU code, written by
// the cpu target.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Conversion/GPUKernels.h"
#include "bitnet/Target/CPU/CodeGen.h"
#include "bitnet/Target/InitAllTargets.h"
#include "bitnet/Target/Target.h"

#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Support/FileUtilities.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/ToolOutputFile.h"
#include "llvm/Target/TargetMachine.h"

using namespace mlir;
using namespace mlir::bitnet;

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

namespace {
class NVPTXTargetBackend : public TargetBackend {
public:
  StringRef getName() const override { return "nvptx"; }

  llvm::Error validate(const CompileOptions &options) const override {
    if (!StringRef(options.gpuArch).starts_with("sm_"))
      return makeError("unknown --gpu-arch=" + options.gpuArch +
                       " (expected sm_80, sm_90, ...)");
    if (!isValidGemvRows(options.gpuGemvRows))
      return makeError("bad --gpu-gemv-rows=" + Twine(options.gpuGemvRows) +
                       " (expected 1, 2, 4, 8, 16 or 32)");
    if (options.kernels != "auto")
      return makeError("--kernels=" + options.kernels +
                       " chooses CPU kernels; --target=nvptx has its own");
    if (!options.variants.empty())
      return makeError("--variants builds for other CPUs; --target=nvptx "
                       "has one build");
    return createTargetMachine(options.target).takeError();
  }

  TargetAttr getTargetAttr(MLIRContext *context,
                           const CompileOptions &options) const override {
    ResolvedTarget host = resolveTarget(options.target);
    return TargetAttr::get(context, "nvptx", host.triple, options.gpuArch,
                           /*features=*/"");
  }

  LogicalResult lower(ModuleOp module, const CompileOptions &options,
                      std::optional<MLIRStage> stopAfter,
                      Compilation &compilation) const override {
    auto configure = [&](PipelineOptions &pipeline) {
      pipeline.gpuArch = options.gpuArch;
      pipeline.cudaPath = options.cudaPath;
      pipeline.gpuEmulation = options.gpuEmulation;
      pipeline.gpuGemvRows = options.gpuGemvRows;
      std::string ptxas = options.cudaPath + "/bin/ptxas";
      if (options.emit == EmitKind::SharedObject &&
          llvm::sys::fs::can_execute(ptxas))
        pipeline.ptxas = ptxas;
    };
    StageTimer &timer = compilation.timer;
    // PTX is the kernels alone.
    if (options.emit == EmitKind::PTX)
      return timer.step("compiling GPU kernels", [&] {
        return runPipeline(module, options, buildGPUKernelPipeline,
                           configure);
      });
    if (failed(timer.step("compiling GPU kernels and launches", [&] {
          return runPipeline(module, options, buildGPUPipeline, configure);
        })))
      return failure();
    // Every stage before the host's LLVM dialect ends with the kernels.
    if (stopAfter && *stopAfter != MLIRStage::LLVM)
      return success();
    return timer.step("lowering to the LLVM dialect", [&] {
      return runPipeline(module, options, buildLLVMPipeline, configure);
    });
  }

  LogicalResult serialize(ModuleOp module, const CompileOptions &options,
                          StringRef outputPath,
                          Compilation &compilation) const override {
    Location loc = module.getLoc();
    if (options.emit != EmitKind::PTX) {
      const TargetBackend *host = lookupTarget("cpu");
      if (!host)
        return emitError(loc) << "the cpu target, which writes the host "
                                 "code of GPU models, is not registered";
      return host->serialize(module, options, outputPath, compilation);
    }
    auto binary = module.lookupSymbol<gpu::BinaryOp>("bitnet_kernels");
    auto object = binary ? dyn_cast<gpu::ObjectAttr>(binary.getObjects()[0])
                         : gpu::ObjectAttr();
    if (!object)
      return emitError(loc) << "no PTX was produced";
    std::string message;
    std::unique_ptr<llvm::ToolOutputFile> out =
        openOutputFile(outputPath, &message);
    if (!out)
      return emitError(loc) << message;
    out->os() << object.getObject().getValue();
    out->keep();
    return success();
  }
};
} // namespace

void mlir::bitnet::registerNVPTXTarget() {
  registerTarget(std::make_unique<NVPTXTargetBackend>());
}
