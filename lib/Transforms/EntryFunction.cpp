//===- EntryFunction.cpp - Finding a model's entry function -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/Dialect/MemRef/IR/MemRef.h"
#include "mlir/Interfaces/FunctionInterfaces.h"
#include "mlir/IR/Matchers.h"

using namespace mlir;

int64_t mlir::bitnet::staticStackBytes(ModuleOp module) {
  DataLayout layout(module);
  int64_t most = 0;
  module.walk([&](FunctionOpInterface fn) {
    int64_t bytes = 0;
    fn.walk([&](Operation *op) {
      if (auto alloca = dyn_cast<LLVM::AllocaOp>(op)) {
        APInt count;
        if (matchPattern(alloca.getArraySize(), m_ConstantInt(&count)))
          bytes += count.getSExtValue() *
                   static_cast<int64_t>(layout.getTypeSize(alloca.getElemType()));
      } else if (auto alloca = dyn_cast<memref::AllocaOp>(op)) {
        MemRefType type = alloca.getType();
        if (type.hasStaticShape())
          bytes += type.getNumElements() *
                   ((type.getElementTypeBitWidth() + 7) / 8);
      }
    });
    most = std::max(most, bytes);
  });
  return most;
}

func::FuncOp mlir::bitnet::lookupEntryFunction(ModuleOp module,
                                               StringRef name) {
  if (!name.empty()) {
    auto func = module.lookupSymbol<func::FuncOp>(name);
    if (!func || func.isExternal()) {
      module.emitError("entry function '") << name << "' not found";
      return {};
    }
    return func;
  }
  func::FuncOp found;
  for (auto func : module.getOps<func::FuncOp>()) {
    if (func.isExternal() || !func.isPublic())
      continue;
    if (found) {
      module.emitError("more than one public function ('")
          << found.getSymName() << "', '" << func.getSymName()
          << "'); name the entry function";
      return {};
    }
    found = func;
  }
  if (!found)
    module.emitError("no public function with a body to use as the entry");
  return found;
}
