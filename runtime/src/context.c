/*===- context.c - Execution contexts and runs ----------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*/

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "model_internal.h"

#define DEFAULT_WORKSPACE_ALIGNMENT 64

struct bitnet_context {
  bitnet_model *model;
  bitnet_pool *pool;
  bitnet_thread_pool *threads; /* NULL: serial */
  bitnet_profiler profiler;
  int profiling;
  void *workspace;
  int64_t workspace_bytes;
  atomic_int running;
  bitnet_exec_ctx exec_template; /* what every run starts from */
  bitnet_exec_ctx exec;          /* handed to the model, refilled per run */
  void **buffers;                /* inputs, then outputs */
  bitnet_gpu_context *gpu;       /* device memory of a GPU model, or NULL */
};

static void ctx_parallel_for(void *user, int64_t n,
                             void (*fn)(void *arg, int64_t begin, int64_t end),
                             void *arg) {
  bitnet_context *context = user;
  bitnet_thread_pool_parallel_for(context->threads, n, fn, arg);
}

static void ctx_kernel_begin(void *user, const char *kernel, int64_t bytes,
                             int64_t flops) {
  bitnet_context *context = user;
  context->profiler.kernel_begin(context->profiler.user, kernel, bytes, flops);
}

static void ctx_kernel_end(void *user, const char *kernel) {
  bitnet_context *context = user;
  context->profiler.kernel_end(context->profiler.user, kernel);
}

/* Fills the exec_ctx every run starts from. */
static void build_exec_template(bitnet_context *context) {
  bitnet_exec_ctx *exec = &context->exec_template;
  memset(exec, 0, sizeof(*exec));
  exec->abi_version = BITNET_MODEL_ABI_VERSION;
  exec->num_threads = bitnet_thread_pool_size(context->threads);
  exec->user = context;
  exec->parallel_for = context->threads ? ctx_parallel_for : NULL;
  if (context->profiling) {
    exec->kernel_begin = context->profiler.kernel_begin ? ctx_kernel_begin : NULL;
    exec->kernel_end = context->profiler.kernel_end ? ctx_kernel_end : NULL;
  }
}

static void set_profiler(bitnet_context *context,
                         const bitnet_profiler *profiler) {
  if (profiler != NULL) {
    context->profiler = *profiler;
    context->profiling = 1;
  } else {
    memset(&context->profiler, 0, sizeof(context->profiler));
    context->profiling = 0;
  }
  build_exec_template(context);
}

bitnet_status bitnet_context_create(bitnet_model *model,
                                    const bitnet_context_options *options,
                                    bitnet_context **out_context) {
  BITNET_CHECK_ARG(out_context, "bitnet_context_create");
  *out_context = NULL;
  BITNET_CHECK_ARG(model, "bitnet_context_create");
  const bitnet_context_options no_options = {0};
  if (options == NULL)
    options = &no_options;
  const bitnet_model_info *info = model->info;
  size_t num_buffers = (size_t)info->num_inputs + (size_t)info->num_outputs;

  bitnet_context *context = calloc(1, sizeof(*context));
  void **buffers = calloc(num_buffers ? num_buffers : 1, sizeof(void *));
  if (context == NULL || buffers == NULL) {
    free(context);
    free(buffers);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_context_create: out of memory");
  }
  context->buffers = buffers;
  atomic_init(&context->running, 0);
  bitnet_model_retain(model);
  context->model = model;
  if (options->pool != NULL) {
    bitnet_pool_retain(options->pool);
    context->pool = options->pool;
  } else {
    bitnet_status status = bitnet_pool_create(&context->pool);
    if (status != BITNET_OK) {
      bitnet_context_free(context);
      return status;
    }
  }
  if (options->thread_pool != NULL) {
    bitnet_thread_pool_retain(options->thread_pool);
    context->threads = options->thread_pool;
  }
  context->workspace_bytes = model->workspace_bytes;
  if (model->workspace_bytes > 0) {
    int64_t align = model->workspace_alignment > DEFAULT_WORKSPACE_ALIGNMENT
                        ? model->workspace_alignment
                        : DEFAULT_WORKSPACE_ALIGNMENT;
    bitnet_status status = bitnet_pool_allocate(
        context->pool, model->workspace_bytes, align, &context->workspace);
    if (status != BITNET_OK) {
      bitnet_context_free(context);
      return status;
    }
  }
  if (model->gpu != NULL) {
    int64_t *sizes = calloc(num_buffers ? num_buffers : 1, sizeof(int64_t));
    int32_t *state = calloc(num_buffers ? num_buffers : 1, sizeof(int32_t));
    bitnet_status status =
        sizes && state ? BITNET_OK
                       : bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                            "bitnet_context_create: out of "
                                            "memory");
    for (size_t i = 0; status == BITNET_OK && i < num_buffers; ++i) {
      sizes[i] = model->descs[i].byte_size;
      state[i] = (int32_t)i < info->num_inputs &&
                 (model->descs[i].flags & BITNET_TENSOR_STATE) != 0;
    }
    if (status == BITNET_OK)
      status = bitnet_gpu_context_create(model->gpu, sizes, state,
                                         (int32_t)num_buffers, &context->gpu);
    free(sizes);
    free(state);
    if (status != BITNET_OK) {
      bitnet_context_free(context);
      return status;
    }
  }
  set_profiler(context, options->profiler);
  *out_context = context;
  return BITNET_OK;
}

void bitnet_context_free(bitnet_context *context) {
  if (context == NULL)
    return;
  bitnet_gpu_context_destroy(context->gpu);
  if (context->workspace)
    bitnet_status_free(bitnet_pool_deallocate(context->pool, context->workspace));
  bitnet_pool_release(context->pool);
  bitnet_thread_pool_release(context->threads);
  bitnet_model_release(context->model);
  free(context->buffers);
  free(context);
}

bitnet_model *bitnet_context_model(const bitnet_context *context) {
  return context ? context->model : NULL;
}

int64_t bitnet_context_workspace_bytes(const bitnet_context *context) {
  return context ? context->workspace_bytes : 0;
}

/* Marks the context busy; fails if a run is in progress. */
static bitnet_status enter(bitnet_context *context, const char *fn) {
  int expected = 0;
  if (!atomic_compare_exchange_strong_explicit(&context->running, &expected, 1,
                                               memory_order_acquire,
                                               memory_order_relaxed))
    return bitnet_status_make(
        BITNET_STATUS_FAILED_PRECONDITION,
        "%s: the context is already running; concurrent runs need one "
        "context each",
        fn);
  return BITNET_OK;
}

static void leave(bitnet_context *context) {
  atomic_store_explicit(&context->running, 0, memory_order_release);
}

bitnet_status bitnet_context_set_profiler(bitnet_context *context,
                                          const bitnet_profiler *profiler) {
  BITNET_CHECK_ARG(context, "bitnet_context_set_profiler");
  BITNET_RETURN_IF_ERROR(enter(context, "bitnet_context_set_profiler"));
  set_profiler(context, profiler);
  leave(context);
  return BITNET_OK;
}

/* Checks the counts. */
static bitnet_status check_counts(const char *fn, const bitnet_model *model,
                                  int32_t num_inputs, int32_t num_outputs) {
  const bitnet_model_info *info = model->info;
  if (num_inputs != info->num_inputs || num_outputs != info->num_outputs)
    return bitnet_status_make(
        BITNET_STATUS_INVALID_ARGUMENT,
        "%s: %d inputs and %d outputs given, model '%s' takes %d inputs and "
        "has %d outputs",
        fn, (int)num_inputs, (int)num_outputs, model->path,
        (int)info->num_inputs, (int)info->num_outputs);
  return BITNET_OK;
}

/* Checks that buffer `index` (an input or output) is non-NULL. */
static bitnet_status check_pointer(const char *fn, const bitnet_model *model,
                                   int32_t index, const void *data) {
  int32_t num_inputs = model->info->num_inputs;
  const bitnet_tensor_desc *desc = &model->descs[index];
  if (data == NULL && desc->byte_size > 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: %s %d ('%s') is NULL", fn,
                              index < num_inputs ? "input" : "output",
                              (int)(index < num_inputs ? index
                                                       : index - num_inputs),
                              desc->name);
  return BITNET_OK;
}

/* FAILED_PRECONDITION when the calling thread or the pool's workers have
 * less stack than the model's kernels keep buffers on, with the margin:
 * a clear error instead of a crash. */
static bitnet_status check_stack(const bitnet_context *context) {
  const bitnet_model *model = context->model;
  int64_t declared = model->info->stack_bytes;
  if (declared <= 0)
    return BITNET_OK;
  int64_t need = declared + BITNET_STACK_MARGIN;
  int64_t left = bitnet_stack_left();
  if (left >= 0 && left < need)
    return bitnet_status_make(
        BITNET_STATUS_FAILED_PRECONDITION,
        "model '%s' keeps %lld KiB of kernel buffers on the stack and needs "
        "%lld KiB of stack with its frames, but the calling thread has %lld "
        "KiB left: run it on a thread with a larger stack "
        "(pthread_attr_setstacksize)",
        model->path, (long long)(declared >> 10), (long long)(need >> 10),
        (long long)(left >> 10));
  int64_t worker = bitnet_thread_pool_worker_stack(context->threads);
  if (worker < need)
    return bitnet_status_make(
        BITNET_STATUS_FAILED_PRECONDITION,
        "model '%s' needs %lld KiB of stack per thread, more than the %lld "
        "KiB its thread pool's workers have",
        model->path, (long long)(need >> 10), (long long)(worker >> 10));
  return BITNET_OK;
}

/* Element `i` of an integer buffer of `dtype`. */
static int64_t integer_at(const void *data, int32_t dtype, int64_t i) {
  switch (dtype) {
  case BITNET_DTYPE_I8: return ((const int8_t *)data)[i];
  case BITNET_DTYPE_I16: return ((const int16_t *)data)[i];
  case BITNET_DTYPE_I32: return ((const int32_t *)data)[i];
  default: return ((const int64_t *)data)[i];
  }
}

/* Refuses input `index` when it holds a value outside the range its model
 * declares (BITNET_TENSOR_RANGE): the model's code would clamp it and compute
 * something else without a word. */
bitnet_status bitnet_check_input_range(const bitnet_model *model,
                                       int32_t index, const void *data) {
  const bitnet_tensor_desc *d = &model->descs[index];
  if (!(d->flags & BITNET_TENSOR_RANGE))
    return BITNET_OK;
  for (int64_t i = 0; i < d->num_elements; ++i) {
    int64_t v = integer_at(data, d->dtype, i);
    if (v >= d->min_value && v <= d->max_value)
      continue;
    char at[64] = "";
    if (d->rank > 0)
      snprintf(at, sizeof(at), " at element %lld", (long long)i);
    return bitnet_status_make(
        BITNET_STATUS_OUT_OF_RANGE,
        "model '%s': input %d ('%s') holds %lld%s; the model accepts values "
        "in [%lld, %lld]",
        model->path, (int)index, d->name, (long long)v, at,
        (long long)d->min_value, (long long)d->max_value);
  }
  return BITNET_OK;
}

/* Runs the model on context->buffers. */
static bitnet_status run_buffers(bitnet_context *context) {
  bitnet_model *model = context->model;
  const char *name = model->info->name ? model->info->name : "model";
  for (int32_t i = 0; i < model->info->num_inputs; ++i)
    BITNET_RETURN_IF_ERROR(
        bitnet_check_input_range(model, i, context->buffers[i]));
  context->exec = context->exec_template;
  if (context->profiling && context->profiler.run_begin)
    context->profiler.run_begin(context->profiler.user, name);
  if (context->gpu != NULL) {
    bitnet_status status = bitnet_gpu_run(
        context->gpu, (void *const *)context->buffers, model->info->num_inputs,
        context->profiling ? &context->profiler : NULL);
    if (context->profiling && context->profiler.run_end)
      context->profiler.run_end(context->profiler.user, name,
                                status == BITNET_OK ? 0 : -1);
    return status;
  }
  BITNET_RETURN_IF_ERROR(check_stack(context));
  int32_t result =
      model->run_fn((void *const *)context->buffers, context->workspace,
                 &context->exec);
  if (context->profiling && context->profiler.run_end)
    context->profiler.run_end(context->profiler.user, name, result);
  if (result != 0)
    return bitnet_status_make(BITNET_STATUS_RUN_FAILED,
                              "model '%s' failed: bitnet_model_run returned %d",
                              model->path, (int)result);
  return BITNET_OK;
}

bitnet_status bitnet_context_run(bitnet_context *context,
                                 const void *const *inputs, int32_t num_inputs,
                                 void *const *outputs, int32_t num_outputs) {
  static const char fn[] = "bitnet_context_run";
  BITNET_CHECK_ARG(context, fn);
  bitnet_model *model = context->model;
  BITNET_RETURN_IF_ERROR(check_counts(fn, model, num_inputs, num_outputs));
  if (num_inputs > 0)
    BITNET_CHECK_ARG(inputs, fn);
  if (num_outputs > 0)
    BITNET_CHECK_ARG(outputs, fn);
  for (int32_t i = 0; i < num_inputs; ++i)
    BITNET_RETURN_IF_ERROR(check_pointer(fn, model, i, inputs[i]));
  for (int32_t i = 0; i < num_outputs; ++i)
    BITNET_RETURN_IF_ERROR(check_pointer(fn, model, num_inputs + i, outputs[i]));

  BITNET_RETURN_IF_ERROR(enter(context, fn));
  for (int32_t i = 0; i < num_inputs; ++i)
    context->buffers[i] = (void *)inputs[i];
  for (int32_t i = 0; i < num_outputs; ++i)
    context->buffers[num_inputs + i] = outputs[i];
  bitnet_status status = run_buffers(context);
  leave(context);
  return status;
}

static void format_shape(char *buf, size_t size, int32_t rank,
                         const int64_t *shape) {
  size_t used = (size_t)snprintf(buf, size, "[");
  for (int32_t d = 0; d < rank && used < size; ++d)
    used += (size_t)snprintf(buf + used, size - used, d ? ",%lld" : "%lld",
                             (long long)shape[d]);
  if (used < size)
    snprintf(buf + used, size - used, "]");
}

/* Checks a caller's tensor against buffer `index` of the model. */
static bitnet_status check_tensor_arg(const char *fn, const bitnet_model *model,
                                      int32_t index, const bitnet_tensor *t) {
  int32_t num_inputs = model->info->num_inputs;
  const bitnet_tensor_desc *desc = &model->descs[index];
  const char *kind = index < num_inputs ? "input" : "output";
  int pos = (int)(index < num_inputs ? index : index - num_inputs);
  BITNET_RETURN_IF_ERROR(check_pointer(fn, model, index, t->data));
  if (t->dtype != desc->dtype)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: %s %d ('%s') has dtype %s, the model "
                              "expects %s",
                              fn, kind, pos, desc->name,
                              bitnet_dtype_name(t->dtype),
                              bitnet_dtype_name(desc->dtype));
  int same = t->rank == desc->rank && (t->rank == 0 || t->shape != NULL);
  for (int32_t d = 0; same && d < t->rank; ++d)
    same = t->shape[d] == desc->shape[d];
  if (!same) {
    char given[256], expected[256];
    if (t->rank < 0 || t->rank > BITNET_MAX_RANK || (t->rank && !t->shape))
      snprintf(given, sizeof(given), "of rank %d", (int)t->rank);
    else
      format_shape(given, sizeof(given), t->rank, t->shape);
    format_shape(expected, sizeof(expected), desc->rank, desc->shape);
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: %s %d ('%s') has shape %s, the model "
                              "expects %s",
                              fn, kind, pos, desc->name, given, expected);
  }
  if (t->byte_size < desc->byte_size)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: %s %d ('%s') holds %lld bytes, the model "
                              "needs %lld",
                              fn, kind, pos, desc->name, (long long)t->byte_size,
                              (long long)desc->byte_size);
  return BITNET_OK;
}

bitnet_status bitnet_context_run_checked(bitnet_context *context,
                                         const bitnet_tensor *inputs,
                                         int32_t num_inputs,
                                         const bitnet_tensor *outputs,
                                         int32_t num_outputs) {
  static const char fn[] = "bitnet_context_run_checked";
  BITNET_CHECK_ARG(context, fn);
  bitnet_model *model = context->model;
  BITNET_RETURN_IF_ERROR(check_counts(fn, model, num_inputs, num_outputs));
  if (num_inputs > 0)
    BITNET_CHECK_ARG(inputs, fn);
  if (num_outputs > 0)
    BITNET_CHECK_ARG(outputs, fn);
  for (int32_t i = 0; i < num_inputs; ++i)
    BITNET_RETURN_IF_ERROR(check_tensor_arg(fn, model, i, &inputs[i]));
  for (int32_t i = 0; i < num_outputs; ++i)
    BITNET_RETURN_IF_ERROR(
        check_tensor_arg(fn, model, num_inputs + i, &outputs[i]));
  /* Outputs and state inputs are written, so none may overlap any other
   * buffer. */
  int32_t total = num_inputs + num_outputs;
  for (int32_t w = 0; w < total; ++w) {
    const bitnet_tensor_desc *wd = &model->descs[w];
    if (w < num_inputs && !(wd->flags & BITNET_TENSOR_STATE))
      continue;
    const bitnet_tensor *wt = w < num_inputs ? &inputs[w] : &outputs[w - num_inputs];
    uintptr_t ob = (uintptr_t)wt->data, oe = ob + (uintptr_t)wd->byte_size;
    for (int32_t j = 0; j < total; ++j) {
      if (j == w)
        continue;
      const bitnet_tensor *t = j < num_inputs ? &inputs[j] : &outputs[j - num_inputs];
      uintptr_t b = (uintptr_t)t->data, e = b + (uintptr_t)model->descs[j].byte_size;
      if (ob < e && b < oe)
        return bitnet_status_make(
            BITNET_STATUS_INVALID_ARGUMENT, "%s: %s %d ('%s') overlaps %s %d ('%s')",
            fn, w < num_inputs ? "state input" : "output",
            (int)(w < num_inputs ? w : w - num_inputs), wd->name,
            j < num_inputs ? "input" : "output",
            (int)(j < num_inputs ? j : j - num_inputs), model->descs[j].name);
    }
  }
  BITNET_RETURN_IF_ERROR(enter(context, fn));
  for (int32_t i = 0; i < num_inputs; ++i)
    context->buffers[i] = inputs[i].data;
  for (int32_t i = 0; i < num_outputs; ++i)
    context->buffers[num_inputs + i] = outputs[i].data;
  bitnet_status status = run_buffers(context);
  leave(context);
  return status;
}

/*===----------------------------------------------------------------------===*
 * GPU contexts: data kept on the device between runs
 *===----------------------------------------------------------------------===*/

/* Checks that `context` runs a GPU model and marks it busy. */
static bitnet_status enter_gpu(bitnet_context *context, const char *fn) {
  BITNET_CHECK_ARG(context, fn);
  if (context->gpu == NULL)
    return bitnet_status_make(BITNET_STATUS_FAILED_PRECONDITION,
                              "%s: model '%s' does not run on a GPU", fn,
                              context->model->path);
  return enter(context, fn);
}

/* Checks that `buffer` numbers a run buffer. */
static bitnet_status check_buffer_index(const char *fn,
                                        const bitnet_model *model,
                                        int32_t buffer) {
  int32_t count = model->info->num_inputs + model->info->num_outputs;
  if (buffer < 0 || buffer >= count)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: buffer %d is out of range: model '%s' has "
                              "%d inputs and outputs",
                              fn, (int)buffer, model->path, (int)count);
  return BITNET_OK;
}

bitnet_status bitnet_context_gpu_upload(bitnet_context *context,
                                        int32_t buffer, const void *data) {
  static const char fn[] = "bitnet_context_gpu_upload";
  BITNET_CHECK_ARG(context, fn);
  BITNET_RETURN_IF_ERROR(check_buffer_index(fn, context->model, buffer));
  BITNET_RETURN_IF_ERROR(check_pointer(fn, context->model, buffer, data));
  if (buffer < context->model->info->num_inputs)
    BITNET_RETURN_IF_ERROR(
        bitnet_check_input_range(context->model, buffer, data));
  BITNET_RETURN_IF_ERROR(enter_gpu(context, fn));
  bitnet_status status = bitnet_gpu_upload(context->gpu, buffer, data);
  leave(context);
  return status;
}

bitnet_status bitnet_context_gpu_download(bitnet_context *context,
                                          int32_t buffer, void *data) {
  static const char fn[] = "bitnet_context_gpu_download";
  BITNET_CHECK_ARG(context, fn);
  BITNET_RETURN_IF_ERROR(check_buffer_index(fn, context->model, buffer));
  BITNET_RETURN_IF_ERROR(check_pointer(fn, context->model, buffer, data));
  BITNET_RETURN_IF_ERROR(enter_gpu(context, fn));
  bitnet_status status = bitnet_gpu_download(context->gpu, buffer, data);
  leave(context);
  return status;
}

bitnet_status bitnet_context_gpu_launch(bitnet_context *context,
                                        int32_t first, int32_t count) {
  static const char fn[] = "bitnet_context_gpu_launch";
  BITNET_RETURN_IF_ERROR(enter_gpu(context, fn));
  int32_t total = context->model->info->gpu->num_launches;
  if (count < 0 && first >= 0 && first <= total)
    count = total - first;
  bitnet_status status = BITNET_OK;
  if (first < 0 || count < 0 || first > total || count > total - first)
    status = bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                                "%s: launches [%d, %d + %d) are out of range: "
                                "model '%s' has %d",
                                fn, (int)first, (int)first, (int)count,
                                context->model->path, (int)total);
  else
    status = bitnet_gpu_enqueue(context->gpu, first, count);
  leave(context);
  return status;
}

bitnet_status bitnet_context_gpu_synchronize(bitnet_context *context) {
  static const char fn[] = "bitnet_context_gpu_synchronize";
  BITNET_RETURN_IF_ERROR(enter_gpu(context, fn));
  bitnet_status status = bitnet_gpu_synchronize(context->gpu);
  leave(context);
  return status;
}

void *bitnet_context_gpu_stream(const bitnet_context *context) {
  return context && context->gpu ? bitnet_gpu_stream(context->gpu) : NULL;
}
