//===- model_test.cc - Loading, validating and describing models ----------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include <cstring>
#include <string>
#include <sys/stat.h>

using namespace bitnet_test;

namespace {

// Tests that a valid model loads and describes its inputs and outputs.
TEST(ModelTest, LoadAndQuery) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_AFFINE);
  ASSERT_NE(model, nullptr);
  const bitnet_model_info *info = bitnet_model_get_info(model.get());
  ASSERT_NE(info, nullptr);
  EXPECT_STREQ(info->name, "affine");
  EXPECT_STREQ(info->producer, "bitnet_rt tests");
  EXPECT_STREQ(bitnet_model_path(model.get()), BITNET_TEST_MODEL_AFFINE);
  EXPECT_EQ(bitnet_model_num_inputs(model.get()), 1);
  EXPECT_EQ(bitnet_model_num_outputs(model.get()), 1);

  bitnet_tensor_desc d;
  ASSERT_TRUE(IsOk(bitnet_model_input(model.get(), 0, &d)));
  EXPECT_STREQ(d.name, "x");
  EXPECT_EQ(d.dtype, BITNET_DTYPE_F32);
  ASSERT_EQ(d.rank, 2);
  EXPECT_EQ(d.shape[0], 4);
  EXPECT_EQ(d.shape[1], 3);
  EXPECT_EQ(d.num_elements, 12);
  EXPECT_EQ(d.byte_size, 48);
  ASSERT_TRUE(IsOk(bitnet_model_output(model.get(), 0, &d)));
  EXPECT_STREQ(d.name, "y");
  EXPECT_EQ(d.byte_size, 48);

  EXPECT_TRUE(IsError(bitnet_model_input(model.get(), 1, &d),
                      BITNET_STATUS_INVALID_ARGUMENT,
                      {"index 1 is out of range", "1 inputs"}));
  EXPECT_TRUE(IsError(bitnet_model_output(model.get(), -1, &d),
                      BITNET_STATUS_INVALID_ARGUMENT, {"index -1"}));
}

// Tests scalars (rank 0) and several dtypes.
TEST(ModelTest, ScalarsAndDtypes) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_MIXED);
  bitnet_tensor_desc d;
  ASSERT_TRUE(IsOk(bitnet_model_input(model.get(), 1, &d)));
  EXPECT_STREQ(d.name, "scale");
  EXPECT_EQ(d.rank, 0);
  EXPECT_EQ(d.num_elements, 1);
  EXPECT_EQ(d.byte_size, 4);
  ASSERT_TRUE(IsOk(bitnet_model_input(model.get(), 2, &d)));
  EXPECT_EQ(d.dtype, BITNET_DTYPE_BOOL);
  EXPECT_EQ(d.byte_size, 5);
  ASSERT_TRUE(IsOk(bitnet_model_output(model.get(), 1, &d)));
  EXPECT_EQ(d.dtype, BITNET_DTYPE_I64);
  EXPECT_EQ(d.byte_size, 8);
  ASSERT_TRUE(IsOk(bitnet_model_output(model.get(), 2, &d)));
  EXPECT_EQ(d.dtype, BITNET_DTYPE_F16);
  EXPECT_EQ(d.byte_size, 8);
}

// Tests finding tensors by name, and the list of names when one is missing.
TEST(ModelTest, FindByName) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_MIXED);
  int32_t index = -1;
  ASSERT_TRUE(IsOk(bitnet_model_find_input(model.get(), "mask", &index)));
  EXPECT_EQ(index, 2);
  ASSERT_TRUE(IsOk(bitnet_model_find_output(model.get(), "total", &index)));
  EXPECT_EQ(index, 1);
  EXPECT_TRUE(IsError(bitnet_model_find_input(model.get(), "nope", &index),
                      BITNET_STATUS_NOT_FOUND,
                      {"no input named 'nope'", "'tokens', 'scale', 'mask'"}));
  EXPECT_EQ(index, -1);
  EXPECT_TRUE(IsError(bitnet_model_find_output(model.get(), "tokens", &index),
                      BITNET_STATUS_NOT_FOUND, {"'out', 'total', 'half'"}));
}

// Tests every NULL argument of the model functions.
TEST(ModelTest, NullArguments) {
  bitnet_model *model = reinterpret_cast<bitnet_model *>(1);
  EXPECT_TRUE(IsError(bitnet_model_load(nullptr, &model),
                      BITNET_STATUS_INVALID_ARGUMENT, {"path"}));
  EXPECT_EQ(model, nullptr);
  EXPECT_TRUE(IsError(bitnet_model_load(BITNET_TEST_MODEL_AFFINE, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"out_model"}));
  bitnet_tensor_desc d;
  int32_t index;
  EXPECT_TRUE(IsError(bitnet_model_input(nullptr, 0, &d),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_model_output(nullptr, 0, &d),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_model_find_input(nullptr, "x", &index),
                      BITNET_STATUS_INVALID_ARGUMENT));
  ModelPtr good = LoadModel(BITNET_TEST_MODEL_AFFINE);
  EXPECT_TRUE(IsError(bitnet_model_input(good.get(), 0, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_model_find_input(good.get(), nullptr, &index),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_EQ(bitnet_model_get_info(nullptr), nullptr);
  EXPECT_EQ(bitnet_model_path(nullptr), nullptr);
  EXPECT_EQ(bitnet_model_num_inputs(nullptr), 0);
  EXPECT_EQ(bitnet_model_num_outputs(nullptr), 0);
  bitnet_model_retain(nullptr);
  bitnet_model_release(nullptr);
}

// Tests files that are not there, not files, or not shared objects.
TEST(ModelTest, BadFiles) {
  bitnet_model *model = nullptr;
  EXPECT_TRUE(IsError(bitnet_model_load("/nonexistent/model.so", &model),
                      BITNET_STATUS_NOT_FOUND,
                      {"cannot open model '/nonexistent/model.so'",
                       "No such file"}));
  std::string dir = MakeTempDir();
  EXPECT_TRUE(IsError(bitnet_model_load(dir.c_str(), &model),
                      BITNET_STATUS_INVALID_ARGUMENT, {"not a regular file"}));

  std::string garbage = dir + "/garbage.so";
  WriteFile(garbage, "this is not an ELF file at all\n");
  EXPECT_TRUE(IsError(bitnet_model_load(garbage.c_str(), &model),
                      BITNET_STATUS_INVALID_MODEL,
                      {"cannot load model '" + garbage + "'", "shared object"}));

  std::string empty = dir + "/empty.so";
  WriteFile(empty, "");
  EXPECT_TRUE(IsError(bitnet_model_load(empty.c_str(), &model),
                      BITNET_STATUS_INVALID_MODEL, {empty}));

  // The first 200 bytes of a real model: a valid ELF header, nothing behind.
  std::string truncated = dir + "/truncated.so";
  std::string whole = ReadFile(BITNET_TEST_MODEL_AFFINE);
  WriteFile(truncated, whole.substr(0, 200));
  EXPECT_TRUE(IsError(bitnet_model_load(truncated.c_str(), &model),
                      BITNET_STATUS_INVALID_MODEL, {truncated}));
  EXPECT_EQ(model, nullptr);

  // Program headers intact, segments cut off: the loader would map pages
  // past the end of the file (SIGBUS on first touch); refused before.
  for (size_t size : {size_t(1000), whole.size() / 2}) {
    WriteFile(truncated, whole.substr(0, size));
    EXPECT_TRUE(IsError(bitnet_model_load(truncated.c_str(), &model),
                        BITNET_STATUS_INVALID_MODEL,
                        {truncated, "the file is truncated",
                         "has " + std::to_string(size) + " bytes"}))
        << size;
    EXPECT_EQ(model, nullptr);
  }
}

// Tests that a model compiled for another machine is refused by name.
TEST(ModelTest, ForeignMachineIsRefused) {
  std::string dir = MakeTempDir();
  std::string foreign = dir + "/foreign.so";
  std::string bytes = ReadFile(BITNET_TEST_MODEL_AFFINE);
  ASSERT_GT(bytes.size(), 20u);
  // e_machine: bytes 18-19, little-endian. RISC-V (243) is no host here.
  bytes[18] = char(243);
  bytes[19] = 0;
  WriteFile(foreign, bytes);
  bitnet_model *model = nullptr;
  EXPECT_TRUE(IsError(bitnet_model_load(foreign.c_str(), &model),
                      BITNET_STATUS_INVALID_MODEL,
                      {foreign, "compiled for RISC-V", "this machine is"}));
  EXPECT_EQ(model, nullptr);
}

// Tests that an unreadable file is reported as such (root reads anything, so
// this only checks when not running as root).
TEST(ModelTest, UnreadableFile) {
  if (geteuid() == 0)
    GTEST_SKIP() << "root can read every file";
  std::string path = MakeTempDir() + "/locked.so";
  WriteFile(path, ReadFile(BITNET_TEST_MODEL_AFFINE));
  chmod(path.c_str(), 0);
  bitnet_model *model = nullptr;
  EXPECT_TRUE(IsError(bitnet_model_load(path.c_str(), &model),
                      BITNET_STATUS_PERMISSION_DENIED, {path}));
}

// Tests that a bare file name is opened in the current directory, not
// searched for on the library path.
TEST(ModelTest, BareNameIsRelative) {
  std::string dir = MakeTempDir();
  WriteFile(dir + "/copy.so", ReadFile(BITNET_TEST_MODEL_AFFINE));
  char cwd[4096];
  ASSERT_NE(getcwd(cwd, sizeof(cwd)), nullptr);
  ASSERT_EQ(chdir(dir.c_str()), 0);
  bitnet_model *model = nullptr;
  bitnet_status status = bitnet_model_load("copy.so", &model);
  ASSERT_EQ(chdir(cwd), 0);
  ASSERT_TRUE(IsOk(status));
  EXPECT_STREQ(bitnet_model_path(model), "./copy.so");
  bitnet_model_release(model);
}

// Tests the models whose descriptor or exports are wrong: each gives its own
// message naming the file.
TEST(ModelTest, BrokenModels) {
  struct Case {
    const char *path;
    bitnet_status_code code;
    std::initializer_list<std::string> parts;
  } cases[] = {
      {BITNET_TEST_MODEL_BAD_MAGIC, BITNET_STATUS_INVALID_MODEL,
       {"is not a bitnet model", "0x464c457f", "0x4d4e5442"}},
      {BITNET_TEST_MODEL_BAD_VERSION, BITNET_STATUS_INCOMPATIBLE,
       {"model ABI version " + std::to_string(BITNET_MODEL_ABI_VERSION + 1),
        "supports version " + std::to_string(BITNET_MODEL_ABI_VERSION)}},
      {BITNET_TEST_MODEL_NO_RUN, BITNET_STATUS_INVALID_MODEL,
       {"does not export 'bitnet_model_run'"}},
      {BITNET_TEST_MODEL_NO_INFO, BITNET_STATUS_INVALID_MODEL,
       {"does not export 'bitnet_model_info'"}},
      {BITNET_TEST_MODEL_NEG_COUNT, BITNET_STATUS_INVALID_MODEL,
       {"-1 inputs", "must be >= 0"}},
      {BITNET_TEST_MODEL_BIG_RANK, BITNET_STATUS_INVALID_MODEL,
       {"input 0 ('x') has rank 9", "0 to 8"}},
      {BITNET_TEST_MODEL_NEG_DIM, BITNET_STATUS_INVALID_MODEL,
       {"negative extent -2 in dimension 0"}},
      {BITNET_TEST_MODEL_BAD_DTYPE, BITNET_STATUS_INVALID_MODEL,
       {"unknown dtype 42"}},
      {BITNET_TEST_MODEL_BAD_ALIGN, BITNET_STATUS_INVALID_MODEL,
       {"workspace alignment 48", "power of two"}},
      {BITNET_TEST_MODEL_NULL_NAME, BITNET_STATUS_INVALID_MODEL,
       {"input 0 has no name"}},
      {BITNET_TEST_MODEL_NEG_WORKSPACE, BITNET_STATUS_INVALID_MODEL,
       {"negative workspace (-64 bytes)"}},
      {BITNET_TEST_MODEL_NEG_STACK, BITNET_STATUS_INVALID_MODEL,
       {"-4096 bytes of stack", ">= 0"}},
      {BITNET_TEST_MODEL_UNKNOWN_FEATURE, BITNET_STATUS_INCOMPATIBLE,
       {"CPU feature 'frobnicate'", "cannot check"}},
      // Damage to a descriptor: refused at load, never read through.
      {BITNET_TEST_MODEL_NO_OUTPUTS, BITNET_STATUS_INVALID_MODEL,
       {"declares no outputs"}},
      {BITNET_TEST_MODEL_WILD_NAME, BITNET_STATUS_INVALID_MODEL,
       {"descriptor's input name points outside the model"}},
      {BITNET_TEST_MODEL_WILD_SHAPE, BITNET_STATUS_INVALID_MODEL,
       {"descriptor's input shape points outside the model"}},
      {BITNET_TEST_MODEL_FLOAT_RANGE, BITNET_STATUS_INVALID_MODEL,
       {"input 0 ('x') declares the value range [0, 1]",
        "signed integer input"}},
      {BITNET_TEST_MODEL_OUTPUT_STATE, BITNET_STATUS_INVALID_MODEL,
       {"output 0 ('y') is marked as state"}},
      {BITNET_TEST_MODEL_EMPTY_STATE, BITNET_STATUS_INVALID_MODEL,
       {"input 0 ('x') is state with no elements"}},
  };
  for (const Case &c : cases) {
    bitnet_model *model = nullptr;
    bitnet_status status = bitnet_model_load(c.path, &model);
    std::string message = bitnet_status_message(status);
    EXPECT_NE(message.find(c.path), std::string::npos) << message;
    bitnet_status_code code = bitnet_status_get_code(status);
    EXPECT_EQ(code, c.code) << message;
    for (const std::string &part : c.parts)
      EXPECT_NE(message.find(part), std::string::npos)
          << "'" << message << "' lacks '" << part << "'";
    bitnet_status_free(status);
    EXPECT_EQ(model, nullptr) << c.path;
  }
  // The same source without a defect loads.
  ModelPtr valid = LoadModel(BITNET_TEST_MODEL_VALID);
  EXPECT_NE(valid, nullptr);
}

// Tests that a model's mappings are measured: the weights model maps its 8
// MiB of read-only data.
TEST(ModelTest, Mapping) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_WEIGHTS);
  bitnet_model_mapping mapping;
  ASSERT_TRUE(IsOk(bitnet_model_get_mapping(model.get(), &mapping)));
  EXPECT_GE(mapping.read_only_bytes, 8 << 20);
  EXPECT_GT(mapping.code_bytes, 0);
  EXPECT_TRUE(IsError(bitnet_model_get_mapping(model.get(), nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
}

/// Bytes of the read-only (r--p) mappings of the file at `path`, from
/// /proc/self/maps.
int64_t FileReadOnlyBytes(const std::string &path) {
  std::ifstream maps("/proc/self/maps");
  int64_t bytes = 0;
  for (std::string line; std::getline(maps, line);) {
    unsigned long long begin, end;
    char perms[8];
    if (sscanf(line.c_str(), "%llx-%llx %7s", &begin, &end, perms) == 3 &&
        std::string(perms) == "r--p" && line.size() >= path.size() &&
        line.compare(line.size() - path.size(), path.size(), path) == 0)
      bytes += static_cast<int64_t>(end - begin);
  }
  return bytes;
}

/// Runs the weights model once: y = x + the pages it read (2048 bytes of 1).
float RunWeightsModel(bitnet_model *model, float x) {
  bitnet_context *raw = nullptr;
  EXPECT_TRUE(IsOk(bitnet_context_create(model, nullptr, &raw)));
  ContextPtr context(raw);
  float y = -1.0f;
  const void *inputs[] = {&x};
  void *outputs[] = {&y};
  EXPECT_TRUE(IsOk(bitnet_context_run(context.get(), inputs, 1, outputs, 1)));
  return y;
}

/// Whether transparent huge pages are offered (to madvise() callers at least).
bool HugePagesEnabled() {
  std::ifstream f("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  return std::getline(f, line) && line.find("[never]") == std::string::npos;
}

// Tests that loading advises huge pages over the weights (smaps' VmFlags
// "hg") in whole 2 MiB pages, and that the mapping reports the part the
// kernel maps in 2 MiB pages as a whole number of them within the read-only
// data.
TEST(ModelTest, AdvisesHugePagesOverItsWeights) {
  if (!HugePagesEnabled() || access("/proc/self/smaps", R_OK) != 0)
    GTEST_SKIP() << "no transparent huge pages or no /proc/self/smaps";
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_WEIGHTS);
  ASSERT_NE(model, nullptr);
  struct stat st;
  ASSERT_EQ(stat(BITNET_TEST_MODEL_WEIGHTS, &st), 0);
  std::ifstream smaps("/proc/self/smaps");
  int64_t advised = 0, size = 0;
  bool in_weights = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long long begin, end, offset, inode;
    char perms[8], dev[16];
    if (sscanf(line.c_str(), "%llx-%llx %7s %llx %15s %llu", &begin, &end,
               perms, &offset, dev, &inode) == 6) {
      in_weights = inode == static_cast<unsigned long long>(st.st_ino) &&
                   std::string(perms) == "r--p";
      size = static_cast<int64_t>(end - begin);
      if (in_weights)
        EXPECT_EQ(begin % 4096, 0u);
      continue;
    }
    if (in_weights && line.rfind("VmFlags:", 0) == 0 &&
        line.find(" hg") != std::string::npos) {
      EXPECT_EQ(size % (2 << 20), 0) << line;
      advised += size;
    }
  }
  // 8 MiB from a 4 KiB boundary hold at least three whole 2 MiB pages.
  EXPECT_GE(advised, 6 << 20);
  EXPECT_EQ(RunWeightsModel(model.get(), 0.5f), 2048.5f);
  bitnet_model_mapping mapping;
  ASSERT_TRUE(IsOk(bitnet_model_get_mapping(model.get(), &mapping)));
  EXPECT_GE(mapping.huge_page_bytes, 0);
  EXPECT_LE(mapping.huge_page_bytes, advised);
  EXPECT_EQ(mapping.huge_page_bytes % (2 << 20), 0);
}

// Tests that a model's read-only data moves onto huge pages: whole 2 MiB
// pages of the 8 MiB of weights leave the file's mapping, the model reads
// the same bytes after, and a second call moves nothing.
TEST(ModelTest, MovesItsWeightsOntoHugePages) {
  ModelPtr model = LoadModel(BITNET_TEST_MODEL_WEIGHTS);
  ASSERT_NE(model, nullptr);
  EXPECT_EQ(RunWeightsModel(model.get(), 0.5f), 2048.5f);
  bitnet_model_mapping before, after;
  ASSERT_TRUE(IsOk(bitnet_model_get_mapping(model.get(), &before)));
  char *real = realpath(BITNET_TEST_MODEL_WEIGHTS, nullptr);
  ASSERT_NE(real, nullptr);
  std::string file(real);
  free(real);
  int64_t fileBytes = FileReadOnlyBytes(file);
  EXPECT_GE(fileBytes, 8 << 20);
  int64_t moved = -1;
  bitnet_status status = bitnet_model_use_huge_pages(model.get(), &moved);
  if (status && bitnet_status_get_code(status) == BITNET_STATUS_UNAVAILABLE) {
    std::string message = bitnet_status_message(status);
    bitnet_status_free(status);
    EXPECT_EQ(RunWeightsModel(model.get(), 0.5f), 2048.5f);
    GTEST_SKIP() << message;
  }
  ASSERT_TRUE(IsOk(status));
  // 8 MiB from a 4 KiB boundary hold at least three whole 2 MiB pages.
  EXPECT_GE(moved, 6 << 20);
  EXPECT_EQ(moved % (2 << 20), 0);
  ASSERT_TRUE(IsOk(bitnet_model_get_mapping(model.get(), &after)));
  // Still the model's read-only data, though no longer the file's pages.
  EXPECT_EQ(after.read_only_bytes, before.read_only_bytes);
  EXPECT_EQ(FileReadOnlyBytes(file), fileBytes - moved);
  EXPECT_EQ(after.code_bytes, before.code_bytes);
  EXPECT_EQ(RunWeightsModel(model.get(), 0.5f), 2048.5f);
  int64_t again = -1;
  EXPECT_TRUE(IsOk(bitnet_model_use_huge_pages(model.get(), &again)));
  EXPECT_EQ(again, 0);
  EXPECT_TRUE(IsOk(bitnet_model_use_huge_pages(model.get(), nullptr)));
  EXPECT_TRUE(IsError(bitnet_model_use_huge_pages(nullptr, &again),
                      BITNET_STATUS_INVALID_ARGUMENT));
}

// Tests that one file loaded twice gives two working handles, released in
// any order.
TEST(ModelTest, LoadTwice) {
  ModelPtr a = LoadModel(BITNET_TEST_MODEL_AFFINE);
  ModelPtr b = LoadModel(BITNET_TEST_MODEL_AFFINE);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  a.reset();
  EXPECT_STREQ(bitnet_model_get_info(b.get())->name, "affine");
}

} // namespace

// Tests that a model compiled for CPU features this machine lacks is refused
// with the missing features named, instead of dying on an illegal instruction.
TEST(ModelTest, ForeignCpuFeaturesAreRefused) {
  bool hasAll = __builtin_cpu_supports("sse4.2") &&
                __builtin_cpu_supports("amx-int8") &&
                __builtin_cpu_supports("avx512fp16") &&
                __builtin_cpu_supports("avxvnni") &&
                __builtin_cpu_supports("avx512vbmi2") &&
                __builtin_cpu_supports("amx-bf16");
  if (hasAll)
    GTEST_SKIP() << "this machine has every feature the test model asks for";
  bitnet_model *model = nullptr;
  bitnet_status status =
      bitnet_model_load(BITNET_TEST_MODEL_FOREIGN_CPU, &model);
  ASSERT_NE(status, nullptr);
  std::string message = bitnet_status_message(status);
  EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_INCOMPATIBLE);
  EXPECT_NE(message.find("CPU features this machine lacks"), std::string::npos)
      << message;
  if (!__builtin_cpu_supports("amx-int8"))
    EXPECT_NE(message.find("amx-int8"), std::string::npos) << message;
  EXPECT_EQ(message.find("sse4.2"), std::string::npos) << message;
  bitnet_status_free(status);
  EXPECT_EQ(model, nullptr);
}

// Tests a model's other entry: listed, opened as a model of its own (its
// inputs, outputs, workspace and run) that keeps its parent loaded and reads
// the parent's metadata; an unknown name, or an entry of an entry, is
// NOT_FOUND with the names there are.
TEST(ModelTest, OpensAnEntryAsAModelOfItsOwn) {
  bitnet_model *model = nullptr;
  ASSERT_EQ(bitnet_model_load(BITNET_TEST_MODEL_ENTRIES, &model), nullptr);
  ASSERT_EQ(bitnet_model_num_entries(model), 1);
  EXPECT_STREQ(bitnet_model_entry_name(model, 0), "twice");
  EXPECT_EQ(bitnet_model_entry_name(model, 1), nullptr);
  EXPECT_EQ(bitnet_model_entry_name(model, -1), nullptr);
  EXPECT_EQ(bitnet_model_opened_as(model), nullptr);

  bitnet_model *entry = nullptr;
  ASSERT_EQ(bitnet_model_open_entry(model, "twice", &entry), nullptr);
  bitnet_model_release(model); // the entry keeps it loaded
  EXPECT_STREQ(bitnet_model_opened_as(entry), "twice");
  EXPECT_EQ(bitnet_model_num_entries(entry), 0);
  EXPECT_STREQ(bitnet_model_metadata(entry, "test.key"), "test value");
  bitnet_tensor_desc d;
  ASSERT_EQ(bitnet_model_input(entry, 0, &d), nullptr);
  EXPECT_EQ(d.num_elements, 2);
  bitnet_context *context = nullptr;
  ASSERT_EQ(bitnet_context_create(entry, nullptr, &context), nullptr);
  EXPECT_EQ(bitnet_context_workspace_bytes(context), 256);
  float x[2] = {0.5f, 2.0f}, y = -1.0f;
  const void *in[] = {x};
  void *out[] = {&y};
  ASSERT_EQ(bitnet_context_run(context, in, 1, out, 1), nullptr);
  EXPECT_EQ(y, 2.5f);
  bitnet_context_free(context);

  bitnet_model *nested = nullptr;
  bitnet_status status = bitnet_model_open_entry(entry, "twice", &nested);
  EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_NOT_FOUND);
  bitnet_status_free(status);
  EXPECT_EQ(nested, nullptr);
  bitnet_model_release(entry);

  ASSERT_EQ(bitnet_model_load(BITNET_TEST_MODEL_ENTRIES, &model), nullptr);
  status = bitnet_model_open_entry(model, "prefill", &entry);
  EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_NOT_FOUND);
  EXPECT_NE(std::string(bitnet_status_message(status))
                .find("has no entry named 'prefill' (it has: 'twice')"),
            std::string::npos)
      << bitnet_status_message(status);
  bitnet_status_free(status);
  EXPECT_EQ(entry, nullptr);
  bitnet_model_release(model);
}

// Tests that a damaged entry table is refused when the model loads, and an
// entry that lists entries of its own when it is opened.
TEST(ModelTest, BrokenEntries) {
  struct Case {
    const char *path, *part;
  } cases[] = {
      {BITNET_TEST_MODEL_ENTRIES_NO_TABLE,
       "descriptor's entry table points outside the model"},
      {BITNET_TEST_MODEL_ENTRIES_NULL_NAME, "declares a malformed entry 0"},
      {BITNET_TEST_MODEL_ENTRIES_WILD,
       "descriptor's entry points outside the model"},
  };
  for (const Case &c : cases) {
    bitnet_model *model = nullptr;
    bitnet_status status = bitnet_model_load(c.path, &model);
    EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_INVALID_MODEL)
        << c.path;
    std::string message = status ? bitnet_status_message(status) : "";
    EXPECT_NE(message.find(c.part), std::string::npos) << message;
    bitnet_status_free(status);
    EXPECT_EQ(model, nullptr);
  }
  bitnet_model *model = nullptr;
  ASSERT_EQ(bitnet_model_load(BITNET_TEST_MODEL_ENTRIES_NESTED, &model),
            nullptr);
  bitnet_model *entry = nullptr;
  bitnet_status status = bitnet_model_open_entry(model, "twice", &entry);
  EXPECT_EQ(bitnet_status_get_code(status), BITNET_STATUS_INVALID_MODEL);
  EXPECT_NE(std::string(bitnet_status_message(status))
                .find("entry 'twice' declares variants, entries or a GPU "
                      "program of its own"),
            std::string::npos)
      << bitnet_status_message(status);
  bitnet_status_free(status);
  EXPECT_EQ(entry, nullptr);
  bitnet_model_release(model);
}

// Tests that the loader runs the best variant this machine supports, with
// that variant's workspace, and says which one it chose.
TEST(ModelTest, PicksTheBestVariantTheMachineRuns) {
  bitnet_model *model = nullptr;
  ASSERT_EQ(bitnet_model_load(BITNET_TEST_MODEL_VARIANTS, &model), nullptr);
  ASSERT_NE(bitnet_model_variant_name(model), nullptr);
  bool foreign = __builtin_cpu_supports("amx-int8") &&
                 __builtin_cpu_supports("avx512fp16") &&
                 __builtin_cpu_supports("avxvnni") &&
                 __builtin_cpu_supports("avx512vbmi2") &&
                 __builtin_cpu_supports("amx-bf16");
  std::string expected = foreign ? "foreign" : "plain";
  EXPECT_EQ(std::string(bitnet_model_variant_name(model)), expected);
  bitnet_context *context = nullptr;
  ASSERT_EQ(bitnet_context_create(model, nullptr, &context), nullptr);
  EXPECT_EQ(bitnet_context_workspace_bytes(context), foreign ? 64 : 4096);
  float x = 0.5f, y = -1.0f;
  const void *in[] = {&x};
  void *out[] = {&y};
  ASSERT_EQ(bitnet_context_run(context, in, 1, out, 1), nullptr);
  EXPECT_EQ(y, foreign ? 1.0f : 2.0f);
  bitnet_context_free(context);
  bitnet_model_release(model);

  // Without variants the baseline runs and no name is given.
  ASSERT_EQ(bitnet_model_load(BITNET_TEST_MODEL_AFFINE, &model), nullptr);
  EXPECT_EQ(bitnet_model_variant_name(model), nullptr);
  bitnet_model_release(model);
}
