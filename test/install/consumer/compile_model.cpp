// compile_model IN.mlir OUT.so: compiles a model for this machine through
// the compiler library (bitnet/Compiler/Compiler.h), as bitnet-compile does.

#include "bitnet/Compiler/Compiler.h"

#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  if (argc != 3) {
    llvm::errs() << "usage: compile_model IN.mlir OUT.so\n";
    return 2;
  }
  mlir::bitnet::CompileOptions options;
  mlir::bitnet::setTarget(options, "");
  if (llvm::Error error = mlir::bitnet::validateCompileOptions(options)) {
    llvm::errs() << "compile_model: " << llvm::toString(std::move(error)) << "\n";
    return 1;
  }
  mlir::MLIRContext context;
  mlir::bitnet::prepareContext(context);
  llvm::SourceMgr sourceMgr;
  mlir::bitnet::CompilerDiagnosticHandler diagnostics(sourceMgr, &context);
  mlir::OwningOpRef<mlir::ModuleOp> module =
      mlir::bitnet::loadModel(argv[1], context, sourceMgr);
  if (!module)
    return 1;
  if (mlir::failed(mlir::bitnet::compileModule(*module, options, argv[2])))
    return 1;
  llvm::outs() << "compiled " << argv[1] << " to " << argv[2] << "\n";
  return 0;
}
