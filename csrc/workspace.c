/*
 * workspace.c: one scratch buffer per thread, grown on demand and kept between calls, so that hot loops
 * never allocate. Each OpenMP worker and each Python thread that calls in has its own, which also makes
 * concurrent calls from several Python threads safe. A thread's buffer is freed when the thread exits.
 */
#include <pthread.h>
#include <stdlib.h>
#include "layout.h"

typedef struct {
    float *data;
    size_t floats;
} buffer_t;

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void release(void *p)
{
    buffer_t *b = p;
    free(b->data);
    free(b);
}

static void make_key(void) { pthread_key_create(&key, release); }

float *lf_workspace(size_t floats)
{
    pthread_once(&once, make_key);
    buffer_t *b = pthread_getspecific(key);
    if (!b) {
        b = calloc(1, sizeof *b);
        if (!b || pthread_setspecific(key, b) != 0) {
            free(b);
            return NULL;
        }
    }
    if (b->floats < floats) {
        free(b->data);
        b->floats = 0;
        /* 64-byte aligned for whole-cache-line vectors; zeroed so padding read by vectors is finite. */
        const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
        b->data = aligned_alloc(64, bytes);
        if (!b->data)
            return NULL;
        memset(b->data, 0, bytes);
        b->floats = floats;
    }
    return b->data;
}
