/*
 * kernel_table.c: this instruction set's tables: the layer kinds' ops records by lf_layer_kind, which
 * forward.c and gradient.c run networks through, and the entry points dispatch.c picks among.
 */
#include "int8_ops.h"

const lf_layer_ops *const LF_ISA(layer_ops)[LF_LAYER_KINDS] = {
    [LF_LAYER_CONV] = &LF_ISA(conv_ops),
    [LF_LAYER_SUBSAMPLE] = &LF_ISA(subsample_ops),
    [LF_LAYER_FULL] = &LF_ISA(full_ops),
    [LF_LAYER_RBF] = &LF_ISA(rbf_ops),
    [LF_LAYER_DROPOUT] = &LF_ISA(dropout_ops),
};

const lf_kernel_table LF_ISA(lf_kernels) = {
    .name = LF_XSTR(LF_ISA_SUFFIX),
    .forward = LF_ISA(forward),
    .softmax = LF_ISA(softmax),
    .activation = LF_ISA(activation),
    .gradient = LF_ISA(gradient),
    .train = LF_ISA(train),
    .update = LF_ISA(update),
    .losses = LF_ISA(losses),
    .int8_forward = LF_ISA(int8_forward),
    .int8_gemm = LF_ISA(int8_gemm_any),
#ifdef LF_I8_VNNI
    .int8_vnni = LF_I8_VNNI,
#endif
};
