/*===- pool.c - Pooled memory with statistics -----------------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * Every block is one malloc() with a header placed right before the pointer
 * handed out. A freed block goes to a cache list and serves the next request
 * it fits (smallest fitting block first), so repeated allocation patterns stop
 * touching malloc after their first round.
 *
 *===----------------------------------------------------------------------===*/

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "internal.h"

#define POOL_DEFAULT_ALIGNMENT 64
#define POOL_MAX_ALIGNMENT ((int64_t)1 << 20)
#define POOL_GRANULE 64

typedef struct pool_block {
  void *raw;               /* what malloc returned */
  struct pool_block *next; /* in the cache list when not in use */
  int64_t capacity;        /* usable bytes after the header */
  int64_t pad_;            /* keeps the header a multiple of 16 bytes */
} pool_block;

_Static_assert(sizeof(pool_block) % 16 == 0, "header must keep alignment");

struct bitnet_pool {
  atomic_int refs;
  pthread_mutex_t mutex;
  pool_block *cached;      /* free blocks */
  pool_block **live_table; /* blocks in use */
  int64_t live_count;
  int64_t live_capacity;
  bitnet_pool_stats stats;
};

static pool_block *header_of(void *ptr) {
  return (pool_block *)((char *)ptr - sizeof(pool_block));
}

static void *user_of(pool_block *block) { return (char *)block + sizeof(*block); }

bitnet_status bitnet_pool_create(bitnet_pool **out_pool) {
  BITNET_CHECK_ARG(out_pool, "bitnet_pool_create");
  *out_pool = NULL;
  bitnet_pool *pool = calloc(1, sizeof(*pool));
  if (pool == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_pool_create: out of memory");
  atomic_init(&pool->refs, 1);
  pthread_mutex_init(&pool->mutex, NULL);
  *out_pool = pool;
  return BITNET_OK;
}

void bitnet_pool_retain(bitnet_pool *pool) {
  if (pool)
    atomic_fetch_add_explicit(&pool->refs, 1, memory_order_relaxed);
}

static void free_block(pool_block *block) { free(block->raw); }

void bitnet_pool_release(bitnet_pool *pool) {
  if (pool == NULL ||
      atomic_fetch_sub_explicit(&pool->refs, 1, memory_order_acq_rel) != 1)
    return;
  for (pool_block *b = pool->cached, *next; b; b = next) {
    next = b->next;
    free_block(b);
  }
  for (int64_t i = 0; i < pool->live_count; ++i)
    free_block(pool->live_table[i]);
  free(pool->live_table);
  pthread_mutex_destroy(&pool->mutex);
  free(pool);
}

static bitnet_status check_request(const char *fn, int64_t size,
                                   int64_t *alignment) {
  if (size < 0)
    return bitnet_status_make(BITNET_STATUS_INVALID_ARGUMENT,
                              "%s: size %lld is negative", fn, (long long)size);
  if (*alignment == 0)
    *alignment = POOL_DEFAULT_ALIGNMENT;
  if (*alignment < 0 || (*alignment & (*alignment - 1)) != 0 ||
      *alignment > POOL_MAX_ALIGNMENT)
    return bitnet_status_make(
        BITNET_STATUS_INVALID_ARGUMENT,
        "%s: alignment %lld is not a power of two up to %lld", fn,
        (long long)*alignment, (long long)POOL_MAX_ALIGNMENT);
  if (*alignment < 16)
    *alignment = 16;
  if (size > INT64_MAX / 2)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "%s: size %lld is too large", fn,
                              (long long)size);
  return BITNET_OK;
}

/* Takes a fresh block from malloc. Called with the mutex held. */
static bitnet_status new_block(bitnet_pool *pool, int64_t size,
                               int64_t alignment, pool_block **out) {
  int64_t capacity = (size + POOL_GRANULE - 1) / POOL_GRANULE * POOL_GRANULE;
  if (capacity == 0)
    capacity = POOL_GRANULE;
  int64_t reserved = capacity + alignment + (int64_t)sizeof(pool_block);
  void *raw = malloc((size_t)reserved);
  if (raw == NULL)
    return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                              "bitnet_pool: cannot allocate %lld bytes",
                              (long long)size);
  uintptr_t user = ((uintptr_t)raw + sizeof(pool_block) + (uintptr_t)alignment -
                    1) & ~((uintptr_t)alignment - 1);
  pool_block *block = header_of((void *)user);
  block->raw = raw;
  block->next = NULL;
  block->capacity = (int64_t)((uintptr_t)raw + (uintptr_t)reserved - user);
  pool->stats.bytes_reserved += block->capacity;
  if (pool->stats.bytes_reserved > pool->stats.peak_bytes_reserved)
    pool->stats.peak_bytes_reserved = pool->stats.bytes_reserved;
  *out = block;
  return BITNET_OK;
}

/* Records `block` as handed out. Called with the mutex held. */
static bitnet_status mark_live(bitnet_pool *pool, pool_block *block) {
  if (pool->live_count == pool->live_capacity) {
    int64_t capacity = pool->live_capacity ? 2 * pool->live_capacity : 16;
    pool_block **table =
        realloc(pool->live_table, (size_t)capacity * sizeof(*table));
    if (table == NULL)
      return bitnet_status_make(BITNET_STATUS_OUT_OF_MEMORY,
                                "bitnet_pool: out of memory");
    pool->live_table = table;
    pool->live_capacity = capacity;
  }
  pool->live_table[pool->live_count++] = block;
  pool->stats.bytes_in_use += block->capacity;
  if (pool->stats.bytes_in_use > pool->stats.peak_bytes_in_use)
    pool->stats.peak_bytes_in_use = pool->stats.bytes_in_use;
  pool->stats.allocations++;
  return BITNET_OK;
}

bitnet_status bitnet_pool_allocate(bitnet_pool *pool, int64_t size,
                                   int64_t alignment, void **out_ptr) {
  BITNET_CHECK_ARG(out_ptr, "bitnet_pool_allocate");
  *out_ptr = NULL;
  BITNET_CHECK_ARG(pool, "bitnet_pool_allocate");
  BITNET_RETURN_IF_ERROR(check_request("bitnet_pool_allocate", size, &alignment));

  pthread_mutex_lock(&pool->mutex);
  /* Smallest cached block that fits and is aligned well enough. */
  pool_block **best = NULL;
  for (pool_block **link = &pool->cached; *link; link = &(*link)->next) {
    pool_block *b = *link;
    if (b->capacity >= size &&
        ((uintptr_t)user_of(b) & ((uintptr_t)alignment - 1)) == 0 &&
        (best == NULL || b->capacity < (*best)->capacity))
      best = link;
  }
  pool_block *block = NULL;
  bitnet_status status = BITNET_OK;
  if (best != NULL) {
    block = *best;
    *best = block->next;
    block->next = NULL;
    pool->stats.allocations_from_pool++;
  } else {
    status = new_block(pool, size, alignment, &block);
    if (status == BITNET_OK)
      pool->stats.allocations_fresh++;
  }
  if (status == BITNET_OK) {
    status = mark_live(pool, block);
    if (status != BITNET_OK) { /* keep the block cached for later */
      block->next = pool->cached;
      pool->cached = block;
    }
  }
  pthread_mutex_unlock(&pool->mutex);
  if (status == BITNET_OK)
    *out_ptr = user_of(block);
  return status;
}

bitnet_status bitnet_pool_deallocate(bitnet_pool *pool, void *ptr) {
  BITNET_CHECK_ARG(pool, "bitnet_pool_deallocate");
  if (ptr == NULL)
    return BITNET_OK;
  pool_block *block = header_of(ptr);
  pthread_mutex_lock(&pool->mutex);
  /* The live table is the authority: it also catches foreign pointers
   * without reading memory in front of them. */
  int64_t index = -1;
  for (int64_t i = pool->live_count - 1; i >= 0; --i) {
    if (pool->live_table[i] == block) {
      index = i;
      break;
    }
  }
  if (index < 0) {
    pthread_mutex_unlock(&pool->mutex);
    return bitnet_status_make(
        BITNET_STATUS_INVALID_ARGUMENT,
        "bitnet_pool_deallocate: %p is not a block in use from this pool "
        "(given back twice, or from elsewhere)",
        ptr);
  }
  pool->live_table[index] = pool->live_table[--pool->live_count];
  block->next = pool->cached;
  pool->cached = block;
  pool->stats.bytes_in_use -= block->capacity;
  pool->stats.deallocations++;
  pthread_mutex_unlock(&pool->mutex);
  return BITNET_OK;
}

bitnet_status bitnet_pool_reserve(bitnet_pool *pool, int64_t size,
                                  int64_t alignment) {
  BITNET_CHECK_ARG(pool, "bitnet_pool_reserve");
  BITNET_RETURN_IF_ERROR(check_request("bitnet_pool_reserve", size, &alignment));
  pthread_mutex_lock(&pool->mutex);
  pool_block *block = NULL;
  bitnet_status status = new_block(pool, size, alignment, &block);
  if (status == BITNET_OK) {
    block->next = pool->cached;
    pool->cached = block;
    pool->stats.allocations_fresh++;
  }
  pthread_mutex_unlock(&pool->mutex);
  return status;
}

void bitnet_pool_trim(bitnet_pool *pool) {
  if (pool == NULL)
    return;
  pthread_mutex_lock(&pool->mutex);
  for (pool_block *b = pool->cached, *next; b; b = next) {
    next = b->next;
    pool->stats.bytes_reserved -= b->capacity;
    free_block(b);
  }
  pool->cached = NULL;
  pthread_mutex_unlock(&pool->mutex);
}

bitnet_status bitnet_pool_get_stats(bitnet_pool *pool,
                                    bitnet_pool_stats *out_stats) {
  BITNET_CHECK_ARG(pool, "bitnet_pool_get_stats");
  BITNET_CHECK_ARG(out_stats, "bitnet_pool_get_stats");
  pthread_mutex_lock(&pool->mutex);
  *out_stats = pool->stats;
  pthread_mutex_unlock(&pool->mutex);
  return BITNET_OK;
}

void bitnet_pool_reset_peaks(bitnet_pool *pool) {
  if (pool == NULL)
    return;
  pthread_mutex_lock(&pool->mutex);
  pool->stats.peak_bytes_in_use = pool->stats.bytes_in_use;
  pool->stats.peak_bytes_reserved = pool->stats.bytes_reserved;
  pthread_mutex_unlock(&pool->mutex);
}
