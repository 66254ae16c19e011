/*
 * dispatch.c: the public entry points. Picks, once, the fastest kernel table this CPU runs (AVX-512, then
 * AVX2 with FMA, then the x86-64 baseline); LENET_FAST_ISA or lf_select_isa() can force a slower one.
 * Also the thread-count controls, which are OpenMP's own so that threadpoolctl sees and limits them.
 */
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

int lf_forward(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out)
{
    return kernels()->forward(layers, nlayers, input, n, out);
}

void lf_softmax(const float *x, int n, int k, float sign, int log, float *y)
{
    kernels()->softmax(x, n, k, sign, log, y);
}

void lf_activation(const float *x, size_t count, lf_act act, float *y) { kernels()->activation(x, count, act, y); }

int lf_gradient(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                float scale, int second, float *grad, float *losses, float *out, float *dinput)
{
    return kernels()->gradient(t, input, n, labels, loss, scale, second, grad, losses, out, dinput);
}

void lf_update(lf_optimizer *opt, float *params, const float *grad, size_t nparams)
{
    kernels()->update(opt, params, grad, nparams);
}

int lf_train(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
             int batch_size, lf_optimizer *opt, float *params, float *grad, float *losses, float *out)
{
    return kernels()->train(t, input, n, labels, loss, batch_size, opt, params, grad, losses, out);
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
    return omp_get_max_threads();
#else
    return 1;
#endif
}

void lf_set_num_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}
