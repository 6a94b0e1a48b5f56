//===- tokenizer_test.cc - The byte-level BPE tokenizer ---------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include "bitnet_rt/tokenizer.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <random>
#include <sstream>
#include <string>
#include <sys/stat.h>
#include <thread>
#include <utility>
#include <vector>

using namespace bitnet_test;

namespace {

using Ids = std::vector<int32_t>;

bool FileExists(const std::string &path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

// GPT-2's byte-to-unicode character of byte `b`, as UTF-8.
std::string ByteChar(unsigned b) {
  unsigned cp = b, extra = 0;
  bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) ||
                   (b >= 0xAE && b <= 0xFF);
  if (!printable) {
    for (unsigned c = 0; c < b; ++c)
      if (!((c >= '!' && c <= '~') || (c >= 0xA1 && c <= 0xAC) ||
            (c >= 0xAE && c <= 0xFF)))
        ++extra;
    cp = 256 + extra;
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// `bytes` spelled in the byte-to-unicode alphabet.
std::string Mapped(const std::string &bytes) {
  std::string s;
  for (unsigned char c : bytes)
    s += ByteChar(c);
  return s;
}

// A tokenizer description: the 256 byte tokens (id = byte value) unless
// `no_bytes`, then `extra` tokens, then merges (all given as raw bytes and
// written in the byte-to-unicode alphabet; special tokens as they are).
struct Spec {
  std::string model = "gpt2", pre = "llama-bpe";
  bool no_bytes = false;
  std::vector<std::pair<std::string, int>> extra; // text, token type
  std::vector<std::pair<std::string, std::string>> merges;
  int bos = -1, eos = -1, eot = -1;
  bool add_bos = false, ignore_merges = false;

  int32_t Add(const std::string &text, int type = BITNET_TOKEN_NORMAL) {
    extra.emplace_back(text, type);
    return (no_bytes ? 0 : 256) + static_cast<int32_t>(extra.size()) - 1;
  }
  // Adds the token left + right and the merge that makes it.
  int32_t Merge(const std::string &left, const std::string &right) {
    merges.emplace_back(left, right);
    return Add(left + right);
  }

  std::string Json() const {
    std::string tokens, types;
    auto add = [&](const std::string &text, int type) {
      tokens += (tokens.empty() ? "" : ",") + Quote(text);
      types += (types.empty() ? "" : ",") + std::to_string(type);
    };
    if (!no_bytes)
      for (unsigned b = 0; b < 256; ++b)
        add(ByteChar(b), BITNET_TOKEN_NORMAL);
    for (const auto &[text, type] : extra)
      add(type == BITNET_TOKEN_CONTROL || type == BITNET_TOKEN_USER_DEFINED
              ? text
              : Mapped(text),
          type);
    std::string m;
    for (const auto &[left, right] : merges)
      m += (m.empty() ? "" : ",") + Quote(Mapped(left) + " " + Mapped(right));
    return "{\"model\":" + Quote(model) + ",\"pre\":" + Quote(pre) +
           ",\"tokens\":[" + tokens + "],\"token_type\":[" + types +
           "],\"merges\":[" + m + "],\"bos_token_id\":" + std::to_string(bos) +
           ",\"eos_token_id\":" + std::to_string(eos) +
           ",\"eot_token_id\":" + std::to_string(eot) +
           ",\"add_bos_token\":" + (add_bos ? "true" : "false") +
           ",\"ignore_merges\":" + (ignore_merges ? "true" : "false") + "}";
  }

  TokenizerPtr Make() const {
    std::string json = Json();
    bitnet_tokenizer *t = nullptr;
    EXPECT_TRUE(IsOk(bitnet_tokenizer_create(json.data(), json.size(), &t)));
    return TokenizerPtr(t);
  }
};

Ids Encode(const bitnet_tokenizer *t, const std::string &text,
           int32_t flags = 0) {
  int32_t *ids = nullptr;
  int64_t n = -1;
  EXPECT_TRUE(
      IsOk(bitnet_tokenizer_encode(t, text.data(), text.size(), flags, &ids, &n)))
      << text;
  Ids v(ids, ids + (n > 0 ? n : 0));
  free(ids);
  return v;
}

std::string Decode(const bitnet_tokenizer *t, const Ids &ids,
                   int32_t flags = 0) {
  char *text = nullptr;
  size_t n = 0;
  EXPECT_TRUE(IsOk(bitnet_tokenizer_decode(
      t, ids.data(), static_cast<int64_t>(ids.size()), flags, &text, &n)));
  std::string s(text ? text : "", n);
  free(text);
  return s;
}

// Ids of every byte of `bytes` (the byte tokens of a Spec tokenizer).
Ids ByteIds(const std::string &bytes) {
  Ids v;
  for (unsigned char c : bytes)
    v.push_back(c);
  return v;
}

Ids Concat(std::initializer_list<Ids> parts) {
  Ids v;
  for (const Ids &p : parts)
    v.insert(v.end(), p.begin(), p.end());
  return v;
}

bitnet_status Create(const std::string &json, TokenizerPtr *out = nullptr) {
  bitnet_tokenizer *t = nullptr;
  bitnet_status status = bitnet_tokenizer_create(json.data(), json.size(), &t);
  if (out)
    out->reset(t);
  else
    bitnet_tokenizer_free(t);
  return status;
}

// Random text: ASCII words, white space of every kind, digits, punctuation,
// and characters of 2, 3 and 4 bytes.
std::string RandomText(std::mt19937 &rng, size_t pieces) {
  static const char *const parts[] = {
      " ",  "  ",     "\n",      "\r\n",     "\t",       "the",  " cat", "'s",
      "'LL", "12345", "!?",      "...",      "(x)",      "é",    "ß",    "€",
      "日本", "🦙",     "\xc2\xa0", "\xe3\x80\x80", "\xcc\x81", "Ωmega", "x1",
      "  \n "};
  std::uniform_int_distribution<size_t> pick(0, std::size(parts) - 1);
  std::uniform_int_distribution<int> coin(0, 9);
  std::uniform_int_distribution<uint32_t> cp(0x20, 0x2FFF);
  std::string s;
  for (size_t i = 0; i < pieces; ++i) {
    if (coin(rng) < 7) {
      s += parts[pick(rng)];
      continue;
    }
    uint32_t c = cp(rng);
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else if (c < 0x800) {
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    } else {
      s += static_cast<char>(0xE0 | (c >> 12));
      s += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
  }
  return s;
}

//===----------------------------------------------------------------------===//
// Encoding with small hand-made vocabularies
//===----------------------------------------------------------------------===//

TEST(TokenizerTest, WithoutMergesEveryByteIsItsToken) {
  Spec spec;
  TokenizerPtr t = spec.Make();
  ASSERT_TRUE(t);
  EXPECT_EQ(bitnet_tokenizer_vocab_size(t.get()), 256);
  std::string text = "h\xc3\xa9llo, w\xf0\x9f\xa6\x99rld\n\t 42";
  EXPECT_EQ(Encode(t.get(), text), ByteIds(text));
  EXPECT_EQ(Decode(t.get(), ByteIds(text)), text);
  EXPECT_TRUE(Encode(t.get(), "").empty());
}

TEST(TokenizerTest, MergesApplyInRankOrder) {
  Spec first_ab;
  int32_t ab = first_ab.Merge("a", "b");
  int32_t bc = first_ab.Merge("b", "c");
  TokenizerPtr t = first_ab.Make();
  EXPECT_EQ(Encode(t.get(), "abc"), (Ids{ab, 'c'}));

  Spec first_bc;
  bc = first_bc.Merge("b", "c");
  ab = first_bc.Merge("a", "b");
  t = first_bc.Make();
  EXPECT_EQ(Encode(t.get(), "abc"), (Ids{'a', bc}));
}

TEST(TokenizerTest, MergesBuildLongTokensAndTiesGoLeftmost) {
  Spec spec;
  int32_t aa = spec.Merge("a", "a");
  int32_t aaaa = spec.Merge("aa", "aa");
  spec.Merge("a", "!");
  TokenizerPtr t = spec.Make();
  EXPECT_EQ(Encode(t.get(), "aaa"), (Ids{aa, 'a'}));
  EXPECT_EQ(Encode(t.get(), "aaaaaaa"), (Ids{aaaa, aa, 'a'}));
  // Merges never cross pre-tokens: "a!" is two.
  EXPECT_EQ(Encode(t.get(), "a!"), (Ids{'a', '!'}));
}

TEST(TokenizerTest, MergesWorkOnTheByteToUnicodeAlphabet) {
  // " the" is "Ġthe" in the vocabulary; "é" is two bytes, "Ã©".
  Spec spec;
  int32_t sp_t = spec.Merge(" ", "t");
  int32_t sp_th = spec.Merge(" t", "h");
  int32_t sp_the = spec.Merge(" th", "e");
  int32_t e_acute = spec.Merge("\xc3", "\xa9");
  TokenizerPtr t = spec.Make();
  EXPECT_STREQ(bitnet_tokenizer_token_text(t.get(), sp_the), "\xc4\xa0the");
  EXPECT_STREQ(bitnet_tokenizer_token_text(t.get(), e_acute), "\xc3\x83\xc2\xa9");
  EXPECT_EQ(Encode(t.get(), "a the"), (Ids{'a', sp_the}));
  EXPECT_EQ(Encode(t.get(), " th"), (Ids{sp_th}));
  EXPECT_EQ(Encode(t.get(), " t"), (Ids{sp_t}));
  EXPECT_EQ(Encode(t.get(), "\xc3\xa9t\xc3\xa9"), (Ids{e_acute, 't', e_acute}));
  EXPECT_EQ(Decode(t.get(), {'a', sp_the, e_acute}), "a the\xc3\xa9");
}

TEST(TokenizerTest, IgnoreMergesTakesAWholePreTokenThatIsAToken) {
  Spec spec;
  int32_t bc = spec.Merge("b", "c");
  int32_t ab = spec.Merge("a", "b");
  int32_t abc = spec.Add("abc"); // no merge makes it
  TokenizerPtr plain = spec.Make();
  EXPECT_EQ(Encode(plain.get(), "abc"), (Ids{'a', bc}));
  EXPECT_EQ(Encode(plain.get(), "abab"), (Ids{ab, ab}));
  spec.ignore_merges = true;
  TokenizerPtr t = spec.Make();
  EXPECT_EQ(Encode(t.get(), "abc"), (Ids{abc}));
  EXPECT_EQ(Encode(t.get(), "abc abc"), (Ids{abc, ' ', 'a', bc}));
  // Not a token as a whole: BPE as before.
  EXPECT_EQ(Encode(t.get(), "abcab"), (Ids{'a', bc, ab}));
}

TEST(TokenizerTest, SpecialTokensSplitTheText) {
  Spec spec;
  int32_t ab = spec.Merge("a", "b");
  int32_t bos = spec.Add("<s>", BITNET_TOKEN_CONTROL);
  int32_t eot = spec.Add("<|eot|>", BITNET_TOKEN_CONTROL);
  int32_t at = spec.Add("@@", BITNET_TOKEN_USER_DEFINED);
  spec.bos = bos;
  TokenizerPtr t = spec.Make();
  const bitnet_tokenizer *tp = t.get();
  // Each piece between special tokens encodes as it would alone: "a" and
  // "b" around a special token do not merge.
  EXPECT_EQ(Encode(tp, "a<|eot|>b@@ab"),
            Concat({{'a', eot, 'b', at}, Encode(tp, "ab")}));
  EXPECT_EQ(Encode(tp, "<s><s>@@<|eot|>"), (Ids{bos, bos, at, eot}));
  EXPECT_EQ(Encode(tp, "ab<|eot|"), Concat({{ab}, ByteIds("<|eot|")}));
  // As text: control tokens are not matched, user-defined ones still are.
  Ids as_text = Encode(tp, "<s>ab@@<|eot|>", BITNET_ENCODE_SPECIAL_AS_TEXT);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), bos), 0);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), eot), 0);
  EXPECT_EQ(std::count(as_text.begin(), as_text.end(), at), 1);
  EXPECT_EQ(Decode(tp, as_text), "<s>ab@@<|eot|>");
  // BOS on request.
  EXPECT_EQ(Encode(tp, "ab", BITNET_ENCODE_ADD_BOS), (Ids{bos, ab}));
}

TEST(TokenizerTest, TheLongestSpecialTokenWins) {
  Spec spec;
  int32_t a = spec.Add("<a>", BITNET_TOKEN_CONTROL);
  int32_t ab = spec.Add("<a><b>", BITNET_TOKEN_CONTROL);
  int32_t abc = spec.Add("<a><b><c>", BITNET_TOKEN_USER_DEFINED);
  TokenizerPtr t = spec.Make();
  EXPECT_EQ(Encode(t.get(), "<a><b><a><a><b><c>"), (Ids{ab, a, abc}));
  EXPECT_EQ(Encode(t.get(), "<a><b><c"), Concat({{ab}, ByteIds("<c")}));
}

TEST(TokenizerTest, InvalidUtf8BytesArePiecesOfTheirOwn) {
  Spec spec;
  int32_t ab = spec.Merge("a", "b");
  int32_t euro2 = spec.Merge("\xe2", "\x82"); // the first two bytes of "€"
  TokenizerPtr t = spec.Make();
  const bitnet_tokenizer *tp = t.get();
  EXPECT_EQ(Encode(tp, "\xe2\x82\xac"), (Ids{euro2, 0xac}));
  // Cut short, the same bytes are invalid: no merge joins them.
  EXPECT_EQ(Encode(tp, "\xe2\x82"), (Ids{0xe2, 0x82}));
  EXPECT_EQ(Encode(tp, "ab\xe2\x82" "ab"), (Ids{ab, 0xe2, 0x82, ab}));
  // A stray byte, an overlong form, a surrogate, a code point past U+10FFFF.
  EXPECT_EQ(Encode(tp, "a\xff" "b"), (Ids{'a', 0xff, 'b'}));
  EXPECT_EQ(Encode(tp, "\xc0\xaf"), (Ids{0xc0, 0xaf}));
  EXPECT_EQ(Encode(tp, "\xed\xa0\x80"), (Ids{0xed, 0xa0, 0x80}));
  EXPECT_EQ(Encode(tp, "\xf4\x90\x80\x80"), (Ids{0xf4, 0x90, 0x80, 0x80}));
  // Every byte sequence comes back unchanged.
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> byte(0, 255);
  for (int round = 0; round < 50; ++round) {
    std::string bytes;
    for (int i = 0; i < 200; ++i)
      bytes += static_cast<char>(byte(rng));
    EXPECT_EQ(Decode(tp, Encode(tp, bytes)), bytes);
  }
}

TEST(TokenizerTest, Gpt2PreTokenizerSplitsDifferently) {
  Spec spec;
  int32_t n12 = spec.Merge("1", "2");
  int32_t n123 = spec.Merge("12", "3");
  int32_t n1234 = spec.Merge("123", "4");
  int32_t apos_s = spec.Merge("'", "S");
  int32_t bang_w = spec.Merge("!", "w");
  (void)n12;
  TokenizerPtr llama = spec.Make();
  spec.pre = "gpt-2";
  TokenizerPtr gpt2 = spec.Make();
  // Digits: at most three in a piece for Llama 3, any number for GPT-2.
  EXPECT_EQ(Encode(llama.get(), "1234"), (Ids{n123, '4'}));
  EXPECT_EQ(Encode(gpt2.get(), "1234"), (Ids{n1234}));
  // Contractions are case-insensitive for Llama 3 only.
  EXPECT_EQ(Encode(llama.get(), "'S"), (Ids{apos_s}));
  EXPECT_EQ(Encode(gpt2.get(), "'S"), (Ids{'\'', 'S'}));
  // Llama 3 lets one punctuation character lead a word.
  EXPECT_EQ(Encode(llama.get(), "!w"), (Ids{bang_w}));
  EXPECT_EQ(Encode(gpt2.get(), "!w"), (Ids{'!', 'w'}));
}

TEST(TokenizerTest, LongInputsOfOneKind) {
  Spec spec;
  int32_t aa = spec.Merge("a", "a");
  int32_t aaaa = spec.Merge("aa", "aa");
  spec.Merge("  ", "  ");
  spec.Merge(" ", " ");
  spec.ignore_merges = true;
  TokenizerPtr t = spec.Make();
  const size_t n = 1 << 18;
  for (char c : {'a', ' ', '\n', '7', '.'}) {
    std::string text(n, c);
    Ids ids = Encode(t.get(), text);
    EXPECT_EQ(Decode(t.get(), ids), text) << c;
    if (c == 'a') {
      EXPECT_EQ(ids.size(), n / 4);
      EXPECT_EQ(ids.front(), aaaa);
    }
  }
  (void)aa;
  // Many short pieces.
  std::string words;
  for (size_t i = 0; i < n / 8; ++i)
    words += i % 3 ? "aaaa " : "aa\n\n\t";
  EXPECT_EQ(Decode(t.get(), Encode(t.get(), words)), words);
}

TEST(TokenizerTest, RandomTextRoundTrips) {
  Spec spec;
  // Some merges, so that pieces of several tokens occur.
  for (const auto &[left, right] :
       std::vector<std::pair<std::string, std::string>>{{"t", "h"},
                                                        {"th", "e"},
                                                        {"\xc3", "\xa9"},
                                                        {" ", " "},
                                                        {"a", "t"},
                                                        {"c", "at"},
                                                        {"'", "s"},
                                                        {"1", "2"}})
    spec.Merge(left, right);
  spec.Add("<|end|>", BITNET_TOKEN_CONTROL);
  TokenizerPtr t = spec.Make();
  std::mt19937 rng(1);
  for (int round = 0; round < 200; ++round) {
    std::string text = RandomText(rng, 1 + round);
    EXPECT_EQ(Decode(t.get(), Encode(t.get(), text)), text);
  }
}

TEST(TokenizerTest, EncodingFromManyThreadsAgrees) {
  Spec spec;
  spec.Merge("t", "h");
  spec.Merge("th", "e");
  spec.Merge(" ", "the");
  TokenizerPtr t = spec.Make();
  std::mt19937 rng(3);
  std::string text = RandomText(rng, 5000);
  Ids want = Encode(t.get(), text);
  std::vector<Ids> got(4);
  std::vector<std::thread> threads;
  for (size_t k = 0; k < got.size(); ++k)
    threads.emplace_back([&, k] {
      for (int i = 0; i < 5; ++i)
        got[k] = Encode(t.get(), text);
    });
  for (std::thread &th : threads)
    th.join();
  for (const Ids &ids : got)
    EXPECT_EQ(ids, want);
}

TEST(TokenizerTest, MissingByteTokensFallBackToTheUnknownToken) {
  Spec spec;
  spec.no_bytes = true;
  int32_t a = spec.Add("a");
  int32_t b = spec.Add("b");
  int32_t ab = spec.Add("ab");
  spec.merges.emplace_back("a", "b");
  std::string no_unknown = spec.Json();
  int32_t unk = spec.Add("<unk>", BITNET_TOKEN_UNKNOWN);
  TokenizerPtr t = spec.Make();
  EXPECT_EQ(Encode(t.get(), "abzab a"), (Ids{ab, unk, ab, unk, a}));
  EXPECT_EQ(Decode(t.get(), {ab, unk, b}), "ab<unk>b");
  EXPECT_EQ(Decode(t.get(), {ab, unk, b}, BITNET_DECODE_SKIP_SPECIAL), "abb");

  TokenizerPtr strict;
  ASSERT_TRUE(IsOk(Create(no_unknown, &strict)));
  int32_t *ids = nullptr;
  int64_t n = -1;
  EXPECT_TRUE(IsError(
      bitnet_tokenizer_encode(strict.get(), "abz", 3, 0, &ids, &n),
      BITNET_STATUS_FAILED_PRECONDITION, {"byte 0x7a", "no unknown token"}));
  EXPECT_EQ(ids, nullptr);
  EXPECT_EQ(n, 0);
}

//===----------------------------------------------------------------------===//
// Decoding
//===----------------------------------------------------------------------===//

TEST(TokenizerTest, DecodingSpecialTokens) {
  Spec spec;
  int32_t bos = spec.Add("<s>", BITNET_TOKEN_CONTROL);
  int32_t user = spec.Add("<user>", BITNET_TOKEN_USER_DEFINED);
  int32_t unused = spec.Add("\xc3\xa9", BITNET_TOKEN_UNUSED);
  int32_t byte = spec.Add("\x01", BITNET_TOKEN_BYTE);
  TokenizerPtr t = spec.Make();
  Ids ids = {bos, 'h', user, unused, byte};
  EXPECT_EQ(Decode(t.get(), ids), "<s>h<user>\xc3\xa9\x01");
  EXPECT_EQ(Decode(t.get(), ids, BITNET_DECODE_SKIP_SPECIAL),
            "h<user>\xc3\xa9\x01");
  const char *bytes = nullptr;
  size_t n = 99;
  EXPECT_TRUE(IsOk(bitnet_tokenizer_token_bytes(
      t.get(), bos, BITNET_DECODE_SKIP_SPECIAL, &bytes, &n)));
  EXPECT_EQ(n, 0u);
  EXPECT_TRUE(IsOk(bitnet_tokenizer_token_bytes(t.get(), ' ', 0, &bytes, &n)));
  EXPECT_EQ(std::string(bytes, n), " ");
}

TEST(TokenizerTest, DecodingRejectsIdsOutOfRange) {
  Spec spec;
  TokenizerPtr t = spec.Make();
  const char *bytes;
  size_t n;
  EXPECT_TRUE(IsError(bitnet_tokenizer_token_bytes(t.get(), 256, 0, &bytes, &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"256", "[0, 256)"}));
  EXPECT_TRUE(IsError(bitnet_tokenizer_token_bytes(t.get(), -1, 0, &bytes, &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"-1"}));
  Ids ids = {'a', 1000, 'b'};
  char *text = reinterpret_cast<char *>(1);
  EXPECT_TRUE(IsError(bitnet_tokenizer_decode(t.get(), ids.data(), 3, 0, &text,
                                              &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"1000", "ids[1]"}));
  EXPECT_EQ(text, nullptr);
  EXPECT_TRUE(IsError(bitnet_tokenizer_decode(t.get(), nullptr, 2, 0, &text, &n),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_tokenizer_decode(t.get(), ids.data(), -1, 0, &text,
                                              &n),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsOk(bitnet_tokenizer_decode(t.get(), nullptr, 0, 0, &text, &n)));
  EXPECT_STREQ(text, "");
  free(text);
}

// Pushes `ids` one at a time; returns what came out after each push.
std::vector<std::string> Stream(bitnet_stream_decoder *d, const Ids &ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) {
    const char *text = nullptr;
    size_t n = 0;
    EXPECT_TRUE(IsOk(bitnet_stream_decoder_push(d, id, &text, &n)));
    out.emplace_back(text, n);
  }
  return out;
}

TEST(TokenizerTest, StreamDecoderPrintsWholeCharactersOnly) {
  Spec spec;
  int32_t a_e2 = spec.Merge("a", "\xe2"); // "a" and the start of "€"
  int32_t eos = spec.Add("</s>", BITNET_TOKEN_CONTROL);
  TokenizerPtr t = spec.Make();
  bitnet_stream_decoder *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_stream_decoder_create(t.get(), 0, &raw)));
  StreamPtr d(raw);
  using Out = std::vector<std::string>;
  // "a€b🦙", a byte a token.
  EXPECT_EQ(Stream(d.get(), ByteIds("a\xe2\x82\xac" "b\xf0\x9f\xa6\x99")),
            (Out{"a", "", "", "\xe2\x82\xac", "b", "", "", "", "\xf0\x9f\xa6\x99"}));
  // A token that ends inside a character.
  EXPECT_EQ(Stream(d.get(), {a_e2, 0x82, 0xac, eos}),
            (Out{"a", "", "\xe2\x82\xac", "</s>"}));
  // A character cut short by a byte that cannot continue it: both go out.
  EXPECT_EQ(Stream(d.get(), {0xc3, 'x'}), (Out{"", "\xc3x"}));
  // Bytes that can never start a character go out at once.
  EXPECT_EQ(Stream(d.get(), {0xff, 0x80}), (Out{"\xff", "\x80"}));
  // What is held at the end comes out on flush, once.
  EXPECT_EQ(Stream(d.get(), {0xf0, 0x9f}), (Out{"", ""}));
  const char *text = nullptr;
  size_t n = 0;
  bitnet_stream_decoder_flush(d.get(), &text, &n);
  EXPECT_EQ(std::string(text, n), "\xf0\x9f");
  bitnet_stream_decoder_flush(d.get(), &text, &n);
  EXPECT_EQ(n, 0u);
  EXPECT_EQ(Stream(d.get(), {0x9f, 'z'}), (Out{"\x9f", "z"}));

  // Skipping special tokens.
  ASSERT_TRUE(IsOk(
      bitnet_stream_decoder_create(t.get(), BITNET_DECODE_SKIP_SPECIAL, &raw)));
  StreamPtr skip(raw);
  EXPECT_EQ(Stream(skip.get(), {'a', eos, 'b'}), (Out{"a", "", "b"}));

  // Errors.
  EXPECT_TRUE(IsError(bitnet_stream_decoder_push(d.get(), 5000, &text, &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"5000"}));
  EXPECT_TRUE(IsError(bitnet_stream_decoder_push(nullptr, 1, &text, &n),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_stream_decoder_push(d.get(), 1, nullptr, &n),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_stream_decoder_create(nullptr, 0, &raw),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_stream_decoder_create(t.get(), 0, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_stream_decoder_create(t.get(), 8, &raw),
                      BITNET_STATUS_INVALID_ARGUMENT, {"flags"}));
  bitnet_stream_decoder_flush(nullptr, &text, &n);
  EXPECT_EQ(n, 0u);
  bitnet_stream_decoder_free(nullptr);
}

TEST(TokenizerTest, StreamDecodingEqualsDecodingAtOnce) {
  Spec spec;
  for (const auto &[left, right] :
       std::vector<std::pair<std::string, std::string>>{{"\xc3", "\xa9"},
                                                        {"\xe2", "\x82"},
                                                        {"\xe2\x82", "\xac"},
                                                        {"t", "h"}})
    spec.Merge(left, right);
  TokenizerPtr t = spec.Make();
  bitnet_stream_decoder *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_stream_decoder_create(t.get(), 0, &raw)));
  StreamPtr d(raw);
  std::mt19937 rng(11);
  for (int round = 0; round < 50; ++round) {
    std::string text = RandomText(rng, 100);
    Ids ids = Encode(t.get(), text);
    std::string streamed;
    for (const std::string &part : Stream(d.get(), ids)) {
      // Every part ends on a character boundary.
      if (!part.empty())
        EXPECT_NE(static_cast<unsigned char>(part.back()) & 0xC0, 0xC0u);
      streamed += part;
    }
    const char *rest;
    size_t n;
    bitnet_stream_decoder_flush(d.get(), &rest, &n);
    EXPECT_EQ(n, 0u);
    EXPECT_EQ(streamed, text);
  }
}

//===----------------------------------------------------------------------===//
// Accessors, arguments and malformed descriptions
//===----------------------------------------------------------------------===//

TEST(TokenizerTest, Accessors) {
  Spec spec;
  int32_t bos = spec.Add("<s>", BITNET_TOKEN_CONTROL);
  int32_t eos = spec.Add("</s>", BITNET_TOKEN_CONTROL);
  int32_t eot = spec.Add("<eot>", BITNET_TOKEN_CONTROL);
  spec.bos = bos;
  spec.eos = eos;
  spec.eot = eot;
  spec.add_bos = true;
  TokenizerPtr t = spec.Make();
  EXPECT_EQ(bitnet_tokenizer_vocab_size(t.get()), 259);
  EXPECT_EQ(bitnet_tokenizer_bos_id(t.get()), bos);
  EXPECT_EQ(bitnet_tokenizer_eos_id(t.get()), eos);
  EXPECT_EQ(bitnet_tokenizer_eot_id(t.get()), eot);
  EXPECT_EQ(bitnet_tokenizer_add_bos(t.get()), 1);
  EXPECT_STREQ(bitnet_tokenizer_token_text(t.get(), eos), "</s>");
  EXPECT_STREQ(bitnet_tokenizer_token_text(t.get(), ' '), "\xc4\xa0");
  EXPECT_EQ(bitnet_tokenizer_token_text(t.get(), 259), nullptr);
  EXPECT_EQ(bitnet_tokenizer_token_text(t.get(), -1), nullptr);
  EXPECT_EQ(bitnet_tokenizer_token_type(t.get(), eot), BITNET_TOKEN_CONTROL);
  EXPECT_EQ(bitnet_tokenizer_token_type(t.get(), 'x'), BITNET_TOKEN_NORMAL);
  EXPECT_EQ(bitnet_tokenizer_token_type(t.get(), 259), 0);

  // Absent fields: no special ids, no BOS.
  std::string minimal =
      "{\"model\":\"gpt2\",\"pre\":\"gpt-2\",\"tokens\":[\"a\"],\"merges\":[]}";
  TokenizerPtr m;
  ASSERT_TRUE(IsOk(Create(minimal, &m)));
  EXPECT_EQ(bitnet_tokenizer_bos_id(m.get()), -1);
  EXPECT_EQ(bitnet_tokenizer_eos_id(m.get()), -1);
  EXPECT_EQ(bitnet_tokenizer_eot_id(m.get()), -1);
  EXPECT_EQ(bitnet_tokenizer_add_bos(m.get()), 0);
  EXPECT_EQ(bitnet_tokenizer_token_type(m.get(), 0), BITNET_TOKEN_NORMAL);

  EXPECT_EQ(bitnet_tokenizer_vocab_size(nullptr), 0);
  EXPECT_EQ(bitnet_tokenizer_bos_id(nullptr), -1);
  EXPECT_EQ(bitnet_tokenizer_eos_id(nullptr), -1);
  EXPECT_EQ(bitnet_tokenizer_eot_id(nullptr), -1);
  EXPECT_EQ(bitnet_tokenizer_add_bos(nullptr), 0);
  EXPECT_EQ(bitnet_tokenizer_token_text(nullptr, 0), nullptr);
  EXPECT_EQ(bitnet_tokenizer_token_type(nullptr, 0), 0);
  bitnet_tokenizer_free(nullptr);
}

TEST(TokenizerTest, BadArguments) {
  Spec spec;
  TokenizerPtr t = spec.Make();
  bitnet_tokenizer *out = reinterpret_cast<bitnet_tokenizer *>(1);
  EXPECT_TRUE(IsError(bitnet_tokenizer_create(nullptr, 0, &out),
                      BITNET_STATUS_INVALID_ARGUMENT, {"json"}));
  EXPECT_EQ(out, nullptr);
  EXPECT_TRUE(IsError(bitnet_tokenizer_create("{}", 2, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  int32_t *ids = reinterpret_cast<int32_t *>(1);
  int64_t n = -1;
  EXPECT_TRUE(IsError(bitnet_tokenizer_encode(nullptr, "a", 1, 0, &ids, &n),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_EQ(ids, nullptr);
  EXPECT_EQ(n, 0);
  EXPECT_TRUE(IsError(bitnet_tokenizer_encode(t.get(), "a", 1, 0, nullptr, &n),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_tokenizer_encode(t.get(), "a", 1, 0, &ids, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_tokenizer_encode(t.get(), nullptr, 1, 0, &ids, &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"text"}));
  EXPECT_TRUE(IsError(bitnet_tokenizer_encode(t.get(), "a", 1, 64, &ids, &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"flags"}));
  EXPECT_TRUE(IsError(bitnet_tokenizer_encode(t.get(), "a", 1,
                                              BITNET_ENCODE_ADD_BOS, &ids, &n),
                      BITNET_STATUS_INVALID_ARGUMENT, {"BOS"}));
  // No text at all is no tokens, and still an array to free.
  EXPECT_TRUE(IsOk(bitnet_tokenizer_encode(t.get(), nullptr, 0, 0, &ids, &n)));
  EXPECT_NE(ids, nullptr);
  EXPECT_EQ(n, 0);
  free(ids);
  const char *bytes;
  size_t len;
  EXPECT_TRUE(IsError(bitnet_tokenizer_token_bytes(nullptr, 0, 0, &bytes, &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_tokenizer_token_bytes(t.get(), 0, 0, nullptr, &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
  char *text;
  EXPECT_TRUE(IsError(bitnet_tokenizer_decode(nullptr, nullptr, 0, 0, &text,
                                              &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_tokenizer_decode(t.get(), nullptr, 0, 0, nullptr,
                                              &len),
                      BITNET_STATUS_INVALID_ARGUMENT));
}

struct BadCase {
  std::string json;
  bitnet_status_code code;
  std::vector<std::string> parts; // what the message must name
};

// A valid description with `field` replaced by `value` (or removed when
// `value` is empty).
std::string With(const std::string &field, const std::string &value) {
  std::vector<std::pair<std::string, std::string>> fields = {
      {"model", "\"gpt2\""},
      {"pre", "\"llama-bpe\""},
      {"tokens", "[\"a\",\"b\",\"ab\",\"<s>\"]"},
      {"token_type", "[1,1,1,3]"},
      {"merges", "[\"a b\"]"},
      {"bos_token_id", "3"},
      {"add_bos_token", "true"},
  };
  bool found = false;
  std::string json = "{";
  for (auto &[key, v] : fields) {
    std::string use = v;
    if (key == field) {
      found = true;
      if (value.empty())
        continue;
      use = value;
    }
    json += (json.size() > 1 ? "," : "") + Quote(key) + ":" + use;
  }
  if (!found)
    json += (json.size() > 1 ? "," : "") + Quote(field) + ":" + value;
  return json + "}";
}

TEST(TokenizerTest, MalformedDescriptionsAreErrors) {
  const auto F = BITNET_STATUS_INVALID_FORMAT;
  const auto U = BITNET_STATUS_UNAVAILABLE;
  std::string deep(5000, '[');
  std::vector<BadCase> cases = {
      {"", F, {"not valid JSON"}},
      {"{\"model\":", F, {"not valid JSON"}},
      {"{\"model\":\"gpt2\"", F, {"not valid JSON"}},
      {deep, F, {"not valid JSON"}},
      {With("model", "\"gpt2\"") + " x", F, {"after the JSON value"}},
      {"[1, 2]", F, {"top level", "an array"}},
      {"\"gpt2\"", F, {"top level", "a string"}},
      {With("model", ""), F, {"'model' is missing"}},
      {With("model", "3"), F, {"'model'", "a number"}},
      {With("model", "\"llama\""), F, {"'scores' is missing", "SentencePiece"}},
      {With("model", "\"bert\""), U, {"bert"}},
      {With("pre", ""), F, {"'pre'", "missing"}},
      {With("pre", "null"), F, {"'pre'", "null"}},
      {With("pre", "\"qwen2\""), U, {"qwen2", "llama-bpe"}},
      {With("tokens", ""), F, {"'tokens' is missing"}},
      {With("tokens", "{}"), F, {"'tokens'", "an object"}},
      {With("tokens", "[]"), F, {"'tokens' is empty"}},
      {With("tokens", "[\"a\",7,\"ab\",\"<s>\"]"), F, {"'tokens[1]'", "a number"}},
      {With("token_type", "\"1\""), F, {"'token_type'", "a string"}},
      {With("token_type", "[1,1,1]"), F, {"'token_type'", "3 entries", "4"}},
      {With("token_type", "[1,1,1,3,1]"), F, {"'token_type'", "more entries"}},
      {With("token_type", "[1,1,7,3]"), F, {"'token_type[2]'", "7"}},
      {With("token_type", "[1,0,1,3]"), F, {"'token_type[1]'"}},
      {With("token_type", "[1,1.5,1,3]"), F, {"'token_type[1]'", "1.5"}},
      {With("token_type", "[1,true,1,3]"), F, {"'token_type[1]'", "boolean"}},
      {With("merges", ""), F, {"'merges' is missing"}},
      {With("merges", "\"a b\""), F, {"'merges'", "a string"}},
      {With("merges", "[\"a b\",[\"a\",\"b\"]]"), F, {"'merges[1]'", "an array"}},
      {With("merges", "[\"ab\"]"), F, {"'merges[0]'", "left right"}},
      {With("merges", "[\"a \"]"), F, {"'merges[0]'", "left right"}},
      {With("merges", "[\"\"]"), F, {"'merges[0]'", "left right"}},
      {With("merges", "[\"a b\",\"a c\"]"), F, {"'merges[1]'", "\"c\"", "not a token"}},
      {With("merges", "[\"z b\"]"), F, {"'merges[0]'", "\"z\"", "not a token"}},
      {With("merges", "[\"b a\"]"), F, {"'merges[0]'", "\"ba\"", "not a token"}},
      {With("bos_token_id", "4"), F, {"'bos_token_id'", "4", "[-1, 3]"}},
      {With("bos_token_id", "-2"), F, {"'bos_token_id'", "-2"}},
      {With("bos_token_id", "1e300"), F, {"'bos_token_id'"}},
      {With("bos_token_id", "0.5"), F, {"'bos_token_id'", "0.5"}},
      {With("bos_token_id", "\"3\""), F, {"'bos_token_id'", "a string"}},
      {With("eos_token_id", "99999999999"), F, {"'eos_token_id'"}},
      {With("eot_token_id", "[]"), F, {"'eot_token_id'", "an array"}},
      {With("add_bos_token", "1"), F, {"'add_bos_token'", "a number"}},
      {With("ignore_merges", "\"yes\""), F, {"'ignore_merges'", "a string"}},
  };
  for (const BadCase &c : cases) {
    TokenizerPtr t;
    bitnet_status status = Create(c.json, &t);
    std::vector<std::string> parts = c.parts;
    EXPECT_TRUE(IsError(status, c.code,
                        {parts.size() > 0 ? parts[0] : "",
                         parts.size() > 1 ? parts[1] : "",
                         parts.size() > 2 ? parts[2] : ""}))
        << c.json.substr(0, 200);
    EXPECT_EQ(t, nullptr);
  }
  // The same description, well-formed, is accepted: the cases above fail
  // for the field they change.
  TokenizerPtr ok;
  EXPECT_TRUE(IsOk(Create(With("model", "\"gpt2\""), &ok)));
  EXPECT_TRUE(IsOk(Create(With("bos_token_id", "null"), &ok)));
  EXPECT_TRUE(IsOk(Create(With("bos_token_id", "-1"), &ok)));
  EXPECT_TRUE(IsOk(Create(With("extra_field", "{\"x\":[1]}"), &ok)));
  EXPECT_TRUE(IsOk(Create(With("token_type", "") + "\n\t ", &ok)));
  // Only `length` bytes are read: what follows them does not count.
  std::string json = With("model", "\"gpt2\"") + "garbage";
  bitnet_tokenizer *raw = nullptr;
  EXPECT_TRUE(IsOk(bitnet_tokenizer_create(json.data(), json.size() - 7, &raw)));
  bitnet_tokenizer_free(raw);
}

//===----------------------------------------------------------------------===//
// The tokenizer of a compiled model
//===----------------------------------------------------------------------===//

ModelPtr Load(const char *path) {
  bitnet_model *m = nullptr;
  EXPECT_TRUE(IsOk(bitnet_model_load(path, &m))) << path;
  return ModelPtr(m);
}

TEST(TokenizerTest, FromAModel) {
  ModelPtr model = Load(BITNET_TEST_MODEL_TOKENIZER_DECODER);
  ASSERT_TRUE(model);
  bitnet_tokenizer *raw = nullptr;
  ASSERT_TRUE(IsOk(bitnet_tokenizer_create_from_model(model.get(), &raw)));
  TokenizerPtr t(raw);
  model.reset(); // the tokenizer does not need the model
  EXPECT_EQ(bitnet_tokenizer_vocab_size(t.get()), 260);
  EXPECT_EQ(bitnet_tokenizer_bos_id(t.get()), 257);
  EXPECT_EQ(bitnet_tokenizer_eos_id(t.get()), 258);
  EXPECT_EQ(bitnet_tokenizer_eot_id(t.get()), 259);
  EXPECT_EQ(bitnet_tokenizer_add_bos(t.get()), 1);
  EXPECT_EQ(Encode(t.get(), "Hi\"\\", BITNET_ENCODE_ADD_BOS),
            (Ids{257, 256, '"', '\\'}));
  EXPECT_EQ(Decode(t.get(), {257, 256, 0xc3, 0xa9, 258}), "<s>Hi\xc3\xa9</s>");
}

TEST(TokenizerTest, FromAModelWithoutOne) {
  ModelPtr model = Load(BITNET_TEST_MODEL_AFFINE);
  ASSERT_TRUE(model);
  bitnet_tokenizer *t = reinterpret_cast<bitnet_tokenizer *>(1);
  EXPECT_TRUE(IsError(bitnet_tokenizer_create_from_model(model.get(), &t),
                      BITNET_STATUS_NOT_FOUND,
                      {"affine", "bitnet.tokenizer"}));
  EXPECT_EQ(t, nullptr);
  EXPECT_TRUE(IsError(bitnet_tokenizer_create_from_model(nullptr, &t),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_tokenizer_create_from_model(model.get(), nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
}

TEST(TokenizerTest, FromAModelWithABrokenOne) {
  ModelPtr model = Load(BITNET_TEST_MODEL_BROKEN_TOKENIZER);
  ASSERT_TRUE(model);
  bitnet_tokenizer *t = nullptr;
  EXPECT_TRUE(IsError(bitnet_tokenizer_create_from_model(model.get(), &t),
                      BITNET_STATUS_INVALID_FORMAT,
                      {"broken_tokenizer", "bitnet.tokenizer", "'merges[0]'",
                       "\"Hx\"", "not a token"}));
  EXPECT_EQ(t, nullptr);
}

//===----------------------------------------------------------------------===//
// Llama 3: llama.cpp's conformance cases
//===----------------------------------------------------------------------===//

std::string ReadAll(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// The test strings of a llama.cpp vocabulary test (`NAME.inp`: each string
// followed by a line "__ggml_vocab_test__") and their ids (`NAME.out`: one
// line of space-separated ids per string).
struct VocabCases {
  std::vector<std::string> texts;
  std::vector<Ids> ids;
};

VocabCases ReadVocabCases(const std::string &name) {
  VocabCases c;
  std::string dir = BITNET_TOKENIZER_TESTDATA;
  std::string inp = ReadAll(dir + "/" + name + ".inp");
  std::string out = ReadAll(dir + "/" + name + ".out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  for (size_t at = 0; at < inp.size();) {
    size_t next = inp.find(sep, at);
    EXPECT_NE(next, std::string::npos) << "the last case lacks its separator";
    if (next == std::string::npos)
      break;
    c.texts.push_back(inp.substr(at, next - at));
    at = next + sep.size();
  }
  std::istringstream lines(out);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream words(line);
    Ids ids;
    for (int32_t id; words >> id;)
      ids.push_back(id);
    c.ids.push_back(ids);
  }
  return c;
}

class Llama3Test : public ::testing::Test {
protected:
  void SetUp() override {
    if (!FileExists(BITNET_TOKENIZER_TESTDATA "/llama-bpe.inp") ||
        !FileExists(BITNET_LLAMA3_TOKENIZER_JSON))
      GTEST_SKIP() << "no Llama 3 tokenizer data (" BITNET_TOKENIZER_TESTDATA
                      "/llama3.tiktoken, llama-bpe.inp, llama-bpe.out)";
    std::string json = ReadAll(BITNET_LLAMA3_TOKENIZER_JSON);
    ASSERT_TRUE(IsOk(Create(json, &tokenizer_)));
  }
  TokenizerPtr tokenizer_;
};

TEST_F(Llama3Test, LlamaCppConformanceCases) {
  VocabCases c = ReadVocabCases("llama-bpe");
  ASSERT_EQ(c.texts.size(), c.ids.size());
  ASSERT_GT(c.texts.size(), 0u);
  size_t matched = 0;
  for (size_t i = 0; i < c.texts.size(); ++i) {
    // The expected ids have no BOS.
    Ids got = Encode(tokenizer_.get(), c.texts[i]);
    EXPECT_EQ(got, c.ids[i]) << "case " << i << ": '" << c.texts[i] << "'";
    matched += got == c.ids[i];
    EXPECT_EQ(Decode(tokenizer_.get(), got), c.texts[i]);
  }
  printf("llama-bpe: %zu of %zu cases match\n", matched, c.texts.size());
}

TEST_F(Llama3Test, SpecialTokens) {
  const bitnet_tokenizer *t = tokenizer_.get();
  EXPECT_EQ(bitnet_tokenizer_vocab_size(t), 128256);
  int32_t bos = bitnet_tokenizer_bos_id(t), eot = bitnet_tokenizer_eot_id(t);
  EXPECT_STREQ(bitnet_tokenizer_token_text(t, bos), "<|begin_of_text|>");
  EXPECT_STREQ(bitnet_tokenizer_token_text(t, eot), "<|eot_id|>");
  EXPECT_STREQ(bitnet_tokenizer_token_text(t, bitnet_tokenizer_eos_id(t)),
               "<|end_of_text|>");
  EXPECT_EQ(bitnet_tokenizer_add_bos(t), 1);
  std::string header = "<|start_header_id|>user<|end_header_id|>";
  Ids hi = Encode(t, "\n\nHi there!");
  Ids got = Encode(t, header + "\n\nHi there!<|eot_id|>",
                   BITNET_ENCODE_ADD_BOS);
  Ids want = Concat({{bos}, Encode(t, "<|start_header_id|>"), Encode(t, "user"),
                     Encode(t, "<|end_header_id|>"), hi, {eot}});
  EXPECT_EQ(got, want);
  EXPECT_EQ(Encode(t, "<|start_header_id|>").size(), 1u);
  EXPECT_EQ(Decode(t, got, BITNET_DECODE_SKIP_SPECIAL), "user\n\nHi there!");
  Ids as_text = Encode(t, "<|eot_id|>", BITNET_ENCODE_SPECIAL_AS_TEXT);
  EXPECT_GT(as_text.size(), 1u);
  EXPECT_EQ(Decode(t, as_text), "<|eot_id|>");
}

TEST_F(Llama3Test, RandomTextRoundTrips) {
  std::mt19937 rng(5);
  for (int round = 0; round < 100; ++round) {
    std::string text = RandomText(rng, 10 * round);
    EXPECT_EQ(Decode(tokenizer_.get(), Encode(tokenizer_.get(), text)), text);
  }
}

TEST_F(Llama3Test, LongRunsOfOneCharacter) {
  for (const char *piece : {" ", "\n", "a", "7", "!", "\xc3\xa9", " \n"}) {
    std::string text;
    while (text.size() < (1u << 18))
      text += piece;
    Ids ids = Encode(tokenizer_.get(), text);
    EXPECT_LT(ids.size(), text.size());
    EXPECT_EQ(Decode(tokenizer_.get(), ids), text);
  }
}

} // namespace
