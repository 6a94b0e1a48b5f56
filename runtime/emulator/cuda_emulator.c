/*===- cuda_emulator.c - The CUDA driver calls of libbitnet_rt, on the host -===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * A stand-in for libcuda.so.1 with the driver calls libbitnet_rt makes, for
 * running GPU models on a machine without a GPU (tests, debugging). Load it
 * with BITNET_CUDA_DRIVER=/path/to/libbitnet_cuda_emulator.so. It runs the
 * host builds of the kernels that `bitnet-compile --target=nvptx
 * --gpu-emulation` puts in the model (bitnet_rt/gpu_emulation.h), found
 * through the shared object that holds the module image.
 *
 * "Device" memory is host memory, filled with 0xff bytes when allocated (as
 * a GPU's is uninitialised; NaN as f32), and every call checks what a
 * driver would reject or a GPU would fault on, with a message on stderr:
 * copies and kernel parameters outside an allocation, misaligned
 * parameters, a launch with another block size than the kernel was built
 * for. A block's threads run as fibers, one at a time, switching at
 * barriers and warp shuffles; a barrier or shuffle that not every thread
 * (lane) reaches fails the launch, as does an out-of-bounds access the
 * kernel's checks report, or a race: a byte that one thread writes and
 * another thread of the block reads or writes with no barrier between, or
 * another block of the launch at all (every access is recorded in shadow
 * memory: the last writer and reader of each byte, and when). A failure is
 * sticky, as on a GPU, until the primary context is released.
 *
 * With BITNET_CUDA_EMULATOR_PROFILE=1 it also reports, when the process
 * exits, how well each kernel's global memory accesses coalesce: for every
 * warp-wide access (the k-th load, or store, of each lane of a warp, which is
 * one instruction where the lanes take the same path), the distinct bytes its
 * lanes ask for against the 32-byte sectors that hold them, which is what
 * a GPU's memory system moves.
 *
 * Graphs: a stream's launches can be captured (cuStreamBeginCapture) and
 * replayed (cuGraphLaunch); copies on the captured stream and its
 * synchronisation during a capture are refused.
 *
 * Environment: BITNET_CUDA_EMULATOR_SM (the compute capability reported,
 * default 90), BITNET_CUDA_EMULATOR_PROFILE.
 *
 *===----------------------------------------------------------------------===*/

#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>

#include "bitnet_rt/gpu_emulation.h"

#define EXPORT __attribute__((visibility("default")))

typedef int CUresult;
typedef int CUdevice;
typedef unsigned long long CUdeviceptr;

enum {
  CUDA_SUCCESS = 0,
  CUDA_ERROR_INVALID_VALUE = 1,
  CUDA_ERROR_OUT_OF_MEMORY = 2,
  CUDA_ERROR_NOT_INITIALIZED = 3,
  CUDA_ERROR_INVALID_DEVICE = 101,
  CUDA_ERROR_INVALID_IMAGE = 200,
  CUDA_ERROR_INVALID_HANDLE = 400,
  CUDA_ERROR_NOT_FOUND = 500,
  CUDA_ERROR_ILLEGAL_ADDRESS = 700,
  CUDA_ERROR_MISALIGNED_ADDRESS = 716,
  CUDA_ERROR_LAUNCH_FAILED = 719,
};

enum {
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75,
  CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR = 76,
  CU_JIT_ERROR_LOG_BUFFER = 5,
  CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES = 6,
};

/* Each fiber's stack is followed (below it) by an inaccessible guard page,
 * so that a kernel overflowing it stops at once. */
enum { kMaxThreads = 1024, kWarp = 32, kStackBytes = 64 * 1024,
       kGuardBytes = 4096, kFiberBytes = kStackBytes + kGuardBytes };

/*===----------------------------------------------------------------------===*
 * State and errors
 *===----------------------------------------------------------------------===*/

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int initialized;
static int context_refs;
static CUresult sticky;      /* a failed launch, until the context goes */
static char last_message[1024];
static int context_token, stream_token;
static long long graph_launches;

/* Records `code` with a message (also on stderr); returns `code`. */
static CUresult fail(CUresult code, const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  vsnprintf(last_message, sizeof(last_message), format, ap);
  va_end(ap);
  fprintf(stderr, "bitnet CUDA emulator: %s\n", last_message);
  return code;
}

/* Who last accessed a byte: the interval between barriers (epoch, see
 * run_block; 0 for never), the thread in its block, and for reads whether
 * more than one thread read it in that interval. */
typedef struct shadow {
  uint32_t epoch;
  uint16_t thread;
  uint16_t many;
} shadow;

typedef struct allocation {
  char *base;
  size_t bytes;
  shadow *writes, *reads; /* per byte, made at the first kernel access */
} allocation;
static allocation *allocations;
static size_t num_allocations, cap_allocations;

static int inside(const allocation *a, uintptr_t p, size_t bytes) {
  uintptr_t base = (uintptr_t)a->base;
  return p >= base && p - base <= a->bytes && bytes <= a->bytes - (p - base);
}

/* The allocation holding [p, p + bytes), or NULL. */
static allocation *find_allocation(uintptr_t p, size_t bytes) {
  for (size_t i = 0; i < num_allocations; ++i)
    if (inside(&allocations[i], p, bytes))
      return &allocations[i];
  return NULL;
}

static void free_allocation(allocation *a) {
  free(a->base);
  free(a->writes);
  free(a->reads);
}

/*===----------------------------------------------------------------------===*
 * Device, context, stream
 *===----------------------------------------------------------------------===*/

EXPORT CUresult cuInit(unsigned int flags) {
  (void)flags;
  initialized = 1;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetCount(int *count) {
  if (!initialized)
    return CUDA_ERROR_NOT_INITIALIZED;
  *count = 1;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGet(CUdevice *device, int ordinal) {
  if (ordinal != 0)
    return fail(CUDA_ERROR_INVALID_DEVICE, "there is one device, not %d",
                ordinal + 1);
  *device = 0;
  return CUDA_SUCCESS;
}

static int emulated_sm(void) {
  const char *env = getenv("BITNET_CUDA_EMULATOR_SM");
  int sm = env && *env ? atoi(env) : 90;
  return sm > 0 ? sm : 90;
}

EXPORT CUresult cuDeviceGetAttribute(int *value, int attribute,
                                     CUdevice device) {
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  if (attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
    *value = emulated_sm() / 10;
  else if (attribute == CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
    *value = emulated_sm() % 10;
  else
    return fail(CUDA_ERROR_INVALID_VALUE,
                "device attribute %d is not emulated", attribute);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDeviceGetName(char *name, int length, CUdevice device) {
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  snprintf(name, (size_t)length, "bitnet CUDA emulator (sm_%d)",
           emulated_sm());
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRetain(void **context, CUdevice device) {
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  ++context_refs;
  pthread_mutex_unlock(&lock);
  *context = &context_token;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuDevicePrimaryCtxRelease_v2(CUdevice device) {
  if (device != 0)
    return CUDA_ERROR_INVALID_DEVICE;
  pthread_mutex_lock(&lock);
  if (context_refs > 0 && --context_refs == 0)
    sticky = CUDA_SUCCESS;
  pthread_mutex_unlock(&lock);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuCtxSetCurrent(void *context) {
  if (context != NULL && context != &context_token)
    return fail(CUDA_ERROR_INVALID_HANDLE, "cuCtxSetCurrent: unknown context");
  return CUDA_SUCCESS;
}

EXPORT CUresult cuStreamCreate(void **stream, unsigned int flags) {
  (void)flags;
  *stream = &stream_token;
  return sticky;
}

EXPORT CUresult cuStreamDestroy_v2(void *stream) {
  return stream == &stream_token ? CUDA_SUCCESS : CUDA_ERROR_INVALID_HANDLE;
}

/* Whether a capture is in progress (copies are not captured). */
static int capturing_any(void);

/* Work runs when it is enqueued, so there is nothing to wait for but the
 * error of a failed launch. */
EXPORT CUresult cuStreamSynchronize(void *stream) {
  if (stream != NULL && stream != &stream_token)
    return CUDA_ERROR_INVALID_HANDLE;
  if (capturing_any())
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuStreamSynchronize while the stream is being captured");
  return sticky;
}

/*===----------------------------------------------------------------------===*
 * Memory
 *===----------------------------------------------------------------------===*/

EXPORT CUresult cuMemAlloc_v2(CUdeviceptr *out, size_t bytes) {
  if (sticky)
    return sticky;
  if (bytes == 0)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuMemAlloc of 0 bytes");
  void *p = NULL;
  if (posix_memalign(&p, 256, bytes) != 0)
    return CUDA_ERROR_OUT_OF_MEMORY;
  memset(p, 0xff, bytes);
  pthread_mutex_lock(&lock);
  if (num_allocations == cap_allocations) {
    size_t cap = cap_allocations ? 2 * cap_allocations : 64;
    allocation *grown = realloc(allocations, cap * sizeof(*grown));
    if (!grown) {
      pthread_mutex_unlock(&lock);
      free(p);
      return CUDA_ERROR_OUT_OF_MEMORY;
    }
    allocations = grown;
    cap_allocations = cap;
  }
  allocation fresh = {p, bytes, NULL, NULL};
  allocations[num_allocations++] = fresh;
  pthread_mutex_unlock(&lock);
  *out = (CUdeviceptr)(uintptr_t)p;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemFree_v2(CUdeviceptr p) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < num_allocations; ++i)
    if ((uintptr_t)allocations[i].base == p) {
      free_allocation(&allocations[i]);
      allocations[i] = allocations[--num_allocations];
      pthread_mutex_unlock(&lock);
      return CUDA_SUCCESS;
    }
  pthread_mutex_unlock(&lock);
  return fail(CUDA_ERROR_INVALID_VALUE,
              "cuMemFree of %#llx, which is not an allocation", p);
}

static CUresult copy(const char *call, void *dst, const void *src,
                     size_t bytes, CUdeviceptr device, void *stream) {
  if (sticky)
    return sticky;
  if (stream == &stream_token && capturing_any())
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s on a stream being captured into a graph (copies are not "
                "captured here)",
                call);
  pthread_mutex_lock(&lock);
  allocation *a = find_allocation((uintptr_t)device, bytes);
  pthread_mutex_unlock(&lock);
  if (!a)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s of %zu bytes at %#llx: not inside one allocation", call,
                bytes, device);
  memcpy(dst, src, bytes);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void *src,
                                size_t bytes) {
  return copy("cuMemcpyHtoD", (void *)(uintptr_t)dst, src, bytes, dst, NULL);
}

EXPORT CUresult cuMemcpyHtoDAsync_v2(CUdeviceptr dst, const void *src,
                                     size_t bytes, void *stream) {
  return copy("cuMemcpyHtoDAsync", (void *)(uintptr_t)dst, src, bytes, dst,
              stream);
}

EXPORT CUresult cuMemcpyDtoHAsync_v2(void *dst, CUdeviceptr src, size_t bytes,
                                     void *stream) {
  return copy("cuMemcpyDtoHAsync", dst, (const void *)(uintptr_t)src, bytes,
              src, stream);
}

/*===----------------------------------------------------------------------===*
 * Modules and functions
 *===----------------------------------------------------------------------===*/

typedef struct emu_function emu_function;

typedef struct emu_module {
  void *handle;    /* the shared object that holds the image */
  char *ptx;       /* a copy of the image when it is PTX text, else NULL */
  emu_function *functions; /* owned, freed with the module */
  char path[512];
} emu_module;

struct emu_function {
  emu_module *module;
  emu_function *next;
  bitnet_emu_kernel_fn run;
  const int64_t *info;
  char name[256];
};

EXPORT CUresult cuModuleLoadDataEx(emu_module **out, const void *image,
                                   unsigned int num_options, int *options,
                                   void **values) {
  char *log = NULL;
  size_t log_bytes = 0;
  for (unsigned i = 0; i < num_options; ++i) {
    if (options[i] == CU_JIT_ERROR_LOG_BUFFER)
      log = values[i];
    else if (options[i] == CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES)
      log_bytes = (size_t)(uintptr_t)values[i];
  }
  Dl_info where;
  void *handle = NULL;
  if (dladdr(image, &where) && where.dli_fname)
    handle = dlopen(where.dli_fname, RTLD_NOW | RTLD_NOLOAD);
  if (!handle) {
    CUresult r = fail(CUDA_ERROR_INVALID_IMAGE,
                      "the module image is not inside a loaded shared object: "
                      "the emulator runs the host kernels of models built "
                      "with --gpu-emulation");
    if (log && log_bytes)
      snprintf(log, log_bytes, "%s", last_message);
    return r;
  }
  emu_module *m = calloc(1, sizeof(*m));
  if (!m) {
    dlclose(handle);
    return CUDA_ERROR_OUT_OF_MEMORY;
  }
  m->handle = handle;
  snprintf(m->path, sizeof(m->path), "%s", where.dli_fname);
  if (memcmp(image, "\x7f" "ELF", 4) != 0)
    m->ptx = strdup(image);
  *out = m;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuModuleUnload(emu_module *m) {
  if (!m)
    return CUDA_ERROR_INVALID_HANDLE;
  dlclose(m->handle);
  while (m->functions) {
    emu_function *next = m->functions->next;
    free(m->functions);
    m->functions = next;
  }
  free(m->ptx);
  free(m);
  return CUDA_SUCCESS;
}

/* The number of parameters of `.entry name(...)` in `ptx`, or -1 when it
 * has no such entry. */
static int ptx_params(const char *ptx, const char *name) {
  size_t len = strlen(name);
  for (const char *at = strstr(ptx, ".entry "); at;
       at = strstr(at + 1, ".entry ")) {
    const char *n = at + 7;
    while (*n == ' ')
      ++n;
    if (strncmp(n, name, len) != 0 || (n[len] != '(' && n[len] != ' ' &&
                                       n[len] != '\n'))
      continue;
    const char *open = strchr(n, '('), *close = open ? strchr(open, ')') : 0;
    if (!close)
      return -1;
    int count = 0;
    for (const char *p = strstr(open, ".param"); p && p < close;
         p = strstr(p + 1, ".param"))
      ++count;
    return count;
  }
  return -1;
}

EXPORT CUresult cuModuleGetFunction(emu_function **out, emu_module *m,
                                    const char *name) {
  if (!m)
    return CUDA_ERROR_INVALID_HANDLE;
  char symbol[300];
  snprintf(symbol, sizeof(symbol), "%s__bitnet_emu", name);
  void *run = dlsym(m->handle, symbol);
  snprintf(symbol, sizeof(symbol), "%s__bitnet_emu_info", name);
  const int64_t *info = dlsym(m->handle, symbol);
  if (!run || !info)
    return fail(CUDA_ERROR_NOT_FOUND,
                "kernel %s has no host build in %s: compile the model with "
                "--gpu-emulation",
                name, m->path);
  if (m->ptx) {
    int params = ptx_params(m->ptx, name);
    if (params < 0)
      return fail(CUDA_ERROR_NOT_FOUND, "the PTX of %s has no entry %s",
                  m->path, name);
    if (params != info[BITNET_EMU_INFO_PARAMS])
      return fail(CUDA_ERROR_INVALID_IMAGE,
                  "entry %s takes %d parameters in the PTX, but its host "
                  "build %lld",
                  name, params, (long long)info[BITNET_EMU_INFO_PARAMS]);
  }
  emu_function *f = calloc(1, sizeof(*f));
  if (!f)
    return CUDA_ERROR_OUT_OF_MEMORY;
  f->module = m;
  f->next = m->functions;
  m->functions = f;
  f->run = (bitnet_emu_kernel_fn)run;
  f->info = info;
  snprintf(f->name, sizeof(f->name), "%s", name);
  *out = f;
  return CUDA_SUCCESS;
}

/*===----------------------------------------------------------------------===*
 * Blocks as fibers
 *===----------------------------------------------------------------------===*/

enum { RUNNABLE, AT_BARRIER, AT_SHUFFLE, DONE };

typedef struct fiber {
  bitnet_emu_thread thread; /* first: the kernel gets its address */
  ucontext_t context;
  int state;
  int32_t mode, value, offset, width, result;
  uint32_t accesses[2]; /* global loads, stores so far in the block (profile) */
} fiber;

static fiber *fibers;          /* kMaxThreads */
static char *stacks;           /* kMaxThreads * kFiberBytes */
static ucontext_t scheduler;
static fiber *current;
static const emu_function *running;
static void *const *running_args;
static const char *fault_message;
static CUresult fault_code;
static char race_message[512];
/* Intervals between barriers are numbered across launches: the launch's
 * blocks have [launch_epoch, block_epoch), the running block's own
 * intervals start at block_epoch, and `epoch` is the current one. */
static uint32_t epoch, block_epoch, launch_epoch;
static allocation *shared_memory; /* the launch's workgroup arrays */
static int64_t num_shared;
static allocation *last_hit;

static void emu_barrier(bitnet_emu_thread *t) {
  fiber *f = (fiber *)t;
  f->state = AT_BARRIER;
  swapcontext(&f->context, &scheduler);
}

static int32_t emu_shuffle(bitnet_emu_thread *t, int32_t mode, int32_t value,
                           int32_t offset, int32_t width) {
  fiber *f = (fiber *)t;
  f->state = AT_SHUFFLE;
  f->mode = mode;
  f->value = value;
  f->offset = offset;
  f->width = width;
  swapcontext(&f->context, &scheduler);
  return f->result;
}

/* Ends the launch with `code`; the thread is not resumed. */
static void stop(bitnet_emu_thread *t, CUresult code, const char *message) {
  fiber *f = (fiber *)t;
  fault_message = message;
  fault_code = code;
  f->state = DONE;
  setcontext(&scheduler);
}

static void emu_fault(bitnet_emu_thread *t, const char *message) {
  stop(t, CUDA_ERROR_ILLEGAL_ADDRESS, message);
}

/* The region (allocation or workgroup array) of [address, address + bytes). */
static allocation *region_of(uint64_t address, size_t bytes, int *shared) {
  for (int64_t i = 0; i < num_shared; ++i)
    if (inside(&shared_memory[i], (uintptr_t)address, bytes)) {
      *shared = 1;
      return &shared_memory[i];
    }
  *shared = 0;
  if (last_hit && inside(last_hit, (uintptr_t)address, bytes))
    return last_hit;
  return last_hit = find_allocation((uintptr_t)address, bytes);
}

static void race(bitnet_emu_thread *t, const char *what, int shared,
                 const allocation *a, size_t offset, const shadow *other,
                 const char *other_did) {
  fiber *f = (fiber *)t;
  int tid = (int)(f - fibers);
  if (other->epoch < block_epoch)
    snprintf(race_message, sizeof(race_message),
             "race on byte %zu of a %zu-byte %s: thread %d %s it after "
             "another block of the launch %s it",
             offset, a->bytes, shared ? "workgroup array" : "allocation", tid,
             what, other_did);
  else if (other->many)
    snprintf(race_message, sizeof(race_message),
             "race on byte %zu of a %zu-byte %s: thread %d %s it after "
             "other threads %s it, with no barrier between",
             offset, a->bytes, shared ? "workgroup array" : "allocation", tid,
             what, other_did);
  else
    snprintf(race_message, sizeof(race_message),
             "race on byte %zu of a %zu-byte %s: thread %d %s it after "
             "thread %d %s it, with no barrier between",
             offset, a->bytes, shared ? "workgroup array" : "allocation", tid,
             what, (int)other->thread, other_did);
  stop(t, CUDA_ERROR_LAUNCH_FAILED, race_message);
}

/*===----------------------------------------------------------------------===*
 * Coalescing profile (BITNET_CUDA_EMULATOR_PROFILE=1)
 *===----------------------------------------------------------------------===*/

enum { kSectorBytes = 32 };

enum { kProfiledParams = 16 };

/* Per parameter (the last slot: anything else), [0] loads, [1] stores:
 * the distinct bytes each warp-wide access asks for, and the sectors
 * holding them. */
typedef struct traffic {
  int64_t used[2], sectors[2];
} traffic;

typedef struct kernel_profile {
  char name[256];
  int64_t launches;
  traffic params[kProfiledParams + 1];
} kernel_profile;

static int profiling; /* 1 once the report at exit is registered */
static kernel_profile *profiles;
static size_t num_profiles;
static kernel_profile *profile; /* the running launch's kernel */
static uint64_t param_begin[kProfiledParams], param_end[kProfiledParams];
static int num_param_ranges;
/* The distinct (warp, access number, load/store, sector) of the running
 * block: open addressing, entries of an older block are stale. */
typedef struct sector_key {
  uint64_t sector;
  uint32_t access, warp_write; /* warp << 1 | write */
  uint32_t block;              /* the block the entry belongs to, from 1 */
  uint32_t bytes;              /* mask of the sector's bytes asked for */
} sector_key;
static sector_key *sector_set;
static size_t sector_cap, sector_count;
static uint32_t sector_block;

static void write_profiles(FILE *out) {
  if (num_profiles == 0)
    return;
  fprintf(out,
          "\nbitnet CUDA emulator: global memory coalescing, per kernel "
          "parameter. For each warp-wide access, the distinct bytes its lanes "
          "ask for (used) against the 32-byte sectors that hold them (moved); "
          "bytes a warp reads again are counted again, as if no cache kept "
          "them.\n%-44s %5s %8s %12s %12s %6s %12s %12s %6s\n",
          "kernel", "param", "launches", "load used", "moved", "eff",
          "store used", "moved", "eff");
  for (size_t i = 0; i < num_profiles; ++i) {
    const kernel_profile *k = &profiles[i];
    for (int p = 0; p <= kProfiledParams; ++p) {
      const traffic *t = &k->params[p];
      if (t->sectors[0] == 0 && t->sectors[1] == 0)
        continue;
      double eff[2];
      for (int w = 0; w < 2; ++w)
        eff[w] = t->sectors[w] ? 100.0 * (double)t->used[w] /
                                     (double)(t->sectors[w] * kSectorBytes)
                               : 0.0;
      char param[8];
      snprintf(param, sizeof(param), p < kProfiledParams ? "%d" : "other", p);
      fprintf(out,
              "%-44s %5s %8lld %12lld %12lld %5.1f%% %12lld %12lld %5.1f%%\n",
              k->name, param, (long long)k->launches, (long long)t->used[0],
              (long long)(t->sectors[0] * kSectorBytes), eff[0],
              (long long)t->used[1], (long long)(t->sectors[1] * kSectorBytes),
              eff[1]);
    }
  }
}

static void print_profiles(void) { write_profiles(stderr); }

/* The profile so far as text (what is printed at exit), NUL-terminated in
 * `buf` of `bytes`; returns the length of the whole text. */
EXPORT size_t bitnet_cuda_emulator_profile(char *buf, size_t bytes) {
  char *text = NULL;
  size_t length = 0;
  FILE *out = open_memstream(&text, &length);
  if (!out)
    return 0;
  pthread_mutex_lock(&lock);
  write_profiles(out);
  pthread_mutex_unlock(&lock);
  fclose(out);
  if (buf && bytes)
    snprintf(buf, bytes, "%s", text ? text : "");
  free(text);
  return length;
}

/* Whether to profile this launch (read at every launch). */
static int profile_on(void) {
  const char *env = getenv("BITNET_CUDA_EMULATOR_PROFILE");
  int on = env && *env && strcmp(env, "0") != 0;
  if (on && !profiling) {
    profiling = 1;
    atexit(print_profiles);
  }
  return on;
}

static kernel_profile *profile_of(const char *name) {
  for (size_t i = 0; i < num_profiles; ++i)
    if (strcmp(profiles[i].name, name) == 0)
      return &profiles[i];
  kernel_profile *grown =
      realloc(profiles, (num_profiles + 1) * sizeof(kernel_profile));
  if (!grown)
    return NULL;
  profiles = grown;
  kernel_profile *k = &profiles[num_profiles++];
  memset(k, 0, sizeof(*k));
  snprintf(k->name, sizeof(k->name), "%s", name);
  return k;
}

/* Marks bytes `mask` of the sector in the running block's set; returns the
 * entry, or NULL without memory. */
static sector_key *add_sector(uint64_t sector, uint32_t access,
                              uint32_t warp_write) {
  if (2 * (sector_count + 1) > sector_cap) {
    size_t cap = sector_cap ? 2 * sector_cap : 4096;
    sector_key *grown = calloc(cap, sizeof(sector_key));
    if (!grown)
      return NULL;
    for (size_t i = 0; i < sector_cap; ++i) {
      sector_key e = sector_set[i];
      if (e.block != sector_block)
        continue;
      uint64_t h = (e.sector * 0x9e3779b97f4a7c15ull) ^
                   ((uint64_t)e.access << 20) ^ e.warp_write;
      size_t at = (size_t)(h * 0xff51afd7ed558ccdull >> 17) & (cap - 1);
      while (grown[at].block == sector_block)
        at = (at + 1) & (cap - 1);
      grown[at] = e;
    }
    free(sector_set);
    sector_set = grown;
    sector_cap = cap;
  }
  uint64_t h = (sector * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)access << 20) ^
               warp_write;
  size_t at = (size_t)(h * 0xff51afd7ed558ccdull >> 17) & (sector_cap - 1);
  for (;; at = (at + 1) & (sector_cap - 1)) {
    sector_key *e = &sector_set[at];
    if (e->block != sector_block) {
      e->sector = sector;
      e->access = access;
      e->warp_write = warp_write;
      e->block = sector_block;
      e->bytes = 0;
      ++sector_count;
      return e;
    }
    if (e->sector == sector && e->access == access &&
        e->warp_write == warp_write)
      return e;
  }
}

static void profile_access(fiber *f, uint64_t address, int32_t bytes,
                           int32_t write) {
  if (!profile)
    return;
  uint32_t tid = (uint32_t)(f - fibers);
  uint32_t warp_write = (tid / kWarp) << 1 | (write ? 1u : 0u);
  uint32_t access = f->accesses[write ? 1 : 0]++;
  int w = write ? 1 : 0;
  int p = 0;
  while (p < num_param_ranges &&
         !(address >= param_begin[p] && address < param_end[p]))
    ++p;
  traffic *t = &profile->params[p < num_param_ranges ? p : kProfiledParams];
  uint64_t end = address + (uint64_t)bytes;
  for (uint64_t s = address / kSectorBytes; s * kSectorBytes < end; ++s) {
    sector_key *e = add_sector(s, access, warp_write);
    if (!e)
      return;
    uint64_t lo = s * kSectorBytes > address ? s * kSectorBytes : address;
    uint64_t hi = (s + 1) * kSectorBytes < end ? (s + 1) * kSectorBytes : end;
    uint32_t mask = 0;
    for (uint64_t b = lo; b < hi; ++b)
      mask |= 1u << (b - s * kSectorBytes);
    if (e->bytes == 0)
      t->sectors[w]++;
    t->used[w] += __builtin_popcount(mask & ~e->bytes);
    e->bytes |= mask;
  }
}

static void emu_access(bitnet_emu_thread *t, uint64_t address, int32_t bytes,
                       int32_t write) {
  int shared = 0;
  allocation *a = region_of(address, (size_t)bytes, &shared);
  if (!a) {
    snprintf(race_message, sizeof(race_message),
             "a %d-byte %s at %#llx is outside every allocation", (int)bytes,
             write ? "store" : "load", (unsigned long long)address);
    stop(t, CUDA_ERROR_ILLEGAL_ADDRESS, race_message);
  }
  if (!a->writes) {
    a->writes = calloc(a->bytes, sizeof(shadow));
    a->reads = calloc(a->bytes, sizeof(shadow));
    if (!a->writes || !a->reads)
      stop(t, CUDA_ERROR_OUT_OF_MEMORY, "out of memory for shadow memory");
  }
  fiber *f = (fiber *)t;
  uint16_t tid = (uint16_t)(f - fibers);
  if (!shared)
    profile_access(f, address, bytes, write);
  /* Workgroup arrays belong to the block; allocations to the launch. */
  uint32_t since = shared ? block_epoch : launch_epoch;
  size_t first = (size_t)((uintptr_t)address - (uintptr_t)a->base);
  for (size_t at = first; at < first + (size_t)bytes; ++at) {
    shadow *w = &a->writes[at], *r = &a->reads[at];
    int conflict = w->epoch >= since &&
                   (w->epoch < block_epoch ||
                    (w->epoch == epoch && w->thread != tid));
    if (conflict)
      race(t, write ? "writes" : "reads", shared, a, at, w, "wrote");
    if (write) {
      conflict = r->epoch >= since &&
                 (r->epoch < block_epoch ||
                  (r->epoch == epoch && (r->many || r->thread != tid)));
      if (conflict)
        race(t, "writes", shared, a, at, r, "read");
      w->epoch = epoch;
      w->thread = tid;
    } else if (r->epoch == epoch && r->thread != tid) {
      r->many = 1;
    } else if (r->epoch != epoch) {
      r->epoch = epoch;
      r->thread = tid;
      r->many = 0;
    }
  }
}

static const bitnet_emu_ops ops = {emu_barrier, emu_shuffle, emu_fault,
                                   emu_access};

static void fiber_main(void) {
  running->run(running_args, &ops, &current->thread);
  current->state = DONE;
  /* uc_link returns to the scheduler. */
}

/* Resolves the shuffle the lanes [first, first + count) are all at. */
static CUresult resolve_shuffle(fiber *lanes, int count, const char *where) {
  for (int l = 0; l < count; ++l) {
    fiber *f = &lanes[l];
    if (f->mode != lanes[0].mode || f->width != lanes[0].width)
      return fail(CUDA_ERROR_LAUNCH_FAILED,
                  "%s: the lanes of a warp are at different shuffles", where);
    int width = f->width, src = l;
    if (width < 1 || width > kWarp)
      return fail(CUDA_ERROR_LAUNCH_FAILED, "%s: shuffle width %d", where,
                  width);
    switch (f->mode) {
    case BITNET_EMU_SHUFFLE_XOR: src = l ^ f->offset; break;
    case BITNET_EMU_SHUFFLE_DOWN: src = l + f->offset; break;
    case BITNET_EMU_SHUFFLE_UP: src = l - f->offset; break;
    default: src = f->offset; break;
    }
    int valid = src >= 0 && src < width;
    if (valid && src >= count)
      return fail(CUDA_ERROR_LAUNCH_FAILED,
                  "%s: lane %d shuffles from lane %d, which the block does "
                  "not have",
                  where, l, src);
    f->result = valid ? lanes[src].value : f->value;
  }
  for (int l = 0; l < count; ++l)
    lanes[l].state = RUNNABLE;
  return CUDA_SUCCESS;
}

/* Runs block (bx, by, bz) of `count` threads to the end. */
static CUresult run_block(const uint32_t grid[3], const uint32_t block[3],
                          const uint32_t id[3], int count) {
  char where[400];
  snprintf(where, sizeof(where), "kernel %s, block (%u, %u, %u)",
           running->name, id[0], id[1], id[2]);
  for (int t = 0; t < count; ++t) {
    fiber *f = &fibers[t];
    memset(&f->thread, 0, sizeof(f->thread));
    f->thread.thread_id[0] = (int32_t)(t % block[0]);
    f->thread.thread_id[1] = (int32_t)(t / block[0] % block[1]);
    f->thread.thread_id[2] = (int32_t)(t / (block[0] * block[1]));
    for (int d = 0; d < 3; ++d) {
      f->thread.block_id[d] = (int32_t)id[d];
      f->thread.block_dim[d] = (int32_t)block[d];
      f->thread.grid_dim[d] = (int32_t)grid[d];
    }
    getcontext(&f->context);
    f->context.uc_stack.ss_sp = stacks + (size_t)t * kFiberBytes + kGuardBytes;
    f->context.uc_stack.ss_size = kStackBytes;
    f->context.uc_link = &scheduler;
    makecontext(&f->context, fiber_main, 0);
    f->state = RUNNABLE;
  }
  block_epoch = ++epoch;
  for (int t = 0; t < count; ++t)
    fibers[t].accesses[0] = fibers[t].accesses[1] = 0;
  ++sector_block; /* a fresh sector set: entries of older blocks are stale */
  sector_count = 0;
  for (;;) {
    int ran = 0;
    for (int t = 0; t < count; ++t) {
      if (fibers[t].state != RUNNABLE)
        continue;
      current = &fibers[t];
      swapcontext(&scheduler, &fibers[t].context);
      ran = 1;
      if (fault_message)
        return fail(fault_code, "%s, thread %d: %s", where, t, fault_message);
    }
    int done = 0, at_barrier = 0, released = 0;
    for (int t = 0; t < count; ++t) {
      done += fibers[t].state == DONE;
      at_barrier += fibers[t].state == AT_BARRIER;
    }
    if (done == count)
      return CUDA_SUCCESS;
    for (int w = 0; w < count; w += kWarp) {
      int lanes = count - w < kWarp ? count - w : kWarp, at_shuffle = 0;
      for (int l = 0; l < lanes; ++l)
        at_shuffle += fibers[w + l].state == AT_SHUFFLE;
      if (at_shuffle == 0)
        continue;
      if (at_shuffle < lanes) {
        int other = 0;
        while (fibers[w + other].state == AT_SHUFFLE)
          ++other;
        if (fibers[w + other].state == RUNNABLE)
          continue;
        return fail(CUDA_ERROR_LAUNCH_FAILED,
                    "%s: warp %d: %d of its %d lanes wait at a shuffle, "
                    "lane %d %s",
                    where, w / kWarp, at_shuffle, lanes, other,
                    fibers[w + other].state == DONE ? "has returned"
                                                    : "waits at a barrier");
      }
      CUresult r = resolve_shuffle(&fibers[w], lanes, where);
      if (r)
        return r;
      released = 1;
    }
    if (at_barrier > 0 && at_barrier + done == count) {
      if (done > 0)
        return fail(CUDA_ERROR_LAUNCH_FAILED,
                    "%s: %d of %d threads wait at a barrier that the others "
                    "returned without reaching",
                    where, at_barrier, count);
      for (int t = 0; t < count; ++t)
        fibers[t].state = RUNNABLE;
      ++epoch; /* accesses after the barrier are ordered after those before */
      released = 1;
    }
    if (!ran && !released)
      return fail(CUDA_ERROR_LAUNCH_FAILED,
                  "%s: the threads wait on each other (a barrier inside a "
                  "branch, or a shuffle with lanes at a barrier)",
                  where);
  }
}

static CUresult launch_now(emu_function *f, unsigned gx, unsigned gy,
                           unsigned gz, unsigned bx, unsigned by, unsigned bz,
                           unsigned shared_bytes, void **params, void **extra) {
  if (!f)
    return CUDA_ERROR_INVALID_HANDLE;
  if (sticky)
    return sticky;
  const int64_t *info = f->info;
  int64_t num_params = info[BITNET_EMU_INFO_PARAMS];
  int64_t num_workgroup = info[BITNET_EMU_INFO_WORKGROUP];
  const int64_t *workgroup_bytes = info + BITNET_EMU_INFO_WORKGROUP_BYTES;
  const int64_t *param_bytes = workgroup_bytes + num_workgroup;
  const int64_t *param_align = param_bytes + num_params;
  const uint32_t grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
  uint64_t threads = (uint64_t)bx * by * bz;
  if (extra != NULL || (num_params > 0 && params == NULL))
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s: parameters must come as kernelParams", f->name);
  if (gx == 0 || gy == 0 || gz == 0 || threads == 0 || threads > kMaxThreads)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s: grid (%u, %u, %u), block (%u, %u, %u)", f->name, gx, gy,
                gz, bx, by, bz);
  for (int d = 0; d < 3; ++d)
    if (info[BITNET_EMU_INFO_BLOCK + d] != 0 &&
        info[BITNET_EMU_INFO_BLOCK + d] != block[d])
      return fail(CUDA_ERROR_INVALID_VALUE,
                  "%s was built for blocks of (%lld, %lld, %lld) threads, "
                  "launched with (%u, %u, %u)",
                  f->name, (long long)info[BITNET_EMU_INFO_BLOCK],
                  (long long)info[BITNET_EMU_INFO_BLOCK + 1],
                  (long long)info[BITNET_EMU_INFO_BLOCK + 2], bx, by, bz);
  if (shared_bytes != 0)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s: dynamic shared memory is not emulated", f->name);

  pthread_mutex_lock(&lock);
  void **args = calloc((size_t)(num_params + num_workgroup + 1), sizeof(void *));
  CUresult r = args ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
  for (int64_t i = 0; r == CUDA_SUCCESS && i < num_params; ++i) {
    CUdeviceptr p = *(const CUdeviceptr *)params[i];
    if (!find_allocation((uintptr_t)p, (size_t)param_bytes[i]))
      r = fail(CUDA_ERROR_ILLEGAL_ADDRESS,
               "%s: parameter %lld (%#llx, %lld bytes) is not inside one "
               "allocation",
               f->name, (long long)i, p, (long long)param_bytes[i]);
    else if (param_align[i] > 1 && p % (CUdeviceptr)param_align[i] != 0)
      r = fail(CUDA_ERROR_MISALIGNED_ADDRESS,
               "%s: parameter %lld (%#llx) is not %lld-byte aligned", f->name,
               (long long)i, p, (long long)param_align[i]);
    else
      args[i] = (void *)(uintptr_t)p;
  }
  allocation *shared = calloc((size_t)num_workgroup + 1, sizeof(allocation));
  if (!shared)
    r = CUDA_ERROR_OUT_OF_MEMORY;
  for (int64_t i = 0; r == CUDA_SUCCESS && i < num_workgroup; ++i) {
    size_t bytes = (size_t)workgroup_bytes[i] + 1;
    shared[i].base = args[num_params + i] = malloc(bytes);
    shared[i].bytes = (size_t)workgroup_bytes[i];
    shared[i].writes = calloc(bytes, sizeof(shadow));
    shared[i].reads = calloc(bytes, sizeof(shadow));
    if (!shared[i].base || !shared[i].writes || !shared[i].reads)
      r = CUDA_ERROR_OUT_OF_MEMORY;
  }
  if (r == CUDA_SUCCESS && !fibers) {
    fibers = calloc(kMaxThreads, sizeof(fiber));
    stacks = mmap(NULL, (size_t)kMaxThreads * kFiberBytes,
                  PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (!fibers || stacks == MAP_FAILED) {
      free(fibers);
      fibers = NULL;
      r = CUDA_ERROR_OUT_OF_MEMORY;
    } else {
      for (int t = 0; t < kMaxThreads; ++t)
        mprotect(stacks + (size_t)t * kFiberBytes, kGuardBytes, PROT_NONE);
    }
  }
  running = f;
  running_args = args;
  fault_message = NULL;
  last_hit = NULL; /* allocations may have moved since the last launch */
  profile = profile_on() ? profile_of(f->name) : NULL;
  if (profile) {
    profile->launches++;
    num_param_ranges = 0;
    for (int64_t i = 0; i < num_params && i < kProfiledParams; ++i) {
      param_begin[i] = (uint64_t)(uintptr_t)args[i];
      param_end[i] = param_begin[i] + (uint64_t)param_bytes[i];
      num_param_ranges = (int)i + 1;
    }
  }
  shared_memory = shared;
  num_shared = num_workgroup;
  launch_epoch = epoch + 1;
  for (uint32_t z = 0; r == CUDA_SUCCESS && z < gz; ++z)
    for (uint32_t y = 0; r == CUDA_SUCCESS && y < gy; ++y)
      for (uint32_t x = 0; r == CUDA_SUCCESS && x < gx; ++x) {
        /* Shared memory starts uninitialised in every block. */
        for (int64_t i = 0; i < num_workgroup; ++i)
          memset(args[num_params + i], 0xff, (size_t)workgroup_bytes[i]);
        const uint32_t id[3] = {x, y, z};
        r = run_block(grid, block, id, (int)threads);
      }
  for (int64_t i = 0; shared && i < num_workgroup; ++i)
    free_allocation(&shared[i]);
  free(shared);
  free(args);
  running = NULL;
  profile = NULL;
  shared_memory = NULL;
  num_shared = 0;
  /* A fault inside a kernel leaves the context unusable, as on a GPU. */
  if (r == CUDA_ERROR_ILLEGAL_ADDRESS || r == CUDA_ERROR_LAUNCH_FAILED ||
      r == CUDA_ERROR_MISALIGNED_ADDRESS)
    sticky = r;
  pthread_mutex_unlock(&lock);
  return r;
}

/*===----------------------------------------------------------------------===*
 * Graphs: a stream's launches captured, then replayed in order
 *===----------------------------------------------------------------------===*/

typedef struct emu_launch {
  emu_function *f;
  unsigned grid[3], block[3], shared_bytes;
  CUdeviceptr *values; /* the parameters, copied when captured */
} emu_launch;

typedef struct emu_graph {
  emu_launch *launches;
  size_t count, cap;
} emu_graph;

static emu_graph *capturing; /* the graph the stream is being captured into */

static int capturing_any(void) { return capturing != NULL; }

static void free_graph(emu_graph *g) {
  for (size_t i = 0; g && i < g->count; ++i)
    free(g->launches[i].values);
  if (g)
    free(g->launches);
  free(g);
}

static CUresult record(emu_function *f, const unsigned grid[3],
                       const unsigned block[3], unsigned shared_bytes,
                       void **params, void **extra) {
  if (!f)
    return CUDA_ERROR_INVALID_HANDLE;
  int64_t num_params = f->info[BITNET_EMU_INFO_PARAMS];
  if (extra != NULL || (num_params > 0 && params == NULL))
    return fail(CUDA_ERROR_INVALID_VALUE,
                "%s: parameters must come as kernelParams", f->name);
  emu_graph *g = capturing;
  if (g->count == g->cap) {
    size_t cap = g->cap ? 2 * g->cap : 16;
    emu_launch *grown = realloc(g->launches, cap * sizeof(*grown));
    if (!grown)
      return CUDA_ERROR_OUT_OF_MEMORY;
    g->launches = grown;
    g->cap = cap;
  }
  emu_launch *l = &g->launches[g->count];
  l->values = calloc((size_t)num_params + 1, sizeof(CUdeviceptr));
  if (!l->values)
    return CUDA_ERROR_OUT_OF_MEMORY;
  for (int64_t i = 0; i < num_params; ++i)
    l->values[i] = *(const CUdeviceptr *)params[i];
  l->f = f;
  memcpy(l->grid, grid, sizeof(l->grid));
  memcpy(l->block, block, sizeof(l->block));
  l->shared_bytes = shared_bytes;
  ++g->count;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuLaunchKernel(emu_function *f, unsigned gx, unsigned gy,
                               unsigned gz, unsigned bx, unsigned by,
                               unsigned bz, unsigned shared_bytes,
                               void *stream, void **params, void **extra) {
  if (capturing && stream == &stream_token) {
    const unsigned grid[3] = {gx, gy, gz}, block[3] = {bx, by, bz};
    return record(f, grid, block, shared_bytes, params, extra);
  }
  return launch_now(f, gx, gy, gz, bx, by, bz, shared_bytes, params, extra);
}

/* One capture at a time, of the one stream (the runtime's context). */
EXPORT CUresult cuStreamBeginCapture_v2(void *stream, int mode) {
  (void)mode;
  if (stream != &stream_token)
    return fail(CUDA_ERROR_INVALID_VALUE, "cuStreamBeginCapture: only a "
                                          "created stream is captured");
  if (capturing)
    return fail(CUDA_ERROR_INVALID_VALUE, "the stream is already captured");
  if (sticky)
    return sticky;
  capturing = calloc(1, sizeof(emu_graph));
  return capturing ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
}

EXPORT CUresult cuStreamEndCapture(void *stream, emu_graph **graph) {
  if (stream != &stream_token || !capturing)
    return fail(CUDA_ERROR_INVALID_VALUE,
                "cuStreamEndCapture of a stream that is not captured");
  *graph = capturing;
  capturing = NULL;
  return CUDA_SUCCESS;
}

/* An executable graph is a copy of the graph's launches. */
EXPORT CUresult cuGraphInstantiateWithFlags(emu_graph **exec, emu_graph *graph,
                                            unsigned long long flags) {
  (void)flags;
  if (!graph)
    return CUDA_ERROR_INVALID_HANDLE;
  emu_graph *copy = calloc(1, sizeof(emu_graph));
  if (!copy)
    return CUDA_ERROR_OUT_OF_MEMORY;
  emu_graph *saved = capturing;
  capturing = copy;
  CUresult r = CUDA_SUCCESS;
  for (size_t i = 0; r == CUDA_SUCCESS && i < graph->count; ++i) {
    emu_launch *l = &graph->launches[i];
    int64_t n = l->f->info[BITNET_EMU_INFO_PARAMS];
    void **params = calloc((size_t)n + 1, sizeof(void *));
    if (!params) {
      r = CUDA_ERROR_OUT_OF_MEMORY;
      break;
    }
    for (int64_t a = 0; a < n; ++a)
      params[a] = &l->values[a];
    r = record(l->f, l->grid, l->block, l->shared_bytes, params, NULL);
    free(params);
  }
  capturing = saved;
  if (r != CUDA_SUCCESS) {
    free_graph(copy);
    return r;
  }
  *exec = copy;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphLaunch(emu_graph *exec, void *stream) {
  (void)stream;
  if (!exec)
    return CUDA_ERROR_INVALID_HANDLE;
  for (size_t i = 0; i < exec->count; ++i) {
    emu_launch *l = &exec->launches[i];
    int64_t n = l->f->info[BITNET_EMU_INFO_PARAMS];
    void *params[64];
    if (n > 64)
      return fail(CUDA_ERROR_INVALID_VALUE, "%s: too many parameters",
                  l->f->name);
    for (int64_t a = 0; a < n; ++a)
      params[a] = &l->values[a];
    CUresult r = launch_now(l->f, l->grid[0], l->grid[1], l->grid[2],
                            l->block[0], l->block[1], l->block[2],
                            l->shared_bytes, params, NULL);
    if (r != CUDA_SUCCESS)
      return r;
  }
  ++graph_launches;
  return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphExecDestroy(emu_graph *exec) {
  free_graph(exec);
  return CUDA_SUCCESS;
}

EXPORT CUresult cuGraphDestroy(emu_graph *graph) {
  free_graph(graph);
  return CUDA_SUCCESS;
}

/* How many graph launches ran (for tests). */
EXPORT long long bitnet_cuda_emulator_graph_launches(void) {
  return graph_launches;
}

/*===----------------------------------------------------------------------===*
 * Error names
 *===----------------------------------------------------------------------===*/

EXPORT CUresult cuGetErrorName(CUresult code, const char **name) {
  switch (code) {
  case CUDA_SUCCESS: *name = "CUDA_SUCCESS"; break;
  case CUDA_ERROR_INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; break;
  case CUDA_ERROR_OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; break;
  case CUDA_ERROR_NOT_INITIALIZED: *name = "CUDA_ERROR_NOT_INITIALIZED"; break;
  case CUDA_ERROR_INVALID_DEVICE: *name = "CUDA_ERROR_INVALID_DEVICE"; break;
  case CUDA_ERROR_INVALID_IMAGE: *name = "CUDA_ERROR_INVALID_IMAGE"; break;
  case CUDA_ERROR_INVALID_HANDLE: *name = "CUDA_ERROR_INVALID_HANDLE"; break;
  case CUDA_ERROR_NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; break;
  case CUDA_ERROR_ILLEGAL_ADDRESS: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; break;
  case CUDA_ERROR_MISALIGNED_ADDRESS:
    *name = "CUDA_ERROR_MISALIGNED_ADDRESS";
    break;
  case CUDA_ERROR_LAUNCH_FAILED: *name = "CUDA_ERROR_LAUNCH_FAILED"; break;
  default: *name = NULL; return CUDA_ERROR_INVALID_VALUE;
  }
  return CUDA_SUCCESS;
}

/* The message of the last failure (what a driver's generic text would not
 * say). */
EXPORT CUresult cuGetErrorString(CUresult code, const char **text) {
  const char *name = NULL;
  if (cuGetErrorName(code, &name) != CUDA_SUCCESS) {
    *text = NULL;
    return CUDA_ERROR_INVALID_VALUE;
  }
  *text = code == CUDA_SUCCESS ? "no error" : last_message;
  return CUDA_SUCCESS;
}
