//===- CompileOptions.cpp - What a compilation is asked to do -------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Compiler/CompileOptions.h"

#include "llvm/ADT/StringSwitch.h"
#include "llvm/Config/llvm-config.h"
#include "llvm/Support/ErrorHandling.h"
#include "llvm/Support/raw_ostream.h"

using namespace mlir;
using namespace mlir::bitnet;

#ifndef BITNET_VERSION
#define BITNET_VERSION "0.0.0"
#endif
#ifndef BITNET_GIT_REVISION
#define BITNET_GIT_REVISION "unknown"
#endif

std::optional<EmitKind> mlir::bitnet::parseEmitKind(StringRef name) {
  return llvm::StringSwitch<std::optional<EmitKind>>(name)
      .Case("mlir", EmitKind::MLIR)
      .Case("llvm", EmitKind::LLVM)
      .Case("obj", EmitKind::Object)
      .Case("so", EmitKind::SharedObject)
      .Case("ptx", EmitKind::PTX)
      .Case("tokenizer", EmitKind::Tokenizer)
      .Default(std::nullopt);
}

std::optional<MLIRStage> mlir::bitnet::parseMLIRStage(StringRef name) {
  return llvm::StringSwitch<std::optional<MLIRStage>>(name)
      .Case("input", MLIRStage::Input)
      .Case("linalg", MLIRStage::Linalg)
      .Case("bufferized", MLIRStage::Bufferized)
      .Case("llvm", MLIRStage::LLVM)
      .Default(std::nullopt);
}

StringRef mlir::bitnet::getDefaultExtension(EmitKind kind) {
  switch (kind) {
  case EmitKind::MLIR:
    return ".mlir";
  case EmitKind::LLVM:
    return ".ll";
  case EmitKind::Object:
    return ".o";
  case EmitKind::SharedObject:
    return ".so";
  case EmitKind::PTX:
    return ".ptx";
  case EmitKind::Tokenizer:
    return ".tokenizer.json";
  }
  llvm_unreachable("unknown emit kind");
}

StringRef mlir::bitnet::getProducerString() {
  return "bitnet-compile " BITNET_VERSION;
}

void mlir::bitnet::printVersion(llvm::raw_ostream &os, StringRef tool) {
  os << tool << " (bitnet-mlir) " BITNET_VERSION " (git " BITNET_GIT_REVISION
                ")\n"
     << "LLVM and MLIR " LLVM_VERSION_STRING "\n";
}

void mlir::bitnet::fillPipelineOptions(const CompileOptions &options,
                                       PipelineOptions &pipeline) {
  pipeline.entry = options.entry;
  if (options.weightFormat)
    pipeline.weightFormat = *options.weightFormat;
  pipeline.floatWeights = options.floatWeights;
  pipeline.kvCache = options.kvCache;
  pipeline.lastTokenLogits = options.lastTokenLogits;
  pipeline.producer = getProducerString().str();
}
