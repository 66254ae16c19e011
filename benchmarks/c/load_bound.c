/*
 * load_bound.c: how fast this machine's multiply-adds run when each loads its own vector operand, against
 * operands in registers; the reason the convolution tiles share every load among several accumulators
 * (csrc/conv.c). x86-64 only: vectors of 8 floats with AVX2 + FMA, of 16 when built with AVX-512 (the
 * kernels' two vector widths). Prints vector multiply-adds per nanosecond and per cycle at the clock given
 * (GHz, default 2.85), the fastest of 5 rounds:
 *
 *     gcc -O2 -mavx2 -mfma -o /tmp/load_bound benchmarks/c/load_bound.c && /tmp/load_bound [GHz]
 *     gcc -O2 -mavx512f -o /tmp/load_bound benchmarks/c/load_bound.c && /tmp/load_bound [GHz]
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#ifdef __AVX512F__
#define WIDTH 16
#define STRIDE "*2" /* operand offsets below are in 32-byte steps */
#define REG_CLASS "v"
#else
#define WIDTH 8
#define STRIDE ""
#define REG_CLASS "x"
#endif
typedef float vec __attribute__((vector_size(WIDTH * sizeof(float))));
static float buf[1024] __attribute__((aligned(64)));

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Ten independent accumulators (more than the multiply-add latency times its throughput), each step one
 * multiply-add into each: from a register, or from memory at p (aligned, or p + 2 floats: half the loads
 * then cross a cache line). */
#define TEN(op) op(0) op(32) op(64) op(96) op(128) op(160) op(192) op(224) op(256) op(288)
#define REG(o) "vfmadd231ps %[w], %[x], %[a" #o "]\n"
#define MEM(o) "vfmadd231ps " #o STRIDE "(%[p]), %[w], %[a" #o "]\n"
#define R "+" REG_CLASS
#define ACC [a0] R(a[0]), [a32] R(a[1]), [a64] R(a[2]), [a96] R(a[3]), [a128] R(a[4]), [a160] R(a[5]),          \
            [a192] R(a[6]), [a224] R(a[7]), [a256] R(a[8]), [a288] R(a[9])

static double rate(int mode, long steps)
{
    vec a[10] = {{0}}, w = {0}, x = {0};
    const float *p = buf + (mode == 2 ? 2 : 0);
    const double t = now();
    for (long i = 0; i < steps; i++) {
        if (mode == 0)
            __asm__ volatile(TEN(REG) : ACC : [w] REG_CLASS(w), [x] REG_CLASS(x));
        else
            __asm__ volatile(TEN(MEM) : ACC : [w] REG_CLASS(w), [p] "r"(p));
    }
    return 10.0 * steps / (now() - t) / 1e9;
}

int main(int argc, char **argv)
{
    const double ghz = argc > 1 ? atof(argv[1]) : 2.85;
    const char *names[] = {"from registers", "each loading its operand, aligned", "each loading, unaligned"};
    for (int mode = 0; mode < 3; mode++) {
        double best = 0;
        for (int r = 0; r < 5; r++) {
            const double g = rate(mode, 20000000);
            best = g > best ? g : best;
        }
        printf("multiply-adds of %d floats %-35s %.2f per ns, %.2f per cycle at %.2f GHz\n", WIDTH, names[mode], best,
               best / ghz, ghz);
    }
    return 0;
}
