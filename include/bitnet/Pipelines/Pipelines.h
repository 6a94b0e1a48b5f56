//===- Pipelines.h - Named bitnet pass pipelines ----------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The stages of the compiler as named pass pipelines. bitnet-opt, bitnet-compile
// and the Python bindings all build their pass managers from these, so any
// stage can be reproduced from the command line:
//
//   bitnet-linalg-pipeline     bitnet ops -> linalg/arith/math on tensors
//   bitnet-bufferize-pipeline  tensors -> memrefs, loops, out-parameters and
//                              one planned workspace
//   bitnet-llvm-pipeline       the C entry point and descriptor, then the
//                              LLVM dialect
//   bitnet-reference-pipeline  all three
//   bitnet-gpu-kernel-pipeline bitnet ops -> gpu kernels and their PTX
//   bitnet-gpu-pipeline        the kernel pipeline, then the launch list of
//                              an NVIDIA GPU model (then the LLVM one)
//
// The descriptor's target and the variant builds come from the module's
// bitnet.target and bitnet.variants attributes, which the compiler driver
// sets (see bitnet/Target/Target.h).
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_PIPELINES_PIPELINES_H
#define BITNET_PIPELINES_PIPELINES_H

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/EnumOptions.h"

#include "mlir/Pass/PassOptions.h"

#include <string>

namespace mlir {
class DialectRegistry;
class OpPassManager;
} // namespace mlir

namespace mlir::bitnet {

/// The defaults of the choices every front end offers (bitnet-compile,
/// bitnet-opt's pipelines, Python's compile()): one place, so that the same
/// pipeline name means the same IR everywhere.
namespace defaults {
inline constexpr FloatPrecision kFloatWeights = FloatPrecision::F32;
inline constexpr KVCacheType kKVCache = KVCacheType::F16;
} // namespace defaults

/// Options shared by the named pipelines.
struct PipelineOptions : public PassPipelineOptions<PipelineOptions> {
  PassOptions::Option<std::string> entry{
      *this, "entry",
      llvm::cl::desc("Entry function (default: the only public function)"),
      llvm::cl::init("")};
  /// Unset (hasValue() false): each weight keeps its format.
  PassOptions::Option<TernaryFormat> weightFormat{
      *this, "weight-format",
      llvm::cl::desc("Re-encode ternary weights (default: keep each "
                     "weight's format)"),
      ternaryFormatValues()};
  PassOptions::Option<FloatPrecision> floatWeights{
      *this, "float-weights",
      llvm::cl::desc("Precision of the embedding and dense (head) weights"),
      llvm::cl::init(defaults::kFloatWeights),
      floatPrecisionValues()};
  PassOptions::Option<KVCacheType> kvCache{
      *this, "kv-cache",
      llvm::cl::desc("Element type of the KV caches a decoder step keeps as "
                     "state"),
      llvm::cl::init(defaults::kKVCache),
      kvCacheTypeValues()};
  PassOptions::Option<bool> lastTokenLogits{
      *this, "last-token-logits",
      llvm::cl::desc("Compute the head's logits for the last token only"),
      llvm::cl::init(false)};
  PassOptions::Option<KernelISA> cpuKernels{
      *this, "cpu-kernels",
      llvm::cl::desc("Kernels for bitlinear layers with constant weights"),
      llvm::cl::init(KernelISA::None),
      kernelISAValues()};
  PassOptions::Option<KernelFamily> cpuKernelFamily{
      *this, "cpu-kernel-family",
      llvm::cl::desc("Kernel family of bitlinear layers (lut and auto need "
                     "cpu-kernels=avx512vnni and AVX-512 VBMI)"),
      llvm::cl::init(KernelFamily::MAD),
      kernelFamilyValues()};
  PassOptions::ListOption<std::string> cpuTunedKernels{
      *this, "cpu-tuned-kernels",
      llvm::cl::desc("Kernel families measured on the machine, per shape "
                     "(MxNxK:family:mad_ns:lut_ns; cpu-kernel-family=auto)")};
  PassOptions::Option<int64_t> cpuLayoutTokens{
      *this, "cpu-layout-tokens",
      llvm::cl::desc("Choose kernel families (cpu-kernel-family=auto) as for "
                     "a step of this many tokens, so that builds of several "
                     "step sizes share one weight layout (0: each its own)"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> infoSymbol{
      *this, "info-symbol",
      llvm::cl::desc("Name of the model descriptor (another entry of a model "
                     "renames it)"),
      llvm::cl::init("bitnet_model_info")};
  PassOptions::Option<std::string> producer{
      *this, "producer", llvm::cl::desc("Producer recorded in the descriptor"),
      llvm::cl::init("bitnet-compile")};
  PassOptions::Option<std::string> runSymbol{
      *this, "run-symbol",
      llvm::cl::desc("Name of the run function (variant builds rename it)"),
      llvm::cl::init("bitnet_model_run")};
  PassOptions::Option<bool> emitInfo{
      *this, "emit-info",
      llvm::cl::desc("Emit the model descriptor (off in variant builds)"),
      llvm::cl::init(true)};
  PassOptions::Option<std::string> gpuArch{
      *this, "gpu-arch",
      llvm::cl::desc("NVIDIA GPU architecture of bitnet-gpu-pipeline (sm_80, "
                     "sm_90, ...)"),
      llvm::cl::init("sm_90")};
  PassOptions::Option<std::string> ptxFeatures{
      *this, "ptx-features",
      llvm::cl::desc("NVPTX features, i.e. the PTX ISA version"),
      llvm::cl::init("+ptx80")};
  PassOptions::Option<std::string> cudaPath{
      *this, "cuda-path",
      llvm::cl::desc("CUDA toolkit whose libdevice is linked"),
      llvm::cl::init("/usr/local/cuda")};
  PassOptions::Option<bool> gpuEmulation{
      *this, "gpu-emulation",
      llvm::cl::desc("Also build every GPU kernel for the host, for the CUDA "
                     "driver emulator (bitnet-gpu-emulation)"),
      llvm::cl::init(false)};
  PassOptions::Option<int64_t> gpuGemvRows{
      *this, "gpu-gemv-rows",
      llvm::cl::desc("Weight rows per warp of the GPU's W2A8 kernels (0: "
                     "chosen per shape)"),
      llvm::cl::init(0)};
  PassOptions::Option<std::string> ptxas{
      *this, "ptxas",
      llvm::cl::desc("ptxas that also assembles a cubin (empty: PTX only)"),
      llvm::cl::init("")};
};

/// bitnet ops to linalg/arith/math/tensor on tensors.
void buildLinalgPipeline(OpPassManager &pm, const PipelineOptions &options);
/// Tensors to memrefs and loops, outputs as out-parameters, one workspace.
void buildBufferizePipeline(OpPassManager &pm, const PipelineOptions &options);
/// The C entry point and descriptor, then everything to the LLVM dialect.
void buildLLVMPipeline(OpPassManager &pm, const PipelineOptions &options);
/// bitnet ops to NVIDIA kernels: PTX through NVVM and LLVM's NVPTX backend,
/// embedded with the launch list (bitnet-emit-gpu-program). Follow with
/// buildLLVMPipeline for the host side.
void buildGPUPipeline(OpPassManager &pm, const PipelineOptions &options);
/// Only the kernel part of buildGPUPipeline (registered as
/// bitnet-gpu-kernel-pipeline): ends with gpu.binary (PTX).
void buildGPUKernelPipeline(OpPassManager &pm, const PipelineOptions &options);
/// The whole reference path: the three above in order.
void buildReferencePipeline(OpPassManager &pm, const PipelineOptions &options);

/// Registers the bitnet dialect and every dialect and interface the
/// pipelines use.
void registerDialects(DialectRegistry &registry);

/// Registers the bitnet passes and the named pipelines with the global
/// registry (for bitnet-opt's command line and textual pipelines).
void registerAllPassesAndPipelines();

} // namespace mlir::bitnet

#endif // BITNET_PIPELINES_PIPELINES_H
