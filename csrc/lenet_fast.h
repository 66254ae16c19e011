/*
 * lenet_fast.h: the C engine's public interface, as the Cython layer sees it.
 *
 * Shapes and layouts, once:
 *  - Everything is float32. A tensor of N images is (N, C, H, W), C-contiguous ("NCHW"); a vector per
 *    image (a full layer's input or output) is (N, K), i.e. (N, K, 1, 1).
 *  - A network is an array of lf_layer, run in order; each layer's output shape is the next one's input.
 *  - Convolution weights are packed in connection order: for each output map o, for each input map c
 *    connected to it (ascending c), a kh x kw kernel. A dense convolution (every input feeds every
 *    output) is the same as (Co, Ci, kh, kw). The connection table is given in CSR form: the inputs of
 *    output o are conn_in[conn_start[o] .. conn_start[o+1]).
 *  - Full-layer weights are input-major, (In, Out); RBF centres are (Out, In).
 *
 * The C side trusts its arguments: the Cython layer checks dtypes, shapes, contiguity, finiteness and the
 * connection table before calling, and releases the GIL around every call here.
 */
#ifndef LENET_FAST_H
#define LENET_FAST_H

#include <stddef.h>
#include <stdint.h>

typedef enum { LF_ACT_NONE = 0, LF_ACT_SQUASH, LF_ACT_TANH, LF_ACT_RELU } lf_act;
typedef enum { LF_POOL_TRAINABLE = 0, LF_POOL_AVERAGE, LF_POOL_MAX } lf_pool;
typedef enum { LF_LAYER_CONV = 0, LF_LAYER_SUBSAMPLE, LF_LAYER_FULL, LF_LAYER_RBF } lf_layer_kind;

typedef struct {
    lf_layer_kind kind;
    int in_c, in_h, in_w;      /* input shape of one image */
    int out_c, out_h, out_w;   /* output shape of one image */
    int kh, kw;                /* conv: kernel size */
    const int *conn_start;     /* conv: CSR connection table (out_c + 1 entries), or NULL for dense */
    const int *conn_in;        /* conv: input map of each connection */
    lf_pool pool;              /* subsample: trainable (coef * sum + bias), average or max over 2x2 */
    lf_act act;                /* activation applied to the layer's output */
    const float *weight;       /* conv: packed kernels; subsample: coef (C); full: (In, Out); rbf: (Out, In) */
    const float *bias;         /* conv, full: (Out,); subsample: (C,); rbf: unused */
} lf_layer;

typedef enum { LF_U8 = 0, LF_F32 } lf_dtype;

/* The network's input: n images of (c, h, w) pixels. With normalize set, pixels (uint8 0-255 or float
 * 0-1, 0 = background) map to the paper's [-0.1, 1.175] and a smaller image is centred in the first
 * layer's field with background around it; otherwise the floats are the first layer's input as they are. */
typedef struct {
    const void *data;
    lf_dtype dtype;
    int c, h, w;
    int normalize;
} lf_input;

/* Runs layers[0..nlayers) on n images; out is (n, out_c, out_h, out_w) of the last layer. Returns 0, or
 * -1 when a workspace cannot be allocated (nothing else can fail here). */
int lf_forward(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out);

/* Softmax over rows of a (n, k) array; sign -1 takes the softmax of -x (an RBF head's distances);
 * log selects log-softmax. */
void lf_softmax(const float *x, int n, int k, float sign, int log, float *y);

/* Elementwise activation of count floats. */
void lf_activation(const float *x, size_t count, lf_act act, float *y);

/* Build facts and threads. */
const char *lf_isa_name(void);          /* the instruction-set path chosen at run time */
int lf_select_isa(const char *name);    /* force a path ("avx512", "avx2", "baseline"); -1 if unavailable */
int lf_openmp_enabled(void);
int lf_get_num_threads(void);
void lf_set_num_threads(int n);

#endif
