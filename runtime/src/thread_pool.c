/*===- thread_pool.c - Fixed worker threads for parallel loops ------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * One loop at a time. `generation` is odd while a loop is open and even
 * while none is. The caller writes the loop, opens it (generation + 1), claims
 * chunks from an atomic counter like everybody else, and once none is left
 * closes it (generation + 1 again) and waits for `active` to reach zero.
 * A worker that sees an open generation announces itself in `active`, checks
 * that the generation is still the one it saw, and only then reads the loop
 * and claims chunks. That pairs with the caller's close-then-check (both
 * sequentially consistent): a late worker either backs off or is waited
 * for, so nobody reads a loop while the next one is written, and the caller
 * never waits for a worker that is asleep or not scheduled. Workers spin
 * briefly between loops, then sleep on a condition variable. Nothing is
 * allocated per loop. A second caller (or a loop started inside a loop) finds
 * the dispatch lock taken and runs its loop on its own thread.
 *
 *===----------------------------------------------------------------------===*/

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "internal.h"

#define MAX_THREADS 1024
/* Chunks per thread: a little slack for uneven chunks. */
#define CHUNKS_PER_THREAD 4
/* Polls of `generation` / `active` before sleeping. */
#define SPIN_COUNT 4000

typedef void (*loop_fn)(void *arg, int64_t begin, int64_t end);

/* The least stack a worker gets. */
#define WORKER_STACK ((size_t)8 << 20)

struct bitnet_thread_pool {
  atomic_int refs;
  int32_t num_threads;
  pthread_t *workers;
  int32_t num_workers;
  int64_t worker_stack; /* bytes of stack each worker has */

  pthread_mutex_t dispatch; /* held by the caller of the current loop */

  pthread_mutex_t mutex; /* guards sleeping and waking */
  pthread_cond_t wake;   /* workers wait here for an open generation */
  pthread_cond_t done;   /* the caller waits here for `active` to reach 0 */
  atomic_int sleepers;   /* workers waiting on `wake` */
  atomic_int stop;

  /* The loop being run; written while the generation is even. */
  loop_fn fn;
  void *arg;
  int64_t n;
  int64_t num_chunks;
  atomic_llong next_chunk;
  atomic_int active; /* workers inside the current generation */
  atomic_ullong generation;
};

int32_t bitnet_default_num_threads(void) {
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  if (n < 1)
    return 1;
  return n > MAX_THREADS ? MAX_THREADS : (int32_t)n;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

/* Claims and runs chunks of the current loop until none is left. */
static void run_chunks(bitnet_thread_pool *pool) {
  const int64_t n = pool->n, chunks = pool->num_chunks;
  for (;;) {
    int64_t c = atomic_fetch_add_explicit(&pool->next_chunk, 1,
                                          memory_order_relaxed);
    if (c >= chunks)
      return;
    /* Balanced split: chunk c is [c*n/chunks, (c+1)*n/chunks). */
    int64_t q = n / chunks, r = n % chunks;
    int64_t begin = c * q + (c < r ? c : r);
    int64_t end = begin + q + (c < r ? 1 : 0);
    pool->fn(pool->arg, begin, end);
  }
}

static inline int is_open(unsigned long long gen, unsigned long long seen) {
  return (gen & 1) != 0 && gen != seen;
}

/* Waits until a loop other than `seen` is open, or the pool stops. */
static unsigned long long wait_for_loop(bitnet_thread_pool *pool,
                                        unsigned long long seen) {
  unsigned long long gen;
  for (int i = 0; i < SPIN_COUNT; ++i) {
    gen = atomic_load_explicit(&pool->generation, memory_order_acquire);
    if (is_open(gen, seen) ||
        atomic_load_explicit(&pool->stop, memory_order_relaxed))
      return gen;
    cpu_relax();
  }
  pthread_mutex_lock(&pool->mutex);
  atomic_fetch_add(&pool->sleepers, 1);
  while (!is_open(gen = atomic_load(&pool->generation), seen) &&
         !atomic_load_explicit(&pool->stop, memory_order_relaxed))
    pthread_cond_wait(&pool->wake, &pool->mutex);
  atomic_fetch_sub(&pool->sleepers, 1);
  pthread_mutex_unlock(&pool->mutex);
  return gen;
}

/* Leaves the current generation, waking the caller if it waits for us. */
static void leave_loop(bitnet_thread_pool *pool) {
  if (atomic_fetch_sub_explicit(&pool->active, 1, memory_order_acq_rel) == 1) {
    pthread_mutex_lock(&pool->mutex);
    pthread_cond_signal(&pool->done);
    pthread_mutex_unlock(&pool->mutex);
  }
}

static void *worker_main(void *opaque) {
  bitnet_thread_pool *pool = opaque;
  unsigned long long seen = 0;
  for (;;) {
    unsigned long long gen = wait_for_loop(pool, seen);
    if (atomic_load_explicit(&pool->stop, memory_order_relaxed))
      return NULL;
    atomic_fetch_add(&pool->active, 1);
    if (atomic_load(&pool->generation) == gen)
      run_chunks(pool); /* still open: the loop is safe to read */
    seen = gen;
    leave_loop(pool);
  }
}

bitnet_status bitnet_thread_pool_create(int32_t num_threads,
                                        bitnet_thread_pool **out_pool) {
  BITNET_CHECK_ARG(out_pool, "bitnet_thread_pool_create");
  *out_pool = NULL;
  if (num_threads < 1 || num_threads > MAX_THREADS)
    return bitnet_status_make(
        BITNET_STATUS_INVALID_ARGUMENT,
        "bitnet_thread_pool_create: thread count %d is out of range [1, %d]",
        (int)num_threads, MAX_THREADS);
  bitnet_thread_pool *pool = calloc(1, sizeof(*pool));
  pthread_t *workers =
      num_threads > 1 ? calloc((size_t)num_threads - 1, sizeof(pthread_t))
                      : NULL;
  if (pool == NULL || (num_threads > 1 && workers == NULL)) {
    free(pool);
    free(workers);
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_thread_pool_create: out of memory");
  }
  atomic_init(&pool->refs, 1);
  pool->num_threads = num_threads;
  pool->workers = workers;
  pthread_mutex_init(&pool->dispatch, NULL);
  pthread_mutex_init(&pool->mutex, NULL);
  pthread_cond_init(&pool->wake, NULL);
  pthread_cond_init(&pool->done, NULL);
  atomic_init(&pool->sleepers, 0);
  atomic_init(&pool->stop, 0);
  atomic_init(&pool->next_chunk, 0);
  atomic_init(&pool->active, 0);
  atomic_init(&pool->generation, 0);
  /* Workers get at least WORKER_STACK, whatever the system's default
   * (musl's is 128 KiB): kernels keep buffers of up to a few hundred KiB
   * on their stack (bitnet_model_info.stack_bytes). */
  pthread_attr_t attr;
  size_t stack = 0;
  int have_attr = pthread_attr_init(&attr) == 0;
  if (have_attr && pthread_attr_getstacksize(&attr, &stack) == 0 &&
      stack < WORKER_STACK && pthread_attr_setstacksize(&attr, WORKER_STACK) == 0)
    stack = WORKER_STACK;
  pool->worker_stack = (int64_t)stack;
  for (int32_t i = 0; i < num_threads - 1; ++i) {
    int err = pthread_create(&workers[i], have_attr ? &attr : NULL,
                             worker_main, pool);
    if (err != 0) {
      if (have_attr)
        pthread_attr_destroy(&attr);
      bitnet_thread_pool_release(pool); /* joins the ones started */
      return bitnet_status_make(
          BITNET_STATUS_OUT_OF_MEMORY,
          "bitnet_thread_pool_create: cannot start thread %d of %d (error %d)",
          (int)i + 2, (int)num_threads, err);
    }
    pool->num_workers++;
  }
  if (have_attr)
    pthread_attr_destroy(&attr);
  *out_pool = pool;
  return BITNET_OK;
}

int64_t bitnet_thread_pool_worker_stack(const bitnet_thread_pool *pool) {
  return pool && pool->num_workers > 0 ? pool->worker_stack : INT64_MAX;
}

/* The lowest usable address of the calling thread's stack, found once per
 * thread (for the main thread glibc reads /proc/self/maps). */
static _Thread_local char *stack_low;
static _Thread_local int stack_known; /* 1 known, -1 unknown */

int64_t bitnet_stack_left(void) {
  if (stack_known == 0) {
    pthread_attr_t attr;
    void *base = NULL;
    size_t size = 0, guard = 0;
    stack_known = -1;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
      if (pthread_attr_getstack(&attr, &base, &size) == 0 && base) {
        pthread_attr_getguardsize(&attr, &guard);
        stack_low = (char *)base + guard;
        stack_known = 1;
      }
      pthread_attr_destroy(&attr);
    }
  }
  if (stack_known < 0)
    return -1;
  char here;
  return (int64_t)(&here - stack_low);
}

void bitnet_thread_pool_retain(bitnet_thread_pool *pool) {
  if (pool)
    atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);
}

void bitnet_thread_pool_release(bitnet_thread_pool *pool) {
  if (pool == NULL ||
      atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) != 1)
    return;
  pthread_mutex_lock(&pool->mutex);
  atomic_store(&pool->stop, 1);
  pthread_cond_broadcast(&pool->wake);
  pthread_mutex_unlock(&pool->mutex);
  for (int32_t i = 0; i < pool->num_workers; ++i)
    pthread_join(pool->workers[i], NULL);
  pthread_cond_destroy(&pool->done);
  pthread_cond_destroy(&pool->wake);
  pthread_mutex_destroy(&pool->mutex);
  pthread_mutex_destroy(&pool->dispatch);
  free(pool->workers);
  free(pool);
}

int32_t bitnet_thread_pool_size(const bitnet_thread_pool *pool) {
  return pool ? pool->num_threads : 1;
}

void bitnet_thread_pool_parallel_for(bitnet_thread_pool *pool, int64_t n,
                                     loop_fn fn, void *arg) {
  if (n <= 0 || fn == NULL)
    return;
  if (pool == NULL || pool->num_workers == 0 || n == 1 ||
      pthread_mutex_trylock(&pool->dispatch) != 0) {
    fn(arg, 0, n);
    return;
  }
  int64_t chunks = (int64_t)pool->num_threads * CHUNKS_PER_THREAD;
  pool->fn = fn;
  pool->arg = arg;
  pool->n = n;
  pool->num_chunks = chunks < n ? chunks : n;
  atomic_store_explicit(&pool->next_chunk, 0, memory_order_relaxed);
  /* Opens the loop; workers read it after acquiring the new generation. */
  atomic_fetch_add(&pool->generation, 1);
  if (atomic_load(&pool->sleepers) > 0) {
    pthread_mutex_lock(&pool->mutex);
    pthread_cond_broadcast(&pool->wake);
    pthread_mutex_unlock(&pool->mutex);
  }

  run_chunks(pool);

  /* Closes the loop, then waits for the workers inside it. */
  atomic_fetch_add(&pool->generation, 1);
  int done = 0;
  for (int i = 0; i < SPIN_COUNT && !done; ++i) {
    done = atomic_load(&pool->active) == 0;
    if (!done)
      cpu_relax();
  }
  if (!done) {
    pthread_mutex_lock(&pool->mutex);
    while (atomic_load(&pool->active) != 0)
      pthread_cond_wait(&pool->done, &pool->mutex);
    pthread_mutex_unlock(&pool->mutex);
  }
  pthread_mutex_unlock(&pool->dispatch);
}
