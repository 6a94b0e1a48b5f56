//===- Runtime.cpp - Models, runs and profiling over libbitnet_rt -*- C++ -*-===//
//
// Part of bitnet-mlir.
//
//===----------------------------------------------------------------------===//
//
// `Model` owns one loaded model, a memory pool, an optional thread pool and
// one execution context; `Collector` owns a bitnet_profile_collector;
// `Sampler`, `Tokenizer` and `StreamDecoder` wrap the runtime's sampling and
// tokenizer for Model.generate (bitnet_mlir/_generate.py). The
// argument handling with the readable messages lives in Python
// (bitnet_mlir/_model.py); this layer takes exactly the arrays the model
// needs, checks them again (so that no call can pass a buffer of the wrong
// kind to compiled code) and runs with the GIL released.
//
//===----------------------------------------------------------------------===//

#include "Native.h"

#include "bitnet_rt/bitnet_rt.h"
#include "bitnet_rt/sampler.h"
#include "bitnet_rt/tokenizer.h"

#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <vector>

namespace bitnet_python {

namespace {

/// Throws StatusFailure for an error status (and frees it).
void check(bitnet_status status) {
  if (status == BITNET_OK)
    return;
  bitnet_status_code code = bitnet_status_get_code(status);
  StatusFailure failure{static_cast<int>(code), bitnet_status_code_name(code),
                        bitnet_status_message(status)};
  bitnet_status_free(status);
  throw failure;
}

/// The NumPy dtype of a runtime dtype. bf16 has none: its raw 16-bit
/// patterns are exchanged as uint16.
const char *numpyDtypeName(int32_t dtype) {
  switch (dtype) {
  case BITNET_DTYPE_F32:
    return "float32";
  case BITNET_DTYPE_F16:
    return "float16";
  case BITNET_DTYPE_BF16:
    return "uint16";
  case BITNET_DTYPE_F64:
    return "float64";
  case BITNET_DTYPE_I8:
    return "int8";
  case BITNET_DTYPE_I16:
    return "int16";
  case BITNET_DTYPE_I32:
    return "int32";
  case BITNET_DTYPE_I64:
    return "int64";
  case BITNET_DTYPE_U8:
    return "uint8";
  case BITNET_DTYPE_BOOL:
    return "bool";
  case BITNET_DTYPE_U16:
    return "uint16";
  case BITNET_DTYPE_U32:
    return "uint32";
  case BITNET_DTYPE_U64:
    return "uint64";
  default:
    return nullptr;
  }
}

struct TensorSpec {
  std::string name;
  int32_t dtype;
  std::vector<int64_t> shape;
  int64_t byteSize;
  py::dtype numpyDtype;
  bool state = false; ///< an input the run updates in place (a KV cache)

  py::tuple shapeTuple() const {
    py::tuple t(shape.size());
    for (size_t i = 0; i < shape.size(); ++i)
      t[i] = py::int_(shape[i]);
    return t;
  }
  py::tuple describe() const {
    return py::make_tuple(toStr(name), numpyDtype,
                          py::str(bitnet_dtype_name(dtype)), shapeTuple(),
                          byteSize, py::bool_(state));
  }
};

/// A profile collector, shared by the Python object and every model it is
/// attached to (so it outlives the contexts that report to it).
struct Collector {
  bitnet_profile_collector *collector = nullptr;

  explicit Collector(int64_t maxEvents) {
    if (maxEvents < 0)
      throw py::value_error("max_events must be >= 0, got " +
                            std::to_string(maxEvents));
    check(bitnet_profile_collector_create(maxEvents, &collector));
  }
  ~Collector() { bitnet_profile_collector_free(collector); }
  Collector(const Collector &) = delete;
  Collector &operator=(const Collector &) = delete;

  py::list kernels() {
    py::list out;
    int32_t n = bitnet_profile_collector_num_kernels(collector);
    for (int32_t i = 0; i < n; ++i) {
      bitnet_kernel_stats s;
      check(bitnet_profile_collector_kernel(collector, i, &s));
      out.append(py::make_tuple(toStr(s.name), s.calls, s.total_ns, s.min_ns,
                                s.max_ns, s.bytes, s.flops));
    }
    return out;
  }

  py::tuple runs() {
    int64_t runs = 0, totalNs = 0;
    check(bitnet_profile_collector_runs(collector, &runs, &totalNs));
    return py::make_tuple(runs, totalNs);
  }

  std::string table() {
    char *buffer = nullptr;
    size_t size = 0;
    FILE *stream = open_memstream(&buffer, &size);
    if (!stream)
      throw std::bad_alloc();
    bitnet_status status = bitnet_profile_collector_write_table(collector,
                                                                stream);
    std::fclose(stream);
    std::string text = buffer ? std::string(buffer, size) : std::string();
    std::free(buffer);
    check(status);
    return text;
  }

  void writeTrace(const std::string &path) {
    bitnet_status status;
    {
      py::gil_scoped_release release;
      status = bitnet_profile_collector_write_trace(collector, path.c_str());
    }
    check(status);
  }

  void reset() { bitnet_profile_collector_reset(collector); }
};

/// Memory handed to NumPy from a model's pool; given back when the array
/// is collected. Holds a reference to the pool.
struct PoolBlock {
  bitnet_pool *pool;
  void *data;
};

class Model {
public:
  Model(const std::string &path, int threads, const std::string &entryName) {
    if (threads < 1)
      throw py::value_error("threads must be >= 1, got " +
                            std::to_string(threads));
    std::vector<std::string> entryNames;
    const bitnet_model_info *mainInfo = nullptr;
    {
      py::gil_scoped_release release;
      load(path, threads, entryName, entryNames, mainInfo);
    }
    try {
      const bitnet_model_info *info = bitnet_model_get_info(model);
      name = info->name ? info->name : "";
      producer = info->producer ? info->producer : "";
      target = info->target ? info->target : "";
      workspaceAlignment = info->workspace_alignment;
      entry = entryName;
      for (const std::string &e : entryNames)
        entries.append(py::str(e));
      // An entry's descriptor leaves the metadata to the main one's.
      for (int32_t i = 0; i < mainInfo->num_metadata; ++i)
        metadata[py::str(toStr(mainInfo->metadata[2 * i]))] =
            py::str(toStr(mainInfo->metadata[2 * i + 1]));
      inputs = describe(bitnet_model_num_inputs(model), bitnet_model_input);
      outputs = describe(bitnet_model_num_outputs(model), bitnet_model_output);
    } catch (...) {
      release();
      throw;
    }
  }

  ~Model() { release(); }
  Model(const Model &) = delete;
  Model &operator=(const Model &) = delete;

  void close() {
    py::gil_scoped_release release_gil;
    std::lock_guard<std::mutex> lock(mutex);
    release();
  }
  bool closed() const { return context == nullptr; }

  py::list inputSpecs() const { return specList(inputs); }
  py::list outputSpecs() const { return specList(outputs); }

  /// A fresh array for output `index`, in memory from the model's pool.
  py::array allocateOutput(int index) {
    ensureOpen();
    if (index < 0 || index >= static_cast<int>(outputs.size()))
      throw py::index_error("output index " + std::to_string(index) +
                            " out of range");
    const TensorSpec &spec = outputs[index];
    void *data = nullptr;
    check(bitnet_pool_allocate(pool, spec.byteSize, 64, &data));
    auto *block = new PoolBlock{pool, data};
    bitnet_pool_retain(pool);
    py::capsule owner(block, [](void *p) {
      auto *b = static_cast<PoolBlock *>(p);
      bitnet_status_free(bitnet_pool_deallocate(b->pool, b->data));
      bitnet_pool_release(b->pool);
      delete b;
    });
    std::vector<py::ssize_t> shape(spec.shape.begin(), spec.shape.end());
    return py::array(spec.numpyDtype, shape, data, owner);
  }

  void run(const py::sequence &inputArrays, const py::sequence &outputArrays) {
    ensureOpen();
    if (inputArrays.size() != inputs.size() ||
        outputArrays.size() != outputs.size())
      throw py::type_error(
          "model '" + name + "' takes " + std::to_string(inputs.size()) +
          " inputs and " + std::to_string(outputs.size()) + " outputs, got " +
          std::to_string(inputArrays.size()) + " and " +
          std::to_string(outputArrays.size()));
    std::vector<py::array> keep;
    std::vector<std::vector<int64_t>> shapes;
    std::vector<bitnet_tensor> in, out;
    keep.reserve(inputs.size() + outputs.size());
    shapes.reserve(inputs.size() + outputs.size());
    auto tensorOf = [&](py::handle object, const TensorSpec &spec,
                        bool writable) {
      const char *role = writable ? "output" : "input";
      if (!py::isinstance<py::array>(object))
        throw py::type_error(std::string(role) + " '" + spec.name +
                             "' must be a numpy.ndarray");
      py::array array = py::reinterpret_borrow<py::array>(object);
      if (!array.dtype().equal(spec.numpyDtype))
        throw py::type_error(std::string(role) + " '" + spec.name +
                             "' has the wrong dtype");
      int flags = array.flags();
      if (!(flags & py::array::c_style) ||
          !(flags & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
        throw py::value_error(std::string(role) + " '" + spec.name +
                              "' must be C-contiguous and aligned");
      if (writable && !array.writeable())
        throw py::value_error(std::string(role) + " '" + spec.name +
                              "' is read-only");
      shapes.emplace_back(array.shape(), array.shape() + array.ndim());
      keep.push_back(array);
      return bitnet_tensor{const_cast<void *>(array.data()), spec.dtype,
                           static_cast<int32_t>(array.ndim()),
                           shapes.back().data(),
                           static_cast<int64_t>(array.nbytes())};
    };
    for (size_t i = 0; i < inputs.size(); ++i)
      in.push_back(tensorOf(inputArrays[i], inputs[i], inputs[i].state));
    for (size_t i = 0; i < outputs.size(); ++i)
      out.push_back(tensorOf(outputArrays[i], outputs[i], true));

    bitnet_status status;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex);
      if (!context)
        status = bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                                    "the model was closed");
      else
        status = bitnet_context_run_checked(
            context, in.data(), static_cast<int32_t>(in.size()), out.data(),
            static_cast<int32_t>(out.size()));
    }
    check(status);
  }

  /// Attaches `collector` to the context (None detaches).
  void setProfiler(std::shared_ptr<Collector> collector) {
    ensureOpen();
    bitnet_status status;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex);
      if (!context) {
        status = bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                                    "the model was closed");
      } else if (collector) {
        bitnet_profiler callbacks =
            bitnet_profile_collector_profiler(collector->collector);
        status = bitnet_context_set_profiler(context, &callbacks);
      } else {
        status = bitnet_context_set_profiler(context, nullptr);
      }
    }
    check(status);
    profiler = std::move(collector);
  }

  py::dict poolStats() {
    ensureOpen();
    bitnet_pool_stats s;
    check(bitnet_pool_get_stats(pool, &s));
    py::dict d;
    d["bytes_reserved"] = s.bytes_reserved;
    d["peak_bytes_reserved"] = s.peak_bytes_reserved;
    d["bytes_in_use"] = s.bytes_in_use;
    d["peak_bytes_in_use"] = s.peak_bytes_in_use;
    d["allocations"] = s.allocations;
    d["allocations_from_pool"] = s.allocations_from_pool;
    d["allocations_fresh"] = s.allocations_fresh;
    d["deallocations"] = s.deallocations;
    return d;
  }

  void resetPoolPeaks() {
    ensureOpen();
    bitnet_pool_reset_peaks(pool);
  }

  void trimPool() {
    ensureOpen();
    bitnet_pool_trim(pool);
  }

  void verify() {
    bitnet_status status;
    {
      // As run(): close() on another thread waits for the check to end.
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex);
      status = model ? bitnet_model_verify(model)
                     : bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                                          "the model was closed");
    }
    check(status);
  }

  int64_t useHugePages() {
    bitnet_status status;
    int64_t bytes = 0;
    {
      // As run(): no run of this model is in flight while its pages move.
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(mutex);
      status = model ? bitnet_model_use_huge_pages(model, &bytes)
                     : bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                                          "the model was closed");
    }
    check(status);
    return bytes;
  }

  py::dict mapping() {
    ensureOpen();
    bitnet_model_mapping m;
    check(bitnet_model_get_mapping(model, &m));
    py::dict d;
    d["read_only_bytes"] = m.read_only_bytes;
    d["huge_page_bytes"] = m.huge_page_bytes;
    d["code_bytes"] = m.code_bytes;
    d["writable_bytes"] = m.writable_bytes;
    return d;
  }

  int64_t workspaceBytes() {
    ensureOpen();
    return bitnet_context_workspace_bytes(context);
  }

  std::string path, name, producer, target, entry;
  py::dict metadata;
  py::list entries; ///< the other entries of the model's file
  int64_t workspaceAlignment = 0;
  int threads = 1;

private:
  void load(const std::string &modelPath, int numThreads,
            const std::string &entryName, std::vector<std::string> &entryNames,
            const bitnet_model_info *&mainInfo) {
    check(bitnet_model_load(modelPath.c_str(), &model));
    mainInfo = bitnet_model_get_info(model);
    for (int32_t i = 0; i < bitnet_model_num_entries(model); ++i)
      entryNames.push_back(bitnet_model_entry_name(model, i));
    if (!entryName.empty()) {
      bitnet_model *opened = nullptr;
      bitnet_status status =
          bitnet_model_open_entry(model, entryName.c_str(), &opened);
      bitnet_model_release(model); // the entry holds it
      model = opened;
      check(status);
    }
    path = bitnet_model_path(model);
    threads = numThreads;
    try {
      check(bitnet_pool_create(&pool));
      // One thread is the calling thread alone: no pool needed.
      if (numThreads > 1)
        check(bitnet_thread_pool_create(numThreads, &threadPool));
      bitnet_context_options options = {};
      options.pool = pool;
      options.thread_pool = threadPool;
      check(bitnet_context_create(model, &options, &context));
    } catch (...) {
      release();
      throw;
    }
  }

  void release() {
    bitnet_context_free(context);
    context = nullptr;
    profiler.reset();
    bitnet_thread_pool_release(threadPool);
    threadPool = nullptr;
    bitnet_pool_release(pool); // arrays still alive hold their own reference
    pool = nullptr;
    bitnet_model_release(model);
    model = nullptr;
  }

  void ensureOpen() const {
    if (!context)
      throw py::value_error("model '" + name + "' (" + path +
                            ") is closed");
  }

  std::vector<TensorSpec> describe(
      int32_t count,
      bitnet_status (*get)(const bitnet_model *, int32_t,
                           bitnet_tensor_desc *)) {
    std::vector<TensorSpec> specs;
    for (int32_t i = 0; i < count; ++i) {
      bitnet_tensor_desc d;
      check(get(model, i, &d));
      const char *dtypeName = numpyDtypeName(d.dtype);
      if (!dtypeName)
        throw StatusFailure{BITNET_STATUS_INVALID_MODEL,
                            bitnet_status_code_name(BITNET_STATUS_INVALID_MODEL),
                            "tensor '" + std::string(d.name) +
                                "' has a dtype with no NumPy equivalent"};
      specs.push_back(TensorSpec{d.name, d.dtype,
                                 std::vector<int64_t>(d.shape, d.shape + d.rank),
                                 d.byte_size, py::dtype(dtypeName),
                                 (d.flags & BITNET_TENSOR_STATE) != 0});
    }
    return specs;
  }

  static py::list specList(const std::vector<TensorSpec> &specs) {
    py::list out;
    for (const TensorSpec &spec : specs)
      out.append(spec.describe());
    return out;
  }

  std::mutex mutex; // one run (or profiler switch) at a time
  bitnet_model *model = nullptr;
  bitnet_pool *pool = nullptr;
  bitnet_thread_pool *threadPool = nullptr;
  bitnet_context *context = nullptr;
  std::shared_ptr<Collector> profiler;
  std::vector<TensorSpec> inputs, outputs;
};

/// The runtime's sampler (bitnet_rt/sampler.h).
struct Sampler {
  bitnet_sampler *sampler = nullptr;

  Sampler(double temperature, int64_t topK, double topP, uint64_t seed) {
    bitnet_sampler_params params{temperature, topK, topP, seed};
    bitnet_status status = bitnet_sampler_create(&params, &sampler);
    if (status != BITNET_OK) {
      std::string message = bitnet_status_message(status);
      bitnet_status_free(status);
      throw py::value_error(message);
    }
  }
  ~Sampler() { bitnet_sampler_free(sampler); }
  Sampler(const Sampler &) = delete;
  Sampler &operator=(const Sampler &) = delete;

  /// The id picked from the first `size` entries of a float32 vector.
  int32_t sample(py::array_t<float, py::array::c_style> logits, int64_t size) {
    if (logits.ndim() != 1 || size < 1 || size > logits.shape(0))
      throw py::value_error("logits must be a float32 vector of at least "
                            "`size` >= 1 entries");
    int32_t id = -1;
    check(bitnet_sampler_sample(sampler, logits.data(), size, &id));
    return id;
  }
};

/// The runtime's tokenizer (bitnet_rt/tokenizer.h), made from the JSON of a
/// model's metadata entry bitnet.tokenizer.
struct Tokenizer {
  bitnet_tokenizer *tokenizer = nullptr;

  explicit Tokenizer(const std::string &json) {
    check(bitnet_tokenizer_create(json.data(), json.size(), &tokenizer));
  }
  ~Tokenizer() { bitnet_tokenizer_free(tokenizer); }
  Tokenizer(const Tokenizer &) = delete;
  Tokenizer &operator=(const Tokenizer &) = delete;

  std::vector<int32_t> encode(const std::string &text, bool addBos) {
    int32_t *ids = nullptr;
    int64_t n = 0;
    check(bitnet_tokenizer_encode(tokenizer, text.data(), text.size(),
                                  addBos ? BITNET_ENCODE_ADD_BOS : 0, &ids,
                                  &n));
    std::vector<int32_t> out(ids, ids + n);
    std::free(ids);
    return out;
  }
};

/// Text of generated tokens, never ending inside a UTF-8 character; keeps
/// its Tokenizer alive.
struct StreamDecoder {
  std::shared_ptr<Tokenizer> tokenizer;
  bitnet_stream_decoder *decoder = nullptr;

  explicit StreamDecoder(std::shared_ptr<Tokenizer> t) : tokenizer(t) {
    check(bitnet_stream_decoder_create(tokenizer->tokenizer,
                                       BITNET_DECODE_SKIP_SPECIAL, &decoder));
  }
  ~StreamDecoder() { bitnet_stream_decoder_free(decoder); }
  StreamDecoder(const StreamDecoder &) = delete;
  StreamDecoder &operator=(const StreamDecoder &) = delete;

  py::bytes push(int32_t id) {
    const char *text = nullptr;
    size_t length = 0;
    check(bitnet_stream_decoder_push(decoder, id, &text, &length));
    return py::bytes(text, length);
  }
  py::bytes flush() {
    const char *text = nullptr;
    size_t length = 0;
    bitnet_stream_decoder_flush(decoder, &text, &length);
    return py::bytes(text, length);
  }
};

} // namespace

void bindRuntime(py::module_ &m) {
  m.def("default_num_threads", &bitnet_default_num_threads,
        "Number of online CPU cores (the default thread count).");

  py::class_<Collector, std::shared_ptr<Collector>>(m, "Collector")
      .def(py::init<int64_t>(), py::arg("max_events") = 0)
      .def("kernels", &Collector::kernels)
      .def("runs", &Collector::runs)
      .def("table", &Collector::table)
      .def("write_trace", &Collector::writeTrace, py::arg("path"))
      .def("reset", &Collector::reset);

  py::class_<Model>(m, "Model")
      .def(py::init<const std::string &, int, const std::string &>(),
           py::arg("path"), py::arg("threads"), py::arg("entry") = "")
      .def_readonly("entry", &Model::entry)
      .def_readonly("entries", &Model::entries)
      .def_readonly("path", &Model::path)
      .def_readonly("name", &Model::name)
      .def_readonly("producer", &Model::producer)
      .def_readonly("target", &Model::target)
      .def_readonly("threads", &Model::threads)
      .def_readonly("workspace_alignment", &Model::workspaceAlignment)
      .def_readonly("metadata", &Model::metadata)
      .def_property_readonly("workspace_bytes", &Model::workspaceBytes)
      .def_property_readonly("closed", &Model::closed)
      .def("inputs", &Model::inputSpecs)
      .def("outputs", &Model::outputSpecs)
      .def("allocate_output", &Model::allocateOutput, py::arg("index"))
      .def("run", &Model::run, py::arg("inputs"), py::arg("outputs"))
      .def("set_profiler", &Model::setProfiler, py::arg("collector").none(true))
      .def("pool_stats", &Model::poolStats)
      .def("reset_pool_peaks", &Model::resetPoolPeaks)
      .def("trim_pool", &Model::trimPool)
      .def("mapping", &Model::mapping)
      .def("verify", &Model::verify)
      .def("use_huge_pages", &Model::useHugePages)
      .def("close", &Model::close);

  py::class_<Sampler>(m, "Sampler")
      .def(py::init<double, int64_t, double, uint64_t>(),
           py::arg("temperature"), py::arg("top_k"), py::arg("top_p"),
           py::arg("seed"))
      .def("sample", &Sampler::sample, py::arg("logits"), py::arg("size"));

  py::class_<Tokenizer, std::shared_ptr<Tokenizer>>(m, "Tokenizer")
      .def(py::init<const std::string &>(), py::arg("json"))
      .def("encode", &Tokenizer::encode, py::arg("text"), py::arg("add_bos"))
      .def_property_readonly("vocab_size", [](const Tokenizer &t) {
        return bitnet_tokenizer_vocab_size(t.tokenizer);
      })
      .def_property_readonly("bos_id", [](const Tokenizer &t) {
        return bitnet_tokenizer_bos_id(t.tokenizer);
      })
      .def_property_readonly("eos_id", [](const Tokenizer &t) {
        return bitnet_tokenizer_eos_id(t.tokenizer);
      })
      .def_property_readonly("eot_id", [](const Tokenizer &t) {
        return bitnet_tokenizer_eot_id(t.tokenizer);
      })
      .def_property_readonly("add_bos", [](const Tokenizer &t) {
        return bitnet_tokenizer_add_bos(t.tokenizer) != 0;
      });

  py::class_<StreamDecoder>(m, "StreamDecoder")
      .def(py::init<std::shared_ptr<Tokenizer>>(), py::arg("tokenizer"))
      .def("push", &StreamDecoder::push, py::arg("id"))
      .def("flush", &StreamDecoder::flush);
}

} // namespace bitnet_python
