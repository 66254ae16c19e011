/*
 * layer_times.c: how long each classic layer's kernel takes on one work item, and the whole forward pass on
 * n images, with no Python in the way. Built and run by benchmarks/c/layer_times.py, which passes Table I (C3_START,
 * C3_IN) and the instruction set. Prints one line: each layer's fastest time over the rounds, then the
 * forward pass's, in microseconds per image, then (with OpenMP) what a parallel region costs on the threads
 * of OMP_NUM_THREADS, in microseconds.
 *
 * usage: layer_times blocked|spatial n rounds
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "ops.h"
#ifdef _OPENMP
#include <omp.h>
int lf_get_num_threads(void) { return omp_get_max_threads(); }
#else
int lf_get_num_threads(void) { return 1; }
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* count floats uniform in (-scale, scale), from a fixed seed: every run times the same numbers. */
static float *uniform(size_t count, float scale)
{
    float *p = malloc(count * sizeof *p);
    for (size_t i = 0; i < count; i++)
        p[i] = scale * (2.0f * rand() / (float)RAND_MAX - 1.0f);
    return p;
}

int main(int argc, char **argv)
{
    if (argc != 4)
        return fprintf(stderr, "usage: %s blocked|spatial n rounds\n", argv[0]), 2;
    const int lanes = strcmp(argv[1], "spatial") == 0 ? 1 : LF_LANES, n = atoi(argv[2]), rounds = atoi(argv[3]);
    static const int c3_start[] = C3_START, c3_in[] = C3_IN;
    srand(1);
    /* The classic network's shapes (weights at the scale of the paper's initialisation, or so). */
    lf_layer L[] = {
        {LF_LAYER_CONV, 1, 32, 32, 6, 28, 28, 5, 5, NULL, NULL, 0, LF_ACT_SQUASH, uniform(150, .1f), uniform(6, .1f), -1, -1},
        {LF_LAYER_SUBSAMPLE, 6, 28, 28, 6, 14, 14, 0, 0, NULL, NULL, LF_POOL_TRAINABLE, LF_ACT_SQUASH, uniform(6, .5f),
         uniform(6, .5f), -1, -1},
        {LF_LAYER_CONV, 6, 14, 14, 16, 10, 10, 5, 5, c3_start, c3_in, 0, LF_ACT_SQUASH, uniform(1500, .03f),
         uniform(16, .03f), -1, -1},
        {LF_LAYER_SUBSAMPLE, 16, 10, 10, 16, 5, 5, 0, 0, NULL, NULL, LF_POOL_TRAINABLE, LF_ACT_SQUASH, uniform(16, .5f),
         uniform(16, .5f), -1, -1},
        {LF_LAYER_FULL, 16, 5, 5, 120, 1, 1, 0, 0, NULL, NULL, 0, LF_ACT_SQUASH, uniform(48000, .006f), uniform(120, .006f),
         -1, -1},
        {LF_LAYER_FULL, 120, 1, 1, 84, 1, 1, 0, 0, NULL, NULL, 0, LF_ACT_SQUASH, uniform(10080, .02f), uniform(84, .02f), -1,
         -1},
        {LF_LAYER_RBF, 84, 1, 1, 10, 1, 1, 0, 0, NULL, NULL, 0, LF_ACT_NONE, uniform(840, 1.0f), NULL, -1, -1},
    };
    const char *names[] = {"C1", "S2", "C3", "S4", "C5", "F6", "RBF"};
    const int nlayers = sizeof L / sizeof L[0], calls = 50;

    lf_plan p;
    LF_ISA(make_plan)(L, nlayers, lanes, 0, &p);
    float *ws = lf_workspace(p.total);
    memcpy(ws, uniform(p.g[0].size, 1.0f), p.g[0].size * sizeof(float));
    for (int i = 0; i < nlayers; i++) {
        double best = 1e30;
        for (int r = 0; r < rounds; r++) {
            const double t0 = now();
            for (int c = 0; c < calls; c++) {
                lf_ops(&L[i])->forward(&L[i], ws + p.off[i], &p.g[i], ws + p.off[i + 1], &p.g[i + 1]);
            }
            const double t = (now() - t0) / calls / lanes;
            best = t < best ? t : best;
        }
        printf("%s %.3f ", names[i], best * 1e6);
    }

    float *images = uniform((size_t)n * 32 * 32, 0.5f), *out = malloc((size_t)n * 10 * sizeof(float));
    const lf_input input = {images, LF_F32, 1, 32, 32, 0};
    const int batches = n >= 64 ? 3 : calls;
    double best = 1e30;
    for (int r = 0; r < rounds; r++) {
        const double t0 = now();
        for (int c = 0; c < batches; c++)
            LF_ISA(forward)(L, nlayers, &input, n, out);
        const double t = (now() - t0) / batches / n;
        best = t < best ? t : best;
    }
    printf("forward %.3f", best * 1e6);
#ifdef _OPENMP
    /* What starting and ending a parallel region costs here: every forward call of more than one work item
     * pays one. */
    double fork = 1e30;
    for (int r = 0; r < rounds; r++) {
        const double t0 = now();
        for (int c = 0; c < 1000; c++) {
#pragma omp parallel
            __asm__ volatile("");
        }
        const double t = (now() - t0) / 1000;
        fork = t < fork ? t : fork;
    }
    printf(" parallel-region %.3f", fork * 1e6);
#endif
    printf("\n");
    return 0;
}
