//===- Pipelines.cpp - Named bitnet pass pipelines --------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Pipelines/Pipelines.h"

#include "bitnet/Conversion/Passes.h"
#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Import/Passes.h"
#include "bitnet/Import/Pipelines.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/ErrorHandling.h"

using namespace mlir;
using namespace mlir::bitnet;

/// Appends an upstream textual pipeline; the strings are fixed, so a parse
/// failure is a bug in this file.
static void addUpstream(OpPassManager &pm, StringRef pipeline) {
  // Textual pipelines name registered passes.
  static bool registered = [] {
    registerAllPasses();
    return true;
  }();
  (void)registered;
  if (failed(parsePassPipeline(pipeline, pm, llvm::errs())))
    llvm::report_fatal_error(
        llvm::Twine("bitnet: invalid built-in pipeline: ") + pipeline);
}

/// The rewrites of the model graph that every target takes: the head on the
/// last token, f16 KV caches, narrower float weights; then a canonicalisation.
static void addGraphRewrites(OpPassManager &pm,
                             const PipelineOptions &options) {
  if (options.lastTokenLogits)
    pm.addPass(createBitNetLastTokenLogits({options.entry}));
  if (options.kvCache == "f16")
    pm.addPass(createBitNetNarrowKVCache());
  if (options.floatWeights != "f32")
    pm.addPass(createBitNetNarrowFloatWeights({options.floatWeights}));
  pm.addPass(createCanonicalizerPass());
}

void mlir::bitnet::buildLinalgPipeline(OpPassManager &pm,
                                       const PipelineOptions &options) {
  if (!options.weightFormat.empty())
    pm.addPass(createBitNetPackWeights({options.weightFormat}));
  addGraphRewrites(pm, options);
  if (options.cpuKernels != "none") {
    BitNetLowerToCPUKernelsOptions kernels;
    kernels.isa = options.cpuKernels;
    kernels.family = options.cpuKernelFamily;
    pm.addPass(createBitNetLowerToCPUKernels(kernels));
  }
  pm.addPass(createBitNetLowerToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::bitnet::buildBufferizePipeline(OpPassManager &pm,
                                          const PipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createBitNetDistinctResults());
  addUpstream(pm, "one-shot-bufferize{bufferize-function-boundaries "
                  "function-boundary-type-conversion=identity-layout-map}");
  pm.addNestedPass<func::FuncOp>(createBitNetStateArguments());
  addUpstream(pm, "buffer-results-to-out-params{hoist-static-allocs "
                  "modify-public-functions add-result-attr},"
                  "canonicalize,"
                  "buffer-deallocation-pipeline");
  pm.addNestedPass<func::FuncOp>(createBitNetLowerMemRefCopies());
  addUpstream(pm, "func.func(convert-linalg-to-loops)");
  BitNetPlanWorkspaceOptions plan;
  plan.entry = options.entry;
  pm.addPass(createBitNetPlanWorkspace(plan));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::bitnet::buildLLVMPipeline(OpPassManager &pm,
                                     const PipelineOptions &options) {
  pm.addPass(createBitNetEmitEntryPoint(
      {options.entry, options.producer, options.target, options.cpuFeatures,
       options.runSymbol, options.emitInfo, options.variants}));
  addUpstream(pm, "expand-strided-metadata,"
                  "lower-affine,"
                  "convert-scf-to-cf,"
                  "convert-vector-to-llvm,"
                  "convert-math-to-llvm,"
                  "convert-arith-to-llvm,"
                  "convert-index-to-llvm,"
                  "finalize-memref-to-llvm,"
                  "convert-func-to-llvm,"
                  "convert-cf-to-llvm,"
                  "reconcile-unrealized-casts,"
                  "canonicalize");
}

void mlir::bitnet::buildGPUKernelPipeline(OpPassManager &pm,
                                          const PipelineOptions &options) {
  addGraphRewrites(pm, options);
  pm.addPass(createBitNetLowerToGPU({options.entry, options.gpuGemvRows}));
  if (options.gpuEmulation)
    pm.addPass(createBitNetGPUEmulation());
  std::string features = options.ptxFeatures;
  addUpstream(pm, "nvvm-attach-target{chip=" + options.gpuArch.getValue() +
                      " features=" + features + " O=3},"
                      "gpu.module(convert-scf-to-cf,"
                      "convert-gpu-to-nvvm{use-bare-ptr-memref-call-conv=1},"
                      "canonicalize,reconcile-unrealized-casts),"
                      "gpu-module-to-binary{format=isa toolkit=" +
                      options.cudaPath.getValue() + "}");
}

void mlir::bitnet::buildGPUPipeline(OpPassManager &pm,
                                    const PipelineOptions &options) {
  buildGPUKernelPipeline(pm, options);
  pm.addPass(createBitNetEmitGPUProgram({options.ptxas}));
}

void mlir::bitnet::buildReferencePipeline(OpPassManager &pm,
                                          const PipelineOptions &options) {
  buildLinalgPipeline(pm, options);
  buildBufferizePipeline(pm, options);
  buildLLVMPipeline(pm, options);
}

void mlir::bitnet::registerDialects(DialectRegistry &registry) {
  registry.insert<BitNetDialect>();
  registerAllDialects(registry);
  registerAllExtensions(registry);
  // gpu-module-to-binary translates gpu.module through these.
  registerAllToLLVMIRTranslations(registry);
}

void mlir::bitnet::registerAllPassesAndPipelines() {
  registerBitNetConversionPasses();
  registerBitNetTransformsPasses();
  registerBitNetImportPasses();
  PassPipelineRegistration<ImportONNXPipelineOptions>(
      "bitnet-import-onnx-pipeline",
      "Imported ONNX graph (generic onnx.* operations) to bitnet and upstream "
      "ops, as the ONNX importer runs it",
      buildImportONNXPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-linalg-pipeline",
      "Lower bitnet ops to linalg/arith/math/tensor on tensors",
      buildLinalgPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-bufferize-pipeline",
      "Bufferize, lower linalg to loops, plan the workspace",
      buildBufferizePipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-llvm-pipeline",
      "Add the C entry point and descriptor, lower to the LLVM dialect",
      buildLLVMPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-gpu-pipeline",
      "bitnet ops to NVIDIA GPU kernels (PTX) and their launch list",
      buildGPUPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-reference-pipeline",
      "The whole reference path from bitnet ops to the LLVM dialect",
      buildReferencePipeline);
}
