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

#include "mlir/Conversion/Passes.h"
#include "mlir/Dialect/Bufferization/Pipelines/Passes.h"
#include "mlir/Dialect/Bufferization/Transforms/Passes.h"
#include "mlir/Dialect/GPU/IR/GPUDialect.h"
#include "mlir/Dialect/GPU/Transforms/Passes.h"
#include "mlir/Dialect/Linalg/Passes.h"
#include "mlir/Dialect/MemRef/Transforms/Passes.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllExtensions.h"
#include "mlir/Pass/PassManager.h"
#include "mlir/Pass/PassRegistry.h"
#include "mlir/Target/LLVMIR/Dialect/All.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::bitnet;

/// The rewrites of the model graph that every target takes: the head on the
/// last token, f16 KV caches, narrower float weights; then a canonicalisation.
static void addGraphRewrites(OpPassManager &pm,
                             const PipelineOptions &options) {
  if (options.lastTokenLogits)
    pm.addPass(createBitNetLastTokenLogits({options.entry}));
  if (options.kvCache == KVCacheType::F16)
    pm.addPass(createBitNetNarrowKVCache());
  if (options.floatWeights != FloatPrecision::F32)
    pm.addPass(createBitNetNarrowFloatWeights({options.floatWeights}));
  pm.addPass(createCanonicalizerPass());
}

void mlir::bitnet::buildLinalgPipeline(OpPassManager &pm,
                                       const PipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createBitNetInputRanges());
  if (options.weightFormat.hasValue())
    pm.addPass(createBitNetPackWeights({options.weightFormat}));
  addGraphRewrites(pm, options);
  if (options.cpuKernels != KernelISA::None) {
    BitNetLowerToCPUKernelsOptions kernels;
    kernels.isa = options.cpuKernels;
    kernels.family = options.cpuKernelFamily;
    kernels.tuned.assign(options.cpuTunedKernels.begin(),
                         options.cpuTunedKernels.end());
    kernels.layoutTokens = options.cpuLayoutTokens;
    pm.addPass(createBitNetLowerToCPUKernels(kernels));
  }
  pm.addPass(createBitNetLowerToLinalg());
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::bitnet::buildBufferizePipeline(OpPassManager &pm,
                                          const PipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createBitNetDistinctResults());
  bufferization::OneShotBufferizePassOptions bufferize;
  bufferize.bufferizeFunctionBoundaries = true;
  bufferize.functionBoundaryTypeConversion =
      bufferization::LayoutMapOption::IdentityLayoutMap;
  pm.addPass(bufferization::createOneShotBufferizePass(bufferize));
  pm.addNestedPass<func::FuncOp>(createBitNetStateArguments());
  bufferization::BufferResultsToOutParamsPassOptions outParams;
  outParams.hoistStaticAllocs = true;
  outParams.modifyPublicFunctions = true;
  outParams.addResultAttribute = true;
  pm.addPass(bufferization::createBufferResultsToOutParamsPass(outParams));
  pm.addPass(createCanonicalizerPass());
  bufferization::buildBufferDeallocationPipeline(pm);
  pm.addNestedPass<func::FuncOp>(createBitNetLowerMemRefCopies());
  pm.addNestedPass<func::FuncOp>(createConvertLinalgToLoopsPass());
  BitNetPlanWorkspaceOptions plan;
  plan.entry = options.entry;
  pm.addPass(createBitNetPlanWorkspace(plan));
  pm.addPass(createCanonicalizerPass());
  pm.addPass(createCSEPass());
}

void mlir::bitnet::buildLLVMPipeline(OpPassManager &pm,
                                     const PipelineOptions &options) {
  pm.addPass(createBitNetEmitEntryPoint({options.entry, options.producer,
                                         options.runSymbol, options.emitInfo,
                                         options.infoSymbol}));
  pm.addPass(memref::createExpandStridedMetadataPass());
  pm.addPass(createLowerAffinePass());
  pm.addPass(createSCFToControlFlowPass());
  pm.addPass(createConvertVectorToLLVMPass());
  pm.addPass(createConvertMathToLLVMPass());
  pm.addPass(createArithToLLVMConversionPass());
  pm.addPass(createConvertIndexToLLVMPass());
  pm.addPass(createFinalizeMemRefToLLVMConversionPass());
  pm.addPass(createConvertFuncToLLVMPass());
  pm.addPass(createConvertControlFlowToLLVMPass());
  pm.addPass(createReconcileUnrealizedCastsPass());
  pm.addPass(createCanonicalizerPass());
}

void mlir::bitnet::buildGPUKernelPipeline(OpPassManager &pm,
                                          const PipelineOptions &options) {
  pm.addNestedPass<func::FuncOp>(createBitNetInputRanges());
  addGraphRewrites(pm, options);
  pm.addPass(createBitNetLowerToGPU({options.entry, options.gpuGemvRows}));
  if (options.gpuEmulation)
    pm.addPass(createBitNetGPUEmulation());
  GpuNVVMAttachTargetOptions target;
  target.chip = options.gpuArch;
  target.features = options.ptxFeatures;
  target.optLevel = 3;
  pm.addPass(createGpuNVVMAttachTarget(target));
  OpPassManager &kernels = pm.nest<gpu::GPUModuleOp>();
  kernels.addPass(createSCFToControlFlowPass());
  ConvertGpuOpsToNVVMOpsOptions toNVVM;
  toNVVM.useBarePtrCallConv = true;
  kernels.addPass(createConvertGpuOpsToNVVMOps(toNVVM));
  kernels.addPass(createCanonicalizerPass());
  kernels.addPass(createReconcileUnrealizedCastsPass());
  GpuModuleToBinaryPassOptions binary;
  binary.compilationTarget = "isa";
  binary.toolkitPath = options.cudaPath;
  pm.addPass(createGpuModuleToBinaryPass(binary));
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
      "bitnet-gpu-kernel-pipeline",
      "bitnet ops to NVIDIA GPU kernels, ending with their PTX (gpu.binary)",
      buildGPUKernelPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-gpu-pipeline",
      "bitnet ops to NVIDIA GPU kernels (PTX) and their launch list",
      buildGPUPipeline);
  PassPipelineRegistration<PipelineOptions>(
      "bitnet-reference-pipeline",
      "The whole reference path from bitnet ops to the LLVM dialect",
      buildReferencePipeline);
}
