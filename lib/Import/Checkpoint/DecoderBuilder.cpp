//===- DecoderBuilder.cpp - A BitNet decoder from its weights -------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/Checkpoint/DecoderBuilder.h"

#include "bitnet/Dialect/BitNet/IR/BitNet.h"
#include "bitnet/Dialect/BitNet/IR/TernaryEncoding.h"

#include "mlir/Dialect/Arith/IR/Arith.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Dialect/Linalg/IR/Linalg.h"
#include "mlir/Dialect/Math/IR/Math.h"
#include "mlir/Dialect/Tensor/IR/Tensor.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Verifier.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;
using namespace mlir::bitnet;

static std::string shapeString(ArrayRef<int64_t> shape) {
  return "[" + llvm::join(llvm::map_range(shape, [](int64_t d) {
                            return std::to_string(d);
                          }),
                          ", ") +
         "]";
}

DecoderWeights::~DecoderWeights() = default;

StringRef mlir::bitnet::stringifyLinearKind(LinearKind kind) {
  switch (kind) {
  case LinearKind::Q: return "q";
  case LinearKind::K: return "k";
  case LinearKind::V: return "v";
  case LinearKind::O: return "o";
  case LinearKind::Gate: return "gate";
  case LinearKind::Up: return "up";
  case LinearKind::Down: return "down";
  }
  return "?";
}

std::string mlir::bitnet::describeShapeMismatch(StringRef source, StringRef name,
                                               ArrayRef<int64_t> shape,
                                               ArrayRef<int64_t> expected) {
  return (source + ": tensor '" + name + "' is " + shapeString(shape) +
          ", expected " + shapeString(expected))
      .str();
}

StringRef mlir::bitnet::stringifyNormKind(NormKind kind) {
  switch (kind) {
  case NormKind::Attn: return "attention norm";
  case NormKind::AttnSub: return "attention sub-norm";
  case NormKind::FFN: return "feed-forward norm";
  case NormKind::FFNSub: return "feed-forward sub-norm";
  }
  return "?";
}

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

namespace {
class DecoderEmitter {
public:
  DecoderEmitter(MLIRContext &ctx, const DecoderConfig &config,
          DecoderWeights &weights, const DecoderBuildOptions &options)
      : ctx(ctx), b(&ctx), c(config), w(weights), o(options),
        loc(FileLineColLoc::get(&ctx, options.source.empty()
                                          ? "checkpoint"
                                          : options.source,
                                0, 0)) {}

  llvm::Expected<OwningOpRef<ModuleOp>> build();

private:
  Type f32() { return b.getF32Type(); }
  RankedTensorType tensor(ArrayRef<int64_t> shape, Type elem) {
    return RankedTensorType::get(shape, elem);
  }

  /// A float constant of `expected` shape (16-bit tables stay as stored).
  llvm::Expected<Value> floatConstant(llvm::Expected<FloatTensor> t,
                                      ArrayRef<int64_t> expected,
                                      bool allowHalf, StringRef what) {
    if (!t)
      return t.takeError();
    if (ArrayRef<int64_t>(t->shape) != expected)
      return makeError(o.source + ": " + what + " '" + t->name + "' is " +
                       shapeString(t->shape) + ", expected " +
                       shapeString(expected));
    DenseElementsAttr attr;
    if (t->isHalf() && allowHalf) {
      attr = DenseElementsAttr::getFromRawBuffer(
          tensor(expected, t->brain ? Type(b.getBF16Type())
                                    : Type(b.getF16Type())),
          ArrayRef<char>(reinterpret_cast<const char *>(t->half.data()),
                         t->half.size() * sizeof(uint16_t)));
    } else {
      std::vector<float> values =
          t->isHalf() ? t->widenHalf() : std::move(t->f32);
      attr = DenseElementsAttr::get(tensor(expected, f32()),
                                    ArrayRef<float>(values));
    }
    return arith::ConstantOp::create(b, loc, attr).getResult();
  }

  llvm::Expected<Value> norm(NormKind kind, int64_t layer, int64_t size) {
    return floatConstant(w.norm(kind, layer), {size}, /*allowHalf=*/false,
                         "layer " + std::to_string(layer) + "'s " +
                             stringifyNormKind(kind).str());
  }

  /// x [S, K] through the ternary layer `kind`, whose weight must be N x K.
  llvm::Expected<Value> bitlinear(Value x, LinearKind kind, int64_t layer,
                                  int64_t n, int64_t k) {
    llvm::Expected<TernaryMatrix> m = w.linear(kind, layer, n, k);
    if (!m)
      return m.takeError();
    if (m->rows != n || m->cols != k)
      return makeError(o.source + ": layer " + std::to_string(layer) + "'s " +
                       stringifyLinearKind(kind) + " projection '" + m->name +
                       "' is " + std::to_string(m->rows) + " x " +
                       std::to_string(m->cols) + " (outputs x inputs), " +
                       "expected " + std::to_string(n) + " x " +
                       std::to_string(k));
    if (!std::isfinite(m->scale) || m->scale <= 0)
      return makeError(o.source + ": '" + m->name + "' has the scale " +
                       std::to_string(m->scale) +
                       ", expected a positive number");
    // Stored 2 bits a value from the start: the packing passes choose the
    // kernels' layout later, and a 2B model's int8 codes would take 2.4 GB.
    SmallVector<int8_t> packed =
        packTernary(m->values, n, k, TernaryFormat::I2);
    auto type = TernaryType::get(&ctx, n, k, TernaryFormat::I2);
    auto storage = DenseElementsAttr::get(type.getStorageType(),
                                          ArrayRef<int8_t>(packed));
    Value weight = mlir::bitnet::ConstantOp::create(b, loc, type, storage);
    Value scale = arith::ConstantOp::create(
        b, loc, DenseElementsAttr::get(tensor({}, f32()), {m->scale}));
    return BitLinearOp::create(b, loc, tensor({tokens, n}, f32()), x, weight,
                               scale)
        .getResult();
  }

  /// An elementwise linalg.generic over same-shaped f32 tensors.
  Value elementwise(ValueRange inputs,
                    function_ref<Value(OpBuilder &, Location, ValueRange)> fn) {
    auto type = cast<RankedTensorType>(inputs.front().getType());
    Value init = tensor::EmptyOp::create(b, loc, type.getShape(),
                                         type.getElementType());
    SmallVector<AffineMap> maps(inputs.size() + 1,
                                b.getMultiDimIdentityMap(type.getRank()));
    SmallVector<utils::IteratorType> iterators(type.getRank(),
                                               utils::IteratorType::parallel);
    auto op = linalg::GenericOp::create(
        b, loc, TypeRange{type}, inputs, ValueRange{init}, maps, iterators,
        [&](OpBuilder &nb, Location nl, ValueRange args) {
          linalg::YieldOp::create(nb, nl, fn(nb, nl, args.drop_back()));
        });
    return op.getResult(0);
  }

  Value add(Value x, Value y) {
    return elementwise({x, y}, [](OpBuilder &nb, Location nl, ValueRange a) {
      return arith::AddFOp::create(nb, nl, a[0], a[1]).getResult();
    });
  }

  /// act(gate) * up.
  Value gatedActivation(Value gate, Value up) {
    if (c.activation == FFNActivation::SquaredRelu) {
      Value g = SquaredReluOp::create(b, loc, gate.getType(), gate);
      return elementwise({g, up}, [](OpBuilder &nb, Location nl, ValueRange a) {
        return arith::MulFOp::create(nb, nl, a[0], a[1]).getResult();
      });
    }
    // silu(g) * u = g / (1 + exp(-g)) * u.
    return elementwise({gate, up}, [](OpBuilder &nb, Location nl,
                                      ValueRange a) {
      Type t = a[0].getType();
      Value one = arith::ConstantOp::create(nb, nl, t, nb.getFloatAttr(t, 1.0));
      Value neg = arith::NegFOp::create(nb, nl, a[0]);
      Value e = math::ExpOp::create(nb, nl, neg);
      Value den = arith::AddFOp::create(nb, nl, one, e);
      Value silu = arith::DivFOp::create(nb, nl, a[0], den);
      return arith::MulFOp::create(nb, nl, silu, a[1]).getResult();
    });
  }

  Value splitHeads(Value x, int64_t heads) {
    return tensor::ExpandShapeOp::create(
               b, loc, tensor({tokens, heads, c.headDim}, f32()), x,
               ArrayRef<ReassociationIndices>{{0}, {1, 2}})
        .getResult();
  }

  Value mergeHeads(Value x, int64_t heads) {
    return tensor::CollapseShapeOp::create(
               b, loc, tensor({tokens, heads * c.headDim}, f32()), x,
               ArrayRef<ReassociationIndices>{{0}, {1, 2}})
        .getResult();
  }

  MLIRContext &ctx;
  OpBuilder b;
  const DecoderConfig &c;
  DecoderWeights &w;
  const DecoderBuildOptions &o;
  Location loc;
  int64_t tokens = 1;
};
} // namespace

static llvm::Error checkConfig(const DecoderConfig &c, StringRef source) {
  auto bad = [&](const Twine &what) {
    return makeError(source + ": " + what);
  };
  if (c.vocab <= 0 || c.hidden <= 0 || c.layers <= 0 || c.heads <= 0 ||
      c.kvHeads <= 0 || c.headDim <= 0 || c.ffn <= 0 || c.context <= 0)
    return bad("the model's hyperparameters must be positive (vocabulary " +
               Twine(c.vocab) + ", hidden " + Twine(c.hidden) + ", layers " +
               Twine(c.layers) + ", heads " + Twine(c.heads) + ", KV heads " +
               Twine(c.kvHeads) + ", head size " + Twine(c.headDim) +
               ", FFN " + Twine(c.ffn) + ", context " + Twine(c.context) +
               ")");
  if (c.vocab > (1 << 24) || c.hidden > (1 << 16) || c.layers > 1024 ||
      c.ffn > (1 << 18) || c.context > (1 << 24) || c.heads > 1024)
    return bad("the model's hyperparameters are implausibly large");
  if (c.heads % c.kvHeads != 0)
    return bad(Twine(c.heads) + " attention heads are not a multiple of " +
               Twine(c.kvHeads) + " KV heads");
  if (c.headDim % 2 != 0)
    return bad("a head size of " + Twine(c.headDim) +
               " (rotary embeddings need an even one)");
  if (!(c.rmsEpsilon > 0) || !(c.ropeTheta > 0))
    return bad("the RMSNorm epsilon and the RoPE theta must be positive");
  return llvm::Error::success();
}

llvm::Expected<OwningOpRef<ModuleOp>> DecoderEmitter::build() {
  if (llvm::Error err = checkConfig(c, o.source))
    return std::move(err);
  int64_t sequences = o.sequences;
  tokens = o.tokens > 0 ? o.tokens : std::max<int64_t>(sequences, 1);
  int64_t capacity = o.cacheCapacity > 0 ? o.cacheCapacity : c.context;
  if (sequences < 0 || sequences > 4096)
    return makeError(o.source + ": --max-sequences must be 1 to 4096, got " +
                     Twine(sequences));
  if (sequences == 0 && tokens > capacity)
    return makeError(o.source + ": " + Twine(tokens) +
                     " tokens a step do not fit a KV cache of " +
                     Twine(capacity));
  if (tokens > 65536)
    return makeError(o.source + ": " + Twine(tokens) +
                     " tokens a step are more than 65536");
  int64_t d = c.hidden, q = c.heads * c.headDim, kv = c.kvHeads * c.headDim;

  OwningOpRef<ModuleOp> module = ModuleOp::create(loc);
  b.setInsertionPointToEnd(module->getBody());

  Type i32 = b.getI32Type();
  // One sequence: caches [C, Hkv, D] and the step's first position; B
  // sequences: caches [B, C, Hkv, D], and a position and a slot a token.
  auto cacheType =
      sequences > 0 ? tensor({sequences, capacity, c.kvHeads, c.headDim}, f32())
                    : tensor({capacity, c.kvHeads, c.headDim}, f32());
  SmallVector<Type> argTypes{tensor({tokens}, i32)};
  SmallVector<std::string> argNames{"tokens"};
  if (sequences > 0) {
    argTypes.append({tensor({tokens}, i32), tensor({tokens}, i32)});
    argNames.append({"positions", "slots"});
  } else {
    argTypes.push_back(tensor({}, i32));
    argNames.push_back("position");
  }
  unsigned firstCache = argTypes.size();
  for (int64_t l = 0; l < c.layers; ++l) {
    argTypes.append({cacheType, cacheType});
    argNames.push_back("cache." + std::to_string(l) + ".key");
    argNames.push_back("cache." + std::to_string(l) + ".value");
  }
  SmallVector<Type> resultTypes{tensor({tokens, c.vocab}, f32())};
  SmallVector<Attribute> outputNames{b.getStringAttr("logits")};
  for (int64_t l = 0; l < c.layers; ++l) {
    resultTypes.append({cacheType, cacheType});
    outputNames.push_back(b.getStringAttr("cache." + std::to_string(l) + ".key"));
    outputNames.push_back(
        b.getStringAttr("cache." + std::to_string(l) + ".value"));
  }
  auto func = func::FuncOp::create(b, loc, o.entry,
                                   b.getFunctionType(argTypes, resultTypes));
  for (auto [k, name] : llvm::enumerate(argNames))
    func.setArgAttr(k, "bitnet.name", b.getStringAttr(name));
  func->setAttr("bitnet.output_names", b.getArrayAttr(outputNames));
  if (!o.metadata.empty()) {
    SmallVector<NamedAttribute> meta;
    for (const auto &[key, value] : o.metadata)
      meta.push_back(b.getNamedAttr(key, b.getStringAttr(value)));
    (*module)->setAttr("bitnet.metadata", b.getDictionaryAttr(meta));
  }
  Block *body = func.addEntryBlock();
  b.setInsertionPointToStart(body);
  Value tokenIds = body->getArgument(0), position = body->getArgument(1);
  Value slots = sequences > 0 ? body->getArgument(2) : Value();

  llvm::Expected<Value> table =
      floatConstant(w.embedding(), {c.vocab, d}, /*allowHalf=*/true,
                    "the token embedding");
  if (!table)
    return table.takeError();
  Value x = EmbeddingOp::create(b, loc, tensor({tokens, d}, f32()), *table,
                                tokenIds, Value(), /*blocked=*/nullptr);

  // Positions position + [0, S) for the rotary embedding (B sequences: the
  // tokens' own).
  Value positions = position;
  if (sequences == 0) {
    Value start = tensor::ExtractOp::create(b, loc, position, ValueRange{});
    positions =
        tensor::GenerateOp::create(
            b, loc, tensor({tokens}, i32), ValueRange{},
            [&](OpBuilder &nb, Location nl, ValueRange idx) {
              Value s = arith::IndexCastOp::create(nb, nl, i32, idx[0]);
              tensor::YieldOp::create(
                  nb, nl, arith::AddIOp::create(nb, nl, start, s).getResult());
            })
            .getResult();
  }
  auto theta = b.getF32FloatAttr(c.ropeTheta);
  auto style = RopeStyleAttr::get(
      &ctx, c.ropeHalf ? RopeStyle::Half : RopeStyle::Interleaved);
  auto eps = b.getF32FloatAttr(c.rmsEpsilon);

  SmallVector<Value> newCaches;
  for (int64_t l = 0; l < c.layers; ++l) {
    Value kCache = body->getArgument(firstCache + 2 * l);
    Value vCache = body->getArgument(firstCache + 1 + 2 * l);
    llvm::Expected<Value> attnNorm = norm(NormKind::Attn, l, d);
    if (!attnNorm)
      return attnNorm.takeError();
    Value h = RMSNormOp::create(b, loc, x.getType(), x, *attnNorm, eps);
    llvm::Expected<Value> qp = bitlinear(h, LinearKind::Q, l, q, d);
    if (!qp)
      return qp.takeError();
    llvm::Expected<Value> kp = bitlinear(h, LinearKind::K, l, kv, d);
    if (!kp)
      return kp.takeError();
    llvm::Expected<Value> vp = bitlinear(h, LinearKind::V, l, kv, d);
    if (!vp)
      return vp.takeError();
    Value qh = splitHeads(*qp, c.heads), kh = splitHeads(*kp, c.kvHeads),
          vh = splitHeads(*vp, c.kvHeads);
    qh = RopeOp::create(b, loc, qh.getType(), qh, positions, theta, style);
    kh = RopeOp::create(b, loc, kh.getType(), kh, positions, theta, style);
    Value a;
    if (sequences > 0) {
      auto attention = BatchedAttentionOp::create(
          b, loc, TypeRange{qh.getType(), cacheType, cacheType}, qh, kh, vh,
          kCache, vCache, positions, slots, FloatAttr());
      newCaches.append({attention.getNewKCache(), attention.getNewVCache()});
      a = attention.getResult();
    } else {
      auto attention = AttentionOp::create(
          b, loc, TypeRange{qh.getType(), cacheType, cacheType}, qh, kh, vh,
          kCache, vCache, position, FloatAttr());
      newCaches.append({attention.getNewKCache(), attention.getNewVCache()});
      a = attention.getResult();
    }
    a = mergeHeads(a, c.heads);
    if (c.attnSubNorm) {
      llvm::Expected<Value> sub = norm(NormKind::AttnSub, l, q);
      if (!sub)
        return sub.takeError();
      a = RMSNormOp::create(b, loc, a.getType(), a, *sub, eps);
    }
    llvm::Expected<Value> op = bitlinear(a, LinearKind::O, l, d, q);
    if (!op)
      return op.takeError();
    x = add(x, *op);

    llvm::Expected<Value> ffnNorm = norm(NormKind::FFN, l, d);
    if (!ffnNorm)
      return ffnNorm.takeError();
    h = RMSNormOp::create(b, loc, x.getType(), x, *ffnNorm, eps);
    llvm::Expected<Value> gate = bitlinear(h, LinearKind::Gate, l, c.ffn, d);
    if (!gate)
      return gate.takeError();
    llvm::Expected<Value> up = bitlinear(h, LinearKind::Up, l, c.ffn, d);
    if (!up)
      return up.takeError();
    Value f = gatedActivation(*gate, *up);
    if (c.ffnSubNorm) {
      llvm::Expected<Value> sub = norm(NormKind::FFNSub, l, c.ffn);
      if (!sub)
        return sub.takeError();
      f = RMSNormOp::create(b, loc, f.getType(), f, *sub, eps);
    }
    llvm::Expected<Value> down = bitlinear(f, LinearKind::Down, l, d, c.ffn);
    if (!down)
      return down.takeError();
    x = add(x, *down);
    if (o.progress)
      o.progress(l + 1, c.layers);
  }

  llvm::Expected<Value> outNorm =
      floatConstant(w.outputNorm(), {d}, /*allowHalf=*/false, "the final norm");
  if (!outNorm)
    return outNorm.takeError();
  x = RMSNormOp::create(b, loc, x.getType(), x, *outNorm, eps);
  llvm::Expected<std::optional<FloatTensor>> head = w.head();
  if (!head)
    return head.takeError();
  Value headWeight = *table;
  if (*head) {
    llvm::Expected<Value> h = floatConstant(std::move(**head), {c.vocab, d},
                                            /*allowHalf=*/true, "the head");
    if (!h)
      return h.takeError();
    headWeight = *h;
  }
  Value logits = DenseMatmulOp::create(b, loc, tensor({tokens, c.vocab}, f32()),
                                       x, headWeight, Value());
  SmallVector<Value> results{logits};
  results.append(newCaches);
  func::ReturnOp::create(b, loc, results);
  if (failed(mlir::verify(*module)))
    return makeError(o.source + ": the decoder built from it does not verify");
  return std::move(module);
}

llvm::Expected<OwningOpRef<ModuleOp>>
mlir::bitnet::buildDecoder(MLIRContext &context, const DecoderConfig &config,
                           DecoderWeights &weights,
                           const DecoderBuildOptions &options) {
  context.loadDialect<BitNetDialect, arith::ArithDialect, func::FuncDialect,
                      linalg::LinalgDialect, math::MathDialect,
                      tensor::TensorDialect>();
  DecoderEmitter builder(context, config, weights, options);
  return builder.build();
}

std::string
mlir::bitnet::addCheckpointInputShape(StringRef spec,
                                      CheckpointImportOptions &options) {
  auto [name, dims] = spec.split(':');
  if (name != "tokens")
    return "--input-shape=" + spec.str() +
           ": a checkpoint's decoder has one input with a free size, "
           "'tokens' (e.g. --input-shape=tokens:128)";
  int64_t tokens;
  if (dims.getAsInteger(10, tokens) || tokens <= 0)
    return "--input-shape=" + spec.str() +
           ": expected a positive number of tokens after 'tokens:'";
  options.tokens = tokens;
  return "";
}
