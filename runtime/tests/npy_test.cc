//===- npy_test.cc - Reading and writing .npy files -----------------------===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//

#include "test_util.h"

#include "bitnet_rt/npy.h"

#include <cstdint>
#include <cstring>
#include <csignal>
#include <dirent.h>
#include <string>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace bitnet_test;

namespace {

// A .npy file built by hand: version, header dict text, data bytes.
std::string Npy(int major, const std::string &dict, const std::string &data) {
  std::string header = dict;
  size_t prefix = major == 1 ? 10 : 12;
  while ((prefix + header.size() + 1) % 64 != 0)
    header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  uint32_t len = static_cast<uint32_t>(header.size());
  out += static_cast<char>(len & 0xff);
  out += static_cast<char>((len >> 8) & 0xff);
  if (major != 1) {
    out += static_cast<char>((len >> 16) & 0xff);
    out += static_cast<char>((len >> 24) & 0xff);
  }
  return out + header + data;
}

std::string Floats(std::initializer_list<float> values) {
  std::string out(values.size() * sizeof(float), '\0');
  std::memcpy(out.data(), values.begin(), out.size());
  return out;
}

class NpyTest : public ::testing::Test {
protected:
  std::string dir_ = MakeTempDir();
  std::string Path(const std::string &name) { return dir_ + "/" + name; }
};

// Tests a write/read round trip for every dtype with a .npy equivalent, for
// ranks 0 to 3, through malloc and through a pool.
TEST_F(NpyTest, RoundTrip) {
  const int32_t dtypes[] = {BITNET_DTYPE_F32, BITNET_DTYPE_F16,
                            BITNET_DTYPE_F64, BITNET_DTYPE_I8,
                            BITNET_DTYPE_I16, BITNET_DTYPE_I32,
                            BITNET_DTYPE_I64, BITNET_DTYPE_U8,
                            BITNET_DTYPE_BOOL, BITNET_DTYPE_U16,
                            BITNET_DTYPE_U32, BITNET_DTYPE_U64};
  const std::vector<std::vector<int64_t>> shapes = {{}, {5}, {2, 3}, {2, 0, 4},
                                                    {1, 2, 3}};
  bitnet_pool *pool = nullptr;
  ASSERT_TRUE(IsOk(bitnet_pool_create(&pool)));
  PoolPtr pool_owner(pool);
  int file = 0;
  for (int32_t dtype : dtypes) {
    for (const auto &shape : shapes) {
      int64_t n = 1;
      for (int64_t d : shape)
        n *= d;
      std::vector<uint8_t> data(static_cast<size_t>(n * bitnet_dtype_size(dtype)));
      for (size_t i = 0; i < data.size(); ++i)
        data[i] = dtype == BITNET_DTYPE_BOOL ? (i % 2) : static_cast<uint8_t>(i * 7 + 1);
      std::string path = Path("rt" + std::to_string(file++) + ".npy");
      ASSERT_TRUE(IsOk(bitnet_npy_write(path.c_str(), dtype,
                                        static_cast<int32_t>(shape.size()),
                                        shape.data(), data.data())));
      // The header is padded so that the data starts 64-byte aligned.
      std::string bytes = ReadFile(path);
      EXPECT_EQ((bytes.size() - data.size()) % 64, 0u);
      for (bitnet_pool *p : {static_cast<bitnet_pool *>(nullptr), pool}) {
        bitnet_npy_array a;
        ASSERT_TRUE(IsOk(bitnet_npy_read(path.c_str(), p, &a)))
            << bitnet_dtype_name(dtype);
        EXPECT_EQ(a.dtype, dtype);
        ASSERT_EQ(a.rank, static_cast<int32_t>(shape.size()));
        for (size_t d = 0; d < shape.size(); ++d)
          EXPECT_EQ(a.shape[d], shape[d]);
        EXPECT_EQ(a.num_elements, n);
        ASSERT_EQ(a.byte_size, static_cast<int64_t>(data.size()));
        if (!data.empty())
          EXPECT_EQ(std::memcmp(a.data, data.data(), data.size()), 0);
        EXPECT_EQ(a.pool, p);
        bitnet_npy_array_free(&a);
        EXPECT_EQ(a.data, nullptr);
      }
    }
  }
  bitnet_pool_stats stats;
  ASSERT_TRUE(IsOk(bitnet_pool_get_stats(pool, &stats)));
  EXPECT_EQ(stats.bytes_in_use, 0);
  EXPECT_GT(stats.allocations_from_pool, 0);
}

// Tests the header text the writer produces, as NumPy writes it.
// Tests that a write that fails part way (here: the file size limit) leaves
// neither a half-written file nor a temporary, and keeps an existing file.
TEST_F(NpyTest, FailedWriteLeavesNoHalfFile) {
  std::string path = Path("big.npy");
  WriteFile(path, "old contents");
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit limit = {4096, 4096};
    setrlimit(RLIMIT_FSIZE, &limit);
    std::vector<float> v(1 << 16, 1.0f);
    int64_t shape[1] = {int64_t(v.size())};
    bitnet_status s =
        bitnet_npy_write(path.c_str(), BITNET_DTYPE_F32, 1, shape, v.data());
    bool refused = bitnet_status_get_code(s) == BITNET_STATUS_IO_ERROR &&
                   std::strstr(bitnet_status_message(s), "big.npy") != nullptr;
    _exit(refused ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the write was not refused";
  EXPECT_EQ(ReadFile(path), "old contents");
  // Nothing else in the folder: no temporary left behind.
  int entries = 0;
  if (DIR *d = opendir(dir_.c_str())) {
    while (struct dirent *e = readdir(d))
      entries += e->d_name[0] != '.';
    closedir(d);
  }
  EXPECT_EQ(entries, 1);
}

TEST_F(NpyTest, WriterHeader) {
  float v[6] = {0, 1, 2, 3, 4, 5};
  int64_t shape[2] = {2, 3};
  std::string path = Path("h.npy");
  ASSERT_TRUE(IsOk(bitnet_npy_write(path.c_str(), BITNET_DTYPE_F32, 2, shape, v)));
  std::string bytes = ReadFile(path);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  EXPECT_NE(bytes.find("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"),
            std::string::npos);
  int64_t one[1] = {6};
  ASSERT_TRUE(IsOk(bitnet_npy_write(path.c_str(), BITNET_DTYPE_F32, 1, one, v)));
  EXPECT_NE(ReadFile(path).find("'shape': (6,)"), std::string::npos);
  ASSERT_TRUE(IsOk(bitnet_npy_write(path.c_str(), BITNET_DTYPE_F32, 0, nullptr, v)));
  EXPECT_NE(ReadFile(path).find("'shape': ()"), std::string::npos);
}

// Tests files written the way NumPy writes them, in versions 1.0, 2.0 and
// 3.0, with double quotes, other key orders, '=' and '|' byte orders.
TEST_F(NpyTest, ReadsNumpyVariants) {
  struct Case {
    int major;
    std::string dict;
  } cases[] = {
      {1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"},
      {2, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }"},
      {3, "{\"descr\": \"<f4\", \"fortran_order\": False, \"shape\": (2,2)}"},
      {1, "{'shape': (2, 2), 'fortran_order': False, 'descr': '=f4'}"},
      {1, "{'descr':'<f4','fortran_order':False,'shape':(2L, 2L),}"},
  };
  std::string data = Floats({1.5f, -2.0f, 3.25f, 0.0f});
  for (const Case &c : cases) {
    std::string path = Path("v.npy");
    WriteFile(path, Npy(c.major, c.dict, data));
    bitnet_npy_array a;
    ASSERT_TRUE(IsOk(bitnet_npy_read(path.c_str(), nullptr, &a))) << c.dict;
    EXPECT_EQ(a.dtype, BITNET_DTYPE_F32);
    EXPECT_EQ(a.rank, 2);
    EXPECT_EQ(static_cast<float *>(a.data)[2], 3.25f);
    bitnet_npy_array_free(&a);
  }
  std::string path = Path("i1.npy");
  WriteFile(path, Npy(1, "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }",
                      "\x01\xff\x7f"));
  bitnet_npy_array a;
  ASSERT_TRUE(IsOk(bitnet_npy_read(path.c_str(), nullptr, &a)));
  EXPECT_EQ(a.dtype, BITNET_DTYPE_I8);
  EXPECT_EQ(static_cast<int8_t *>(a.data)[1], -1);
  bitnet_npy_array_free(&a);
  WriteFile(path, Npy(1, "{'descr': '|b1', 'fortran_order': False, 'shape': (3,), }",
                      std::string("\x01\x00\x01", 3)));
  ASSERT_TRUE(IsOk(bitnet_npy_read(path.c_str(), nullptr, &a)));
  EXPECT_EQ(a.dtype, BITNET_DTYPE_BOOL);
  bitnet_npy_array_free(&a);
}

// Tests that every malformed or unsupported file is refused with a message
// that says why.
TEST_F(NpyTest, RejectsBadFiles) {
  const std::string four = Floats({1, 2, 3, 4});
  struct Case {
    const char *what;
    std::string bytes;
    bitnet_status_code code;
    std::string part;
  } cases[] = {
      {"fortran", Npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", four),
       BITNET_STATUS_INVALID_FORMAT, "Fortran order"},
      {"big endian", Npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (4,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "big-endian data ('>f4')"},
      {"complex", Npy(1, "{'descr': '<c8', 'fortran_order': False, 'shape': (2,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "dtype '<c8', which is not supported"},
      {"unicode", Npy(1, "{'descr': '<U4', 'fortran_order': False, 'shape': (1,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "'<U4'"},
      {"object", Npy(1, "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "'|O'"},
      {"structured",
       Npy(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (4,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "structured"},
      {"truncated data", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "the file is truncated"},
      {"trailing data", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "holds 16 bytes of data"},
      {"bad magic", "\x93NUMPX\x01\x00\x10\x00{}", BITNET_STATUS_INVALID_FORMAT,
       "does not start with"},
      {"empty", "", BITNET_STATUS_INVALID_FORMAT, "does not start with"},
      {"version 4", Npy(4, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "version 4.0"},
      {"header cut", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", "").substr(0, 30),
       BITNET_STATUS_INVALID_FORMAT, "truncated"},
      {"no shape", Npy(1, "{'descr': '<f4', 'fortran_order': False}", four),
       BITNET_STATUS_INVALID_FORMAT, "lacks"},
      {"bad shape", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-4,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "malformed 'shape'"},
      {"shape text", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': 4, }", four),
       BITNET_STATUS_INVALID_FORMAT, "malformed 'shape'"},
      {"rank 9", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,4), }", four),
       BITNET_STATUS_INVALID_FORMAT, "more than 8 dimensions"},
      {"huge shape",
       Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999, 99999999999), }", four),
       BITNET_STATUS_INVALID_FORMAT, "too large"},
      {"unknown key", Npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", four),
       BITNET_STATUS_INVALID_FORMAT, "unknown header key 'x'"},
      {"not a dict", Npy(1, "['descr']", four), BITNET_STATUS_INVALID_FORMAT,
       "not a dict"},
      {"bad order", Npy(1, "{'descr': '<f4', 'fortran_order': 0, 'shape': (4,), }", four),
       BITNET_STATUS_INVALID_FORMAT, "'fortran_order'"},
      {"unterminated", Npy(1, "{'descr': '<f4", four), BITNET_STATUS_INVALID_FORMAT,
       "malformed dtype"},
  };
  for (const Case &c : cases) {
    std::string path = Path("bad.npy");
    WriteFile(path, c.bytes);
    bitnet_npy_array a;
    std::memset(&a, 0xab, sizeof(a));
    EXPECT_TRUE(IsError(bitnet_npy_read(path.c_str(), nullptr, &a), c.code,
                        {path, c.part}))
        << c.what;
    EXPECT_EQ(a.data, nullptr) << c.what;
  }
}

// Tests the reader's and writer's own argument and file errors.
TEST_F(NpyTest, FileAndArgumentErrors) {
  bitnet_npy_array a;
  EXPECT_TRUE(IsError(bitnet_npy_read(Path("missing.npy").c_str(), nullptr, &a),
                      BITNET_STATUS_NOT_FOUND, {"missing.npy"}));
  EXPECT_TRUE(IsError(bitnet_npy_read(dir_.c_str(), nullptr, &a),
                      BITNET_STATUS_INVALID_ARGUMENT, {"not a regular file"}));
  // A FIFO with no writer: refused at once, not waited on.
  std::string fifo = Path("fifo.npy");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  EXPECT_TRUE(IsError(bitnet_npy_read(fifo.c_str(), nullptr, &a),
                      BITNET_STATUS_INVALID_ARGUMENT, {"not a regular file"}));
  EXPECT_TRUE(IsError(bitnet_npy_read(nullptr, nullptr, &a),
                      BITNET_STATUS_INVALID_ARGUMENT));
  EXPECT_TRUE(IsError(bitnet_npy_read("x.npy", nullptr, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT));
  int64_t shape[1] = {2};
  uint16_t v[2] = {0, 0};
  EXPECT_TRUE(IsError(bitnet_npy_write(Path("b.npy").c_str(), BITNET_DTYPE_BF16,
                                       1, shape, v),
                      BITNET_STATUS_INVALID_ARGUMENT, {"bf16"}));
  EXPECT_TRUE(IsError(bitnet_npy_write(Path("b.npy").c_str(), BITNET_DTYPE_F32,
                                       9, shape, v),
                      BITNET_STATUS_INVALID_ARGUMENT, {"rank 9"}));
  EXPECT_TRUE(IsError(bitnet_npy_write(Path("b.npy").c_str(), BITNET_DTYPE_F32,
                                       1, shape, nullptr),
                      BITNET_STATUS_INVALID_ARGUMENT, {"'data'"}));
  EXPECT_TRUE(IsError(bitnet_npy_write("/nonexistent/dir/b.npy",
                                       BITNET_DTYPE_U8, 1, shape, v),
                      BITNET_STATUS_IO_ERROR, {"/nonexistent/dir/b.npy"}));
  EXPECT_STREQ(bitnet_npy_descr(BITNET_DTYPE_I64), "<i8");
  EXPECT_EQ(bitnet_npy_descr(BITNET_DTYPE_BF16), nullptr);
  bitnet_npy_array_free(nullptr);
}

} // namespace
