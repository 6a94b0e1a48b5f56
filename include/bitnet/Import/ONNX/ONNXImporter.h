//===- ONNXImporter.h - Reads ONNX models into MLIR -------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Reads an ONNX ModelProto (ONNX's own protobuf schema) into one `func.func`:
// graph inputs become arguments (named by `bitnet.name`), outputs results
// (named by `bitnet.output_names`), initialisers constants, and each node a
// generic `onnx.<OpType>` operation located at the node. Then
// bitnet-import-onnx-pipeline (include/bitnet/Import/Pipelines.h: BitLinear
// recognition and legalisation) turns the graph into the bitnet and upstream
// dialects. Every malformed or
// unsupported input is reported as a diagnostic naming the node (its name
// and op type), located at `<model>:<1 + node index>:0` (`<model>:0:0` for
// the graph), with notes saying what was expected; nothing asserts or
// crashes.
//
//===----------------------------------------------------------------------===//

#ifndef BITNET_IMPORT_ONNX_ONNXIMPORTER_H
#define BITNET_IMPORT_ONNX_ONNXIMPORTER_H

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "mlir/Support/LLVM.h"
#include "llvm/ADT/StringMap.h"

#include <string>

namespace mlir::bitnet {

/// How an ONNX model is imported.
struct ONNXImportOptions {
  /// Static shapes for graph inputs whose dimensions are symbolic or
  /// unknown, by input name.
  llvm::StringMap<SmallVector<int64_t>> inputShapes;
  /// Name of the function the graph becomes.
  std::string entry = "main";
  /// Run bitnet-import-onnx-pipeline after reading the graph (off: the
  /// generic `onnx.*` form).
  bool legalize = true;
  /// Turn quantised MatMuls into bitnet ops.
  bool recognizeBitLinear = true;
  /// BitLinear recognition follows the graph's float arithmetic to the last
  /// bit (see bitnet-recognize-bitlinear's strict-float).
  bool strictFloat = false;
  /// Remark what each BitLinear layer became and why a near miss stays
  /// float.
  bool explainBitLinear = false;
};

/// Parses `name:DxDx...` (e.g. `input_ids:1x128`; `name:` for a scalar) into
/// `options.inputShapes`; returns an error message on bad syntax.
[[nodiscard]] std::string addInputShape(StringRef spec,
                                        ONNXImportOptions &options);

/// Imports the ONNX model in the file `path`. External data files are read
/// from the model's folder and may not leave it. Errors are reported through
/// the context's diagnostic handler and give a null module.
[[nodiscard]] OwningOpRef<ModuleOp>
importONNXFile(StringRef path, MLIRContext &context,
               const ONNXImportOptions &options = {});

/// Imports a serialised ModelProto held in memory; `name` labels
/// diagnostics. With an empty `baseDir`, tensors with external data are
/// rejected.
[[nodiscard]] OwningOpRef<ModuleOp>
importONNXBuffer(StringRef bytes, StringRef name, StringRef baseDir,
                 MLIRContext &context, const ONNXImportOptions &options = {});

} // namespace mlir::bitnet

#endif // BITNET_IMPORT_ONNX_ONNXIMPORTER_H
