/*===- gpu.c - Running GPU models through the CUDA driver API -------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * The few driver-API declarations the runtime needs are written here, so no
 * CUDA header or library is needed to build it; libcuda.so.1 is opened with
 * dlopen() on first use.
 *
 *===----------------------------------------------------------------------===*/

#include <dlfcn.h>
#include <elf.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu.h"

/*===----------------------------------------------------------------------===*
 * Driver API (cuda.h), declared by hand
 *===----------------------------------------------------------------------===*/

typedef int CUresult; /* 0 is CUDA_SUCCESS */
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;
typedef struct CUctx_st *CUcontext;
typedef struct CUmod_st *CUmodule;
typedef struct CUfunc_st *CUfunction;
typedef struct CUstream_st *CUstream;
typedef struct CUgraph_st *CUgraph;
typedef struct CUgraphExec_st *CUgraphExec;

enum {
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_JIT_ERROR_LOG_BUFFER = 5,
  CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
  CU_STREAM_NON_BLOCKING = 1,
  CU_STREAM_CAPTURE_MODE_RELAXED = 2,
};

typedef struct cuda_api {
  CUresult (*Init)(unsigned int);
  CUresult (*DeviceGetCount)(int *);
  CUresult (*DeviceGet)(CUdevice *, int);
  CUresult (*DeviceGetAttribute)(int *, int, CUdevice);
  CUresult (*DeviceGetName)(char *, int, CUdevice);
  CUresult (*DevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*DevicePrimaryCtxRelease)(CUdevice);
  CUresult (*CtxSetCurrent)(CUcontext);
  CUresult (*ModuleLoadDataEx)(CUmodule *, const void *, unsigned int, int *,
                               void **);
  CUresult (*ModuleUnload)(CUmodule);
  CUresult (*ModuleGetFunction)(CUfunction *, CUmodule, const char *);
  CUresult (*MemAlloc)(CUdeviceptr *, size_t);
  CUresult (*MemFree)(CUdeviceptr);
  CUresult (*MemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*MemcpyHtoDAsync)(CUdeviceptr, const void *, size_t, CUstream);
  CUresult (*MemcpyDtoHAsync)(void *, CUdeviceptr, size_t, CUstream);
  CUresult (*StreamCreate)(CUstream *, unsigned int);
  CUresult (*StreamDestroy)(CUstream);
  CUresult (*StreamSynchronize)(CUstream);
  CUresult (*LaunchKernel)(CUfunction, unsigned, unsigned, unsigned, unsigned,
                           unsigned, unsigned, unsigned, CUstream, void **,
                           void **);
  CUresult (*GetErrorName)(CUresult, const char **);
  CUresult (*GetErrorString)(CUresult, const char **);
  /* Graphs, optional: without them (or with BITNET_CUDA_GRAPHS=0) a run
   * launches its kernels one by one. */
  CUresult (*StreamBeginCapture)(CUstream, int);
  CUresult (*StreamEndCapture)(CUstream, CUgraph *);
  CUresult (*GraphInstantiate)(CUgraphExec *, CUgraph, unsigned long long);
  CUresult (*GraphLaunch)(CUgraphExec, CUstream);
  CUresult (*GraphExecDestroy)(CUgraphExec);
  CUresult (*GraphDestroy)(CUgraph);
  int has_graphs;
} cuda_api;

static pthread_once_t cuda_once = PTHREAD_ONCE_INIT;
static cuda_api cuda;
static char cuda_error[512]; /* why CUDA is unavailable; "" when it is */

/* Looks up `name`, preferring the versioned `name_v2` entry. */
static void *cuda_sym(void *lib, const char *name, int versioned) {
  if (versioned) {
    char buf[64];
    snprintf(buf, sizeof(buf), "%s_v2", name);
    void *fn = dlsym(lib, buf);
    if (fn)
      return fn;
  }
  return dlsym(lib, name);
}

static void cuda_load(void) {
  /* $BITNET_CUDA_DRIVER names another driver library, e.g. the emulator
   * (libbitnet_cuda_emulator.so, bitnet_rt/gpu_emulation.h). */
  const char *chosen = getenv("BITNET_CUDA_DRIVER");
  const char *names[] = {"libcuda.so.1", "libcuda.so"};
  void *lib = NULL;
  const char *err = NULL;
  if (chosen && *chosen) {
    lib = dlopen(chosen, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
      err = dlerror();
      snprintf(cuda_error, sizeof(cuda_error),
               "BITNET_CUDA_DRIVER=%s cannot be loaded (%s)", chosen,
               err ? err : "not found");
      return;
    }
  }
  for (size_t i = 0; i < sizeof(names) / sizeof(names[0]) && !lib; ++i) {
    lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
    if (!lib)
      err = dlerror();
  }
  if (!lib) {
    snprintf(cuda_error, sizeof(cuda_error),
             "the CUDA driver library libcuda.so.1 cannot be loaded (%s): "
             "this machine has no NVIDIA driver",
             err ? err : "not found");
    return;
  }
  /* Graph calls are optional: without one, runs launch kernel by kernel. */
  struct {
    void **slot;
    const char *name;
    int versioned, optional;
  } table[] = {
      {(void **)&cuda.Init, "cuInit", 0, 0},
      {(void **)&cuda.DeviceGetCount, "cuDeviceGetCount", 0, 0},
      {(void **)&cuda.DeviceGet, "cuDeviceGet", 0, 0},
      {(void **)&cuda.DeviceGetAttribute, "cuDeviceGetAttribute", 0, 0},
      {(void **)&cuda.DeviceGetName, "cuDeviceGetName", 0, 0},
      {(void **)&cuda.DevicePrimaryCtxRetain, "cuDevicePrimaryCtxRetain", 0, 0},
      {(void **)&cuda.DevicePrimaryCtxRelease, "cuDevicePrimaryCtxRelease", 1, 0},
      {(void **)&cuda.CtxSetCurrent, "cuCtxSetCurrent", 0, 0},
      {(void **)&cuda.ModuleLoadDataEx, "cuModuleLoadDataEx", 0, 0},
      {(void **)&cuda.ModuleUnload, "cuModuleUnload", 0, 0},
      {(void **)&cuda.ModuleGetFunction, "cuModuleGetFunction", 0, 0},
      {(void **)&cuda.MemAlloc, "cuMemAlloc", 1, 0},
      {(void **)&cuda.MemFree, "cuMemFree", 1, 0},
      {(void **)&cuda.MemcpyHtoD, "cuMemcpyHtoD", 1, 0},
      {(void **)&cuda.MemcpyHtoDAsync, "cuMemcpyHtoDAsync", 1, 0},
      {(void **)&cuda.MemcpyDtoHAsync, "cuMemcpyDtoHAsync", 1, 0},
      {(void **)&cuda.StreamCreate, "cuStreamCreate", 0, 0},
      {(void **)&cuda.StreamDestroy, "cuStreamDestroy", 1, 0},
      {(void **)&cuda.StreamSynchronize, "cuStreamSynchronize", 0, 0},
      {(void **)&cuda.LaunchKernel, "cuLaunchKernel", 0, 0},
      {(void **)&cuda.GetErrorName, "cuGetErrorName", 0, 0},
      {(void **)&cuda.GetErrorString, "cuGetErrorString", 0, 0},
      {(void **)&cuda.StreamBeginCapture, "cuStreamBeginCapture", 1, 1},
      {(void **)&cuda.StreamEndCapture, "cuStreamEndCapture", 0, 1},
      {(void **)&cuda.GraphInstantiate, "cuGraphInstantiateWithFlags", 0, 1},
      {(void **)&cuda.GraphLaunch, "cuGraphLaunch", 0, 1},
      {(void **)&cuda.GraphExecDestroy, "cuGraphExecDestroy", 0, 1},
      {(void **)&cuda.GraphDestroy, "cuGraphDestroy", 0, 1},
  };
  const char *graphs_env = getenv("BITNET_CUDA_GRAPHS");
  cuda.has_graphs = !(graphs_env && strcmp(graphs_env, "0") == 0);
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); ++i) {
    *table[i].slot = cuda_sym(lib, table[i].name, table[i].versioned);
    if (*table[i].slot != NULL)
      continue;
    if (table[i].optional) {
      cuda.has_graphs = 0;
      continue;
    }
    snprintf(cuda_error, sizeof(cuda_error),
             "the CUDA driver library lacks %s: the driver is too old",
             table[i].name);
    return;
  }
  CUresult r = cuda.Init(0);
  if (r != 0) {
    const char *name = NULL;
    if (cuda.GetErrorName(r, &name) != 0 || name == NULL)
      name = "unknown error";
    snprintf(cuda_error, sizeof(cuda_error),
             "cuInit failed with %s (%d): no usable NVIDIA GPU", name, (int)r);
    return;
  }
  int count = 0;
  if (cuda.DeviceGetCount(&count) != 0 || count == 0) {
    snprintf(cuda_error, sizeof(cuda_error), "the CUDA driver sees no GPU");
    return;
  }
  cuda_error[0] = '\0';
}

/* OK when the driver is loaded and initialised, else UNAVAILABLE. */
static bitnet_status cuda_ready(const char *what) {
  pthread_once(&cuda_once, cuda_load);
  if (cuda_error[0] != '\0')
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE, "%s: %s", what,
                              cuda_error);
  return BITNET_OK;
}

bitnet_status bitnet_gpu_available(void) {
  return cuda_ready("CUDA is unavailable");
}

/* A status for a failed driver call `call`. */
static bitnet_status cuda_fail(CUresult r, const char *call,
                               const char *context) {
  const char *name = NULL, *text = NULL;
  if (cuda.GetErrorName(r, &name) != 0 || name == NULL)
    name = "unknown error";
  if (cuda.GetErrorString(r, &text) != 0 || text == NULL)
    text = "";
  return bitnet_status_make(r == 2 ? BITNET_STATUS_OUT_OF_MEMORY
                                   : BITNET_STATUS_RUN_FAILED,
                            "%s: %s failed with %s (%d): %s", context, call,
                            name, (int)r, text);
}

#define CU_CHECK(expr, what, ctx)                                             \
  do {                                                                         \
    CUresult cu_result_ = (expr);                                              \
    if (cu_result_ != 0)                                                       \
      return cuda_fail(cu_result_, what, ctx);                                 \
  } while (0)

/*===----------------------------------------------------------------------===*
 * Programs
 *===----------------------------------------------------------------------===*/

bitnet_status bitnet_gpu_check_program(const char *path,
                                       const bitnet_gpu_program *p,
                                       const bitnet_object_map *object,
                                       const bitnet_tensor_desc *buffers,
                                       int32_t num_buffers) {
#define BAD(...)                                                               \
  bitnet_status_make(BITNET_STATUS_INVALID_MODEL, __VA_ARGS__)
#define OUTSIDE(what)                                                          \
  BAD("model '%s': the GPU program's %s points outside the model (a damaged "  \
      "file?)",                                                                \
      path, what)
  if (!bitnet_object_holds(object, p, sizeof(*p), PF_R))
    return OUTSIDE("descriptor");
  if ((p->platform && !bitnet_object_holds_string(object, p->platform)) ||
      (p->arch && !bitnet_object_holds_string(object, p->arch)) ||
      (p->ptx && !bitnet_object_holds_string(object, p->ptx)))
    return OUTSIDE("platform, architecture or PTX");
  if (p->platform == NULL || strcmp(p->platform, "cuda") != 0)
    return BAD("model '%s' targets GPU platform '%s'; this runtime runs "
               "'cuda'",
               path, p->platform ? p->platform : "(null)");
  if (p->ptx == NULL && p->cubin == NULL)
    return BAD("model '%s' has a GPU program without PTX or cubin", path);
  if (p->arch == NULL || strncmp(p->arch, "sm_", 3) != 0)
    return BAD("model '%s' names no GPU architecture (sm_XY)", path);
  if (p->num_kernels < 0 || p->num_weights < 0 || p->num_launches < 0 ||
      p->workspace_bytes < 0 || p->cubin_bytes < 0)
    return BAD("model '%s' has negative counts in its GPU program", path);
  if ((p->num_kernels && !p->kernel_names) ||
      (p->num_weights && !p->weights) || (p->num_launches && !p->launches))
    return BAD("model '%s' has a GPU program with missing tables", path);
  if ((p->cubin && !bitnet_object_holds(object, p->cubin, p->cubin_bytes,
                                        PF_R)) ||
      (p->num_kernels &&
       !bitnet_object_holds(object, p->kernel_names,
                            (int64_t)p->num_kernels * sizeof(char *), PF_R)) ||
      (p->num_weights &&
       !bitnet_object_holds(object, p->weights,
                            (int64_t)p->num_weights * sizeof(*p->weights),
                            PF_R)) ||
      (p->num_launches &&
       !bitnet_object_holds(object, p->launches,
                            (int64_t)p->num_launches * sizeof(*p->launches),
                            PF_R)))
    return OUTSIDE("cubin or tables");
  for (int32_t i = 0; i < p->num_kernels; ++i)
    if (p->kernel_names[i] == NULL ||
        !bitnet_object_holds_string(object, p->kernel_names[i]))
      return BAD("model '%s': GPU kernel %d has no name", path, (int)i);
  for (int32_t i = 0; i < p->num_weights; ++i)
    if (p->weights[i].bytes < 0 ||
        (p->weights[i].bytes > 0 && p->weights[i].data == NULL) ||
        (p->weights[i].bytes > 0 &&
         !bitnet_object_holds(object, p->weights[i].data, p->weights[i].bytes,
                              PF_R)))
      return BAD("model '%s': GPU weight %d is malformed", path, (int)i);
  for (int32_t i = 0; i < p->num_launches; ++i) {
    const bitnet_gpu_launch *l = &p->launches[i];
    if (l->kernel < 0 || l->kernel >= p->num_kernels || l->num_args < 0 ||
        (l->num_args > 0 &&
         (l->args == NULL ||
          !bitnet_object_holds(object, l->args,
                               (int64_t)l->num_args * sizeof(*l->args),
                               PF_R))))
      return BAD("model '%s': GPU launch %d is malformed", path, (int)i);
    for (int d = 0; d < 3; ++d)
      if (l->grid[d] == 0 || l->block[d] == 0)
        return BAD("model '%s': GPU launch %d has an empty grid", path,
                   (int)i);
    for (int32_t a = 0; a < l->num_args; ++a) {
      const bitnet_gpu_arg *arg = &l->args[a];
      /* Each pointer starts within (or at the end of) what it points into:
       * the workspace must cover the plan's every offset. */
      int ok = arg->offset >= 0 &&
               ((arg->kind == BITNET_GPU_ARG_BUFFER && arg->index >= 0 &&
                 arg->index < num_buffers &&
                 arg->offset <= buffers[arg->index].byte_size) ||
                (arg->kind == BITNET_GPU_ARG_WORKSPACE &&
                 arg->offset <= p->workspace_bytes) ||
                (arg->kind == BITNET_GPU_ARG_WEIGHT && arg->index >= 0 &&
                 arg->index < p->num_weights &&
                 arg->offset <= p->weights[arg->index].bytes));
      if (!ok)
        return BAD("model '%s': argument %d of GPU launch %d is malformed",
                   path, (int)a, (int)i);
    }
  }
  return BITNET_OK;
#undef OUTSIDE
#undef BAD
}

struct bitnet_gpu_model {
  const bitnet_gpu_program *program;
  CUdevice device;
  CUcontext context; /* the device's primary context */
  CUmodule module;
  CUfunction *functions;
  CUdeviceptr *weights;
};

void bitnet_gpu_model_destroy(bitnet_gpu_model *m) {
  if (m == NULL)
    return;
  if (m->context) {
    cuda.CtxSetCurrent(m->context);
    for (int32_t i = 0; m->weights && i < m->program->num_weights; ++i)
      if (m->weights[i])
        cuda.MemFree(m->weights[i]);
    if (m->module)
      cuda.ModuleUnload(m->module);
    cuda.DevicePrimaryCtxRelease(m->device);
  }
  free(m->functions);
  free(m->weights);
  free(m);
}

static bitnet_status load_module(bitnet_gpu_model *m, const char *path,
                                 int major, int minor) {
  const bitnet_gpu_program *p = m->program;
  int code_sm = atoi(p->arch + 3);
  int device_sm = major * 10 + minor;
  if (device_sm < code_sm)
    return bitnet_status_make(
        BITNET_STATUS_UNAVAILABLE,
        "model '%s' was compiled for %s, but the GPU is sm_%d: recompile "
        "with --gpu-arch=sm_%d",
        path, p->arch, device_sm, device_sm);
  /* The cubin only runs on its own architecture; PTX is compiled by the
   * driver for newer ones. */
  const void *image = p->ptx;
  if (p->cubin && p->cubin_bytes > 0 && device_sm == code_sm)
    image = p->cubin;
  if (image == NULL)
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "model '%s' holds only a cubin for %s, and the "
                              "GPU is sm_%d",
                              path, p->arch, device_sm);
  char log[4096] = {0};
  int options[] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
  void *values[] = {log, (void *)(size_t)sizeof(log)};
  CUresult r = cuda.ModuleLoadDataEx(&m->module, image, 2, options, values);
  if (r != 0) {
    bitnet_status status = cuda_fail(r, "cuModuleLoadDataEx", path);
    bitnet_status_free(status);
    return bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                              "model '%s': the driver rejects its %s kernels "
                              "(error %d): %s",
                              path, image == p->ptx ? "PTX" : "cubin", (int)r,
                              log[0] ? log : "no log");
  }
  return BITNET_OK;
}

bitnet_status bitnet_gpu_model_create(const char *path,
                                      const bitnet_gpu_program *p,
                                      bitnet_gpu_model **out_model) {
  *out_model = NULL;
  char what[512];
  snprintf(what, sizeof(what), "cannot load GPU model '%s'", path);
  BITNET_RETURN_IF_ERROR(cuda_ready(what));
  bitnet_gpu_model *m = calloc(1, sizeof(*m));
  if (m == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_model_load: out of memory");
  m->program = p;
  m->functions = calloc((size_t)p->num_kernels + 1, sizeof(CUfunction));
  m->weights = calloc((size_t)p->num_weights + 1, sizeof(CUdeviceptr));
  bitnet_status status = BITNET_OK;
  if (!m->functions || !m->weights)
    status = bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                "bitnet_model_load: out of memory");
  int ordinal = 0, count = 0;
  const char *env = getenv("BITNET_CUDA_DEVICE");
  if (env && *env)
    ordinal = atoi(env);
  cuda.DeviceGetCount(&count);
  if (status == BITNET_OK && (ordinal < 0 || ordinal >= count))
    status = bitnet_status_make(BITNET_STATUS_UNAVAILABLE,
                                "%s: BITNET_CUDA_DEVICE=%d, but there are %d "
                                "GPUs",
                                what, ordinal, count);
  CUresult r = 0;
  if (status == BITNET_OK && (r = cuda.DeviceGet(&m->device, ordinal)) != 0)
    status = cuda_fail(r, "cuDeviceGet", what);
  if (status == BITNET_OK &&
      (r = cuda.DevicePrimaryCtxRetain(&m->context, m->device)) != 0) {
    m->context = NULL;
    status = cuda_fail(r, "cuDevicePrimaryCtxRetain", what);
  }
  if (status == BITNET_OK && (r = cuda.CtxSetCurrent(m->context)) != 0)
    status = cuda_fail(r, "cuCtxSetCurrent", what);
  int major = 0, minor = 0;
  if (status == BITNET_OK) {
    cuda.DeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR,
                            m->device);
    cuda.DeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR,
                            m->device);
    status = load_module(m, path, major, minor);
  }
  for (int32_t i = 0; status == BITNET_OK && i < p->num_kernels; ++i)
    if ((r = cuda.ModuleGetFunction(&m->functions[i], m->module,
                                    p->kernel_names[i])) != 0)
      status = cuda_fail(r, "cuModuleGetFunction", p->kernel_names[i]);
  for (int32_t i = 0; status == BITNET_OK && i < p->num_weights; ++i) {
    size_t bytes = (size_t)p->weights[i].bytes;
    if ((r = cuda.MemAlloc(&m->weights[i], bytes ? bytes : 1)) != 0)
      status = cuda_fail(r, "cuMemAlloc (weights)", what);
    else if (bytes &&
             (r = cuda.MemcpyHtoD(m->weights[i], p->weights[i].data, bytes)))
      status = cuda_fail(r, "cuMemcpyHtoD (weights)", what);
  }
  if (status != BITNET_OK) {
    bitnet_gpu_model_destroy(m);
    return status;
  }
  *out_model = m;
  return BITNET_OK;
}

/*===----------------------------------------------------------------------===*
 * Contexts and runs
 *===----------------------------------------------------------------------===*/

struct bitnet_gpu_context {
  bitnet_gpu_model *model;
  CUstream stream;
  CUdeviceptr workspace;
  int32_t num_buffers;
  CUdeviceptr *buffers;
  int64_t *sizes;
  int32_t *state; /* non-zero for inputs the run updates in place */
  void **params;  /* scratch for one launch's parameter addresses */
  CUdeviceptr *values;
  int32_t max_args;
  /* The whole launch list as one graph, captured at the first full run:
   * state 0 not tried yet, 1 ready, -1 not available (launch one by one). */
  CUgraphExec graph;
  int graph_state;
};

void bitnet_gpu_context_destroy(bitnet_gpu_context *c) {
  if (c == NULL)
    return;
  cuda.CtxSetCurrent(c->model->context);
  if (c->graph)
    cuda.GraphExecDestroy(c->graph);
  if (c->stream)
    cuda.StreamDestroy(c->stream);
  for (int32_t i = 0; c->buffers && i < c->num_buffers; ++i)
    if (c->buffers[i])
      cuda.MemFree(c->buffers[i]);
  if (c->workspace)
    cuda.MemFree(c->workspace);
  free(c->buffers);
  free(c->sizes);
  free(c->state);
  free(c->params);
  free(c->values);
  free(c);
}

bitnet_status bitnet_gpu_context_create(bitnet_gpu_model *model,
                                        const int64_t *sizes,
                                        const int32_t *state, int32_t count,
                                        bitnet_gpu_context **out_context) {
  static const char what[] = "bitnet_context_create (GPU)";
  *out_context = NULL;
  bitnet_gpu_context *c = calloc(1, sizeof(*c));
  if (c == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY, "%s: out of memory",
                              what);
  c->model = model;
  c->num_buffers = count;
  const bitnet_gpu_program *p = model->program;
  for (int32_t i = 0; i < p->num_launches; ++i)
    if (p->launches[i].num_args > c->max_args)
      c->max_args = p->launches[i].num_args;
  c->buffers = calloc((size_t)count + 1, sizeof(CUdeviceptr));
  c->sizes = calloc((size_t)count + 1, sizeof(int64_t));
  c->state = calloc((size_t)count + 1, sizeof(int32_t));
  c->params = calloc((size_t)c->max_args + 1, sizeof(void *));
  c->values = calloc((size_t)c->max_args + 1, sizeof(CUdeviceptr));
  bitnet_status status = BITNET_OK;
  if (!c->buffers || !c->sizes || !c->state || !c->params || !c->values)
    status = bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                "%s: out of memory", what);
  CUresult r = 0;
  if (status == BITNET_OK && (r = cuda.CtxSetCurrent(model->context)) != 0)
    status = cuda_fail(r, "cuCtxSetCurrent", what);
  if (status == BITNET_OK &&
      (r = cuda.StreamCreate(&c->stream, CU_STREAM_NON_BLOCKING)) != 0) {
    c->stream = NULL;
    status = cuda_fail(r, "cuStreamCreate", what);
  }
  for (int32_t i = 0; status == BITNET_OK && i < count; ++i) {
    c->sizes[i] = sizes[i];
    c->state[i] = state ? state[i] : 0;
    if ((r = cuda.MemAlloc(&c->buffers[i], sizes[i] > 0 ? (size_t)sizes[i] : 1)))
      status = cuda_fail(r, "cuMemAlloc (buffers)", what);
  }
  if (status == BITNET_OK && p->workspace_bytes > 0 &&
      (r = cuda.MemAlloc(&c->workspace, (size_t)p->workspace_bytes)) != 0)
    status = cuda_fail(r, "cuMemAlloc (workspace)", what);
  if (status != BITNET_OK) {
    bitnet_gpu_context_destroy(c);
    return status;
  }
  *out_context = c;
  return BITNET_OK;
}

/* Enqueues launches [first, end); with `profiler` (and its kernel hooks),
 * reports each, synchronising around it. */
static bitnet_status launch_range(bitnet_gpu_context *c, int32_t first,
                                  int32_t end,
                                  const bitnet_profiler *profiler) {
  static const char what[] = "GPU run";
  bitnet_gpu_model *m = c->model;
  const bitnet_gpu_program *p = m->program;
  int report = profiler && profiler->kernel_begin && profiler->kernel_end;
  for (int32_t i = first; i < end; ++i) {
    const bitnet_gpu_launch *l = &p->launches[i];
    for (int32_t a = 0; a < l->num_args; ++a) {
      const bitnet_gpu_arg *arg = &l->args[a];
      CUdeviceptr base = arg->kind == BITNET_GPU_ARG_BUFFER
                             ? c->buffers[arg->index]
                         : arg->kind == BITNET_GPU_ARG_WEIGHT
                             ? m->weights[arg->index]
                             : c->workspace;
      c->values[a] = base + (CUdeviceptr)arg->offset;
      c->params[a] = &c->values[a];
    }
    const char *name = p->kernel_names[l->kernel];
    if (report) {
      CU_CHECK(cuda.StreamSynchronize(c->stream), "cuStreamSynchronize", what);
      profiler->kernel_begin(profiler->user, name, l->bytes, l->flops);
    }
    CUresult r = cuda.LaunchKernel(m->functions[l->kernel], l->grid[0],
                                   l->grid[1], l->grid[2], l->block[0],
                                   l->block[1], l->block[2], l->shared_bytes,
                                   c->stream, c->params, NULL);
    if (r != 0)
      return cuda_fail(r, "cuLaunchKernel", name);
    if (report) {
      r = cuda.StreamSynchronize(c->stream);
      profiler->kernel_end(profiler->user, name);
      if (r != 0)
        return cuda_fail(r, "kernel", name);
    }
  }
  return BITNET_OK;
}

/* Captures the whole launch list into c->graph; on any failure graphs are
 * left off for this context (its runs launch one by one, as before). */
static void capture_graph(bitnet_gpu_context *c) {
  c->graph_state = -1;
  /* One launch gains nothing from a graph. */
  if (!cuda.has_graphs || c->model->program->num_launches < 2 ||
      cuda.StreamBeginCapture(c->stream, CU_STREAM_CAPTURE_MODE_RELAXED) != 0)
    return;
  bitnet_status launched =
      launch_range(c, 0, c->model->program->num_launches, NULL);
  CUgraph graph = NULL;
  CUresult r = cuda.StreamEndCapture(c->stream, &graph);
  CUgraphExec exec = NULL;
  if (launched == BITNET_OK && r == 0 && graph != NULL &&
      cuda.GraphInstantiate(&exec, graph, 0) == 0 && exec != NULL) {
    c->graph = exec;
    c->graph_state = 1;
  }
  bitnet_status_free(launched);
  if (graph != NULL)
    cuda.GraphDestroy(graph);
}

/* Enqueues the whole launch list: one graph launch where graphs work. */
static bitnet_status launch_all(bitnet_gpu_context *c) {
  if (c->graph_state == 0)
    capture_graph(c);
  if (c->graph_state > 0) {
    CU_CHECK(cuda.GraphLaunch(c->graph, c->stream), "cuGraphLaunch",
             "GPU run");
    return BITNET_OK;
  }
  return launch_range(c, 0, c->model->program->num_launches, NULL);
}

bitnet_status bitnet_gpu_run(bitnet_gpu_context *c, void *const *buffers,
                             int32_t num_inputs,
                             const bitnet_profiler *profiler) {
  static const char what[] = "GPU run";
  CU_CHECK(cuda.CtxSetCurrent(c->model->context), "cuCtxSetCurrent", what);
  for (int32_t i = 0; i < num_inputs; ++i)
    if (c->sizes[i] > 0)
      CU_CHECK(cuda.MemcpyHtoDAsync(c->buffers[i], buffers[i],
                                    (size_t)c->sizes[i], c->stream),
               "cuMemcpyHtoDAsync (inputs)", what);
  /* With a profiler every kernel is timed on its own. */
  BITNET_RETURN_IF_ERROR(
      profiler ? launch_range(c, 0, c->model->program->num_launches, profiler)
               : launch_all(c));
  /* Outputs, and the state inputs the run updated on the device. */
  for (int32_t i = 0; i < c->num_buffers; ++i)
    if (c->sizes[i] > 0 && (i >= num_inputs || c->state[i]))
      CU_CHECK(cuda.MemcpyDtoHAsync(buffers[i], c->buffers[i],
                                    (size_t)c->sizes[i], c->stream),
               "cuMemcpyDtoHAsync (outputs)", what);
  CU_CHECK(cuda.StreamSynchronize(c->stream), "cuStreamSynchronize", what);
  return BITNET_OK;
}

bitnet_status bitnet_gpu_upload(bitnet_gpu_context *c, int32_t index,
                                const void *data) {
  static const char what[] = "bitnet_context_gpu_upload";
  CU_CHECK(cuda.CtxSetCurrent(c->model->context), "cuCtxSetCurrent", what);
  if (c->sizes[index] > 0)
    CU_CHECK(cuda.MemcpyHtoDAsync(c->buffers[index], data,
                                  (size_t)c->sizes[index], c->stream),
             "cuMemcpyHtoDAsync", what);
  CU_CHECK(cuda.StreamSynchronize(c->stream), "cuStreamSynchronize", what);
  return BITNET_OK;
}

bitnet_status bitnet_gpu_download(bitnet_gpu_context *c, int32_t index,
                                  void *data) {
  static const char what[] = "bitnet_context_gpu_download";
  CU_CHECK(cuda.CtxSetCurrent(c->model->context), "cuCtxSetCurrent", what);
  if (c->sizes[index] > 0)
    CU_CHECK(cuda.MemcpyDtoHAsync(data, c->buffers[index],
                                  (size_t)c->sizes[index], c->stream),
             "cuMemcpyDtoHAsync", what);
  CU_CHECK(cuda.StreamSynchronize(c->stream), "cuStreamSynchronize", what);
  return BITNET_OK;
}

bitnet_status bitnet_gpu_enqueue(bitnet_gpu_context *c, int32_t first,
                                 int32_t count) {
  CU_CHECK(cuda.CtxSetCurrent(c->model->context), "cuCtxSetCurrent",
           "bitnet_context_gpu_launch");
  if (first == 0 && count == c->model->program->num_launches)
    return launch_all(c);
  return launch_range(c, first, first + count, NULL);
}

bitnet_status bitnet_gpu_synchronize(bitnet_gpu_context *c) {
  static const char what[] = "bitnet_context_gpu_synchronize";
  CU_CHECK(cuda.CtxSetCurrent(c->model->context), "cuCtxSetCurrent", what);
  CU_CHECK(cuda.StreamSynchronize(c->stream), "cuStreamSynchronize", what);
  return BITNET_OK;
}

void *bitnet_gpu_stream(const bitnet_gpu_context *c) { return c->stream; }
