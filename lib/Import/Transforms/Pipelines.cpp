//===- Pipelines.cpp - Pass pipelines of the model importers --------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/Pipelines.h"

#include "bitnet/Import/Passes.h"

#include "mlir/Pass/PassManager.h"
#include "mlir/Transforms/Passes.h"

using namespace mlir;
using namespace mlir::bitnet;

void mlir::bitnet::buildImportONNXPipeline(
    OpPassManager &pm, const ImportONNXPipelineOptions &options) {
  OpPassManager &fpm = pm.nest<func::FuncOp>();
  if (options.recognizeBitLinear)
    fpm.addPass(createBitNetRecognizeBitLinear(
        {options.strictFloat, options.explainBitLinear}));
  fpm.addPass(createBitNetLegalizeONNX());
  fpm.addPass(createCanonicalizerPass());
  fpm.addPass(createCSEPass());
}
