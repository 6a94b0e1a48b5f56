//===- BitNetTypes.cpp - Types of the bitnet dialect ------------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace mlir::bitnet;

#define GET_TYPEDEF_CLASSES
#include "bitnet/Dialect/BitNet/IR/BitNetTypes.cpp.inc"

void BitNetDialect::registerTypes() {
  addTypes<
#define GET_TYPEDEF_LIST
#include "bitnet/Dialect/BitNet/IR/BitNetTypes.cpp.inc"
      >();
}

//===----------------------------------------------------------------------===//
// TernaryType
//===----------------------------------------------------------------------===//

// !bitnet.ternary<ROWSxCOLS, format (, layout)?>
Type TernaryType::parse(AsmParser &parser) {
  SMLoc loc = parser.getCurrentLocation();
  SmallVector<int64_t, 2> dims;
  if (parser.parseLess() ||
      parser.parseDimensionList(dims, /*allowDynamic=*/false,
                                /*withTrailingX=*/false) ||
      parser.parseComma())
    return {};
  FailureOr<TernaryFormat> format = FieldParser<TernaryFormat>::parse(parser);
  if (failed(format))
    return {};
  WeightLayout layout = WeightLayout::RowMajor;
  if (succeeded(parser.parseOptionalComma())) {
    FailureOr<WeightLayout> parsed = FieldParser<WeightLayout>::parse(parser);
    if (failed(parsed))
      return {};
    layout = *parsed;
  }
  if (parser.parseGreater())
    return {};
  if (dims.size() != 2) {
    parser.emitError(loc, "expected a 2-D shape ROWSxCOLS, got ")
        << dims.size() << " dimension(s)";
    return {};
  }
  return getChecked([&] { return parser.emitError(loc); },
                    parser.getContext(), dims[0], dims[1], *format, layout);
}

void TernaryType::print(AsmPrinter &printer) const {
  printer << "<" << getRows() << "x" << getCols() << ", "
          << stringifyTernaryFormat(getFormat());
  if (getLayout() != WeightLayout::RowMajor)
    printer << ", " << stringifyWeightLayout(getLayout());
  printer << ">";
}

LogicalResult
TernaryType::verify(function_ref<InFlightDiagnostic()> emitError, int64_t rows,
                    int64_t cols, TernaryFormat format, WeightLayout layout) {
  if (rows <= 0 || cols <= 0)
    return emitError() << "ternary matrix extents must be positive, got "
                       << rows << "x" << cols;
  return success();
}

int64_t TernaryType::getValuesPerByte() const {
  return bitnet::getValuesPerByte(getFormat());
}

int64_t TernaryType::getBytesPerRow() const {
  return llvm::divideCeil(getCols(), getValuesPerByte());
}

RankedTensorType TernaryType::getStorageType() const {
  return RankedTensorType::get({getRows(), getBytesPerRow()},
                               IntegerType::get(getContext(), 8));
}
