/*
 * int8_gemm.h: the integer matrix kernel, written once over simd_int8.h's dot product and instantiated by
 * int8_gemm.c once per form (LF_I8_GEMM names the function). Not part of the public interface; no include
 * guard: it is read once per form, and undefines the form's names at its end.
 *
 * c[j * m + i] = sum over t < depth of a[i * lda + t] w[j * depth + t]: m rows of activations (a
 * convolution's patches, or a block's images) against nw weight rows (output channels). Tiles of 4 rows by
 * 2 weight rows keep 8 accumulators and 6 prepared operands in AVX2's 16 registers; the weight rows'
 * loop is outside, so that two rows stay in L1 while the activations stream past.
 */
static inline __attribute__((always_inline)) LF_I8_ATTRIBUTE void
LF_CAT(LF_I8_GEMM, tile)(const uint8_t *a, size_t lda, int mr, const int8_t *w, int depth, int nr, int32_t *c, int m)
{
    lf_i8_acc acc[4][2];
    for (int r = 0; r < mr; r++)
        for (int s = 0; s < nr; s++)
            acc[r][s] = lf_i8_zero();
    for (int t = 0; t < depth; t += LF_I8_STEP) {
        lf_i8_w wv[2];
        for (int s = 0; s < nr; s++)
            wv[s] = lf_i8_load_w(w + (size_t)s * depth + t);
        for (int r = 0; r < mr; r++) {
            const lf_i8_a av = lf_i8_load_a(a + r * lda + t);
            for (int s = 0; s < nr; s++)
                acc[r][s] = lf_i8_mac(acc[r][s], av, wv[s]);
        }
    }
    for (int s = 0; s < nr; s++) {
        if (mr == 4) {
            lf_i8_store4(c + (size_t)s * m, acc[0][s], acc[1][s], acc[2][s], acc[3][s]);
            continue;
        }
        for (int r = 0; r < mr; r++)
            c[(size_t)s * m + r] = lf_i8_sum(acc[r][s]);
    }
}

LF_I8_ATTRIBUTE void LF_I8_GEMM(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c)
{
    for (int j = 0; j < nw; j += 2) {
        const int8_t *wj = w + (size_t)j * depth;
        int32_t *cj = c + (size_t)j * m;
        int i = 0;
        /* constant tile sizes in every call, so that each becomes straight code with its accumulators in
         * registers */
        if (j + 2 <= nw) {
            for (; i + 4 <= m; i += 4)
                LF_CAT(LF_I8_GEMM, tile)(a + i * lda, lda, 4, wj, depth, 2, cj + i, m);
            for (; i < m; i++)
                LF_CAT(LF_I8_GEMM, tile)(a + i * lda, lda, 1, wj, depth, 2, cj + i, m);
        } else {
            for (; i + 4 <= m; i += 4)
                LF_CAT(LF_I8_GEMM, tile)(a + i * lda, lda, 4, wj, depth, 1, cj + i, m);
            for (; i < m; i++)
                LF_CAT(LF_I8_GEMM, tile)(a + i * lda, lda, 1, wj, depth, 1, cj + i, m);
        }
    }
}

#undef LF_I8_GEMM
#undef LF_I8_ATTRIBUTE
#undef LF_I8_FORM
#undef LF_I8_STEP
#undef lf_i8_zero
#undef lf_i8_load_a
#undef lf_i8_load_w
#undef lf_i8_mac
