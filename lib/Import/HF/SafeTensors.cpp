//===- SafeTensors.cpp - Reads safetensors checkpoints --------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/HF/SafeTensors.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"

#include <algorithm>
#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::safetensors;

StringRef mlir::bitnet::safetensors::dtypeName(DType type) {
  switch (type) {
  case DType::F64: return "F64";
  case DType::F32: return "F32";
  case DType::F16: return "F16";
  case DType::BF16: return "BF16";
  case DType::I64: return "I64";
  case DType::I32: return "I32";
  case DType::I16: return "I16";
  case DType::I8: return "I8";
  case DType::U8: return "U8";
  case DType::Bool: return "BOOL";
  }
  return "?";
}

int64_t mlir::bitnet::safetensors::dtypeBytes(DType type) {
  switch (type) {
  case DType::F64: case DType::I64: return 8;
  case DType::F32: case DType::I32: return 4;
  case DType::F16: case DType::BF16: case DType::I16: return 2;
  case DType::I8: case DType::U8: case DType::Bool: return 1;
  }
  return 1;
}

static std::optional<DType> parseDType(StringRef name) {
  for (DType t : {DType::F64, DType::F32, DType::F16, DType::BF16, DType::I64,
                  DType::I32, DType::I16, DType::I8, DType::U8, DType::Bool})
    if (dtypeName(t) == name)
      return t;
  return std::nullopt;
}

int64_t Tensor::numElements() const {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

llvm::Expected<std::unique_ptr<File>> File::open(StringRef path) {
  return openAs<File>(path);
}

llvm::Expected<std::unique_ptr<File>> File::parse(llvm::MemoryBufferRef buffer) {
  return parseAs<File>(buffer);
}

/// The safetensors format caps its header at 100 MB.
static constexpr uint64_t kMaxHeaderBytes = 100u << 20;

llvm::Error File::parseAll() {
  if (bytes.size() < 8)
    return error("not a safetensors file (shorter than its 8-byte header "
                 "length)");
  uint64_t headerBytes;
  std::memcpy(&headerBytes, bytes.data(), 8);
  if (headerBytes > kMaxHeaderBytes)
    return error("a header of " + Twine(headerBytes) +
                 " bytes, more than the format's 100 MB");
  if (headerBytes > bytes.size() - 8)
    return error("the header (" + Twine(headerBytes) +
                 " bytes) runs past the end of the file (" +
                 Twine(bytes.size()) + " bytes)");
  StringRef header(reinterpret_cast<const char *>(bytes.data() + 8),
                   headerBytes);
  llvm::Expected<llvm::json::Value> json = llvm::json::parse(header);
  if (!json)
    return error("the header is not valid JSON: " +
                 llvm::toString(json.takeError()));
  const llvm::json::Object *object = json->getAsObject();
  if (!object)
    return error("the header is not a JSON object");
  ArrayRef<uint8_t> data = bytes.drop_front(8 + headerBytes);

  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto &[key, value] : *object) {
    StringRef name = key;
    if (name == "__metadata__") {
      const llvm::json::Object *meta = value.getAsObject();
      if (!meta)
        return error("__metadata__ is not an object");
      for (const auto &[mk, mv] : *meta) {
        std::optional<StringRef> s = mv.getAsString();
        if (!s)
          return error("__metadata__ entry '" + StringRef(mk) +
                       "' is not a string");
        metadata[mk] = s->str();
      }
      continue;
    }
    auto fail = [&](const Twine &what) {
      return error("tensor '" + name + "': " + what);
    };
    const llvm::json::Object *entry = value.getAsObject();
    if (!entry)
      return fail("its header entry is not an object");
    std::optional<StringRef> dtypeText = entry->getString("dtype");
    if (!dtypeText)
      return fail("no \"dtype\" string");
    std::optional<DType> dtype = parseDType(*dtypeText);
    if (!dtype)
      return fail("unsupported dtype '" + *dtypeText +
                  "' (expected F64, F32, F16, BF16, I64, I32, I16, I8, U8 "
                  "or BOOL)");
    const llvm::json::Array *shape = entry->getArray("shape");
    if (!shape)
      return fail("no \"shape\" array");
    if (shape->size() > 8)
      return fail("a shape of " + Twine(shape->size()) + " dimensions");
    Tensor tensor;
    tensor.name = name.str();
    tensor.dtype = *dtype;
    tensor.path = path;
    uint64_t count = 1;
    for (const llvm::json::Value &d : *shape) {
      std::optional<int64_t> dim = d.getAsInteger();
      if (!dim || *dim < 0 || *dim > (int64_t(1) << 40))
        return fail("its shape holds something other than a dimension "
                    "between 0 and 2^40");
      if (*dim != 0 && count > (uint64_t(1) << 48) / uint64_t(*dim))
        return fail("its shape has too many elements");
      count *= uint64_t(*dim);
      tensor.shape.push_back(*dim);
    }
    const llvm::json::Array *offsets = entry->getArray("data_offsets");
    if (!offsets || offsets->size() != 2)
      return fail("no \"data_offsets\" pair");
    std::optional<int64_t> begin = (*offsets)[0].getAsInteger();
    std::optional<int64_t> end = (*offsets)[1].getAsInteger();
    if (!begin || !end || *begin < 0 || *end < *begin)
      return fail("data_offsets must be two integers 0 <= begin <= end");
    uint64_t expected = count * uint64_t(dtypeBytes(*dtype));
    if (uint64_t(*end - *begin) != expected)
      return fail("data_offsets [" + Twine(*begin) + ", " + Twine(*end) +
                  ") hold " + Twine(*end - *begin) + " bytes, but " +
                  dtypeName(*dtype) + " of this shape takes " +
                  Twine(expected));
    if (uint64_t(*end) > data.size())
      return fail("data_offsets [" + Twine(*begin) + ", " + Twine(*end) +
                  ") run past the end of the data (" + Twine(data.size()) +
                  " bytes)");
    tensor.data = data.slice(*begin, *end - *begin);
    ranges.push_back({uint64_t(*begin), uint64_t(*end)});
    index[tensor.name] = tensors.size();
    tensors.push_back(std::move(tensor));
  }
  // Tensors may not overlap (the format requires it; a file that breaks it
  // would alias one weight into another).
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i)
    if (ranges[i].first < ranges[i - 1].second)
      return error("two tensors overlap at data offset " +
                   Twine(ranges[i].first));
  return llvm::Error::success();
}

const Tensor *File::find(StringRef name) const {
  auto it = index.find(name);
  return it == index.end() ? nullptr : &tensors[it->second];
}

llvm::Expected<std::unique_ptr<Checkpoint>>
Checkpoint::openDirectory(StringRef dir) {
  auto checkpoint = std::make_unique<Checkpoint>();
  SmallString<256> single(dir), indexPath(dir);
  llvm::sys::path::append(single, "model.safetensors");
  llvm::sys::path::append(indexPath, "model.safetensors.index.json");
  if (llvm::sys::fs::exists(single) && !llvm::sys::fs::exists(indexPath)) {
    llvm::Expected<std::unique_ptr<File>> file = File::open(single);
    if (!file)
      return file.takeError();
    for (const Tensor &t : (*file)->getTensors())
      checkpoint->tensors[t.name] = &t;
    checkpoint->files.push_back(std::move(*file));
    return std::move(checkpoint);
  }
  if (!llvm::sys::fs::exists(indexPath))
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        dir + ": no model.safetensors or model.safetensors.index.json");
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> indexFile =
      llvm::MemoryBuffer::getFile(indexPath, /*IsText=*/true);
  if (!indexFile)
    return llvm::createStringError(indexFile.getError(),
                                   "cannot read '" + indexPath + "'");
  auto indexError = [&](const Twine &what) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   indexPath + ": " + what);
  };
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*indexFile)->getBuffer());
  if (!json)
    return indexError("not valid JSON: " + llvm::toString(json.takeError()));
  const llvm::json::Object *root = json->getAsObject();
  const llvm::json::Object *weightMap =
      root ? root->getObject("weight_map") : nullptr;
  if (!weightMap)
    return indexError("no \"weight_map\" object");
  llvm::StringMap<File *> opened;
  for (const auto &[key, value] : *weightMap) {
    std::optional<StringRef> shard = value.getAsString();
    if (!shard)
      return indexError("the shard of '" + StringRef(key) +
                        "' is not a string");
    // A shard is a file name in the checkpoint's folder, nothing else.
    if (shard->empty() || shard->contains('/') || shard->contains('\\') ||
        *shard == "." || *shard == "..")
      return indexError("shard '" + *shard + "' of '" + StringRef(key) +
                        "' is not a file name in the checkpoint's folder");
    File *file = opened.lookup(*shard);
    if (!file) {
      SmallString<256> shardPath(dir);
      llvm::sys::path::append(shardPath, *shard);
      llvm::Expected<std::unique_ptr<File>> f = File::open(shardPath);
      if (!f)
        return f.takeError();
      file = f->get();
      opened[*shard] = file;
      checkpoint->files.push_back(std::move(*f));
    }
    const Tensor *tensor = file->find(key);
    if (!tensor)
      return indexError("tensor '" + StringRef(key) + "' is not in its shard '" +
                        *shard + "'");
    checkpoint->tensors[key] = tensor;
  }
  return std::move(checkpoint);
}

const Tensor *Checkpoint::find(StringRef name) const {
  return tensors.lookup(name);
}

std::vector<std::string> Checkpoint::names() const {
  std::vector<std::string> result;
  for (const auto &entry : tensors)
    result.push_back(entry.getKey().str());
  std::sort(result.begin(), result.end());
  return result;
}

uint64_t Checkpoint::totalBytes() const {
  uint64_t total = 0;
  for (const auto &file : files)
    for (const Tensor &t : file->getTensors())
      total += t.data.size();
  return total;
}

llvm::Expected<FloatTensor>
mlir::bitnet::safetensors::decodeFloat(const Tensor &tensor, bool keepHalf) {
  FloatTensor result;
  result.name = tensor.name;
  result.shape.assign(tensor.shape.begin(), tensor.shape.end());
  int64_t n = tensor.numElements();
  const uint8_t *data = tensor.data.data();
  auto load16 = [&](int64_t i) {
    uint16_t v;
    std::memcpy(&v, data + 2 * i, 2);
    return v;
  };
  switch (tensor.dtype) {
  case DType::F32:
    result.f32.resize(n);
    std::memcpy(result.f32.data(), data, n * 4);
    break;
  case DType::F64:
    result.f32.resize(n);
    for (int64_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, data + 8 * i, 8);
      result.f32[i] = static_cast<float>(d);
    }
    break;
  case DType::F16:
  case DType::BF16:
    if (keepHalf) {
      result.half.resize(n);
      result.brain = tensor.dtype == DType::BF16;
      std::memcpy(result.half.data(), data, n * 2);
      break;
    }
    result.f32.resize(n);
    if (tensor.dtype == DType::F16) {
      for (int64_t i = 0; i < n; ++i)
        result.f32[i] = halfToFloat(load16(i));
      break;
    }
    for (int64_t i = 0; i < n; ++i)
      result.f32[i] = bf16ToFloat(load16(i));
    break;
  default:
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        tensor.path + ": tensor '" + tensor.name + "' is " +
            dtypeName(tensor.dtype) + ", expected F32, F16, BF16 or F64");
  }
  if (!result.allFinite())
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   tensor.path + ": tensor '" + tensor.name +
                                       "' holds a value that is not finite");
  return result;
}
