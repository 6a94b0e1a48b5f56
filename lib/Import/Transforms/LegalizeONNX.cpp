//===- LegalizeONNX.cpp - ONNX operations to upstream dialects ------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// Each generic `onnx.<OpType>` operation is replaced, in graph order, by the
// lowering registered for its op type and operator version (the ONNX
// `since_version` the importer resolved). Every lowering computes its
// result's static shape from its operands, checks types and ranks, and
// reports what it expected at the node. Operations whose inputs are all
// constant and that the host evaluator knows (shape arithmetic above all)
// are folded to constants first.
//
// The lowerings live in one file per op family (ONNXElementwise.cpp,
// ONNXTensor.cpp, ...), each contributing its rows of the op table; this
// file assembles the table and runs it.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/Passes.h"

#include "ONNXNode.h"

#include "llvm/ADT/StringMap.h"

#include <map>
#include <set>

namespace mlir::bitnet {
#define GEN_PASS_DEF_BITNETLEGALIZEONNX
#include "bitnet/Import/Passes.h.inc"
} // namespace mlir::bitnet

using namespace mlir;
using namespace mlir::bitnet;
using namespace mlir::bitnet::onnx;

namespace {

/// The op table: every family's rows, by op type.
class LoweringTable {
public:
  /// The table, assembled once.
  static const LoweringTable &get() {
    static const LoweringTable table;
    return table;
  }

  /// The row of `opType` (`domain.OpType` outside the default domain), or
  /// null.
  const Lowering *lookup(StringRef opType) const {
    return byType.lookup(opType);
  }

  /// The op types of the table for a message: the default domain's sorted,
  /// then each other domain's, e.g. "Abs, Add, ...; of the bitnet domain
  /// Attention, BitLinear, ...".
  std::string supportedOps() const {
    std::map<std::string, std::set<std::string>> byDomain;
    for (const auto &entry : byType) {
      auto [domain, name] = entry.getKey().rsplit('.');
      if (name.empty())
        std::swap(domain, name);
      byDomain[domain.str()].insert(name.str());
    }
    std::string text;
    for (const auto &[domain, names] : byDomain) {
      if (!domain.empty())
        text += "; of the " + domain + " domain ";
      std::string list;
      for (const std::string &name : names)
        list += (list.empty() ? "" : ", ") + name;
      text += list;
    }
    return text;
  }

private:
  LoweringTable() {
    for (ArrayRef<Lowering> family :
         {elementwiseLowerings(), tensorLowerings(), reductionLowerings(),
          matmulLowerings(), bitnetLowerings(), microsoftLowerings(),
          normalizationLowerings(),
          indexingLowerings(),
          convLowerings(),
          activationLowerings()})
      for (const Lowering &row : family) {
        bool added = byType.try_emplace(row.opType, &row).second;
        assert(added && "two rows for one op type");
        (void)added;
      }
  }

  llvm::StringMap<const Lowering *> byType;
};

struct LegalizeONNXPass
    : public bitnet::impl::BitNetLegalizeONNXBase<LegalizeONNXPass> {
  void runOnOperation() override;
};

} // namespace

bool mlir::bitnet::isLegalizableONNXOp(StringRef domain, StringRef opType) {
  if (domain.empty() || domain == "ai.onnx")
    return LoweringTable::get().lookup(opType) != nullptr;
  return LoweringTable::get().lookup((domain + "." + opType).str()) != nullptr;
}

void LegalizeONNXPass::runOnOperation() {
  func::FuncOp func = getOperation();
  if (func.isExternal())
    return;
  MLIRContext *ctx = &getContext();
  DenseMap<Value, Type> elemOf;

  // Arguments: signless storage types, the ONNX type remembered.
  Block &entry = func.getBody().front();
  for (BlockArgument arg : entry.getArguments()) {
    auto type = dyn_cast<RankedTensorType>(arg.getType());
    if (!type || !type.hasStaticShape()) {
      emitError(func.getLoc()) << "input #" << arg.getArgNumber()
                               << " has no static shape: " << arg.getType();
      return signalPassFailure();
    }
    elemOf[arg] = type.getElementType();
    // Unsigned types are stored signless; the model's descriptor still
    // names them (bitnet-emit-entry-point reads this).
    if (signlessType(type.getElementType()) != type.getElementType())
      func.setArgAttr(arg.getArgNumber(), "bitnet.element_type",
                      TypeAttr::get(type.getElementType()));
    arg.setType(type.clone(signlessType(type.getElementType())));
  }
  auto elemFor = [&](Value v) -> Type {
    auto it = elemOf.find(v);
    if (it != elemOf.end())
      return it->second;
    if (auto t = dyn_cast<ShapedType>(v.getType()))
      return t.getElementType();
    return {};
  };

  const LoweringTable &table = LoweringTable::get();
  OpBuilder b(ctx);
  for (Operation &opRef : llvm::make_early_inc_range(entry)) {
    Operation *op = &opRef;
    StringRef name = op->getName().getStringRef();
    if (!name.starts_with("onnx."))
      continue;
    StringRef opType = name.drop_front(5);
    if (opType == "None") {
      continue; // erased once its users are gone
    }
    SmallVector<Operand> in;
    for (Value v : op->getOperands()) {
      if (isa<NoneType>(v.getType())) {
        in.push_back({});
        continue;
      }
      auto t = dyn_cast<RankedTensorType>(v.getType());
      if (!t || !t.hasStaticShape()) {
        emitError(op->getLoc())
            << Node::nodeDescription(op) << ": an input has no static shape ("
            << v.getType() << ")";
        return signalPassFailure();
      }
      in.push_back({v, elemFor(v)});
    }
    int64_t version = 0;
    if (auto v = op->getAttrOfType<IntegerAttr>("onnx.version"))
      version = v.getInt();
    b.setInsertionPoint(op);
    Node node(op, b, opType, version, in);

    std::optional<Results> results;
    // Fold when every input is a constant and the host knows the op.
    const Lowering *lowering = table.lookup(opType);
    if (lowering && lowering->foldable && !in.empty()) {
      SmallVector<std::optional<HostTensor>> consts;
      bool allConst = true;
      for (size_t k = 0; k < in.size() && allConst; ++k) {
        if (!in[k]) {
          consts.emplace_back();
          continue;
        }
        consts.push_back(node.constant(k));
        allConst = consts.back().has_value();
      }
      if (allConst) {
        SmallVector<const HostTensor *> ptrs;
        for (auto &c : consts)
          ptrs.push_back(c ? &*c : nullptr);
        if (auto folded = evaluate(opType, version, node.attrs, ptrs)) {
          results.emplace();
          for (HostTensor &t : *folded)
            results->push_back(node.constantOf(t));
        }
      }
    }
    if (!results) {
      if (!lowering || !llvm::is_contained(lowering->versions, version)) {
        InFlightDiagnostic d = emitError(op->getLoc())
                               << Node::nodeDescription(op) << ": operator "
                               << opType << " version " << version
                               << " is not supported";
        if (lowering) {
          std::string list;
          for (int64_t v : lowering->versions)
            list += (list.empty() ? "" : ", ") + std::to_string(v);
          d.attachNote() << "supported versions of " << opType << ": " << list;
        } else {
          d.attachNote() << "the ONNX importer supports: "
                         << table.supportedOps();
        }
        return signalPassFailure();
      }
      FailureOr<Results> r = lowering->fn(node);
      if (failed(r))
        return signalPassFailure();
      results = std::move(*r);
    }
    if (results->size() < op->getNumResults()) {
      // Optional outputs the lowering does not produce must be unused.
      for (unsigned k = results->size(); k < op->getNumResults(); ++k)
        if (!op->getResult(k).use_empty()) {
          emitError(op->getLoc()) << Node::nodeDescription(op) << ": output "
                                  << k << " is not supported";
          return signalPassFailure();
        }
    }
    if (results->size() > op->getNumResults())
      results->resize(op->getNumResults());
    for (auto [k, r] : llvm::enumerate(*results)) {
      Value old = op->getResult(k);
      // Users that are not ONNX operations (bitnet ops made by BitLinear
      // recognition) were built for the type ONNX inferred; it must agree.
      for (OpOperand &use : old.getUses()) {
        Operation *user = use.getOwner();
        if (user->getName().getStringRef().starts_with("onnx.") ||
            isa<func::ReturnOp>(user))
          continue;
        if (user->getOperand(use.getOperandNumber()).getType() !=
                r.value.getType() &&
            old.getType() != r.value.getType()) {
          emitError(op->getLoc())
              << Node::nodeDescription(op) << ": result " << k << " has type "
              << r.value.getType() << " but ONNX shape inference said "
              << old.getType();
          return signalPassFailure();
        }
      }
      elemOf[r.value] = r.elem;
      old.replaceAllUsesWith(r.value);
    }
    op->erase();
  }
  // Omitted-input placeholders.
  for (Operation &op : llvm::make_early_inc_range(entry))
    if (op.getName().getStringRef() == "onnx.None" && op.use_empty())
      op.erase();

  // The signature follows the legalised values.
  auto ret = cast<func::ReturnOp>(entry.getTerminator());
  SmallVector<Type> results;
  SmallVector<Attribute> resultElems;
  bool anyUnsigned = false;
  for (Value v : ret.getOperands()) {
    if (isa<NoneType>(v.getType())) {
      ret.emitError("a graph output is an omitted value");
      return signalPassFailure();
    }
    results.push_back(v.getType());
    Type elem = elemFor(v);
    anyUnsigned |= elem && signlessType(elem) != elem;
    resultElems.push_back(TypeAttr::get(elem ? elem : v.getType()));
  }
  if (anyUnsigned)
    func->setAttr("bitnet.output_element_types",
                  ArrayAttr::get(ctx, resultElems));
  func.setFunctionType(
      FunctionType::get(ctx, entry.getArgumentTypes(), results));
}
