//===- EntryFunction.cpp - Finding a model's entry function -----*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/Passes.h"

using namespace mlir;

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
