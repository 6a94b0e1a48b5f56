//===- bitnet_run_test.cc - The bitnet-run tool and the example, end to end ===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include "bitnet_rt/npy.h"

#include <cstring>
#include <string>
#include <vector>

using namespace bitnet_test;

namespace {

Result BitnetRun(const std::vector<std::string> &args) {
  return RunProgram(BITNET_RUN_PATH, args);
}

bool Contains(const std::string &text, const std::string &part) {
  return text.find(part) != std::string::npos;
}

class BitnetRunTest : public ::testing::Test {
protected:
  std::string dir_ = MakeTempDir();
  std::string Path(const std::string &name) { return dir_ + "/" + name; }

  // Writes x = 0 .. 11 as f32 with the given shape.
  std::string WriteInput(const std::string &name, std::vector<int64_t> shape,
                         int32_t dtype = BITNET_DTYPE_F32) {
    std::vector<float> v(12);
    for (int i = 0; i < 12; ++i)
      v[static_cast<size_t>(i)] = static_cast<float>(i);
    std::string path = Path(name);
    EXPECT_TRUE(IsOk(bitnet_npy_write(path.c_str(), dtype,
                                      static_cast<int32_t>(shape.size()),
                                      shape.data(), v.data())));
    return path;
  }
};

// Tests that --help explains every flag and exits 0.
TEST_F(BitnetRunTest, Help) {
  Result r = BitnetRun({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char *flag : {"--input", "--random", "--seed", "--output-dir",
                           "--repeat", "--warmup", "--threads", "--profile",
                           "--print", "--quiet", "--huge-pages", "--version",
                           "Exit status"})
    EXPECT_TRUE(Contains(r.out, flag)) << flag;
  r = BitnetRun({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(Contains(r.out, "bitnet-run (bitnet-mlir) " +
                                  std::string(bitnet_rt_version()) + " (git "))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "model ABI " + std::to_string(BITNET_MODEL_ABI_VERSION)));
}

// Tests usage errors: each exits 2 with a message.
TEST_F(BitnetRunTest, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{}, "no model given"},
      {{"--bogus"}, "unknown option '--bogus'"},
      {{BITNET_TEST_MODEL_AFFINE, "--threads", "0"}, "--threads expects an integer in [1, 1024], not '0'"},
      {{BITNET_TEST_MODEL_AFFINE, "--threads=-2"}, "--threads expects"},
      {{BITNET_TEST_MODEL_AFFINE, "--repeat", "many"}, "--repeat expects an integer"},
      {{BITNET_TEST_MODEL_AFFINE, "--repeat", "0"}, "--repeat expects"},
      {{BITNET_TEST_MODEL_AFFINE, "--warmup"}, "option '--warmup' needs a value"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "x"}, "--input expects NAME=FILE.npy"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "x=a", "--input", "x=b"}, "given twice"},
      {{BITNET_TEST_MODEL_AFFINE, "--print=yes"}, "takes no value"},
      {{BITNET_TEST_MODEL_AFFINE, BITNET_TEST_MODEL_AFFINE}, "unexpected argument"},
  };
  for (const Case &c : cases) {
    Result r = BitnetRun(c.args);
    EXPECT_EQ(r.exit_code, 2) << c.message << "\n" << r.err;
    EXPECT_TRUE(Contains(r.err, c.message)) << r.err;
    EXPECT_TRUE(Contains(r.err, "--help")) << r.err;
  }
}

// Tests errors from the model and its inputs: each exits 1 with the message.
TEST_F(BitnetRunTest, RuntimeErrors) {
  std::string good = WriteInput("x.npy", {4, 3});
  std::string wrong_shape = WriteInput("x34.npy", {3, 4});
  std::string wrong_dtype = Path("xi.npy");
  std::vector<int32_t> ints(12, 1);
  int64_t shape[2] = {4, 3};
  ASSERT_TRUE(IsOk(bitnet_npy_write(wrong_dtype.c_str(), BITNET_DTYPE_I32, 2,
                                    shape, ints.data())));
  std::string fortran = Path("f.npy");
  {
    std::string bytes = ReadFile(good);
    size_t at = bytes.find("False");
    bytes.replace(at, 5, "True ");
    WriteFile(fortran, bytes);
  }
  std::string bad_ids = Path("ids.npy");
  {
    int64_t ids_shape[1] = {3};
    int32_t ids[3] = {0, 1, 9};
    ASSERT_TRUE(
        IsOk(bitnet_npy_write(bad_ids.c_str(), BITNET_DTYPE_I32, 1, ids_shape, ids)));
  }
  struct Case {
    std::vector<std::string> args;
    std::string message;
  } cases[] = {
      {{"/nonexistent.so", "--random"}, "cannot open model '/nonexistent.so'"},
      {{BITNET_TEST_MODEL_AFFINE, "--random", "--verify"},
       "carries no checksum (it was not linked by bitnet-compile"},
      {{BITNET_TEST_MODEL_RANGED, "--input", "ids=" + bad_ids, "--random"},
       "input 0 ('ids') holds 9 at element 2; the model accepts values in [-4, 3]"},
      {{BITNET_TEST_MODEL_BAD_VERSION, "--random"},
       "model ABI version " + std::to_string(BITNET_MODEL_ABI_VERSION + 1)},
      {{BITNET_TEST_MODEL_AFFINE}, "input 'x' has no value"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "w=" + good}, "no input named 'w'"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "x=" + wrong_shape},
       "input 'x': '" + wrong_shape + "' holds f32[3,4], the model expects f32[4,3]"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "x=" + wrong_dtype},
       "holds i32[4,3], the model expects f32[4,3]"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "x=" + fortran}, "Fortran order"},
      {{BITNET_TEST_MODEL_AFFINE, "--input", "x=" + Path("none.npy")},
       "cannot open '" + Path("none.npy") + "'"},
      {{BITNET_TEST_MODEL_FAILING, "--random"}, "bitnet_model_run returned 7"},
      {{BITNET_TEST_MODEL_AFFINE, "--random", "--output-dir", "/nonexistent/a/b"},
       "cannot create output directory"},
      {{BITNET_TEST_MODEL_AFFINE, "--random", "--profile", "/nonexistent/p.json"},
       "cannot write trace"},
  };
  for (const Case &c : cases) {
    Result r = BitnetRun(c.args);
    EXPECT_EQ(r.exit_code, 1) << c.message << "\n" << r.err;
    EXPECT_TRUE(Contains(r.err, "bitnet-run: error: " )) << r.err;
    EXPECT_TRUE(Contains(r.err, c.message)) << r.err;
  }
}

// Tests that --random fills an input with a declared range within it: y =
// ids + position stays in [-4 + 0, 3 + 7], and in 20 seeds the refused values
// never come up.
TEST_F(BitnetRunTest, RandomInputsStayInTheirRanges) {
  for (int seed = 1; seed <= 20; ++seed) {
    std::string dir = Path("out" + std::to_string(seed));
    Result r = BitnetRun({BITNET_TEST_MODEL_RANGED, "--random", "--seed",
                          std::to_string(seed), "--output-dir", dir, "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    bitnet_npy_array y;
    ASSERT_TRUE(IsOk(bitnet_npy_read((dir + "/y.npy").c_str(), nullptr, &y)));
    ASSERT_EQ(y.num_elements, 3);
    const int64_t *values = static_cast<const int64_t *>(y.data);
    for (int i = 0; i < 3; ++i) {
      EXPECT_GE(values[i], -4) << "seed " << seed;
      EXPECT_LE(values[i], 10) << "seed " << seed;
    }
    bitnet_npy_array_free(&y);
  }
}

// Tests --huge-pages: the weights model's 8 MiB move (whole 2 MiB pages,
// reported) and it computes the same output; where the system has no
// transparent huge pages, a warning and the same run.
TEST_F(BitnetRunTest, HugePages) {
  std::vector<float> x = {0.25f};
  int64_t shape[] = {1};
  std::string in = Path("x.npy");
  ASSERT_TRUE(IsOk(bitnet_npy_write(in.c_str(), BITNET_DTYPE_F32, 1, shape,
                                    x.data())));
  Result r = BitnetRun({BITNET_TEST_MODEL_WEIGHTS, "--input", "x=" + in,
                        "--huge-pages", "--print"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "2048.25")) << r.out;
  if (Contains(r.err, "--huge-pages:"))
    EXPECT_TRUE(Contains(r.err, "the weights stay on the file's pages")) << r.err;
  else
    EXPECT_TRUE(Contains(r.out, "huge pages: 6.3 MB") ||
                Contains(r.out, "huge pages: 8.4 MB"))
        << r.out;
}

// Tests a run from a .npy input to .npy output files, with --print.
TEST_F(BitnetRunTest, InputToOutputFiles) {
  std::string x = WriteInput("x.npy", {4, 3});
  std::string out = Path("out");
  Result r = BitnetRun({BITNET_TEST_MODEL_AFFINE, "--input", "x=" + x,
                        "--output-dir", out, "--print", "--threads", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bitnet_npy_array y;
  ASSERT_TRUE(IsOk(bitnet_npy_read((out + "/y.npy").c_str(), nullptr, &y)));
  EXPECT_EQ(y.dtype, BITNET_DTYPE_F32);
  ASSERT_EQ(y.rank, 2);
  EXPECT_EQ(y.shape[0], 4);
  EXPECT_EQ(y.shape[1], 3);
  for (int i = 0; i < 12; ++i)
    EXPECT_EQ(static_cast<float *>(y.data)[i], 2.0f * i + 1) << i;
  bitnet_npy_array_free(&y);
  EXPECT_TRUE(Contains(r.out, "y: f32[4,3] =\n[[1, 3, 5],\n [7, 9, 11],\n "
                              "[13, 15, 17],\n [19, 21, 23]]"))
      << r.out;
  EXPECT_TRUE(Contains(r.out, "threads: 2")) << r.out;
}

// Tests random inputs: the seed decides them, scalars and f16 print well.
TEST_F(BitnetRunTest, RandomInputsAndPrinting) {
  std::string a = Path("a"), b = Path("b"), c = Path("c");
  for (const auto &[dir, seed] : {std::pair{a, "3"}, {b, "3"}, {c, "4"}}) {
    Result r = BitnetRun({BITNET_TEST_MODEL_MIXED, "--random", "--seed", seed,
                          "--output-dir", dir, "--print", "--quiet"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_TRUE(Contains(r.out, "half: f16[2,2] =\n[[1, -2.5],\n [0.5, 2]]"))
        << r.out;
    EXPECT_TRUE(Contains(r.out, "total: i64[] =\n")) << r.out;
    EXPECT_FALSE(Contains(r.out, "p50")) << "--quiet prints no report";
  }
  EXPECT_EQ(ReadFile(a + "/out.npy"), ReadFile(b + "/out.npy"));
  EXPECT_NE(ReadFile(a + "/out.npy"), ReadFile(c + "/out.npy"));
  bitnet_npy_array total;
  ASSERT_TRUE(IsOk(bitnet_npy_read((a + "/total.npy").c_str(), nullptr, &total)));
  EXPECT_EQ(total.dtype, BITNET_DTYPE_I64);
  EXPECT_EQ(total.rank, 0);
  EXPECT_GE(*static_cast<int64_t *>(total.data), 0);
  bitnet_npy_array_free(&total);
}

// Tests the timing and memory report of repeated runs, and that the timed
// runs allocate nothing.
TEST_F(BitnetRunTest, Report) {
  Result r = BitnetRun({BITNET_TEST_MODEL_WORKSPACE, "--random", "--repeat",
                        "20", "--warmup", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char *part :
       {"warmup runs: 2, timed runs: 20", "mean", "p50", "p95", "p99",
        "workspace             65536 bytes", "pool peak in use",
        "during timed runs: 0 fresh", "process peak RSS", "model mapped"})
    EXPECT_TRUE(Contains(r.out, part)) << part << "\n" << r.out;
}

// Tests --profile: a table on stdout and a trace file.
TEST_F(BitnetRunTest, Profile) {
  std::string trace = Path("trace.json");
  Result r = BitnetRun({BITNET_TEST_MODEL_PARALLEL, "--random", "--repeat", "3",
                        "--profile", trace});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(Contains(r.out, "GB/s")) << r.out;
  EXPECT_TRUE(Contains(r.out, "3 runs")) << r.out;
  std::string json = ReadFile(trace);
  EXPECT_EQ(json.rfind("{\"displayTimeUnit\"", 0), 0u) << json;
  EXPECT_TRUE(Contains(json, "\"traceEvents\":["));
  EXPECT_TRUE(Contains(json, "{\"name\":\"scale\",\"cat\":\"kernel\",\"ph\":\"X\""));
}

// Tests the embedding example on the affine model: x = 0, 1, 2, ...
TEST(EmbedExampleTest, RunsAffine) {
  Result r = RunProgram(BITNET_EMBED_EXAMPLE_PATH, {BITNET_TEST_MODEL_AFFINE});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "y (f32, 12 elements): 1 3 5 7 9 11 13 15\n");
  r = RunProgram(BITNET_EMBED_EXAMPLE_PATH, {"/nonexistent.so"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(Contains(r.err, "cannot open model")) << r.err;
  r = RunProgram(BITNET_EMBED_EXAMPLE_PATH, {});
  EXPECT_EQ(r.exit_code, 2);
}

} // namespace
