//===- HFImporter.cpp - Hugging Face BitNet checkpoints -------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "bitnet/Import/HF/HFImporter.h"

#include "bitnet/Import/HF/SafeTensors.h"
#include "bitnet/Reference/Numerics.h"


#include "mlir/IR/Diagnostics.h"

#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <cmath>
#include <cstring>

using namespace mlir;
using namespace mlir::bitnet;

static llvm::Error makeError(const Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

static std::string joinPath(StringRef dir, StringRef name) {
  SmallString<256> path(dir);
  llvm::sys::path::append(path, name);
  return std::string(path);
}

/// Reads and parses a JSON file.
static llvm::Expected<llvm::json::Value> readJSON(StringRef path) {
  llvm::ErrorOr<std::unique_ptr<llvm::MemoryBuffer>> file =
      llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!file)
    return llvm::createStringError(file.getError(),
                                   "cannot read '" + path +
                                       "': " + file.getError().message());
  llvm::Expected<llvm::json::Value> json =
      llvm::json::parse((*file)->getBuffer());
  if (!json)
    return makeError(path + ": not valid JSON: " +
                     llvm::toString(json.takeError()));
  return json;
}

/// Reads a JSON file whose top level must be an object.
static llvm::Expected<llvm::json::Object> readJSONObject(StringRef path) {
  llvm::Expected<llvm::json::Value> json = readJSON(path);
  if (!json)
    return json.takeError();
  llvm::json::Object *object = json->getAsObject();
  if (!object)
    return makeError(path + ": not a JSON object");
  return std::move(*object);
}

//===----------------------------------------------------------------------===//
// config.json
//===----------------------------------------------------------------------===//

static llvm::Expected<DecoderConfig> readConfig(StringRef dir, bool &tiedHead,
                                                bool &scaleIsInverse) {
  std::string path = joinPath(dir, "config.json");
  llvm::Expected<llvm::json::Object> json = readJSONObject(path);
  if (!json)
    return json.takeError();
  const llvm::json::Object *root = &*json;
  auto bad = [&](const Twine &what) { return makeError(path + ": " + what); };
  std::optional<StringRef> modelType = root->getString("model_type");
  if (!modelType || *modelType != "bitnet")
    return bad("model_type is " +
               (modelType ? "'" + modelType->str() + "'"
                          : std::string("missing")) +
               "; this compiler reads BitNetForCausalLM checkpoints "
               "(model_type 'bitnet')");
  auto integer = [&](StringRef key, int64_t &out,
                     std::optional<int64_t> fallback =
                         std::nullopt) -> llvm::Error {
    const llvm::json::Value *v = root->get(key);
    if (!v) {
      if (fallback) {
        out = *fallback;
        return llvm::Error::success();
      }
      return bad("'" + key + "' is missing");
    }
    std::optional<int64_t> i = v->getAsInteger();
    if (!i)
      return bad("'" + key + "' is not an integer");
    out = *i;
    return llvm::Error::success();
  };
  auto number = [&](StringRef key, float &out,
                    double fallback) -> llvm::Error {
    const llvm::json::Value *v = root->get(key);
    if (!v) {
      out = static_cast<float>(fallback);
      return llvm::Error::success();
    }
    std::optional<double> d = v->getAsNumber();
    if (!d)
      return bad("'" + key + "' is not a number");
    out = static_cast<float>(*d);
    return llvm::Error::success();
  };
  DecoderConfig c;
  c.architecture = "BitNetForCausalLM";
  if (llvm::Error e = integer("vocab_size", c.vocab))
    return std::move(e);
  if (llvm::Error e = integer("hidden_size", c.hidden))
    return std::move(e);
  if (llvm::Error e = integer("num_hidden_layers", c.layers))
    return std::move(e);
  if (llvm::Error e = integer("num_attention_heads", c.heads))
    return std::move(e);
  if (llvm::Error e = integer("num_key_value_heads", c.kvHeads, c.heads))
    return std::move(e);
  if (llvm::Error e = integer("intermediate_size", c.ffn))
    return std::move(e);
  if (llvm::Error e = integer("max_position_embeddings", c.context))
    return std::move(e);
  if (c.heads <= 0 || c.hidden % c.heads != 0)
    return bad("hidden_size " + Twine(c.hidden) +
               " is not a multiple of num_attention_heads " + Twine(c.heads));
  if (llvm::Error e = integer("head_dim", c.headDim, c.hidden / c.heads))
    return std::move(e);
  if (llvm::Error e = number("rms_norm_eps", c.rmsEpsilon, 1e-6))
    return std::move(e);
  if (llvm::Error e = number("rope_theta", c.ropeTheta, 10000.0))
    return std::move(e);
  if (const llvm::json::Value *scaling = root->get("rope_scaling"))
    if (scaling->kind() != llvm::json::Value::Null)
      return bad("rope_scaling is not supported");
  std::optional<StringRef> act = root->getString("hidden_act");
  if (!act || *act == "relu2")
    c.activation = FFNActivation::SquaredRelu;
  else if (*act == "silu")
    c.activation = FFNActivation::Silu;
  else
    return bad("hidden_act '" + *act + "' is not supported (expected relu2 "
               "or silu)");
  // transformers' AutoBitLinear (2B-4T's "autobitlinear") multiplies the
  // layer's output by weight_scale; its BitLinear (the default class)
  // divides by it.
  scaleIsInverse = true;
  if (const llvm::json::Object *q = root->getObject("quantization_config")) {
    std::optional<StringRef> method = q->getString("quant_method");
    if (method && *method != "bitnet")
      return bad("quantization_config.quant_method '" + *method +
                 "' is not supported (expected 'bitnet')");
    std::optional<StringRef> linear = q->getString("linear_class");
    if (linear && *linear != "autobitlinear" && *linear != "bitlinear")
      return bad("quantization_config.linear_class '" + *linear +
                 "' is not supported (expected 'autobitlinear' or "
                 "'bitlinear')");
    scaleIsInverse = !linear || *linear == "bitlinear";
  }
  tiedHead = root->getBoolean("tie_word_embeddings").value_or(true);
  return c;
}

//===----------------------------------------------------------------------===//
// Weights
//===----------------------------------------------------------------------===//

namespace {
class HFWeights : public DecoderWeights {
public:
  HFWeights(const safetensors::Checkpoint &ckpt, StringRef dir, bool tied,
            bool scaleIsInverse)
      : ckpt(ckpt), dir(dir.str()), tied(tied),
        scaleIsInverse(scaleIsInverse) {}

  llvm::Expected<FloatTensor> embedding() override {
    return floatTensor("model.embed_tokens.weight", /*keepHalf=*/true);
  }
  llvm::Expected<FloatTensor> outputNorm() override {
    return floatTensor("model.norm.weight", false);
  }
  llvm::Expected<std::optional<FloatTensor>> head() override {
    // A checkpoint may store the tied head as well; the flag decides.
    if (tied)
      return std::nullopt;
    llvm::Expected<FloatTensor> t = floatTensor("lm_head.weight", true);
    if (!t)
      return t.takeError();
    return std::optional<FloatTensor>(std::move(*t));
  }
  llvm::Expected<FloatTensor> norm(NormKind kind, int64_t layer) override {
    const char *names[] = {"input_layernorm", "self_attn.attn_sub_norm",
                           "post_attention_layernorm", "mlp.ffn_sub_norm"};
    return floatTensor(layerName(layer, names[static_cast<int>(kind)]) +
                           ".weight",
                       false);
  }
  llvm::Expected<TernaryMatrix> linear(LinearKind kind, int64_t layer,
                                       int64_t rows, int64_t cols) override {
    const char *names[] = {"self_attn.q_proj", "self_attn.k_proj",
                           "self_attn.v_proj", "self_attn.o_proj",
                           "mlp.gate_proj",    "mlp.up_proj",
                           "mlp.down_proj"};
    std::string base = layerName(layer, names[static_cast<int>(kind)]);
    const safetensors::Tensor *t = find(base + ".weight");
    if (!t)
      return missing(base + ".weight");
    if (t->shape.size() != 2)
      return makeError(t->path + ": tensor '" + t->name +
                       "' must have 2 dimensions");
    bool isPacked = t->dtype == safetensors::DType::U8;
    SmallVector<int64_t, 2> stored{isPacked ? rows / 4 : rows, cols};
    if (ArrayRef<int64_t>(t->shape) != ArrayRef<int64_t>(stored) ||
        (isPacked && rows % 4 != 0))
      return makeError(describeShapeMismatch(t->path, t->name, t->shape,
                                             stored) +
                       (isPacked ? " (packed: outputs / 4 x inputs)"
                                 : " (outputs x inputs)"));
    if (isPacked) {
      llvm::Expected<TernaryMatrix> m = packed(*t, base + ".weight_scale");
      releaseMappedPages(t->data.data(), t->data.size());
      return m;
    }
    llvm::Expected<FloatTensor> w = safetensors::decodeFloat(*t);
    releaseMappedPages(t->data.data(), t->data.size());
    if (!w)
      return w.takeError();
    TernaryMatrix m;
    m.name = t->name;
    m.rows = t->shape[0];
    m.cols = t->shape[1];
    ::bitnet::ref::TernaryWeights q =
        ::bitnet::ref::ternarize(w->f32.data(), m.rows * m.cols);
    m.values = std::move(q.values);
    m.scale = q.scale;
    return m;
  }

private:
  /// The packed uint8 form: [N/4, K] bytes, four rows N/4 apart per byte.
  llvm::Expected<TernaryMatrix> packed(const safetensors::Tensor &t,
                                       StringRef scaleName) {
    const safetensors::Tensor *s = find(scaleName);
    if (!s)
      return makeError(t.path + ": tensor '" + t.name +
                       "' is packed (U8) but the checkpoint has no '" +
                       scaleName + "'");
    llvm::Expected<FloatTensor> scale = safetensors::decodeFloat(*s);
    if (!scale)
      return scale.takeError();
    if (scale->f32.size() != 1)
      return makeError(s->path + ": tensor '" + s->name + "' has " +
                       Twine(scale->f32.size()) + " values, expected one");
    float ws = scale->f32.front();
    if (!(ws > 0) || !std::isfinite(ws))
      return makeError(s->path + ": tensor '" + s->name + "' is " +
                       Twine(printFloat(ws)) + ", expected a positive scale");
    TernaryMatrix m;
    m.name = t.name;
    int64_t quarter = t.shape[0];
    m.rows = 4 * quarter;
    m.cols = t.shape[1];
    m.values.resize(m.rows * m.cols);
    for (int64_t r = 0; r < quarter; ++r)
      for (int64_t k = 0; k < m.cols; ++k) {
        uint8_t byte = t.data[r * m.cols + k];
        for (int i = 0; i < 4; ++i) {
          int code = (byte >> (2 * i)) & 3;
          if (code == 3)
            return makeError(t.path + ": tensor '" + t.name + "' byte (" +
                             Twine(r) + ", " + Twine(k) +
                             ") holds the code 3; packed ternary codes are "
                             "0, 1 or 2");
          m.values[(i * quarter + r) * m.cols + k] =
              static_cast<int8_t>(code - 1);
        }
      }
    m.scale = scaleIsInverse ? 1.0f / ws : ws;
    return m;
  }

  static std::string layerName(int64_t layer, StringRef name) {
    return "model.layers." + std::to_string(layer) + "." + name.str();
  }
  const safetensors::Tensor *find(StringRef name) { return ckpt.find(name); }
  llvm::Error missing(StringRef name) {
    return makeError(dir + ": the checkpoint has no tensor '" + name + "'");
  }
  llvm::Expected<FloatTensor> floatTensor(StringRef name, bool keepHalf) {
    const safetensors::Tensor *t = find(name);
    if (!t)
      return missing(name);
    llvm::Expected<FloatTensor> result = safetensors::decodeFloat(*t, keepHalf);
    releaseMappedPages(t->data.data(), t->data.size());
    return result;
  }

  const safetensors::Checkpoint &ckpt;
  std::string dir;
  bool tied;
  /// weight_scale is 1 / s_w (BitLinear) rather than s_w (AutoBitLinear).
  bool scaleIsInverse;
};
} // namespace

//===----------------------------------------------------------------------===//
// tokenizer.json and tokenizer_config.json
//===----------------------------------------------------------------------===//

/// Llama 3's pre-tokenizer regex, as its tokenizer.json writes it.
static constexpr const char *kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

/// The pre-tokenizer's name in the canonical form, from tokenizer.json's
/// `pre_tokenizer`.
static llvm::Expected<std::string> preTokenizer(const llvm::json::Object &root,
                                                StringRef path) {
  const llvm::json::Object *pre = root.getObject("pre_tokenizer");
  if (!pre)
    return makeError(path + ": no pre_tokenizer object (a byte-level BPE "
                            "tokenizer needs one)");
  std::optional<StringRef> type = pre->getString("type");
  if (type && *type == "ByteLevel") {
    if (pre->getBoolean("use_regex").value_or(true))
      return std::string("gpt-2");
  }
  if (type && *type == "Sequence") {
    static const llvm::json::Array none;
    const llvm::json::Array *steps = pre->getArray("pretokenizers");
    std::optional<StringRef> regex;
    bool byteLevel = false;
    for (const llvm::json::Value &step : steps ? *steps : none) {
      const llvm::json::Object *s = step.getAsObject();
      if (!s)
        continue;
      std::optional<StringRef> t = s->getString("type");
      if (t && *t == "Split")
        if (const llvm::json::Object *pattern = s->getObject("pattern"))
          regex = pattern->getString("Regex");
      if (t && *t == "ByteLevel")
        byteLevel = true;
    }
    if (regex && byteLevel && *regex == kLlama3Pattern)
      return std::string("llama-bpe");
    if (regex)
      return makeError(path + ": the pre-tokenizer regex '" + *regex +
                       "' is not one this compiler knows (Llama 3's or "
                       "GPT-2's)");
  }
  return makeError(path + ": the pre_tokenizer is not one this compiler "
                          "knows (Llama 3's Split + ByteLevel, or GPT-2's "
                          "ByteLevel)");
}

/// A special token's text in tokenizer_config.json: a string or an object
/// with "content".
static std::optional<StringRef> tokenText(const llvm::json::Value *v) {
  if (!v)
    return std::nullopt;
  if (std::optional<StringRef> s = v->getAsString())
    return s;
  if (const llvm::json::Object *o = v->getAsObject())
    return o->getString("content");
  return std::nullopt;
}

llvm::Expected<std::optional<std::string>>
mlir::bitnet::chatTemplateFromHF(StringRef dir) {
  std::string path = joinPath(dir, "tokenizer_config.json");
  if (!llvm::sys::fs::exists(path))
    return std::nullopt;
  llvm::Expected<llvm::json::Object> json = readJSONObject(path);
  if (!json)
    return json.takeError();
  const llvm::json::Value *t = json->get("chat_template");
  if (!t || t->kind() == llvm::json::Value::Null)
    return std::nullopt;
  if (std::optional<StringRef> s = t->getAsString())
    return s->str();
  // A list of named templates: the one called "default".
  if (const llvm::json::Array *list = t->getAsArray())
    for (const llvm::json::Value &entry : *list)
      if (const llvm::json::Object *o = entry.getAsObject())
        if (o->getString("name") == StringRef("default"))
          if (std::optional<StringRef> s = o->getString("template"))
            return s->str();
  return makeError(path + ": chat_template is neither a string nor a list "
                          "with a 'default' template");
}

llvm::Expected<std::string> mlir::bitnet::tokenizerJSONFromHF(StringRef path) {
  std::string dir = path.str(), file = path.str();
  if (llvm::sys::fs::is_directory(path))
    file = joinPath(path, "tokenizer.json");
  else
    dir = llvm::sys::path::parent_path(path).str();
  llvm::Expected<llvm::json::Object> json = readJSONObject(file);
  if (!json)
    return json.takeError();
  const llvm::json::Object *root = &*json;
  auto bad = [&](const Twine &what) { return makeError(file + ": " + what); };
  const llvm::json::Object *model = root->getObject("model");
  if (!model)
    return bad("no \"model\" object");
  std::optional<StringRef> type = model->getString("type");
  if (!type || *type != "BPE")
    return bad("the tokenizer model is " +
               (type ? "'" + type->str() + "'" : std::string("missing")) +
               "; only byte-level BPE tokenizers are read from "
               "tokenizer.json");
  const llvm::json::Object *vocab = model->getObject("vocab");
  if (!vocab)
    return bad("model.vocab is not an object");

  // Tokens by id: the vocabulary, then the added tokens.
  std::vector<std::optional<std::string>> tokens;
  std::vector<int64_t> types;
  auto place = [&](int64_t id, StringRef text, int64_t kind) -> llvm::Error {
    if (id < 0 || id >= (int64_t(1) << 24))
      return bad("token '" + text + "' has the id " + Twine(id) +
                 ", outside [0, 2^24)");
    if (id >= int64_t(tokens.size())) {
      tokens.resize(id + 1);
      types.resize(id + 1, 1);
    }
    if (tokens[id] && *tokens[id] != text)
      return bad("id " + Twine(id) + " names two tokens, '" + *tokens[id] +
                 "' and '" + text + "'");
    tokens[id] = text.str();
    types[id] = kind;
    return llvm::Error::success();
  };
  for (const auto &[key, value] : *vocab) {
    std::optional<int64_t> id = value.getAsInteger();
    if (!id)
      return bad("model.vocab['" + StringRef(key) + "'] is not an integer");
    if (llvm::Error e = place(*id, key, 1))
      return std::move(e);
  }
  if (const llvm::json::Array *added = root->getArray("added_tokens")) {
    for (const llvm::json::Value &entry : *added) {
      const llvm::json::Object *o = entry.getAsObject();
      std::optional<int64_t> id = o ? o->getInteger("id") : std::nullopt;
      std::optional<StringRef> content =
          o ? o->getString("content") : std::nullopt;
      if (!id || !content)
        return bad("an added_tokens entry without an integer id and a "
                   "content string");
      bool special = o->getBoolean("special").value_or(false);
      if (llvm::Error e = place(*id, *content, special ? 3 : 4))
        return std::move(e);
    }
  }
  llvm::json::Array tokenArray, typeArray;
  for (size_t id = 0; id < tokens.size(); ++id) {
    if (!tokens[id])
      return bad("no token has the id " + Twine(id) +
                 " (ids must run from 0 without gaps)");
    tokenArray.push_back(*tokens[id]);
    typeArray.push_back(types[id]);
  }

  llvm::json::Array merges;
  if (const llvm::json::Array *m = model->getArray("merges")) {
    merges.reserve(m->size());
    for (const llvm::json::Value &entry : *m) {
      if (std::optional<StringRef> s = entry.getAsString()) {
        merges.push_back(s->str());
        continue;
      }
      const llvm::json::Array *pair = entry.getAsArray();
      std::optional<StringRef> left, right;
      if (pair && pair->size() == 2) {
        left = (*pair)[0].getAsString();
        right = (*pair)[1].getAsString();
      }
      if (!left || !right)
        return bad("a merge that is neither \"left right\" nor "
                   "[\"left\", \"right\"]");
      merges.push_back((*left + " " + *right).str());
    }
  }

  llvm::Expected<std::string> pre = preTokenizer(*root, file);
  if (!pre)
    return pre.takeError();

  llvm::json::Object out;
  out["model"] = "gpt2";
  out["pre"] = *pre;
  out["ignore_merges"] = model->getBoolean("ignore_merges").value_or(false);
  size_t count = tokenArray.size();
  out["tokens"] = std::move(tokenArray);
  out["token_type"] = std::move(typeArray);
  out["merges"] = std::move(merges);

  // Ids of BOS, EOS and end of turn, and whether BOS is added.
  auto idOf = [&](StringRef text) -> std::optional<int64_t> {
    for (size_t id = 0; id < count; ++id)
      if (*tokens[id] == text)
        return id;
    return std::nullopt;
  };
  std::optional<bool> addBos;
  std::string configPath = joinPath(dir, "tokenizer_config.json");
  if (llvm::sys::fs::exists(configPath)) {
    llvm::Expected<llvm::json::Value> config = readJSON(configPath);
    if (!config)
      return config.takeError();
    if (const llvm::json::Object *c = config->getAsObject()) {
      for (auto [key, field] : {std::pair<const char *, const char *>{
                                    "bos_token", "bos_token_id"},
                                {"eos_token", "eos_token_id"}}) {
        std::optional<StringRef> text = tokenText(c->get(key));
        if (!text)
          continue;
        std::optional<int64_t> id = idOf(*text);
        if (!id)
          return makeError(configPath + ": " + key + " '" + *text +
                           "' is not a token of " + file);
        out[field] = *id;
      }
      addBos = c->getBoolean("add_bos_token");
    }
  }
  if (!out.get("bos_token_id"))
    if (std::optional<int64_t> id = idOf("<|begin_of_text|>"))
      out["bos_token_id"] = *id;
  if (!out.get("eos_token_id"))
    if (std::optional<int64_t> id = idOf("<|end_of_text|>"))
      out["eos_token_id"] = *id;
  if (std::optional<int64_t> id = idOf("<|eot_id|>"))
    out["eot_token_id"] = *id;
  if (!addBos) {
    // Llama 3 adds BOS in its post-processor rather than by a flag.
    addBos = false;
    if (const llvm::json::Object *post = root->getObject("post_processor"))
      if (const llvm::json::Array *single = post->getArray("single"))
        if (!single->empty())
          if (const llvm::json::Object *first = single->front().getAsObject())
            addBos = first->getObject("SpecialToken") != nullptr;
  }
  out["add_bos_token"] = *addBos;
  std::string text;
  llvm::raw_string_ostream os(text);
  os << llvm::json::Value(std::move(out));
  return text;
}

//===----------------------------------------------------------------------===//
// The checkpoint
//===----------------------------------------------------------------------===//

OwningOpRef<ModuleOp>
mlir::bitnet::importHFDirectory(StringRef dir, MLIRContext &context,
                                const CheckpointImportOptions &options) {
  Location loc = FileLineColLoc::get(&context, dir, 0, 0);
  auto report = [&](llvm::Error err) -> OwningOpRef<ModuleOp> {
    emitError(loc) << llvm::toString(std::move(err));
    return {};
  };
  bool tied = true, scaleIsInverse = true;
  llvm::Expected<DecoderConfig> config = readConfig(dir, tied, scaleIsInverse);
  if (!config)
    return report(config.takeError());
  llvm::Expected<std::unique_ptr<safetensors::Checkpoint>> ckpt =
      safetensors::Checkpoint::openDirectory(dir);
  if (!ckpt)
    return report(ckpt.takeError());
  DecoderBuildOptions build;
  build.tokens = options.tokens;
  build.cacheCapacity = options.cacheCapacity;
  build.sequences = options.sequences;
  build.entry = options.entry;
  build.source = dir.str();
  build.metadata["bitnet.architecture"] = config->architecture;
  if (llvm::sys::fs::exists(joinPath(dir, "tokenizer.json"))) {
    llvm::Expected<std::string> tokenizer = tokenizerJSONFromHF(dir);
    if (!tokenizer)
      return report(tokenizer.takeError());
    build.metadata["bitnet.tokenizer"] = std::move(*tokenizer);
  }
  llvm::Expected<std::optional<std::string>> chat = chatTemplateFromHF(dir);
  if (!chat)
    return report(chat.takeError());
  if (*chat)
    build.metadata["bitnet.chat_template"] = std::move(**chat);
  if (options.verbose)
    build.progress = [](int64_t layer, int64_t layers) {
      llvm::errs() << "\rbitnet-compile: read layer " << layer << " of "
                   << layers << (layer == layers ? "\n" : "");
    };
  HFWeights weights(**ckpt, dir, tied, scaleIsInverse);
  llvm::Expected<OwningOpRef<ModuleOp>> module =
      buildDecoder(context, *config, weights, build);
  if (!module)
    return report(module.takeError());
  return std::move(*module);
}
