//===- EmitEntryPoint.cpp - The stable C entry of a model -------*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Emits, in the LLVM dialect, what runtime/include/bitnet_rt/model_abi.h
// specifies: the `bitnet_model_info` descriptor and `bitnet_model_run`.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Transforms/ModelABI.h"
#include "bitnet/Transforms/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/LLVMIR/LLVMDialect.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETEMITENTRYPOINT
#include "bitnet/Transforms/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;

using abi::kEntriesAttrName;
using abi::kModelAbiVersion;
using abi::kModelMagic;
using abi::kTensorRange;
using abi::kTensorState;

/// The bitnet_gpu_program of a GPU model (bitnet-emit-gpu-program).
static constexpr StringLiteral kGPUProgramSymbol = "__bitnet_gpu_program";
/// BITNET_MODEL_RUN_NEEDS_GPU_LOADER.
static constexpr int32_t kRunNeedsGPULoader = 3;
static constexpr StringLiteral kInfoSymbol = "bitnet_model_info";

namespace {
/// One of the model's other entries (kEntriesAttrName).
struct EntryRef {
  StringRef name, info, run;
  int64_t stackBytes;
};
} // namespace

/// The entries `module` lists, or failure (reported) when the attribute is
/// malformed.
static FailureOr<SmallVector<EntryRef>> readEntries(ModuleOp module) {
  SmallVector<EntryRef> entries;
  Attribute attr = module->getAttr(kEntriesAttrName);
  if (!attr)
    return entries;
  auto list = dyn_cast<ArrayAttr>(attr);
  for (Attribute a : list ? list.getValue() : ArrayRef<Attribute>()) {
    auto dict = dyn_cast<DictionaryAttr>(a);
    auto name = dict ? dict.getAs<StringAttr>("name") : StringAttr();
    auto info = dict ? dict.getAs<FlatSymbolRefAttr>("info") : nullptr;
    auto run = dict ? dict.getAs<FlatSymbolRefAttr>("run") : nullptr;
    auto stack = dict ? dict.getAs<IntegerAttr>("stack_bytes") : nullptr;
    if (!name || !info || !run || !stack)
      break;
    entries.push_back({name.getValue(), info.getValue(), run.getValue(),
                       stack.getInt()});
  }
  if (!list || entries.size() != list.size())
    return module.emitError("bitnet-emit-entry-point: ")
           << kEntriesAttrName
           << " must be an array of {name, info, run, stack_bytes} "
              "dictionaries, got "
           << attr;
  return entries;
}

/// bitnet_dtype of an element type, or 0 when it has none.
static int32_t dtypeCode(Type type) {
  if (type.isF32())
    return 1;
  if (type.isF16())
    return 2;
  if (type.isBF16())
    return 3;
  if (type.isF64())
    return 4;
  if (type.isSignlessInteger(8) || type.isSignedInteger(8))
    return 5;
  if (type.isSignlessInteger(16))
    return 6;
  if (type.isSignlessInteger(32))
    return 7;
  if (type.isSignlessInteger(64))
    return 8;
  if (type.isUnsignedInteger(8))
    return 9;
  if (type.isSignlessInteger(1))
    return 10;
  if (type.isUnsignedInteger(16))
    return 11;
  if (type.isUnsignedInteger(32))
    return 12;
  if (type.isUnsignedInteger(64))
    return 13;
  return 0;
}

namespace {
/// Builds the descriptor globals at module level.
class DescriptorBuilder {
public:
  DescriptorBuilder(ModuleOp module, Location loc)
      : module(module), loc(loc), b(module.getContext()),
        ptr(LLVM::LLVMPointerType::get(module.getContext())) {
    b.setInsertionPointToEnd(module.getBody());
  }

  /// A private NUL-terminated string constant.
  LLVM::GlobalOp string(StringRef text) {
    std::string data = (text + Twine('\0')).str();
    auto type = LLVM::LLVMArrayType::get(b.getI8Type(), data.size());
    return LLVM::GlobalOp::create(b, loc, type, /*isConstant=*/true,
                                  LLVM::Linkage::Private, uniqueName("str"),
                                  b.getStringAttr(data));
  }

  /// A private array of i64.
  LLVM::GlobalOp i64Array(ArrayRef<int64_t> values) {
    auto type = LLVM::LLVMArrayType::get(b.getI64Type(),
                                         std::max<size_t>(values.size(), 1));
    SmallVector<int64_t> data(values);
    if (data.empty())
      data.push_back(0);
    auto attr = DenseElementsAttr::get(
        RankedTensorType::get({static_cast<int64_t>(data.size())},
                              b.getI64Type()),
        ArrayRef(data));
    return LLVM::GlobalOp::create(b, loc, type, true, LLVM::Linkage::Private,
                                  uniqueName("shape"), attr);
  }

  /// A global whose initializer is built by `fill` from a poison value.
  LLVM::GlobalOp aggregate(Type type, StringRef name, LLVM::Linkage linkage,
                           function_ref<Value(OpBuilder &, Value)> fill) {
    auto global = LLVM::GlobalOp::create(b, loc, type, true, linkage, name,
                                         Attribute());
    OpBuilder::InsertionGuard guard(b);
    Block *block = b.createBlock(&global.getInitializerRegion());
    b.setInsertionPointToStart(block);
    Value value = fill(b, LLVM::PoisonOp::create(b, loc, type));
    LLVM::ReturnOp::create(b, loc, value);
    return global;
  }

  std::string uniqueName(StringRef kind) {
    return ("__bitnet_" + kind + "_" + Twine(counter++)).str();
  }

  Value insert(OpBuilder &ib, Value aggregate, Value value,
               ArrayRef<int64_t> position) {
    return LLVM::InsertValueOp::create(ib, loc, aggregate, value, position);
  }
  Value constant(OpBuilder &ib, Type type, int64_t v) {
    return LLVM::ConstantOp::create(ib, loc, type, ib.getIntegerAttr(type, v));
  }
  Value address(OpBuilder &ib, LLVM::GlobalOp global) {
    return LLVM::AddressOfOp::create(ib, loc, global);
  }

  ModuleOp module;
  Location loc;
  OpBuilder b;
  Type ptr;

private:
  unsigned counter = 0;
};

/// One argument of the entry function as the ABI sees it.
struct TensorArg {
  std::string name;
  MemRefType type;
  /// The element type the descriptor names: the memref's, or the unsigned
  /// type it stores (bitnet.element_type, bitnet.output_element_types).
  Type elem;
  unsigned argIndex;
  bool state = false; ///< updated in place by the run (bitnet.state)
  /// The values it may hold (bitnet.range), if constrained.
  std::optional<std::pair<int64_t, int64_t>> range;
};

struct BitNetEmitEntryPointPass
    : bitnet::impl::BitNetEmitEntryPointBase<BitNetEmitEntryPointPass> {
  using Base::Base;

  void runOnOperation() override;

private:
  LogicalResult emitDescriptor(DescriptorBuilder &d, func::FuncOp func,
                               ArrayRef<TensorArg> inputs,
                               ArrayRef<TensorArg> outputs,
                               int64_t workspaceBytes,
                               int64_t workspaceAlignment);
};
} // namespace

LogicalResult BitNetEmitEntryPointPass::emitDescriptor(
    DescriptorBuilder &d, func::FuncOp func, ArrayRef<TensorArg> inputs,
    ArrayRef<TensorArg> outputs, int64_t workspaceBytes,
    int64_t workspaceAlignment) {
  MLIRContext *ctx = &getContext();
  Type i32 = d.b.getI32Type(), i64 = d.b.getI64Type(), ptr = d.ptr;
  // struct bitnet_tensor_info { const char *; int32; int32; const int64 *;
  //                             int32 flags; int64 min_value, max_value; }
  auto tensorInfo = LLVM::LLVMStructType::getLiteral(
      ctx, {ptr, i32, i32, ptr, i32, i64, i64});
  auto tensorTable = [&](ArrayRef<TensorArg> args) -> LLVM::GlobalOp {
    SmallVector<std::pair<LLVM::GlobalOp, LLVM::GlobalOp>> parts;
    for (const TensorArg &arg : args)
      parts.push_back({d.string(arg.name), d.i64Array(arg.type.getShape())});
    auto type = LLVM::LLVMArrayType::get(tensorInfo, args.size());
    return d.aggregate(
        type, d.uniqueName("tensors"), LLVM::Linkage::Private,
        [&](OpBuilder &ib, Value table) {
          for (auto [i, arg] : llvm::enumerate(args)) {
            int64_t at = static_cast<int64_t>(i);
            table = d.insert(ib, table, d.address(ib, parts[i].first), {at, 0});
            table = d.insert(
                ib, table,
                d.constant(ib, i32, dtypeCode(arg.elem)),
                {at, 1});
            table = d.insert(ib, table,
                             d.constant(ib, i32, arg.type.getRank()), {at, 2});
            table =
                d.insert(ib, table, d.address(ib, parts[i].second), {at, 3});
            int32_t flags = (arg.state ? kTensorState : 0) |
                            (arg.range ? kTensorRange : 0);
            table = d.insert(ib, table, d.constant(ib, i32, flags), {at, 4});
            table = d.insert(ib, table,
                             d.constant(ib, i64, arg.range ? arg.range->first : 0),
                             {at, 5});
            table = d.insert(
                ib, table,
                d.constant(ib, i64, arg.range ? arg.range->second : 0),
                {at, 6});
          }
          return table;
        });
  };
  LLVM::GlobalOp inputTable = tensorTable(inputs);
  LLVM::GlobalOp outputTable = tensorTable(outputs);
  LLVM::GlobalOp nameStr = d.string(func.getSymName());
  LLVM::GlobalOp producerStr = d.string(producer);
  // The machine the module was compiled for (bitnet.target, set by the
  // driver); a module without one says nothing about it.
  std::string targetName, features;
  if (Attribute attr = d.module->getAttr(kTargetAttrName)) {
    auto target = dyn_cast<TargetAttr>(attr);
    if (!target)
      return d.module.emitError("bitnet-emit-entry-point: ")
             << kTargetAttrName << " must be a #bitnet.target, got " << attr;
    targetName = target.getDescription();
    features = target.getFeatures().str();
  }
  LLVM::GlobalOp targetStr = d.string(targetName);
  LLVM::GlobalOp featuresStr = d.string(features);

  // struct bitnet_model_info (see model_abi.h for the field order).
  auto modelInfo = LLVM::LLVMStructType::getLiteral(
      ctx, {i32, i32, ptr, ptr, ptr, i32, i32, ptr, ptr, i64, i64, ptr, i32,
            ptr, ptr, i32, ptr, i64, i32, ptr});
  // Metadata of the source model: key, value, key, value ... strings.
  // Another entry's descriptor leaves the metadata to the main one's.
  SmallVector<LLVM::GlobalOp> metadataStrings;
  auto meta = d.module->getAttrOfType<DictionaryAttr>("bitnet.metadata");
  if (meta && infoSymbol == kInfoSymbol)
    for (NamedAttribute entry : meta) {
      auto value = dyn_cast<StringAttr>(entry.getValue());
      if (!value)
        return d.module.emitError("bitnet.metadata entry '")
               << entry.getName().getValue() << "' is not a string";
      metadataStrings.push_back(d.string(entry.getName().getValue()));
      metadataStrings.push_back(d.string(value.getValue()));
    }
  LLVM::GlobalOp metadataTable;
  if (!metadataStrings.empty())
    metadataTable = d.aggregate(
        LLVM::LLVMArrayType::get(ptr, metadataStrings.size()),
        d.uniqueName("metadata"), LLVM::Linkage::Private,
        [&](OpBuilder &ib, Value table) {
          for (auto [i, str] : llvm::enumerate(metadataStrings))
            table = d.insert(ib, table, d.address(ib, str),
                             {static_cast<int64_t>(i)});
          return table;
        });
  auto gpuProgram = d.module.lookupSymbol<LLVM::GlobalOp>(kGPUProgramSymbol);
  // struct bitnet_model_variant { name, features, run, ws bytes, alignment }
  SmallVector<VariantAttr> variantList;
  if (Attribute attr = d.module->getAttr(kVariantsAttrName)) {
    auto list = dyn_cast<ArrayAttr>(attr);
    if (!list || !llvm::all_of(list, llvm::IsaPred<VariantAttr>))
      return d.module.emitError("bitnet-emit-entry-point: ")
             << kVariantsAttrName
             << " must be an array of #bitnet.variant, got " << attr;
    for (Attribute v : list)
      variantList.push_back(cast<VariantAttr>(v));
  }
  FailureOr<SmallVector<EntryRef>> entryList = readEntries(d.module);
  if (failed(entryList))
    return failure();
  // The stack buffers of this build's kernels and of every variant's and
  // entry's.
  int64_t stackBytes = staticStackBytes(d.module);
  for (VariantAttr v : variantList)
    stackBytes = std::max(stackBytes, v.getStackBytes());
  for (const EntryRef &e : *entryList)
    stackBytes = std::max(stackBytes, e.stackBytes);
  auto variantType =
      LLVM::LLVMStructType::getLiteral(ctx, {ptr, ptr, ptr, i64, i64});
  LLVM::GlobalOp variantTable;
  if (!variantList.empty()) {
    SmallVector<LLVM::LLVMFuncOp> runs;
    SmallVector<std::pair<LLVM::GlobalOp, LLVM::GlobalOp>> strings;
    auto runFnType = LLVM::LLVMFunctionType::get(i32, {ptr, ptr, ptr});
    for (VariantAttr v : variantList) {
      StringRef symbol = v.getRun().getValue();
      auto decl = d.module.lookupSymbol<LLVM::LLVMFuncOp>(symbol);
      if (!decl)
        decl = LLVM::LLVMFuncOp::create(d.b, d.loc, symbol, runFnType);
      runs.push_back(decl);
      strings.push_back({d.string(v.getChip()), d.string(v.getFeatures())});
    }
    variantTable = d.aggregate(
        LLVM::LLVMArrayType::get(variantType, variantList.size()),
        d.uniqueName("variants"), LLVM::Linkage::Private,
        [&](OpBuilder &ib, Value table) {
          for (auto [i, v] : llvm::enumerate(variantList)) {
            int64_t at = static_cast<int64_t>(i);
            table = d.insert(ib, table, d.address(ib, strings[i].first), {at, 0});
            table = d.insert(ib, table, d.address(ib, strings[i].second), {at, 1});
            table = d.insert(ib, table,
                             LLVM::AddressOfOp::create(ib, d.loc, runs[i]),
                             {at, 2});
            table = d.insert(ib, table,
                             d.constant(ib, i64, v.getWorkspaceBytes()),
                             {at, 3});
            table = d.insert(ib, table,
                             d.constant(ib, i64, v.getWorkspaceAlignment()),
                             {at, 4});
          }
          return table;
        });
  }
  // struct bitnet_model_entry { name, info, run }: the entries' descriptors
  // and run functions are defined by their own objects.
  auto entryType = LLVM::LLVMStructType::getLiteral(ctx, {ptr, ptr, ptr});
  LLVM::GlobalOp entryTable;
  if (!entryList->empty()) {
    auto runFnType = LLVM::LLVMFunctionType::get(i32, {ptr, ptr, ptr});
    SmallVector<std::tuple<LLVM::GlobalOp, LLVM::GlobalOp, LLVM::LLVMFuncOp>>
        parts;
    for (const EntryRef &e : *entryList) {
      if (e.info == infoSymbol || e.run == runSymbol)
        return d.module.emitError("bitnet-emit-entry-point: entry '")
               << e.name << "' reuses this build's symbols";
      auto info = d.module.lookupSymbol<LLVM::GlobalOp>(e.info);
      if (!info)
        info = LLVM::GlobalOp::create(d.b, d.loc, modelInfo,
                                      /*isConstant=*/true,
                                      LLVM::Linkage::External, e.info,
                                      Attribute());
      auto run = d.module.lookupSymbol<LLVM::LLVMFuncOp>(e.run);
      if (!run)
        run = LLVM::LLVMFuncOp::create(d.b, d.loc, e.run, runFnType);
      parts.push_back({d.string(e.name), info, run});
    }
    entryTable = d.aggregate(
        LLVM::LLVMArrayType::get(entryType, entryList->size()),
        d.uniqueName("entries"), LLVM::Linkage::Private,
        [&](OpBuilder &ib, Value table) {
          for (auto [i, part] : llvm::enumerate(parts)) {
            int64_t at = static_cast<int64_t>(i);
            auto [name, info, run] = part;
            table = d.insert(ib, table, d.address(ib, name), {at, 0});
            table = d.insert(ib, table, d.address(ib, info), {at, 1});
            table = d.insert(ib, table,
                             LLVM::AddressOfOp::create(ib, d.loc, run),
                             {at, 2});
          }
          return table;
        });
  }
  d.aggregate(modelInfo, infoSymbol, LLVM::Linkage::External,
              [&](OpBuilder &ib, Value info) {
                Value fields[] = {
                    d.constant(ib, i32, kModelMagic),
                    d.constant(ib, i32, kModelAbiVersion),
                    d.address(ib, nameStr),
                    d.address(ib, producerStr),
                    d.address(ib, targetStr),
                    d.constant(ib, i32, inputs.size()),
                    d.constant(ib, i32, outputs.size()),
                    d.address(ib, inputTable),
                    d.address(ib, outputTable),
                    d.constant(ib, i64, workspaceBytes),
                    d.constant(ib, i64, workspaceAlignment),
                    d.address(ib, featuresStr),
                    d.constant(ib, i32, variantList.size()),
                    variantTable ? d.address(ib, variantTable)
                                 : LLVM::ZeroOp::create(ib, d.loc, ptr)
                                       .getResult(),
                    gpuProgram ? d.address(ib, gpuProgram)
                               : LLVM::ZeroOp::create(ib, d.loc, ptr)
                                     .getResult(),
                    d.constant(ib, i32, metadataStrings.size() / 2),
                    metadataTable ? d.address(ib, metadataTable)
                                  : LLVM::ZeroOp::create(ib, d.loc, ptr)
                                        .getResult(),
                    d.constant(ib, i64, stackBytes),
                    d.constant(ib, i32, entryList->size()),
                    entryTable ? d.address(ib, entryTable)
                               : LLVM::ZeroOp::create(ib, d.loc, ptr)
                                     .getResult(),
                };
                for (auto [i, field] : llvm::enumerate(fields))
                  info = d.insert(ib, info, field, {static_cast<int64_t>(i)});
                return info;
              });

  return success();
}

void BitNetEmitEntryPointPass::runOnOperation() {
  ModuleOp module = getOperation();
  MLIRContext *ctx = &getContext();
  for (StringRef symbol : {StringRef(infoSymbol), StringRef(runSymbol)})
    if (module.lookupSymbol(symbol)) {
      module.emitError("the module already defines '") << symbol << "'";
      return signalPassFailure();
    }
  func::FuncOp func = lookupEntryFunction(module, entry);
  if (!func)
    return signalPassFailure();
  if (func.getNumResults() != 0) {
    func.emitError("the entry function must return its outputs through "
                   "out-parameters (run buffer-results-to-out-params)");
    return signalPassFailure();
  }

  // Sort the arguments into inputs, outputs and the workspace.
  SmallVector<TensorArg> inputs, outputs;
  std::optional<unsigned> workspaceArg;
  auto outputNames = func->getAttrOfType<ArrayAttr>("bitnet.output_names");
  auto outputElems =
      func->getAttrOfType<ArrayAttr>("bitnet.output_element_types");
  for (BlockArgument arg : func.getArguments()) {
    unsigned i = arg.getArgNumber();
    auto type = dyn_cast<MemRefType>(arg.getType());
    if (!type || !type.hasStaticShape() || !type.getLayout().isIdentity()) {
      func.emitError("entry argument #")
          << i << " must be a statically shaped memref with the identity "
          << "layout, got " << arg.getType();
      return signalPassFailure();
    }
    if (func.getArgAttr(i, "bitnet.workspace")) {
      workspaceArg = i;
      continue;
    }
    if (dtypeCode(type.getElementType()) == 0) {
      func.emitError("entry argument #")
          << i << " has element type " << type.getElementType()
          << ", which the model ABI cannot describe";
      return signalPassFailure();
    }
    bool isOutput = static_cast<bool>(func.getArgAttr(i, "bufferize.result"));
    SmallVector<TensorArg> &list = isOutput ? outputs : inputs;
    std::string name;
    if (auto attr = func.getArgAttrOfType<StringAttr>(i, "bitnet.name"))
      name = attr.str();
    else if (isOutput && outputNames && list.size() < outputNames.size() &&
             isa<StringAttr>(outputNames[list.size()]))
      name = cast<StringAttr>(outputNames[list.size()]).str();
    else
      name = ((isOutput ? "output" : "input") + Twine(list.size())).str();
    bool state = static_cast<bool>(func.getArgAttr(i, "bitnet.state"));
    Type elem = type.getElementType();
    auto stored = func.getArgAttrOfType<TypeAttr>(i, "bitnet.element_type");
    if (isOutput && outputElems && list.size() < outputElems.size())
      stored = dyn_cast<TypeAttr>(outputElems[list.size()]);
    if (stored && dtypeCode(stored.getValue()) != 0 &&
        stored.getValue().getIntOrFloatBitWidth() ==
            elem.getIntOrFloatBitWidth())
      elem = stored.getValue();
    std::optional<std::pair<int64_t, int64_t>> range;
    if (auto attr = func.getArgAttrOfType<DenseI64ArrayAttr>(i, "bitnet.range");
        attr && !isOutput && attr.size() == 2 && attr[0] <= attr[1] &&
        isa<IntegerType>(elem) && !elem.isUnsignedInteger() &&
        elem.getIntOrFloatBitWidth() > 1)
      range = {attr[0], attr[1]};
    list.push_back({name, type, elem, i, state, range});
  }
  if (outputs.empty()) {
    func.emitError("the entry function has no outputs");
    return signalPassFailure();
  }
  int64_t workspaceBytes = 0, workspaceAlignment = 1;
  if (workspaceArg) {
    workspaceBytes =
        cast<MemRefType>(func.getArgument(*workspaceArg).getType())
            .getNumElements();
    workspaceAlignment = 64;
    if (auto attr =
            func->getAttrOfType<IntegerAttr>("bitnet.workspace_alignment"))
      workspaceAlignment = attr.getInt();
  }

  Location loc = func.getLoc();
  DescriptorBuilder d(module, loc);
  Type i32 = d.b.getI32Type(), i64 = d.b.getI64Type(), ptr = d.ptr;
  (void)i64;

  if (emitInfo && failed(emitDescriptor(d, func, inputs, outputs,
                                         workspaceBytes, workspaceAlignment)))
    return signalPassFailure();

  // int32_t bitnet_model_run(void *const *buffers, void *ws, void *ctx)
  OpBuilder &b = d.b;
  auto runType = b.getFunctionType({ptr, ptr, ptr}, {i32});
  auto run = func::FuncOp::create(b, loc, runSymbol, runType);
  Block *entryBlock = run.addEntryBlock();
  b.setInsertionPointToStart(entryBlock);
  Value buffers = entryBlock->getArgument(0);
  Value workspace = entryBlock->getArgument(1);

  SmallVector<Value> callArgs(func.getNumArguments());
  auto wrap = [&](Value basePtr, MemRefType type) -> Value {
    // The memref descriptor {allocated, aligned, offset, sizes, strides} of a
    // dense row-major buffer.
    SmallVector<Type> fields{ptr, ptr, i64};
    if (type.getRank() > 0) {
      auto dims = LLVM::LLVMArrayType::get(i64, type.getRank());
      fields.append({dims, dims});
    }
    auto descType = LLVM::LLVMStructType::getLiteral(ctx, fields);
    Value desc = LLVM::PoisonOp::create(b, loc, descType);
    desc = d.insert(b, desc, basePtr, {0});
    desc = d.insert(b, desc, basePtr, {1});
    desc = d.insert(b, desc, d.constant(b, i64, 0), {2});
    int64_t stride = 1;
    for (int64_t dim = type.getRank() - 1; dim >= 0; --dim) {
      desc = d.insert(b, desc, d.constant(b, i64, type.getDimSize(dim)),
                      {3, dim});
      desc = d.insert(b, desc, d.constant(b, i64, stride), {4, dim});
      stride *= type.getDimSize(dim);
    }
    return UnrealizedConversionCastOp::create(b, loc, type, desc).getResult(0);
  };
  unsigned slot = 0;
  for (ArrayRef<TensorArg> list : {ArrayRef(inputs), ArrayRef(outputs)}) {
    for (const TensorArg &arg : list) {
      Value address = LLVM::GEPOp::create(
          b, loc, ptr, ptr, buffers,
          ArrayRef<LLVM::GEPArg>{static_cast<int32_t>(slot++)});
      Value base = LLVM::LoadOp::create(b, loc, ptr, address);
      callArgs[arg.argIndex] = wrap(base, arg.type);
    }
  }
  if (workspaceArg)
    callArgs[*workspaceArg] =
        wrap(workspace,
             cast<MemRefType>(func.getArgument(*workspaceArg).getType()));
  // Kernels that use the caller's services (thread pool, profiling) find the
  // context in a thread-local for the duration of the run.
  auto execCtxGlobal = module.lookupSymbol<LLVM::GlobalOp>(abi::kExecCtxGlobal);
  if (execCtxGlobal)
    LLVM::StoreOp::create(b, loc, entryBlock->getArgument(2),
                          LLVM::AddressOfOp::create(b, loc, execCtxGlobal));
  func::CallOp::create(b, loc, func, callArgs);
  if (execCtxGlobal)
    LLVM::StoreOp::create(b, loc, LLVM::ZeroOp::create(b, loc, ptr),
                          LLVM::AddressOfOp::create(b, loc, execCtxGlobal));
  // A GPU model's launches are run by the loader (model_abi.h).
  bool gpu = static_cast<bool>(
      module.lookupSymbol<LLVM::GlobalOp>(kGPUProgramSymbol));
  func::ReturnOp::create(b, loc,
                         d.constant(b, i32, gpu ? kRunNeedsGPULoader : 0));
  func.setPrivate();
}
