//===- BitNetDialect.cpp - The bitnet dialect -------------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/MathExtras.h"

using namespace mlir;
using namespace mlir::bitnet;

#include "bitnet/Dialect/BitNet/IR/BitNetDialect.cpp.inc"
#include "bitnet/Dialect/BitNet/IR/BitNetEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetAttrs.cpp.inc"

std::string TargetAttr::getDescription() const {
  if (getBackend() == "cpu")
    return (getTriple() + " " + getChip()).str();
  return (getChip() + " (" + getTriple() + " host)").str();
}

LogicalResult
VariantAttr::verify(function_ref<InFlightDiagnostic()> emitError,
                    StringRef chip, FlatSymbolRefAttr run,
                    int64_t workspaceBytes, int64_t workspaceAlignment,
                    StringRef features, int64_t stackBytes) {
  if (chip.empty())
    return emitError() << "a variant needs the name of its CPU";
  if (workspaceBytes < 0 || stackBytes < 0)
    return emitError() << "a variant's workspace and stack sizes must be "
                          ">= 0, got "
                       << workspaceBytes << " and " << stackBytes;
  if (workspaceAlignment < 1 || !llvm::isPowerOf2_64(workspaceAlignment))
    return emitError() << "a variant's workspace alignment must be a power "
                          "of two, got "
                       << workspaceAlignment;
  return success();
}

void BitNetDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "bitnet/Dialect/BitNet/IR/BitNetAttrs.cpp.inc"
      >();
  registerTypes();
  addOperations<
#define GET_OP_LIST
#include "bitnet/Dialect/BitNet/IR/BitNetOps.cpp.inc"
      >();
}

Operation *BitNetDialect::materializeConstant(OpBuilder &builder,
                                              Attribute value, Type type,
                                              Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements)
    return nullptr;
  // Folded ternary matrices are represented by their storage bytes.
  if (auto ternary = dyn_cast<TernaryType>(type)) {
    if (elements.getType() != ternary.getStorageType())
      return nullptr;
    return ConstantOp::create(builder, loc, ternary, elements);
  }
  if (elements.getType() != type)
    return nullptr;
  return arith::ConstantOp::create(builder, loc, cast<TypedAttr>(value));
}
