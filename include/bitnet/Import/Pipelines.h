//===- Pipelines.h - Pass pipelines of the model importers ------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The passes the ONNX importer runs after reading a graph, as one named
// pipeline, so that `bitnet-opt --bitnet-import-onnx-pipeline` on the
// generic `onnx.*` form (ONNXImportOptions::legalize off) reproduces what
// the importer produces.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_PIPELINES_H
#define BITNET_IMPORT_PIPELINES_H

#include "mlir/Pass/PassOptions.h"

namespace mlir {
class OpPassManager;
} // namespace mlir

namespace mlir::bitnet {

/// Options of bitnet-import-onnx-pipeline.
struct ImportONNXPipelineOptions
    : public PassPipelineOptions<ImportONNXPipelineOptions> {
  PassOptions::Option<bool> recognizeBitLinear{
      *this, "recognize-bitlinear",
      llvm::cl::desc("Turn quantised MatMuls into bitnet ops"),
      llvm::cl::init(true)};
  PassOptions::Option<bool> strictFloat{
      *this, "strict-float",
      llvm::cl::desc("BitLinear recognition follows the graph's float "
                     "arithmetic to the last bit"),
      llvm::cl::init(false)};
  PassOptions::Option<bool> explainBitLinear{
      *this, "explain-bitlinear",
      llvm::cl::desc("Remark what each BitLinear layer became and why a "
                     "near miss stays float"),
      llvm::cl::init(false)};
};

/// Adds, on every function: bitnet-recognize-bitlinear (unless turned off),
/// bitnet-legalize-onnx, canonicalize and cse. A value returned more than
/// once is left so: bitnet-distinct-results copies it in
/// bitnet-bufferize-pipeline, right before bufferization (copies made here
/// would be merged again by the cleanups of the pipelines in between).
void buildImportONNXPipeline(OpPassManager &pm,
                             const ImportONNXPipelineOptions &options);

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_PIPELINES_H
