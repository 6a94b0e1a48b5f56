//===- ONNXImporter.cpp - Reads ONNX models into MLIR ---------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// The ONNX library (schema registry, shape inference) reports errors by
// throwing; this file is compiled with exceptions and catches everything at
// each call into it, so no exception ever reaches code built without them.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/ONNX/ONNXImporter.h"

#include "bitnet/Import/Passes.h"

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Import/ONNXTypes.h"
#include "bitnet/Import/Pipelines.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "mlir/IR/Verifier.h"
#include "mlir/Pass/PassManager.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <onnx/defs/schema.h>
#include <onnx/onnx_pb.h>
#include <onnx/shape_inference/implementation.h>

#include <cstring>
#include <deque>
#include <map>
#include <set>

using namespace mlir;
using mlir::bitnet::BitNetDialect;
using mlir::bitnet::buildImportONNXPipeline;
using mlir::bitnet::ImportONNXPipelineOptions;
using mlir::bitnet::ONNXImportOptions;
// `onnx` is the ONNX library's namespace here.
namespace onnx_types = mlir::bitnet::onnx;

namespace {

// Any opset from the first: each lowering names the operator versions it
// implements, so an operator whose version an old opset resolves to (Add-6
// with its broadcast attribute, say) is refused at the node.
constexpr int64_t kMinOpset = 1;
constexpr int64_t kMaxOpset = 17;
using onnx_types::kMaxDim;
using onnx_types::kMaxTensorElements;

/// ONNX TensorProto data type names, for messages.
std::string dataTypeName(int32_t t) {
  static const char *names[] = {
      "UNDEFINED", "FLOAT",  "UINT8",  "INT8",      "UINT16",    "INT16",
      "INT32",     "INT64",  "STRING", "BOOL",      "FLOAT16",   "DOUBLE",
      "UINT32",    "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16"};
  if (t >= 0 && t < int32_t(std::size(names)))
    return names[t];
  return "data type " + std::to_string(t);
}

/// The data types onnx_types::isSupportedDataType accepts, for messages.
constexpr const char *kSupportedElements =
    "FLOAT, DOUBLE, FLOAT16, BFLOAT16, UINT8, INT8, UINT16, INT16, UINT32, "
    "INT32, UINT64, INT64 or BOOL";

int64_t elementBytes(int32_t t) {
  switch (t) {
  case onnx::TensorProto::DOUBLE:
  case onnx::TensorProto::INT64:
  case onnx::TensorProto::UINT64:
    return 8;
  case onnx::TensorProto::FLOAT:
  case onnx::TensorProto::INT32:
  case onnx::TensorProto::UINT32:
    return 4;
  case onnx::TensorProto::INT16:
  case onnx::TensorProto::UINT16:
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16:
    return 2;
  default:
    return 1;
  }
}

class Importer {
public:
  Importer(MLIRContext &ctx, StringRef fileName, StringRef baseDir,
           const ONNXImportOptions &options)
      : ctx(&ctx), b(&ctx), fileName(fileName.str()), baseDir(baseDir.str()),
        options(options) {}

  OwningOpRef<ModuleOp> run(StringRef bytes);

private:
  MLIRContext *ctx;
  OpBuilder b;
  std::string fileName;
  std::string baseDir;
  const ONNXImportOptions &options;
  onnx::ModelProto model;
  int64_t opset = 0;
  int64_t msOpset = 0;
  int64_t bitnetOpset = 0;
  llvm::StringMap<Value> values;
  /// Types ONNX shape inference found, by value name.
  std::map<std::string, onnx::TypeProto> inferred;
  Value none;

  Location graphLoc() { return FileLineColLoc::get(ctx, fileName, 0, 0); }
  Location nodeLoc(const onnx::NodeProto &node, int index) {
    std::string name = node.name().empty() ? "#" + std::to_string(index)
                                           : node.name();
    return NameLoc::get(StringAttr::get(ctx, name),
                        FileLineColLoc::get(ctx, fileName, index + 1, 0));
  }
  InFlightDiagnostic graphError() { return emitError(graphLoc()); }
  InFlightDiagnostic nodeError(const onnx::NodeProto &node, int index) {
    std::string name = node.name().empty() ? "#" + std::to_string(index)
                                           : node.name();
    return emitError(nodeLoc(node, index))
           << "node '" << name << "' (" << node.op_type() << "): ";
  }

  LogicalResult checkOpsets();
  LogicalResult checkGraph(SmallVectorImpl<int> &order);
  LogicalResult pinInputShapes(onnx::ModelProto &copy);
  void inferShapes();
  FailureOr<Type> valueType(const onnx::ValueInfoProto &info, bool isInput);
  Type inferredType(const std::string &name);
  FailureOr<DenseElementsAttr>
  tensorAttr(const onnx::TensorProto &tensor,
             function_ref<InFlightDiagnostic()> error);
  FailureOr<std::unique_ptr<llvm::MemoryBuffer>>
  externalData(const onnx::TensorProto &tensor, int64_t bytes,
               function_ref<InFlightDiagnostic()> error);
  FailureOr<NamedAttribute> attribute(const onnx::AttributeProto &attr,
                                      const onnx::NodeProto &node, int index);
  LogicalResult importNode(const onnx::NodeProto &node, int index);
};

} // namespace

//===----------------------------------------------------------------------===//
// Checks of the whole model
//===----------------------------------------------------------------------===//

LogicalResult Importer::checkOpsets() {
  bool hasDefault = false;
  for (const onnx::OperatorSetIdProto &id : model.opset_import()) {
    const std::string &domain = id.domain();
    if (domain.empty() || domain == "ai.onnx") {
      hasDefault = true;
      opset = id.version();
      if (opset < kMinOpset || opset > kMaxOpset) {
        InFlightDiagnostic d = graphError()
                               << "opset " << opset
                               << " of the default ONNX domain is not "
                                  "supported";
        d.attachNote() << "expected opset " << kMinOpset << " to "
                       << kMaxOpset;
        return d;
      }
    } else if (domain == "com.microsoft") {
      msOpset = id.version();
      if (msOpset != 1) {
        InFlightDiagnostic d = graphError() << "opset " << msOpset
                                            << " of domain com.microsoft is "
                                               "not supported";
        d.attachNote() << "expected opset 1";
        return d;
      }
    } else if (domain == "bitnet") {
      bitnetOpset = id.version();
      if (bitnetOpset != 1) {
        InFlightDiagnostic d = graphError() << "opset " << bitnetOpset
                                            << " of domain bitnet is not "
                                               "supported";
        d.attachNote() << "expected opset 1";
        return d;
      }
    }
    // Other domains are reported at the first node that uses them.
  }
  if (!hasDefault) {
    InFlightDiagnostic d = graphError() << "the model imports no opset of the "
                                           "default ONNX domain";
    d.attachNote() << "expected an opset_import entry for domain \"\"";
    return d;
  }
  return success();
}

/// Checks names and dependencies and puts the nodes in an order where every
/// value is defined before it is used (ONNX requires the graph's order to be
/// one, but does not always get it).
LogicalResult Importer::checkGraph(SmallVectorImpl<int> &order) {
  const onnx::GraphProto &g = model.graph();
  llvm::StringMap<int> producer; // value -> node index, -1: input/initialiser
  for (const onnx::TensorProto &t : g.initializer()) {
    if (t.name().empty())
      return graphError() << "an initialiser has no name";
    if (!producer.try_emplace(t.name(), -1).second)
      return graphError() << "initialiser '" << t.name()
                          << "' is defined twice";
  }
  for (const onnx::ValueInfoProto &v : g.input()) {
    if (v.name().empty())
      return graphError() << "a graph input has no name";
    producer[v.name()] = -1;
  }
  int n = g.node_size();
  for (int i = 0; i < n; ++i) {
    const onnx::NodeProto &node = g.node(i);
    for (const std::string &out : node.output()) {
      if (out.empty())
        continue;
      auto [it, inserted] = producer.try_emplace(out, i);
      if (!inserted) {
        InFlightDiagnostic d = nodeError(node, i)
                               << "output '" << out << "' is already defined";
        d.attachNote() << "expected every value to be defined once (SSA)";
        return d;
      }
    }
  }
  // Kahn's algorithm, keeping the file's order among ready nodes.
  std::vector<int> pending(n, 0);
  std::vector<SmallVector<int>> users(n);
  for (int i = 0; i < n; ++i) {
    const onnx::NodeProto &node = g.node(i);
    for (const std::string &in : node.input()) {
      if (in.empty())
        continue;
      auto it = producer.find(in);
      if (it == producer.end()) {
        InFlightDiagnostic d = nodeError(node, i)
                               << "input '" << in
                               << "' is not defined anywhere";
        d.attachNote() << "expected the name of a graph input, an "
                          "initialiser or another node's output";
        return d;
      }
      if (it->second >= 0) {
        ++pending[i];
        users[it->second].push_back(i);
      }
    }
  }
  std::set<int> ready;
  for (int i = 0; i < n; ++i)
    if (pending[i] == 0)
      ready.insert(i);
  while (!ready.empty()) {
    int i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (int u : users[i])
      if (--pending[u] == 0)
        ready.insert(u);
  }
  if (int(order.size()) != n) {
    for (int i = 0; i < n; ++i)
      if (pending[i] > 0) {
        InFlightDiagnostic d = nodeError(g.node(i), i)
                               << "is part of a cycle: its inputs depend on "
                                  "its own outputs";
        d.attachNote() << "expected an acyclic graph";
        return d;
      }
  }
  for (const onnx::ValueInfoProto &v : g.output())
    if (!producer.count(v.name())) {
      InFlightDiagnostic d = graphError() << "graph output '" << v.name()
                                          << "' is not defined anywhere";
      d.attachNote() << "expected the name of a graph input, an initialiser "
                        "or a node's output";
      return d;
    }
  if (g.output_size() == 0)
    return graphError() << "the graph has no outputs";
  return success();
}

LogicalResult Importer::pinInputShapes(onnx::ModelProto &m) {
  llvm::StringSet<> seen;
  for (onnx::ValueInfoProto &v : *m.mutable_graph()->mutable_input()) {
    auto it = options.inputShapes.find(v.name());
    if (it == options.inputShapes.end())
      continue;
    seen.insert(v.name());
    ArrayRef<int64_t> pinned = it->second;
    onnx::TypeProto_Tensor *tt = v.mutable_type()->mutable_tensor_type();
    if (tt->has_shape() && tt->shape().dim_size() != int(pinned.size())) {
      InFlightDiagnostic d = graphError()
                             << "--input-shape for '" << v.name() << "' has "
                             << pinned.size() << " dimensions, the input "
                             << tt->shape().dim_size();
      d.attachNote() << "expected a shape of rank "
                     << tt->shape().dim_size();
      return d;
    }
    if (tt->has_shape())
      for (int k = 0; k < tt->shape().dim_size(); ++k) {
        const onnx::TensorShapeProto_Dimension &dim = tt->shape().dim(k);
        if (dim.has_dim_value() && dim.dim_value() != pinned[k]) {
          InFlightDiagnostic d = graphError()
                                 << "--input-shape for '" << v.name()
                                 << "' sets dimension " << k << " to "
                                 << pinned[k] << ", the model fixes it to "
                                 << dim.dim_value();
          d.attachNote() << "only symbolic or unknown dimensions can be set";
          return d;
        }
      }
    onnx::TensorShapeProto *shape = tt->mutable_shape();
    shape->clear_dim();
    for (int64_t d : pinned)
      shape->add_dim()->set_dim_value(d);
  }
  for (const auto &entry : options.inputShapes)
    if (!seen.contains(entry.getKey())) {
      std::string names;
      for (const onnx::ValueInfoProto &v : m.graph().input())
        names += (names.empty() ? "" : ", ") + v.name();
      InFlightDiagnostic d = graphError() << "--input-shape names '"
                                          << entry.getKey()
                                          << "', which is not a graph input";
      d.attachNote() << "the graph inputs are: " << names;
      return d;
    }
  return success();
}

/// Whether ONNX's shape inference may run on `graph`. Its inference
/// functions are not written for hostile input (a MaxPool with a stride of 0
/// divides by zero, a malformed ConvTranspose reads through a null pointer):
/// run them only where every node is one that legalisation takes (and
/// checks itself). A graph with any other node fails at that node anyway,
/// with the importer's own diagnostic, so it loses nothing by going without.
static bool isSafeForShapeInference(const onnx::GraphProto &graph) {
  // The inference functions of the windowed operations trust their
  // attributes and input ranks (a stride of 0, a rank-2 ConvTranspose
  // input); legalisation checks those itself.
  static const llvm::StringSet<> untrusted = {
      "Conv",          "ConvInteger",       "ConvTranspose",
      "QLinearConv",   "DeformConv",        "MaxPool",
      "AveragePool",   "LpPool",            "GlobalMaxPool",
      "GlobalAveragePool", "GlobalLpPool",  "MaxUnpool",
      "MaxRoiPool",    "RoiAlign",          "Col2Im",
      "GridSample",    "Resize",            "Upsample"};
  // Inference functions also read the type of a required input without
  // checking that there is one (Shape of a graph input declared with no
  // type reads through a null pointer): every value a node reads must have
  // a type by the time the node comes, and no required input may be left
  // out.
  llvm::StringSet<> typed;
  for (const onnx::ValueInfoProto &input : graph.input()) {
    if (!input.type().has_tensor_type() ||
        input.type().tensor_type().elem_type() ==
            onnx::TensorProto::UNDEFINED)
      return false;
    typed.insert(input.name());
  }
  for (const onnx::TensorProto &init : graph.initializer())
    typed.insert(init.name());
  llvm::StringSet<> declared;
  for (const auto *infos : {&graph.value_info(), &graph.output()})
    for (const onnx::ValueInfoProto &info : *infos)
      if (info.type().has_tensor_type() &&
          info.type().tensor_type().elem_type() !=
              onnx::TensorProto::UNDEFINED)
        declared.insert(info.name());
  for (const onnx::NodeProto &node : graph.node()) {
    if (!mlir::bitnet::isLegalizableONNXOp(node.domain(), node.op_type()))
      return false;
    if ((node.domain().empty() || node.domain() == "ai.onnx") &&
        untrusted.contains(node.op_type()))
      return false;
    for (const onnx::AttributeProto &attr : node.attribute())
      if (attr.has_g() || attr.graphs_size() > 0)
        return false;
    const onnx::OpSchema *schema =
        onnx::OpSchemaRegistry::Schema(node.op_type(), node.domain());
    if (!schema) {
      // ONNX has no inference for it (com.microsoft, bitnet) and skips it;
      // its outputs have a type only where the graph declares one.
      for (const std::string &output : node.output())
        if (declared.contains(output))
          typed.insert(output);
      continue;
    }
    const auto &formals = schema->inputs();
    for (int i = 0, e = node.input_size(); i < e; ++i) {
      const std::string &name = node.input(i);
      if (!name.empty()) {
        if (!typed.contains(name))
          return false;
        continue;
      }
      // Left out: only an optional input may be.
      if (static_cast<size_t>(i) >= formals.size() ||
          formals[i].GetOption() != onnx::OpSchema::Optional)
        return false;
    }
    if (static_cast<size_t>(node.input_size()) < formals.size())
      for (size_t i = node.input_size(); i < formals.size(); ++i)
        if (formals[i].GetOption() == onnx::OpSchema::Single)
          return false;
    for (const std::string &output : node.output())
      if (!output.empty())
        typed.insert(output);
  }
  return true;
}

void Importer::inferShapes() {
  if (!isSafeForShapeInference(model.graph()))
    return;
  onnx::ModelProto copy = model;
  try {
    onnx::ShapeInferenceOptions opts(/*check_type=*/false, /*error_mode=*/0,
                                     /*enable_data_propagation=*/true);
    onnx::shape_inference::InferShapes(copy, onnx::OpSchemaRegistry::Instance(),
                                       opts);
  } catch (...) {
    // Shape inference only gives hints; legalisation computes and checks
    // every shape itself and reports problems at the node.
    return;
  }
  for (const onnx::ValueInfoProto &v : copy.graph().value_info())
    inferred[v.name()] = v.type();
  for (const onnx::ValueInfoProto &v : copy.graph().output())
    inferred[v.name()] = v.type();
}

Type Importer::inferredType(const std::string &name) {
  auto it = inferred.find(name);
  Type fallback = UnrankedTensorType::get(Float32Type::get(ctx));
  if (it == inferred.end() || !it->second.has_tensor_type())
    return fallback;
  const onnx::TypeProto_Tensor &tt = it->second.tensor_type();
  Type elem = onnx_types::elementTypeOf(ctx, tt.elem_type());
  if (!elem)
    return fallback;
  if (!tt.has_shape())
    return UnrankedTensorType::get(elem);
  SmallVector<int64_t> dims;
  for (const auto &d : tt.shape().dim()) {
    if (d.has_dim_value() && d.dim_value() >= 0 && d.dim_value() <= kMaxDim)
      dims.push_back(d.dim_value());
    else
      dims.push_back(ShapedType::kDynamic);
  }
  return RankedTensorType::get(dims, elem);
}

FailureOr<Type> Importer::valueType(const onnx::ValueInfoProto &info,
                                    bool isInput) {
  StringRef what = isInput ? "input" : "output";
  if (!info.type().has_tensor_type()) {
    InFlightDiagnostic d = graphError() << "graph " << what << " '"
                                        << info.name() << "' is not a tensor";
    d.attachNote() << "expected a tensor type";
    return d;
  }
  const onnx::TypeProto_Tensor &tt = info.type().tensor_type();
  int32_t et = tt.elem_type();
  if (!onnx_types::isSupportedDataType(et)) {
    InFlightDiagnostic d = graphError()
                           << "graph " << what << " '" << info.name()
                           << "' has element type " << dataTypeName(et)
                           << ", which compiled models do not support";
    d.attachNote() << "expected " << kSupportedElements;
    return d;
  }
  Type elem = onnx_types::elementTypeOf(ctx, et);
  if (!tt.has_shape()) {
    if (!isInput)
      return Type(UnrankedTensorType::get(elem));
    InFlightDiagnostic d = graphError() << "graph input '" << info.name()
                                        << "' has no shape";
    d.attachNote() << "give it one with --input-shape=" << info.name()
                   << ":<dims, e.g. 1x128>";
    return d;
  }
  SmallVector<int64_t> dims;
  for (int k = 0; k < tt.shape().dim_size(); ++k) {
    const onnx::TensorShapeProto_Dimension &dim = tt.shape().dim(k);
    if (dim.has_dim_value()) {
      if (dim.dim_value() < 0 || dim.dim_value() > kMaxDim) {
        InFlightDiagnostic d = graphError()
                               << "graph " << what << " '" << info.name()
                               << "' has dimension " << k << " = "
                               << dim.dim_value();
        d.attachNote() << "expected dimensions in [0, " << kMaxDim << "]";
        return d;
      }
      dims.push_back(dim.dim_value());
      continue;
    }
    if (!isInput) {
      dims.push_back(ShapedType::kDynamic);
      continue;
    }
    std::string param =
        dim.has_dim_param() ? " ('" + dim.dim_param() + "')" : "";
    InFlightDiagnostic d = graphError()
                           << "graph input '" << info.name() << "' dimension "
                           << k << param
                           << " is not static; compiled models need static "
                              "shapes";
    d.attachNote() << "pin it with --input-shape=" << info.name()
                   << ":<dims, e.g. 1x128>";
    return d;
  }
  if (isInput && onnx_types::numElements(dims) < 0) {
    InFlightDiagnostic d = graphError() << "graph input '" << info.name()
                                        << "' has too many elements";
    d.attachNote() << "expected at most " << kMaxTensorElements << " elements";
    return d;
  }
  return Type(RankedTensorType::get(dims, elem));
}

//===----------------------------------------------------------------------===//
// Tensors
//===----------------------------------------------------------------------===//

FailureOr<std::unique_ptr<llvm::MemoryBuffer>>
Importer::externalData(const onnx::TensorProto &tensor, int64_t bytes,
                       function_ref<InFlightDiagnostic()> error) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (const onnx::StringStringEntryProto &e : tensor.external_data()) {
    auto parseInt = [&](int64_t &out) {
      StringRef s(e.value());
      unsigned long long v;
      if (s.getAsInteger(10, v) || v > (1ull << 62))
        return false;
      out = int64_t(v);
      return true;
    };
    if (e.key() == "location")
      location = e.value();
    else if (e.key() == "offset" && !parseInt(offset))
      return error() << "external data offset '" << e.value()
                     << "' is not a number";
    else if (e.key() == "length" && !parseInt(length))
      return error() << "external data length '" << e.value()
                     << "' is not a number";
  }
  if (baseDir.empty())
    return error() << "has external data, which is not allowed for a model "
                      "read from memory";
  if (location.empty())
    return error() << "has external data without a location";
  // The file must lie inside the model's folder.
  if (llvm::sys::path::is_absolute(location) ||
      llvm::any_of(llvm::make_range(llvm::sys::path::begin(location),
                                    llvm::sys::path::end(location)),
                   [](StringRef c) { return c == ".."; })) {
    InFlightDiagnostic d = error() << "external data location '" << location
                                   << "' leaves the model's folder";
    d.attachNote() << "expected a relative path inside " << baseDir;
    return d;
  }
  SmallString<256> path(baseDir);
  llvm::sys::path::append(path, location);
  SmallString<256> realDir, realPath;
  if (llvm::sys::fs::real_path(baseDir, realDir) ||
      llvm::sys::fs::real_path(path, realPath)) {
    InFlightDiagnostic d = error() << "external data file '" << path
                                   << "' does not exist";
    d.attachNote() << "expected it next to the model";
    return d;
  }
  StringRef rel(realPath);
  if (!rel.consume_front(realDir) || !llvm::sys::path::is_separator(rel[0])) {
    InFlightDiagnostic d = error() << "external data file '" << path
                                   << "' resolves to " << realPath
                                   << ", outside the model's folder";
    d.attachNote() << "expected a file inside " << realDir;
    return d;
  }
  llvm::sys::fs::file_status status;
  if (llvm::sys::fs::status(realPath, status) ||
      !llvm::sys::fs::is_regular_file(status))
    return error() << "external data '" << path << "' is not a regular file";
  int64_t size = status.getSize();
  if (length < 0)
    length = size - offset;
  if (offset > size || length > size - offset) {
    InFlightDiagnostic d = error() << "external data [" << offset << ", "
                                   << offset + length << ") lies beyond the "
                                   << size << " bytes of '" << path << "'";
    d.attachNote() << "expected a range inside the file";
    return d;
  }
  if (length != bytes) {
    InFlightDiagnostic d = error() << "external data holds " << length
                                   << " bytes";
    d.attachNote() << "expected " << bytes << " bytes for its shape and type";
    return d;
  }
  auto buffer = llvm::MemoryBuffer::getFileSlice(realPath, length, offset);
  if (!buffer)
    return error() << "cannot read '" << path
                   << "': " << buffer.getError().message();
  return std::move(*buffer);
}

FailureOr<DenseElementsAttr>
Importer::tensorAttr(const onnx::TensorProto &tensor,
                     function_ref<InFlightDiagnostic()> error) {
  int32_t dt = tensor.data_type();
  if (!onnx_types::isSupportedDataType(dt)) {
    InFlightDiagnostic d = error() << "has element type " << dataTypeName(dt)
                                   << ", which is not supported";
    d.attachNote() << "expected " << kSupportedElements;
    return d;
  }
  SmallVector<int64_t> dims(tensor.dims().begin(), tensor.dims().end());
  int64_t n = onnx_types::numElements(dims);
  if (n < 0) {
    InFlightDiagnostic d = error() << "has an absurd shape [";
    llvm::interleave(dims, d, ",");
    d << "]";
    d.attachNote() << "expected dimensions in [0, " << kMaxDim
                   << "] and at most " << kMaxTensorElements << " elements";
    return d;
  }
  if (tensor.segment().begin() || tensor.segment().end())
    return error() << "is segmented, which is not supported";
  Type elem = onnx_types::elementTypeOf(ctx, dt);
  Type storage = elem.isUnsignedInteger()
                     ? IntegerType::get(ctx, elem.getIntOrFloatBitWidth())
                     : elem;
  auto storageType = RankedTensorType::get(dims, storage);
  auto type = RankedTensorType::get(dims, elem);
  int64_t bytes = n * elementBytes(dt);

  // Raw little-endian bytes, inline or in an external file.
  std::unique_ptr<llvm::MemoryBuffer> external;
  StringRef raw;
  bool hasRaw = false;
  if (tensor.data_location() == onnx::TensorProto::EXTERNAL) {
    auto buf = externalData(tensor, bytes, error);
    if (failed(buf))
      return failure();
    external = std::move(*buf);
    raw = external->getBuffer();
    hasRaw = true;
  } else if (tensor.has_raw_data()) {
    raw = tensor.raw_data();
    hasRaw = true;
    if (int64_t(raw.size()) != bytes) {
      InFlightDiagnostic d = error() << "holds " << raw.size()
                                     << " bytes of raw data";
      d.attachNote() << "expected " << bytes << " bytes for its shape and type";
      return d;
    }
  }
  if (hasRaw) {
    if (dt == onnx::TensorProto::BOOL) {
      SmallVector<bool> v(n);
      for (int64_t k = 0; k < n; ++k)
        v[k] = raw[k] != 0;
      return DenseElementsAttr::get(type, ArrayRef<bool>(v));
    }
    ArrayRef<char> data(raw.data(), raw.size());
    bool splat = false;
    if (!DenseElementsAttr::isValidRawBuffer(storageType, data, splat))
      return error() << "has raw data that does not match its type";
    auto attr = DenseElementsAttr::getFromRawBuffer(storageType, data);
    return storage == elem ? attr : attr.bitcast(elem);
  }

  // Typed fields.
  auto countError = [&](int64_t got) {
    InFlightDiagnostic d = error() << "holds " << got << " values";
    d.attachNote() << "expected " << n << " values for its shape";
    return d;
  };
  switch (dt) {
  case onnx::TensorProto::FLOAT: {
    if (tensor.float_data_size() != n)
      return countError(tensor.float_data_size());
    SmallVector<float> v(tensor.float_data().begin(), tensor.float_data().end());
    return DenseElementsAttr::get(type, ArrayRef<float>(v));
  }
  case onnx::TensorProto::DOUBLE: {
    if (tensor.double_data_size() != n)
      return countError(tensor.double_data_size());
    SmallVector<double> v(tensor.double_data().begin(),
                          tensor.double_data().end());
    return DenseElementsAttr::get(type, ArrayRef<double>(v));
  }
  case onnx::TensorProto::INT64: {
    if (tensor.int64_data_size() != n)
      return countError(tensor.int64_data_size());
    SmallVector<int64_t> v(tensor.int64_data().begin(),
                           tensor.int64_data().end());
    return DenseElementsAttr::get(type, ArrayRef<int64_t>(v));
  }
  case onnx::TensorProto::BOOL: {
    if (tensor.int32_data_size() != n)
      return countError(tensor.int32_data_size());
    SmallVector<bool> v;
    for (int32_t x : tensor.int32_data())
      v.push_back(x != 0);
    return DenseElementsAttr::get(type, ArrayRef<bool>(v));
  }
  case onnx::TensorProto::UINT32:
  case onnx::TensorProto::UINT64: {
    if (tensor.uint64_data_size() != n)
      return countError(tensor.uint64_data_size());
    unsigned width = elem.getIntOrFloatBitWidth();
    SmallVector<APInt> v;
    v.reserve(n);
    for (uint64_t x : tensor.uint64_data())
      v.push_back(APInt(width, x, /*isSigned=*/false, /*implicitTrunc=*/true));
    return DenseElementsAttr::get(type, v);
  }
  case onnx::TensorProto::FLOAT16:
  case onnx::TensorProto::BFLOAT16: {
    // The 16-bit patterns, one per int32.
    if (tensor.int32_data_size() != n)
      return countError(tensor.int32_data_size());
    const llvm::fltSemantics &sem = cast<FloatType>(elem).getFloatSemantics();
    SmallVector<APFloat> v;
    v.reserve(n);
    for (int32_t x : tensor.int32_data())
      v.push_back(APFloat(sem, APInt(16, uint64_t(uint32_t(x)) & 0xffff)));
    return DenseElementsAttr::get(type, v);
  }
  default: {
    // INT32, INT16, UINT16, INT8, UINT8: one int32 per value, truncated.
    if (tensor.int32_data_size() != n)
      return countError(tensor.int32_data_size());
    unsigned width = elem.getIntOrFloatBitWidth();
    SmallVector<APInt> v;
    v.reserve(n);
    for (int32_t x : tensor.int32_data())
      v.push_back(APInt(width, uint64_t(int64_t(x)), /*isSigned=*/true,
                        /*implicitTrunc=*/true));
    return DenseElementsAttr::get(type, v);
  }
  }
}

//===----------------------------------------------------------------------===//
// Nodes
//===----------------------------------------------------------------------===//

FailureOr<NamedAttribute>
Importer::attribute(const onnx::AttributeProto &a, const onnx::NodeProto &node,
                    int index) {
  auto error = [&]() -> InFlightDiagnostic {
    return nodeError(node, index) << "attribute '" << a.name() << "' ";
  };
  if (a.name().empty() || StringRef(a.name()).starts_with("onnx."))
    return nodeError(node, index) << "has an attribute with an invalid name '"
                                  << a.name() << "'";
  StringAttr name = StringAttr::get(ctx, a.name());
  if (!a.ref_attr_name().empty())
    return error() << "refers to a function attribute, which is not supported";
  switch (a.type()) {
  case onnx::AttributeProto::FLOAT:
    return NamedAttribute(name, b.getF32FloatAttr(a.f()));
  case onnx::AttributeProto::INT:
    return NamedAttribute(name, b.getI64IntegerAttr(a.i()));
  case onnx::AttributeProto::STRING:
    return NamedAttribute(name, b.getStringAttr(a.s()));
  case onnx::AttributeProto::FLOATS: {
    SmallVector<float> v(a.floats().begin(), a.floats().end());
    return NamedAttribute(name, b.getDenseF32ArrayAttr(v));
  }
  case onnx::AttributeProto::INTS: {
    SmallVector<int64_t> v(a.ints().begin(), a.ints().end());
    return NamedAttribute(name, b.getDenseI64ArrayAttr(v));
  }
  case onnx::AttributeProto::STRINGS: {
    SmallVector<Attribute> v;
    for (const std::string &s : a.strings())
      v.push_back(b.getStringAttr(s));
    return NamedAttribute(name, b.getArrayAttr(v));
  }
  case onnx::AttributeProto::TENSOR: {
    FailureOr<DenseElementsAttr> t = tensorAttr(a.t(), [&]() {
      return error() << "(a tensor) ";
    });
    if (failed(t))
      return failure();
    return NamedAttribute(name, *t);
  }
  default: {
    InFlightDiagnostic d = error() << "has kind " << int(a.type())
                                   << ", which is not supported";
    d.attachNote() << "expected an int, float, string, tensor or a list of "
                      "ints, floats or strings (no sub-graphs)";
    return d;
  }
  }
}

LogicalResult Importer::importNode(const onnx::NodeProto &node, int index) {
  const std::string &opType = node.op_type();
  bool validName = !opType.empty() && llvm::all_of(opType, [](char c) {
    return llvm::isAlnum(c) || c == '_';
  });
  if (!validName)
    return nodeError(node, index) << "has an invalid op type";
  const std::string &domain = node.domain();
  std::string opName;
  int64_t version = 0;
  if (domain.empty() || domain == "ai.onnx") {
    const onnx::OpSchema *schema = nullptr;
    try {
      schema = onnx::OpSchemaRegistry::Schema(opType, int(opset), "");
    } catch (...) {
      schema = nullptr;
    }
    if (!schema) {
      InFlightDiagnostic d = nodeError(node, index)
                             << "operator '" << opType
                             << "' does not exist in opset " << opset;
      d.attachNote() << "expected an ONNX operator of opset " << opset;
      return d;
    }
    version = schema->since_version();
    opName = "onnx." + opType;
  } else if (domain == "com.microsoft") {
    if (msOpset == 0)
      return nodeError(node, index) << "uses domain com.microsoft, which the "
                                       "model does not import";
    version = msOpset;
    opName = "onnx.com.microsoft." + opType;
  } else if (domain == "bitnet") {
    if (bitnetOpset == 0)
      return nodeError(node, index) << "uses domain bitnet, which the model "
                                       "does not import";
    version = bitnetOpset;
    opName = "onnx.bitnet." + opType;
  } else {
    InFlightDiagnostic d = nodeError(node, index)
                           << "domain '" << domain << "' is not supported";
    d.attachNote() << "expected the default ONNX domain, com.microsoft or "
                      "bitnet";
    return d;
  }

  SmallVector<Value> operands;
  for (const std::string &in : node.input()) {
    if (in.empty()) {
      operands.push_back(none);
      continue;
    }
    Value v = values.lookup(in);
    if (!v)
      return nodeError(node, index) << "input '" << in << "' is undefined";
    operands.push_back(v);
  }
  SmallVector<Type> resultTypes;
  for (const std::string &out : node.output())
    resultTypes.push_back(inferredType(out));
  SmallVector<NamedAttribute> attrs;
  llvm::StringSet<> seen;
  for (const onnx::AttributeProto &a : node.attribute()) {
    if (!seen.insert(a.name()).second)
      return nodeError(node, index) << "attribute '" << a.name()
                                    << "' is given twice";
    FailureOr<NamedAttribute> attr = attribute(a, node, index);
    if (failed(attr))
      return failure();
    attrs.push_back(*attr);
  }
  attrs.push_back(b.getNamedAttr("onnx.version", b.getI64IntegerAttr(version)));
  OperationState state(nodeLoc(node, index), opName);
  state.addOperands(operands);
  state.addTypes(resultTypes);
  state.addAttributes(attrs);
  Operation *op = b.create(state);
  for (auto [k, out] : llvm::enumerate(node.output()))
    if (!out.empty())
      values[out] = op->getResult(k);
  return success();
}

//===----------------------------------------------------------------------===//
// The whole model
//===----------------------------------------------------------------------===//

OwningOpRef<ModuleOp> Importer::run(StringRef bytes) {
  if (bytes.empty()) {
    graphError() << "not an ONNX model: the file is empty";
    return {};
  }
  if (bytes.size() > size_t(INT32_MAX)) {
    graphError() << "models over 2 GiB must keep their weights in external "
                    "data files";
    return {};
  }
  if (!model.ParseFromArray(bytes.data(), int(bytes.size()))) {
    InFlightDiagnostic d = graphError()
                           << "not an ONNX model: the file is not a valid "
                              "ModelProto (truncated or another format)";
    d.attachNote() << "expected a binary ONNX protobuf file";
    return {};
  }
  if (!model.has_graph() || model.ir_version() <= 0) {
    InFlightDiagnostic d = graphError() << "not an ONNX model: "
                                        << (model.has_graph() ? "no IR version"
                                                              : "no graph");
    d.attachNote() << "expected a ModelProto with ir_version and a graph";
    return {};
  }
  if (failed(checkOpsets()))
    return {};
  SmallVector<int> order;
  if (failed(checkGraph(order)))
    return {};
  onnx::ModelProto pinned = model;
  if (failed(pinInputShapes(pinned)))
    return {};
  model = std::move(pinned);
  inferShapes();

  const onnx::GraphProto &g = model.graph();
  auto module = ModuleOp::create(graphLoc());
  OwningOpRef<ModuleOp> owned(module);
  b.setInsertionPointToEnd(module.getBody());

  // Inputs: graph inputs that are not initialisers (old models list both).
  llvm::StringSet<> initNames;
  for (const onnx::TensorProto &t : g.initializer())
    initNames.insert(t.name());
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  llvm::StringSet<> inputNames;
  for (const onnx::ValueInfoProto &v : g.input()) {
    if (initNames.contains(v.name()))
      continue;
    if (!inputNames.insert(v.name()).second) {
      graphError() << "graph input '" << v.name() << "' is listed twice";
      return {};
    }
    FailureOr<Type> t = valueType(v, /*isInput=*/true);
    if (failed(t))
      return {};
    argTypes.push_back(*t);
    argNames.push_back(v.name());
  }
  SmallVector<Attribute> outputNames;
  for (const onnx::ValueInfoProto &v : g.output()) {
    if (v.type().has_tensor_type() &&
        !onnx_types::isSupportedDataType(v.type().tensor_type().elem_type())) {
      FailureOr<Type> t = valueType(v, /*isInput=*/false);
      if (failed(t))
        return {};
    }
    if (v.type().has_tensor_type() && v.type().tensor_type().has_shape())
      for (const auto &d : v.type().tensor_type().shape().dim())
        if (d.has_dim_value() && (d.dim_value() < 0 || d.dim_value() > kMaxDim)) {
          InFlightDiagnostic diag = graphError()
                                    << "graph output '" << v.name()
                                    << "' has dimension " << d.dim_value();
          diag.attachNote() << "expected dimensions in [0, " << kMaxDim << "]";
          return {};
        }
    outputNames.push_back(b.getStringAttr(v.name()));
  }
  auto func = func::FuncOp::create(
      b, graphLoc(), options.entry,
      FunctionType::get(ctx, argTypes, {}));
  func->setAttr("bitnet.output_names", b.getArrayAttr(outputNames));
  // The model's metadata (a vocabulary, a description) travels with it into
  // the compiled model's descriptor.
  if (model.metadata_props_size() > 0) {
    SmallVector<NamedAttribute> meta;
    llvm::StringSet<> keys;
    for (const onnx::StringStringEntryProto &p : model.metadata_props())
      if (!p.key().empty() && keys.insert(p.key()).second)
        meta.push_back(
            b.getNamedAttr(p.key(), b.getStringAttr(p.value())));
    module->setAttr("bitnet.metadata", b.getDictionaryAttr(meta));
  }
  Block *entry = func.addEntryBlock();
  for (auto [k, name] : llvm::enumerate(argNames)) {
    func.setArgAttr(k, "bitnet.name", b.getStringAttr(name));
    values[name] = entry->getArgument(k);
  }
  b.setInsertionPointToStart(entry);
  {
    OperationState state(graphLoc(), "onnx.None");
    state.addTypes(b.getNoneType());
    none = b.create(state)->getResult(0);
  }

  for (const onnx::TensorProto &t : g.initializer()) {
    if (inputNames.contains(t.name()))
      continue;
    FailureOr<DenseElementsAttr> attr = tensorAttr(t, [&]() {
      return graphError() << "initialiser '" << t.name() << "' ";
    });
    if (failed(attr))
      return {};
    OperationState state(NameLoc::get(b.getStringAttr(t.name()), graphLoc()),
                         "onnx.Constant");
    state.addTypes(attr->getType());
    state.addAttribute("value", *attr);
    state.addAttribute("onnx.version", b.getI64IntegerAttr(13));
    values[t.name()] = b.create(state)->getResult(0);
  }
  for (int i : order)
    if (failed(importNode(g.node(i), i)))
      return {};
  SmallVector<Value> results;
  for (const onnx::ValueInfoProto &v : g.output())
    results.push_back(values.lookup(v.name()));
  func::ReturnOp::create(b, graphLoc(), results);
  SmallVector<Type> resultTypes;
  for (Value v : results)
    resultTypes.push_back(v.getType());
  func.setFunctionType(FunctionType::get(ctx, argTypes, resultTypes));

  if (!options.legalize)
    return owned;
  PassManager pm(ctx, ModuleOp::getOperationName());
  pm.enableVerifier(false);
  ImportONNXPipelineOptions pipeline;
  pipeline.recognizeBitLinear = options.recognizeBitLinear;
  pipeline.strictFloat = options.strictFloat;
  pipeline.explainBitLinear = options.explainBitLinear;
  buildImportONNXPipeline(pm, pipeline);
  if (failed(pm.run(module)))
    return {};
  if (failed(mlir::verify(module))) {
    graphError() << "internal error: the imported model does not verify";
    return {};
  }
  return owned;
}

std::string mlir::bitnet::addInputShape(StringRef spec,
                                        ONNXImportOptions &options) {
  size_t colon = spec.rfind(':');
  if (colon == StringRef::npos || colon == 0)
    return "--input-shape expects name:dims (e.g. x:1x128), got '" +
           spec.str() + "'";
  StringRef name = spec.take_front(colon), dims = spec.drop_front(colon + 1);
  SmallVector<int64_t> shape;
  if (!dims.empty()) {
    SmallVector<StringRef> parts;
    dims.split(parts, 'x');
    for (StringRef p : parts) {
      unsigned long long v;
      if (p.getAsInteger(10, v) || v > (unsigned long long)kMaxDim)
        return "--input-shape '" + spec.str() + "': '" + p.str() +
               "' is not a dimension (0 to " + std::to_string(kMaxDim) + ")";
      shape.push_back(int64_t(v));
    }
  }
  options.inputShapes[name] = shape;
  return "";
}

OwningOpRef<ModuleOp>
mlir::bitnet::importONNXBuffer(StringRef bytes, StringRef name,
                               StringRef baseDir, MLIRContext &context,
                               const ONNXImportOptions &options) {
  bool allowed = context.allowsUnregisteredDialects();
  context.allowUnregisteredDialects(true);
  context.loadDialect<arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect,
                      tensor::TensorDialect, BitNetDialect>();
  Importer importer(context, name, baseDir, options);
  OwningOpRef<ModuleOp> module;
  try {
    module = importer.run(bytes);
  } catch (const std::exception &e) {
    emitError(FileLineColLoc::get(&context, name, 0, 0))
        << "internal error while reading the model: " << e.what();
    module = {};
  } catch (...) {
    emitError(FileLineColLoc::get(&context, name, 0, 0))
        << "internal error while reading the model";
    module = {};
  }
  context.allowUnregisteredDialects(allowed);
  return module;
}

OwningOpRef<ModuleOp>
mlir::bitnet::importONNXFile(StringRef path, MLIRContext &context,
                             const ONNXImportOptions &options) {
  auto file = llvm::MemoryBuffer::getFile(path, /*IsText=*/false,
                                          /*RequiresNullTerminator=*/false);
  if (!file) {
    emitError(FileLineColLoc::get(&context, path, 0, 0))
        << "cannot read '" << path << "': " << file.getError().message();
    return {};
  }
  SmallString<256> dir(path);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  return importONNXBuffer((*file)->getBuffer(), path, dir, context, options);
}
