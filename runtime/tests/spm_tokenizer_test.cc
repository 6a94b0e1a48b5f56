//===- spm_tokenizer_test.cc - The SentencePiece tokenizer ------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// "model": "llama" vocabularies. Small hand-made ones check the algorithm
// step by step (llama.cpp's llm_tokenizer_spm); a model trained with the
// sentencepiece module at build time (spm_reference.py) checks that the ids
// are sentencepiece's own on ~1900 texts. Those tests skip without it.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include "bitnet_rt/tokenizer.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <tuple>
#include <vector>

using namespace bitnet_test;

namespace {

using Ids = std::vector<int32_t>;

const std::string kSpace = "\xE2\x96\x81"; // U+2581, SentencePiece's space

struct Token {
  std::string text;
  double score;
  int type;
};

// A vocabulary: <unk>, <s>, </s>, then the 256 byte tokens when
// `byte_tokens`, then `tokens`. `extra` is appended to the JSON object.
std::string Vocab(const std::vector<Token> &tokens, bool byte_tokens = true,
                  const std::string &extra = "") {
  std::vector<Token> all = {{"<unk>", 0, 2}, {"<s>", 0, 3}, {"</s>", 0, 3}};
  if (byte_tokens)
    for (int b = 0; b < 256; ++b) {
      char name[8];
      snprintf(name, sizeof(name), "<0x%02X>", b);
      all.push_back({name, 0, 6});
    }
  all.insert(all.end(), tokens.begin(), tokens.end());
  std::string texts, scores, types;
  for (const Token &t : all) {
    texts += (texts.empty() ? "" : ",") + Quote(t.text);
    std::ostringstream score;
    score << t.score;
    scores += (scores.empty() ? "" : ",") + score.str();
    types += (types.empty() ? "" : ",") + std::to_string(t.type);
  }
  return "{\"model\":\"llama\",\"tokens\":[" + texts + "],\"scores\":[" +
         scores + "],\"token_type\":[" + types +
         "],\"bos_token_id\":1,\"eos_token_id\":2,\"add_bos_token\":true" +
         extra + "}";
}

TokenizerPtr Make(const std::string &json) {
  bitnet_tokenizer *raw = nullptr;
  bitnet_status status = bitnet_tokenizer_create(json.data(), json.size(), &raw);
  EXPECT_TRUE(IsOk(status)) << json.substr(0, 300);
  return TokenizerPtr(raw);
}

Ids Encode(const bitnet_tokenizer *t, const std::string &text,
           int32_t flags = 0) {
  int32_t *ids = nullptr;
  int64_t n = 0;
  EXPECT_TRUE(IsOk(bitnet_tokenizer_encode(t, text.data(), text.size(), flags,
                                           &ids, &n)));
  Ids out(ids, ids + n);
  free(ids);
  return out;
}

std::string Decode(const bitnet_tokenizer *t, const Ids &ids,
                   int32_t flags = 0) {
  char *text = nullptr;
  size_t n = 0;
  EXPECT_TRUE(IsOk(bitnet_tokenizer_decode(t, ids.data(),
                                           static_cast<int64_t>(ids.size()),
                                           flags, &text, &n)));
  std::string out(text ? text : "", n);
  free(text);
  return out;
}

// Id of the token whose text is `text`, or -1.
int32_t Id(const bitnet_tokenizer *t, const std::string &text) {
  for (int32_t id = 0; id < bitnet_tokenizer_vocab_size(t); ++id)
    if (text == bitnet_tokenizer_token_text(t, id))
      return id;
  return -1;
}

int32_t ByteId(int b) { return 3 + b; }

//===----------------------------------------------------------------------===//
// The algorithm on hand-made vocabularies
//===----------------------------------------------------------------------===//

std::vector<Token> Small() {
  return {{kSpace, -1, 1},      {"a", -2, 1},        {"b", -3, 1},
          {"c", -4, 1},         {"ab", -5, 1},       {"bc", -5, 1},
          {kSpace + "a", -6, 1}, {kSpace + "b", -7, 1}, {"abc", -9, 1},
          {"<user>", 0, 4},      {"zz", 0, 5}};
}

TEST(SpmTokenizerTest, MergesTheBestScoringPairFirstLeftmostOnTies) {
  TokenizerPtr t = Make(Vocab(Small()));
  const bitnet_tokenizer *p = t.get();
  // ▁ a b c: "ab" and "bc" score -5, above "▁a" (-6); the leftmost wins,
  // then "ab" + "c" = "abc" (-9); "▁" + "abc" is no token.
  EXPECT_EQ(Encode(p, "abc"), (Ids{Id(p, kSpace), Id(p, "abc")}));
  // ▁ b c: "bc" (-5) before "▁b" (-7), and "▁" + "bc" is no token.
  EXPECT_EQ(Encode(p, "bc"), (Ids{Id(p, kSpace), Id(p, "bc")}));
  EXPECT_EQ(Encode(p, "a"), (Ids{Id(p, kSpace + "a")}));
  // Every space is a '▁'.
  EXPECT_EQ(Encode(p, "a  b "),
            (Ids{Id(p, kSpace + "a"), Id(p, kSpace), Id(p, kSpace + "b"),
                 Id(p, kSpace)}));
  EXPECT_EQ(Encode(p, ""), Ids{});
  EXPECT_EQ(Encode(p, "", BITNET_ENCODE_ADD_BOS), Ids{1});
  EXPECT_EQ(Encode(p, "a", BITNET_ENCODE_ADD_BOS),
            (Ids{1, Id(p, kSpace + "a")}));
}

TEST(SpmTokenizerTest, CharactersNotInTheVocabularyFallBackToBytes) {
  TokenizerPtr t = Make(Vocab(Small()));
  const bitnet_tokenizer *p = t.get();
  // "é" is C3 A9; "x" has no token either.
  EXPECT_EQ(Encode(p, "é x"),
            (Ids{Id(p, kSpace), ByteId(0xC3), ByteId(0xA9), Id(p, kSpace),
                 ByteId('x')}));
  EXPECT_EQ(Decode(p, Encode(p, "é x")), "é x");
  // Bytes that are not UTF-8 are grouped as llama.cpp groups them (by the
  // first byte's high bits) and come out as their byte tokens.
  std::string bad = "a\xFF" "b\x80";
  Ids ids = Encode(p, bad);
  EXPECT_EQ(ids, (Ids{Id(p, kSpace + "a"), ByteId(0xFF), ByteId('b'),
                      ByteId(0x80)}));
  EXPECT_EQ(Decode(p, ids), bad);
  // Without byte tokens, a byte's own one-byte token, else the unknown one.
  TokenizerPtr u = Make(Vocab(Small(), /*byte_tokens=*/false));
  EXPECT_EQ(Encode(u.get(), "é"), (Ids{Id(u.get(), kSpace), 0, 0}));
  EXPECT_EQ(Encode(u.get(), "ax", BITNET_ENCODE_SPECIAL_AS_TEXT),
            (Ids{Id(u.get(), kSpace + "a"), 0}));
}

TEST(SpmTokenizerTest, SpecialTokensComeFirstAndTextAfterThemGetsASpace) {
  TokenizerPtr t = Make(Vocab(Small()));
  const bitnet_tokenizer *p = t.get();
  // As llama.cpp: the text after a special token starts with '▁' again.
  EXPECT_EQ(Encode(p, "a<s>b"),
            (Ids{Id(p, kSpace + "a"), 1, Id(p, kSpace + "b")}));
  EXPECT_EQ(Encode(p, "<s>a</s>"), (Ids{1, Id(p, kSpace + "a"), 2}));
  EXPECT_EQ(Encode(p, "a<user>b"),
            (Ids{Id(p, kSpace + "a"), Id(p, "<user>"), Id(p, kSpace + "b")}));
  // The unknown token's text is special too, unless special tokens are
  // text; user-defined tokens are matched either way.
  EXPECT_EQ(Encode(p, "<unk>"), Ids{0});
  Ids plain = Encode(p, "<unk><s><user>", BITNET_ENCODE_SPECIAL_AS_TEXT);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 0), 0);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(plain.back(), Id(p, "<user>"));
  EXPECT_EQ(Decode(p, plain), "<unk><s><user>");
}

TEST(SpmTokenizerTest, AddSpacePrefixCanBeOff) {
  TokenizerPtr t = Make(Vocab(Small(), true, ",\"add_space_prefix\":false"));
  const bitnet_tokenizer *p = t.get();
  EXPECT_EQ(Encode(p, "ab"), Ids{Id(p, "ab")});
  EXPECT_EQ(Encode(p, " a"), Ids{Id(p, kSpace + "a")});
  EXPECT_EQ(Decode(p, Ids{Id(p, kSpace + "a")}), " a");
}

TEST(SpmTokenizerTest, Decoding) {
  TokenizerPtr t = Make(Vocab(Small()));
  const bitnet_tokenizer *p = t.get();
  const char *bytes;
  size_t n;
  ASSERT_TRUE(IsOk(bitnet_tokenizer_token_bytes(p, Id(p, kSpace + "a"), 0,
                                                &bytes, &n)));
  EXPECT_EQ(std::string(bytes, n), " a");
  ASSERT_TRUE(IsOk(bitnet_tokenizer_token_bytes(p, ByteId(0x0A), 0, &bytes,
                                                &n)));
  EXPECT_EQ(std::string(bytes, n), "\n");
  // Unused tokens decode to nothing, as in llama.cpp.
  ASSERT_TRUE(IsOk(bitnet_tokenizer_token_bytes(p, Id(p, "zz"), 0, &bytes,
                                                &n)));
  EXPECT_EQ(n, 0u);
  // The first token loses the space the encoder put before the text; not
  // when the first token is BOS (llama.cpp's detokenize).
  Ids ids = Encode(p, "a b");
  EXPECT_EQ(Decode(p, ids), "a b");
  ids.insert(ids.begin(), 1);
  EXPECT_EQ(Decode(p, ids), "<s> a b");
  EXPECT_EQ(Decode(p, ids, BITNET_DECODE_SKIP_SPECIAL), " a b");
  EXPECT_EQ(Decode(p, Ids{Id(p, kSpace), Id(p, kSpace)}), " ");
  EXPECT_EQ(Decode(p, Ids{ByteId(' '), ByteId('x')}), "x");
  // The stream decoder gives every token's bytes, whole characters only.
  bitnet_stream_decoder *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_stream_decoder_create(p, 0, &raw)));
  StreamPtr d(raw);
  std::string out;
  for (int32_t id : Encode(p, "é😀a")) {
    const char *piece;
    size_t len;
    ASSERT_TRUE(IsOk(bitnet_stream_decoder_push(d.get(), id, &piece, &len)));
    std::string s(piece, len);
    EXPECT_TRUE(s.empty() || s == " " || s == "é" || s == "😀" || s == "a")
        << s;
    out += s;
  }
  EXPECT_EQ(out, " é😀a");
}

TEST(SpmTokenizerTest, MalformedDescriptionsAreErrors) {
  const auto F = BITNET_STATUS_INVALID_FORMAT;
  std::string ok = Vocab({{"a", -1, 1}}, false);
  struct Case {
    std::string json;
    std::vector<std::string> parts;
  };
  auto replace = [&](const std::string &from, const std::string &to) {
    std::string s = ok;
    size_t at = s.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    return s.replace(at, from.size(), to);
  };
  std::vector<Case> cases = {
      {replace(",\"scores\":[0,0,0,-1]", ""), {"'scores' is missing"}},
      {replace("\"scores\":[0,0,0,-1]", "\"scores\":[0,0,0]"),
       {"'scores'", "3 entries", "4"}},
      {replace("\"scores\":[0,0,0,-1]", "\"scores\":[0,0,0,-1,2]"),
       {"'scores'", "more entries"}},
      {replace("\"scores\":[0,0,0,-1]", "\"scores\":[0,0,\"x\",-1]"),
       {"'scores[2]'", "a string"}},
      {replace("\"scores\":[0,0,0,-1]", "\"scores\":{}"),
       {"'scores'", "an object"}},
      {replace("\"token_type\":[2,3,3,1]", "\"token_type\":[2,3,3,6]"),
       {"'tokens[3]'", "\"a\"", "<0xXX>"}},
      {replace("\"add_bos_token\":true", "\"add_space_prefix\":1"),
       {"'add_space_prefix'", "a number"}},
  };
  for (const Case &c : cases) {
    bitnet_tokenizer *raw = nullptr;
    EXPECT_TRUE(IsError(bitnet_tokenizer_create(c.json.data(), c.json.size(),
                                                &raw),
                        F,
                        {c.parts[0], c.parts.size() > 1 ? c.parts[1] : "",
                         c.parts.size() > 2 ? c.parts[2] : ""}))
        << c.json;
    EXPECT_EQ(raw, nullptr);
  }
  TokenizerPtr good = Make(ok);
  EXPECT_NE(good, nullptr);
}

//===----------------------------------------------------------------------===//
// Agreement with sentencepiece
//===----------------------------------------------------------------------===//

std::string Unhex(const std::string &hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  return out;
}

struct Reference {
  std::string text, decoded;
  Ids ids;
};

std::vector<Reference> ReadReferences(const std::string &path) {
  std::vector<Reference> out;
  std::istringstream in(ReadFile(path));
  std::string line;
  while (std::getline(in, line)) {
    size_t tab1 = line.find('\t'), tab2 = line.find('\t', tab1 + 1);
    if (tab1 == std::string::npos || tab2 == std::string::npos)
      continue;
    Reference r;
    r.text = Unhex(line.substr(0, tab1));
    r.decoded = Unhex(line.substr(tab2 + 1));
    std::istringstream ids(line.substr(tab1 + 1, tab2 - tab1 - 1));
    int32_t id;
    while (ids >> id)
      r.ids.push_back(id);
    out.push_back(std::move(r));
  }
  return out;
}

bool Exists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

class SpmReferenceTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (!Exists(BITNET_SPM_TOKENIZER_JSON) || !Exists(BITNET_SPM_CASES))
      GTEST_SKIP() << "no " << BITNET_SPM_TOKENIZER_JSON
                   << " (it needs Python's sentencepiece module at build "
                      "time)";
    tok_ = Make(ReadFile(BITNET_SPM_TOKENIZER_JSON));
    ASSERT_NE(tok_, nullptr);
    refs_ = ReadReferences(BITNET_SPM_CASES);
    ASSERT_GT(refs_.size(), 1000u);
  }
  TokenizerPtr tok_;
  std::vector<Reference> refs_;
};

TEST_F(SpmReferenceTest, IdsAreSentencePiecesOwn) {
  size_t matched = 0, ids = 0, decoded = 0;
  for (const Reference &r : refs_) {
    // sentencepiece's encode reads "<s>" as text: so must we.
    Ids got = Encode(tok_.get(), r.text, BITNET_ENCODE_SPECIAL_AS_TEXT);
    if (got == r.ids)
      ++matched;
    else
      ADD_FAILURE() << "text " << Quote(r.text.substr(0, 200));
    ids += r.ids.size();
    std::string back = Decode(tok_.get(), got);
    decoded += back == r.decoded;
    EXPECT_EQ(back, r.decoded) << Quote(r.text.substr(0, 200));
    // No normalisation: the text comes back, but for a '▁' in it, which
    // is a space to SentencePiece.
    if (r.text.find(kSpace) == std::string::npos)
      EXPECT_EQ(back, r.text);
  }
  printf("sentencepiece: %zu of %zu texts give the same ids (%zu ids), "
         "%zu the same decoded text\n",
         matched, refs_.size(), ids, decoded);
}

TEST_F(SpmReferenceTest, StreamDecodingGivesWholeCharacters) {
  bitnet_stream_decoder *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_stream_decoder_create(tok_.get(), 0, &raw)));
  StreamPtr d(raw);
  for (const Reference &r : refs_) {
    if (r.text.size() > 4096)
      continue;
    // The stream keeps the space put before the text (llama.cpp's
    // token_to_piece).
    std::string whole = r.text.empty() ? "" : " " + r.text;
    for (size_t at = 0; (at = whole.find(kSpace, at)) != std::string::npos;)
      whole.replace(at, kSpace.size(), " ");
    std::string out;
    for (int32_t id : r.ids) {
      const char *piece;
      size_t len;
      ASSERT_TRUE(IsOk(bitnet_stream_decoder_push(d.get(), id, &piece, &len)));
      // Every piece ends on a character boundary of the text (which the
      // stream gives with the encoder's leading space).
      out.append(piece, len);
      ASSERT_EQ(whole.compare(0, out.size(), out), 0) << Quote(out);
      EXPECT_TRUE(out.size() == whole.size() ||
                  (static_cast<unsigned char>(whole[out.size()]) & 0xC0) !=
                      0x80)
          << Quote(r.text.substr(0, 100));
    }
    const char *rest;
    size_t len;
    bitnet_stream_decoder_flush(d.get(), &rest, &len);
    EXPECT_EQ(len, 0u);
    EXPECT_EQ(out, whole);
  }
}

TEST_F(SpmReferenceTest, MegabytesEncodeQuickly) {
  // The longest text (the whole corpus) repeated to about 4 MB.
  const Reference *longest = &refs_[0];
  for (const Reference &r : refs_)
    if (r.text.size() > longest->text.size())
      longest = &r;
  std::string big;
  while (big.size() < (4u << 20))
    big += longest->text;
  auto start = std::chrono::steady_clock::now();
  Ids ids = Encode(tok_.get(), big, BITNET_ENCODE_SPECIAL_AS_TEXT);
  double seconds = std::chrono::duration<double>(
                       std::chrono::steady_clock::now() - start)
                       .count();
  printf("SentencePiece: %.1f MB in %.2f s (%.1f MB/s), %zu ids\n",
         big.size() / 1e6, seconds, big.size() / 1e6 / seconds, ids.size());
  std::string expected = big; // '▁' in the text decodes as a space
  for (size_t at = 0; (at = expected.find(kSpace, at)) != std::string::npos;)
    expected.replace(at, kSpace.size(), " ");
  EXPECT_TRUE(Decode(tok_.get(), ids) == expected); // no 4 MB diff
  EXPECT_LT(seconds, 30.0); // generous: sanitizer builds are slow
}

} // namespace
