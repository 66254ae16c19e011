/*
 * dispatch.c: the public entry points. Picks, once, the fastest kernel table this CPU runs (AVX-512, then
 * AVX2 with FMA, then the x86-64 baseline); LENET_FAST_ISA or lf_select_isa() can force a slower one.
 * Also the thread-count controls, which are OpenMP's own so that threadpoolctl sees and limits them, and
 * the two hazards of OpenMP's thread pool that would otherwise end or hang the process: fork and a failed
 * thread creation (threads_ready below).
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "ops.h"
#ifdef _OPENMP
#include <omp.h>
#endif

static const lf_kernel_table *tables[] = {
#ifdef LF_HAVE_AVX512
    &lf_kernels_avx512,
#endif
#ifdef LF_HAVE_AVX2
    &lf_kernels_avx2,
#endif
    &lf_kernels_baseline,
};
#define NTABLES (sizeof tables / sizeof tables[0])

static int supported(const lf_kernel_table *t)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(t->name, "avx512") == 0)
        return __builtin_cpu_supports("avx512f");
    if (strcmp(t->name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(t->name, "baseline") == 0;
}

static const lf_kernel_table *active;

int lf_select_isa(const char *name)
{
    for (size_t i = 0; i < NTABLES; i++)
        if ((name == NULL || strcmp(tables[i]->name, name) == 0) && supported(tables[i])) {
            active = tables[i];
            return 0;
        }
    return -1;
}

static const lf_kernel_table *kernels(void)
{
    if (!active) {
        const char *forced = getenv("LENET_FAST_ISA");
        if (!forced || !*forced || lf_select_isa(forced) != 0)
            lf_select_isa(NULL);
    }
    return active;
}

const char *lf_isa_name(void) { return kernels()->name; }

/* The int8 kernels follow the float32 path (so LENET_FAST_ISA and lf_select_isa narrow both), in its VNNI
 * form where the path's copy holds one (int8_gemm.c) and the CPU runs it, unless lf_int8_select_isa has
 * forced a path. */
static const lf_kernel_table *int8_table; /* the forced path, or NULL */
static int int8_vnni;                     /* the forced path's VNNI form */

static int vnni_supported(const lf_kernel_table *t)
{
    if (!t->int8_vnni)
        return 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (strcmp(t->int8_vnni, "avx512vnni") == 0)
        return __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl");
    if (strcmp(t->int8_vnni, "avxvnni") == 0)
        return __builtin_cpu_supports("avxvnni");
#endif
    return 0;
}

static const lf_kernel_table *int8_kernels(int *vnni)
{
    const lf_kernel_table *t = int8_table ? int8_table : kernels();
    *vnni = int8_table ? int8_vnni : vnni_supported(t);
    return t;
}

const char *lf_int8_isa_name(void)
{
    int vnni;
    const lf_kernel_table *t = int8_kernels(&vnni);
    return vnni ? t->int8_vnni : t->name;
}

int lf_int8_select_isa(const char *name)
{
    if (name == NULL) {
        int8_table = NULL;
        return 0;
    }
    for (size_t i = 0; i < NTABLES; i++) {
        const lf_kernel_table *t = tables[i];
        if (!supported(t))
            continue;
        const int vnni = t->int8_vnni && strcmp(t->int8_vnni, name) == 0 && vnni_supported(t);
        if (vnni || strcmp(t->name, name) == 0) {
            int8_vnni = vnni;
            int8_table = t;
            return 0;
        }
    }
    return -1;
}

/* ---- Threads ----
 *
 * Fork: libgomp's thread pool does not survive fork(). The child inherits the pool's bookkeeping but not
 * its threads, and its first parallel region on more than one thread waits for them forever. So, as
 * PyTorch and scikit-learn do, a child forked after this process may have started OpenMP threads runs
 * every later call on its calling thread (a one-thread region never touches the pool), says 1 from
 * lf_get_num_threads and refuses more (LF_ERR_FORKED). A child forked before any threaded call keeps its
 * threads: it has no pool yet and starts its own.
 *
 * Thread creation: libgomp exits the process when pthread_create fails. Before a call runs a parallel
 * region on more threads than any call before it, probe_threads creates and joins that many threads with
 * the stack libgomp gives its own (OMP_STACKSIZE, else GOMP_STACKSIZE, else the default): if they cannot
 * all exist at once, the call returns LF_ERR_THREADS instead. The probe asks for every thread of the team
 * while whatever pool exists stays, so it may refuse a count libgomp could just start, never accept one it
 * could not start at that moment. */
#ifdef _OPENMP
static int threads_started; /* a call here may have started OpenMP threads (relaxed atomics) */
static int forked;          /* this process was forked after threads_started: one thread only */
static int probed = 1;      /* thread counts up to this one passed probe_threads */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;

static void after_fork_in_child(void)
{
    if (__atomic_load_n(&threads_started, __ATOMIC_RELAXED))
        forked = 1;
    /* Only the forking thread lives on in the child: a probe another thread was running is gone. */
    pthread_mutex_init(&probe_lock, NULL);
}

__attribute__((constructor)) static void watch_fork(void) { pthread_atfork(NULL, NULL, after_fork_in_child); }

/* libgomp's own stack size for its threads: OMP_STACKSIZE or GOMP_STACKSIZE, a size with an optional unit
 * B, K, M or G (K when none); 0 (the default) when neither is set or valid. */
static size_t omp_stacksize(void)
{
    const char *names[] = {"OMP_STACKSIZE", "GOMP_STACKSIZE"};
    for (int i = 0; i < 2; i++) {
        const char *s = getenv(names[i]);
        if (!s)
            continue;
        char *end;
        const unsigned long long v = strtoull(s, &end, 10);
        if (end == s)
            continue;
        while (isspace((unsigned char)*end))
            end++;
        int shift = 10;
        switch (toupper((unsigned char)*end)) {
        case 'B': shift = 0, end++; break;
        case 'K': shift = 10, end++; break;
        case 'M': shift = 20, end++; break;
        case 'G': shift = 30, end++; break;
        }
        while (isspace((unsigned char)*end))
            end++;
        if (*end == '\0' && v > 0 && v <= (~0ULL >> shift))
            return (size_t)(v << shift);
    }
    return 0;
}

static void *idle(void *arg) { return arg; }

/* 0 when n - 1 more threads (a team of n) can exist at once, then sets probed; LF_ERR_THREADS otherwise. */
static int probe_threads(int n)
{
    pthread_mutex_lock(&probe_lock);
    int rc = 0;
    if (n > probed) {
        pthread_t *ids = malloc((size_t)(n - 1) * sizeof *ids);
        pthread_attr_t attr;
        int made = 0;
        if (ids && pthread_attr_init(&attr) == 0) {
            const size_t stack = omp_stacksize();
            if (stack == 0 || pthread_attr_setstacksize(&attr, stack) == 0)
                while (made < n - 1 && pthread_create(&ids[made], &attr, idle, NULL) == 0)
                    made++;
            pthread_attr_destroy(&attr);
        }
        for (int i = 0; i < made; i++)
            pthread_join(ids[i], NULL);
        free(ids);
        if (made == n - 1)
            __atomic_store_n(&probed, n, __ATOMIC_RELAXED);
        else
            rc = LF_ERR_THREADS;
    }
    pthread_mutex_unlock(&probe_lock);
    return rc;
}
#endif

/* Every call that may run a parallel region (on `work` items or rows) asks first: 0 to go on, or
 * LF_ERR_THREADS when the thread count in force cannot be started. In a forked child, it puts the
 * calling thread on one thread first (an OpenMP setting is per thread, and threadpoolctl may have raised
 * it). Past the first call at a count, it costs a flag, omp_get_max_threads and two compares. */
static int threads_ready(size_t work)
{
#ifdef _OPENMP
    if (__builtin_expect(forked, 0)) {
        if (omp_get_max_threads() > 1)
            omp_set_num_threads(1);
        return 0;
    }
    if (work <= 1)
        return 0;
    const int n = omp_get_max_threads();
    if (n <= 1)
        return 0;
    if (n > __atomic_load_n(&probed, __ATOMIC_RELAXED) && probe_threads(n) != 0)
        return LF_ERR_THREADS;
    if (!__atomic_load_n(&threads_started, __ATOMIC_RELAXED))
        __atomic_store_n(&threads_started, 1, __ATOMIC_RELAXED);
#else
    (void)work;
#endif
    return 0;
}

int lf_forward(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out)
{
    const int rc = threads_ready((size_t)n);
    return rc ? rc : kernels()->forward(layers, nlayers, input, n, out);
}

int lf_softmax(const float *x, int n, int k, float sign, int log, float *y)
{
    const int rc = threads_ready((size_t)n);
    if (rc)
        return rc;
    kernels()->softmax(x, n, k, sign, log, y);
    return 0;
}

void lf_activation(const float *x, size_t count, lf_act act, float *y) { kernels()->activation(x, count, act, y); }

int lf_gradient(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                float scale, int second, float *grad, float *losses, float *out, float *dinput)
{
    const int rc = threads_ready((size_t)n);
    return rc ? rc : kernels()->gradient(t, input, n, labels, loss, scale, second, grad, losses, out, dinput);
}

int lf_losses(const lf_loss *loss, const float *out, int n, int k, const int64_t *labels, float *losses)
{
    return kernels()->losses(loss, out, n, k, labels, losses);
}

void lf_update(lf_optimizer *opt, float *params, const float *grad, size_t nparams)
{
    kernels()->update(opt, params, grad, nparams);
}

int lf_train(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
             int batch_size, int summed, lf_optimizer *opt, float *params, float *grad, float *losses,
             float *out)
{
    const int rc = threads_ready((size_t)(n < batch_size ? n : batch_size));
    return rc ? rc : kernels()->train(t, input, n, labels, loss, batch_size, summed, opt, params, grad, losses,
                                      out);
}

int lf_int8_forward(const lf_int8_layer *layers, int nlayers, const uint8_t *pixels, int h, int w, int n,
                    void *out)
{
    const int rc = threads_ready((size_t)n);
    int vnni;
    const lf_kernel_table *t = int8_kernels(&vnni);
    return rc ? rc : t->int8_forward(layers, nlayers, pixels, h, w, n, out, vnni);
}

void lf_int8_gemm(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c)
{
    int vnni;
    const lf_kernel_table *t = int8_kernels(&vnni);
    t->int8_gemm(a, lda, m, w, depth, nw, c, vnni);
}

int lf_openmp_enabled(void)
{
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

int lf_get_num_threads(void)
{
#ifdef _OPENMP
    return forked ? 1 : omp_get_max_threads();
#else
    return 1;
#endif
}

int lf_set_num_threads(int n)
{
#ifdef _OPENMP
    if (forked && n > 1)
        return LF_ERR_FORKED;
    if (n > 1 && n > __atomic_load_n(&probed, __ATOMIC_RELAXED) && probe_threads(n) != 0)
        return LF_ERR_THREADS;
    omp_set_num_threads(n);
#else
    (void)n;
#endif
    return 0;
}
