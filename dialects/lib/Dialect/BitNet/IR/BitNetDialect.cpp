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

using namespace mlir;
using namespace mlir::bitnet;

#include "bitnet/Dialect/BitNet/IR/BitNetDialect.cpp.inc"
#include "bitnet/Dialect/BitNet/IR/BitNetEnums.cpp.inc"

#define GET_ATTRDEF_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetAttrs.cpp.inc"

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
