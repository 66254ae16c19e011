/*
 * select_rank.h: the selection ink.c's medians use, shared with read_digit.c's border percentiles (internal:
 * not part of lenet_fast.h's interface).
 */
#ifndef LF_SELECT_RANK_H
#define LF_SELECT_RANK_H

#include <stddef.h>

/* The element of rank k of a[0 .. n) (0 <= k < n), the one a sort would put at a[k]; a is reordered. */
float lf_select_rank(float *a, ptrdiff_t n, ptrdiff_t k);

#endif
