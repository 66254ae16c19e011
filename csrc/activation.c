/*
 * activation.c: the activations over a whole array (the kernels fuse them; this is the stand-alone form).
 */
#include "ops.h"
#include "activation.h"

void LF_ISA(activation)(const float *x, size_t count, lf_act act, float *y)
{
    size_t i = 0;
    for (; i + LF_LANES <= count; i += LF_LANES)
        lf_store(y + i, lf_activate(lf_load(x + i), act));
    if (i < count)
        lf_store_n(y + i, lf_activate(lf_load_n(x + i, count - i), act), count - i);
}
