//===- WeightData.cpp - Large constants outside the LLVM module -----------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Target/CPU/WeightData.h"

#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/SymbolTable.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/xxhash.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

using namespace mlir;
using namespace mlir::bitnet;

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

/// The bytes of `attr` as the target lays them out (little-endian targets:
/// the raw data of byte-sized element types); nothing for other attributes.
static std::optional<ArrayRef<char>> rawBytes(Attribute attr) {
  auto dense = dyn_cast_if_present<DenseElementsAttr>(attr);
  if (!dense || dense.isSplat())
    return std::nullopt;
  Type element = dense.getElementType();
  unsigned bits = element.getIntOrFloatBitWidth();
  if (bits % 8 != 0 || bits == 0)
    return std::nullopt;
  ArrayRef<char> raw = dense.getRawData();
  if (static_cast<int64_t>(raw.size()) != dense.getNumElements() * (bits / 8))
    return std::nullopt;
  return raw;
}

static uint64_t hashBytes(ArrayRef<char> bytes) {
  return llvm::xxh3_64bits(ArrayRef<uint8_t>(
      reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()));
}

const SharedWeights::Written *
SharedWeights::find(ArrayRef<char> bytes, uint64_t alignment) const {
  auto [begin, end] = byHash.equal_range(hashBytes(bytes));
  for (auto it = begin; it != end; ++it) {
    const Written &w = it->second;
    if (w.size != bytes.size() || w.alignment < alignment ||
        w.alignment % alignment != 0)
      continue;
    llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
        llvm::MemoryBuffer::getFileSlice(w.dataPath, w.size, w.offset);
    if (file && (*file)->getBufferSize() == bytes.size() &&
        std::memcmp((*file)->getBufferStart(), bytes.data(), bytes.size()) ==
            0)
      return &w;
  }
  return nullptr;
}

void SharedWeights::add(ArrayRef<char> bytes, Written written) {
  byHash.emplace(hashBytes(bytes), std::move(written));
}

llvm::Expected<OutlinedWeights>
mlir::bitnet::outlineWeightData(ModuleOp module, StringRef symbolPrefix,
                                StringRef dataPath, StringRef asmPath,
                                int64_t minBytes, SharedWeights *shared) {
  std::error_code ec;
  llvm::raw_fd_ostream data(dataPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return makeError("cannot write '" + dataPath + "': " + ec.message());
  llvm::raw_fd_ostream assembly(asmPath, ec, llvm::sys::fs::OF_Text);
  if (ec)
    return makeError("cannot write '" + asmPath + "': " + ec.message());

  OutlinedWeights result;
  uint64_t offset = 0;
  // What this call writes, added to `shared` once the file is complete.
  std::vector<std::pair<ArrayRef<char>, SharedWeights::Written>> written;
  assembly << "  .section .rodata.bitnet_weights,\"a\",%progbits\n";
  SmallVector<LLVM::GlobalOp> globals(module.getOps<LLVM::GlobalOp>());
  // The path goes into a quoted assembler string.
  std::string quoted;
  for (char c : dataPath) {
    if (c == '"' || c == '\\')
      quoted += '\\';
    quoted += c;
  }
  for (LLVM::GlobalOp global : globals) {
    if (!global.getConstant() || !global.getInitializerRegion().empty())
      continue;
    std::optional<ArrayRef<char>> bytes = rawBytes(global.getValueAttr());
    if (!bytes || static_cast<int64_t>(bytes->size()) < minBytes)
      continue;
    uint64_t alignment = std::max<uint64_t>(global.getAlignment().value_or(1), 16);
    if (!llvm::isPowerOf2_64(alignment))
      continue;
    std::string name;
    const SharedWeights::Written *earlier =
        shared ? shared->find(*bytes, alignment) : nullptr;
    if (earlier) {
      // Written by an earlier build: this one refers to it.
      name = earlier->symbol;
      ++result.sharedGlobals;
      result.sharedBytes += bytes->size();
    } else {
      uint64_t padding = llvm::alignTo(offset, alignment) - offset;
      data.write_zeros(padding);
      offset += padding;
      data.write(bytes->data(), bytes->size());
      name = (symbolPrefix + Twine(result.globals)).str();
      assembly << "  .globl " << name << "\n"
               << "  .hidden " << name << "\n"
               << "  .type " << name << ", %object\n"
               << "  .p2align " << llvm::Log2_64(alignment) << "\n"
               << name << ":\n"
               << "  .incbin \"" << quoted << "\", " << offset << ", "
               << bytes->size() << "\n"
               << "  .size " << name << ", " << bytes->size() << "\n";
      written.push_back(
          {*bytes, {name, dataPath.str(), offset, bytes->size(), alignment}});
      offset += bytes->size();
    }
    result.bytes += bytes->size();
    ++result.globals;

    StringAttr symbol = StringAttr::get(module.getContext(), name);
    if (failed(SymbolTable::replaceAllSymbolUses(global, symbol, module)))
      return makeError("cannot rename the uses of global '" +
                       global.getSymName() + "'");
    // Two constants of this module with the same bytes as an earlier
    // build's one: the first declaration serves both.
    if (module.lookupSymbol(symbol)) {
      global.erase();
      continue;
    }
    global.setSymName(name);
    global.setLinkage(LLVM::Linkage::External);
    global.removeValueAttr();
    global.setVisibility_(LLVM::Visibility::Hidden);
  }
  // Data only: the stack need not be executable.
  assembly << "  .section .note.GNU-stack,\"\",%progbits\n";
  data.close();
  assembly.close();
  if (data.has_error() || assembly.has_error())
    return makeError("cannot write the weight data of the model");
  if (shared)
    for (auto &[bytes, w] : written)
      shared->add(bytes, std::move(w));
  return result;
}
