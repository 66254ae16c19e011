/*
 * ops.h: the kernels: one ops record per layer kind, the tile macros the kernels share, and the
 * per-instruction-set kernel table that dispatch.c picks from. Not part of the public interface.
 *
 * Every kernel file (setup.py: every C file here but dispatch.c, workspace.c and trainer_state.c) is compiled
 * once per instruction set, with LF_ISA_SUFFIX naming the copy: LF_ISA(name) is name_avx512, name_avx2 or
 * name_baseline. A new layer kind is one file that defines its lf_layer_ops and one entry in
 * kernel_table.c (CONTRIBUTING.md#adding-a-kernel).
 */
#ifndef LENET_FAST_OPS_H
#define LENET_FAST_OPS_H

#include "trainer_state.h"

/* Accumulator tiles: how many vectors of outputs one pass keeps in registers (of 32 or 16). */
#define LF_UPTO_2(X) X(1) X(2)
#define LF_UPTO_3(X) LF_UPTO_2(X) X(3)
#define LF_UPTO_4(X) LF_UPTO_3(X) X(4)
#define LF_UPTO_6(X) LF_UPTO_4(X) X(5) X(6)
#define LF_UPTO_8(X) LF_UPTO_6(X) X(7) X(8)
#define LF_UPTO_12(X) LF_UPTO_8(X) X(9) X(10) X(11) X(12)
#define LF_UPTO_24(X) LF_UPTO_12(X) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23) X(24)
#if defined(__AVX512F__)
#define LF_TILE 24
#define LF_TILE_SIZES LF_UPTO_24
#else
#define LF_TILE 12
#define LF_TILE_SIZES LF_UPTO_12
#endif

#define LF_STR(x) #x
#define LF_XSTR(x) LF_STR(x)
/* Unrolls the loop that follows completely: for loops over a tile's accumulators (constant trip counts up to
 * LF_TILE), so that the accumulators stay in registers. GCC unrolls at most 16 iterations by itself and
 * keeps larger AVX-512 tiles in memory. */
#define LF_UNROLL _Pragma(LF_XSTR(GCC unroll LF_TILE))
#define LF_CAT_(a, b) a##_##b
#define LF_CAT(a, b) LF_CAT_(a, b)
#ifdef LF_ISA_SUFFIX
#define LF_ISA(name) LF_CAT(name, LF_ISA_SUFFIX)
#endif

/* What the engine knows of one layer kind: its kernels on one block, in the layouts of layout.h. A table of
 * them indexed by lf_layer_kind takes the place of a switch on the kind wherever a network is planned or
 * run: one indirect call per layer and block, never one inside a kernel's loops. */
typedef struct {
    /* out = the layer applied to in, each laid out by its geometry */
    void (*forward)(const lf_layer *l, const float *in, const lf_geom *gi, float *out, const lf_geom *go);
    /* the backward pass of one block (lf_backward) */
    void (*backward)(const lf_layer *l, const lf_backward *b);
    /* the scratch floats backward needs in a layout of lanes; NULL when none */
    size_t (*backward_scratch)(const lf_layer *l, int lanes);
    /* adjusts the dense geometries (lf_dense_geom) of the layer's input gi and output go to what its kernels
     * read and write in a layout of lanes (for_backward: in a training plan); NULL when dense is right */
    void (*geometry)(const lf_layer *l, int lanes, int for_backward, lf_geom *gi, lf_geom *go);
} lf_layer_ops;

#define LF_LAYER_KINDS (LF_LAYER_DROPOUT + 1) /* lf_layer_kind's last value, plus one */

/* The per-instruction-set kernel table: the entry points dispatch.c forwards to (kernel_table.c). */
typedef struct {
    const char *name;
    int (*forward)(const lf_layer *, int, const lf_input *, int, float *);
    void (*softmax)(const float *, int, int, float, int, float *);
    void (*activation)(const float *, size_t, lf_act, float *);
    int (*gradient)(lf_trainer *, const lf_input *, int, const int64_t *, const lf_loss *, float, int, float *,
                    float *, float *, float *);
    int (*train)(lf_trainer *, const lf_input *, int, const int64_t *, const lf_loss *, int, int,
                 lf_optimizer *, float *, float *, float *, float *);
    void (*update)(lf_optimizer *, float *, const float *, size_t);
    int (*losses)(const lf_loss *, const float *, int, int, const int64_t *, float *);
    /* int8 inference (int8_ops.h); int8_vnni names the VNNI form the path's copy holds, or is NULL */
    int (*int8_forward)(const lf_int8_layer *, int, const uint8_t *, int, int, int, void *, int);
    void (*int8_gemm)(const uint8_t *, size_t, int, const int8_t *, int, int, int32_t *, int);
    const char *int8_vnni;
} lf_kernel_table;

extern const lf_kernel_table lf_kernels_avx512, lf_kernels_avx2, lf_kernels_baseline;

#ifdef LF_ISA_SUFFIX
/* Each layer kind's record (conv.c, subsample.c, full.c, rbf.c), and the table of them by kind
 * (kernel_table.c). */
extern const lf_layer_ops LF_ISA(conv_ops), LF_ISA(subsample_ops), LF_ISA(full_ops), LF_ISA(rbf_ops),
    LF_ISA(dropout_ops);
/* dropout.c: a training item's masks on the dropout layer l's output t (geometry g) of count images, the
 * first at epoch position image (l->first included); second squares the multipliers. */
void LF_ISA(dropout_mask)(const lf_layer *l, float *t, const lf_geom *g, int64_t image, int count, int second);
extern const lf_layer_ops *const LF_ISA(layer_ops)[LF_LAYER_KINDS];
static inline const lf_layer_ops *lf_ops(const lf_layer *l) { return LF_ISA(layer_ops)[l->kind]; }

/* forward.c: plans and runs the forward pass of one block. */
/* A block's plan. Spatial convolutions write compact rows for inference, wide rows for training
 * (for_backward: the backward passes read them). */
void LF_ISA(make_plan)(const lf_layer *layers, int nlayers, int lanes, int for_backward, lf_plan *p);
void LF_ISA(pack_input)(const lf_input *in, size_t first, int count, const lf_geom *g, float *dst);
void LF_ISA(unpack_output)(const float *src, const lf_geom *g, size_t first, int count, float *out);
/* Runs the layers on one work item in the calling thread's workspace ws. */
void LF_ISA(run_block)(const lf_layer *layers, int nlayers, const lf_plan *p, float *ws);

/* loss.c: the loss of a block's count images (the batch's from first on) and its gradient times scale (zero
 * in unused lanes) with respect to the output y (geometry g); second: the output curvature instead
 * (cross-entropy only). labels, losses and the linear loss's dout are the whole batch's. */
void LF_ISA(loss_block)(const lf_loss *loss, const float *y, const lf_geom *g, const int64_t *labels,
                        size_t first, int count, float scale, int second, float *dy, float *losses);
int LF_ISA(losses)(const lf_loss *loss, const float *out, int n, int k, const int64_t *labels, float *losses);

int LF_ISA(forward)(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out);
int LF_ISA(gradient)(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                     float scale, int second, float *grad, float *losses, float *out, float *dinput);
int LF_ISA(train)(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                  int batch_size, int summed, lf_optimizer *opt, float *params, float *grad, float *losses,
                  float *out);
void LF_ISA(update)(lf_optimizer *opt, float *params, const float *grad, size_t nparams);
void LF_ISA(softmax)(const float *x, int n, int k, float sign, int log, float *y);
void LF_ISA(activation)(const float *x, size_t count, lf_act act, float *y);
#endif

#endif
