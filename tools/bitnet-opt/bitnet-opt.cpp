//===- bitnet-opt.cpp - Runs bitnet pass pipelines on .mlir files ----------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The mlir-opt of this project: every upstream dialect and pass, plus the
// bitnet dialect, the bitnet passes and the named bitnet pipelines.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Compiler/CompileOptions.h"
#include "bitnet/Pipelines/Pipelines.h"

#include "mlir/IR/DialectRegistry.h"
#include "mlir/InitAllDialects.h"
#include "mlir/InitAllPasses.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "llvm/Support/CommandLine.h"

int main(int argc, char **argv) {
  llvm::cl::AddExtraVersionPrinter([](llvm::raw_ostream &os) {
    mlir::bitnet::printVersion(os, "bitnet-opt");
  });
  mlir::registerAllPasses();
  mlir::bitnet::registerAllPassesAndPipelines();

  mlir::DialectRegistry registry;
  mlir::registerAllDialects(registry);
  mlir::bitnet::registerDialects(registry);

  return mlir::asMainReturnCode(mlir::MlirOptMain(
      argc, argv, "bitnet-mlir optimizer driver\n", registry));
}
