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

/* Activations. LEAKY_RELU has slope LF_LEAKY_SLOPE below 0 and ELU alpha LF_ELU_ALPHA (PyTorch's defaults). */
typedef enum {
    LF_ACT_NONE = 0, LF_ACT_SQUASH, LF_ACT_TANH, LF_ACT_RELU, LF_ACT_LEAKY_RELU, LF_ACT_ELU, LF_ACT_SIGMOID
} lf_act;
#define LF_LEAKY_SLOPE 0.01f
#define LF_ELU_ALPHA 1.0f
typedef enum { LF_POOL_TRAINABLE = 0, LF_POOL_AVERAGE, LF_POOL_MAX } lf_pool;
typedef enum { LF_LAYER_CONV = 0, LF_LAYER_SUBSAMPLE, LF_LAYER_FULL, LF_LAYER_RBF, LF_LAYER_DROPOUT } lf_layer_kind;

/* The most layers a network has: a block's plan keeps every layer's tensor in fixed arrays. */
#define LF_MAX_LAYERS 16

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
    ptrdiff_t weight_at, bias_at; /* training: where weight's and bias's gradients sit in the flat gradient
                                   * vector (same shapes as weight and bias), or -1 when not trained */
    /* dropout (inverted: kept units scaled by 1 / (1 - rate)): the identity at inference and wherever rate
     * is 0; in training, unit u of the image at position p of the epoch is dropped as a pure function of
     * (key, p, u) (dropout.c), so that masks do not depend on threads, batches or chunks. */
    float rate;                /* the share of units dropped in training */
    uint64_t key;              /* the masks' key: fit's seed, the epoch and the layer (lenet_fast/_core.pyx) */
    int64_t first;             /* the epoch position of the first image of the call (lf_gradient, lf_train) */
    /* lf_forward rounds the layer's output to bfloat16 (nearest, ties to even) when set: the bf16 model's
     * arithmetic on the fp32 kernels (lenet_fast/model.py, BF16LeNet5). 0 everywhere else; last in the struct,
     * so that a positional initializer that stops before it leaves it 0. Training ignores it. */
    int round_output;
} lf_layer;

typedef enum { LF_U8 = 0, LF_F32 } lf_dtype;

/* The network's input: n images of (c, h, w) pixels. With normalize set, pixels (uint8 0-255 or float
 * 0-1, 0 = background) map to the paper's input range (docs/paper.md#input-normalization) and a smaller
 * image is centred in the first layer's field with background around it; otherwise the floats are the first
 * layer's input as they are. */
typedef struct {
    const void *data;
    lf_dtype dtype;
    int c, h, w;
    int normalize;
} lf_input;

/* Errors of the calls below that return an int: -1 when a workspace cannot be allocated; LF_ERR_THREADS
 * when the OpenMP thread count in force needs threads that cannot be created (libgomp would exit the
 * process): nothing ran; LF_ERR_FORKED from lf_set_num_threads (more than one thread in a process forked
 * after it had started OpenMP threads, whose pool the child does not have: dispatch.c). */
#define LF_ERR_THREADS (-2)
#define LF_ERR_FORKED (-3)

/* Runs layers[0..nlayers) on n images; out is (n, out_c, out_h, out_w) of the last layer. Returns 0, -1
 * or LF_ERR_THREADS (nothing else can fail here). */
int lf_forward(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out);

/* Softmax over rows of a (n, k) array; sign -1 takes the softmax of -x (an RBF head's distances);
 * log selects log-softmax. 0, or LF_ERR_THREADS. */
int lf_softmax(const float *x, int n, int k, float sign, int log, float *y);

/* Elementwise activation of count floats. */
void lf_activation(const float *x, size_t count, lf_act act, float *y);

/* ---- Training ----
 * Trainable parameters live in one flat float vector (the layers' weight and bias point into it); their
 * gradients live in a vector of the same layout, at the layers' weight_at and bias_at. Gradients are of
 * the sum of the per-image losses times a scale (1/n for a mean). They are bit-identical for any thread
 * count: the batch is cut into blocks by its size alone, each block's gradient is added into one of
 * LF_GRAD_SLOTS slots (block b into slot b mod slots, in block order), and the slots are summed in slot
 * order. */
#define LF_GRAD_SLOTS 16

typedef enum { LF_LOSS_MAP = 0, LF_LOSS_RBF, LF_LOSS_XENT, LF_LOSS_LINEAR, LF_LOSS_HINGE } lf_loss_kind;
typedef struct {
    lf_loss_kind kind; /* MAP criterion or plain distance (RBF head: the distances y); softmax
                        * cross-entropy (a full head: the logits); linear (any last layer, below) */
    float j;           /* MAP: the constant j of exp(-j) */
    float reject_j;    /* MAP, an image labelled -1 (not a digit): the rubbish class's distance in its loss */
    const float *dout; /* LINEAR: (n, out_c, out_h, out_w), the gradient wanted at the output: image i's loss
                        * is sum(out_i * dout_i), so the backward pass runs from dout as it is (a network's, or
                        * one layer's, backward for a chosen output gradient). Labels are not read; its second
                        * derivatives are zero.
                        * HINGE: the multiclass SVM loss (Weston-Watkins) on scores s, the logits or, for an RBF
                        * head, the negative distances: sum over i != D of max(0, s_i - s_D + 1). Piecewise
                        * linear: no Gauss-Newton curvature (the Cython layer refuses second derivatives). */
    float sign;        /* HINGE: the scores are sign * the outputs (1 for logits, -1 for RBF distances) */
} lf_loss;

/* The update rules, PyTorch's forms, are written out in optimizer.c. */
typedef enum {
    LF_OPT_SGD = 0, LF_OPT_ADAM, LF_OPT_SDLM, LF_OPT_ADAGRAD, LF_OPT_RMSPROP, LF_OPT_ADAMW
} lf_opt_kind;
typedef struct {
    lf_opt_kind kind;
    float lr, momentum, weight_decay; /* all but SDLM use lr and weight_decay (added to the gradient, but
                                       * decoupled in AdamW); SGD and RMSProp the momentum */
    float beta1, beta2, eps;          /* Adam and AdamW; AdaGrad and RMSProp use eps */
    float alpha;                      /* RMSProp: the mean square's decay */
    int nesterov;                     /* SGD: Nesterov momentum */
    int64_t t;                        /* Adam, AdamW: updates made so far; each update advances it */
    float *m, *v;                     /* SGD: m is the velocity; AdaGrad: v the sum of squares; RMSProp: m the
                                       * velocity, v the mean square; Adam, AdamW: the two moment estimates */
    const float *step;                /* SDLM: each parameter's step, epsilon / (mu + h) */
} lf_optimizer;

/* What training keeps between calls: the gradient slots and the transposed convolutions. The layers must
 * outlive it. NULL when memory is short. */
typedef struct lf_trainer lf_trainer;
lf_trainer *lf_trainer_new(const lf_layer *layers, int nlayers, size_t nparams);
void lf_trainer_free(lf_trainer *t);

/* The gradient of scale * sum of the losses of n images (labels in 0..K-1) into grad; each image's loss
 * into losses (n) and the network's output into out (n, K). With second set, grad gets the diagonal
 * Gauss-Newton second derivatives instead (LeCun 1998, appendix C): the curvature at the output is 2 per
 * RBF input (the y_D term's) or p(1 - p) per logit, propagated with squared weights and derivatives.
 * dinput: NULL, or it receives the same for the first layer's input, (n, c, h, w) of layers[0]'s input
 * shape (the field the layers see: after normalization and centring). Returns 0, or -1 when a workspace
 * cannot be allocated, or LF_ERR_THREADS. */
int lf_gradient(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                float scale, int second, float *grad, float *losses, float *out, float *dinput);

/* Each image's loss (labels as lf_gradient's; not LINEAR) from the network's outputs out (n, k), as
 * lf_gradient computes it: evaluation without a backward pass. On the calling thread; 0, or -1 when a
 * workspace cannot be allocated. */
int lf_losses(const lf_loss *loss, const float *out, int n, int k, const int64_t *labels, float *losses);

/* One update of the flat parameter vector from its gradient. */
void lf_update(lf_optimizer *opt, float *params, const float *grad, size_t nparams);

/* Trains on n images in order, batch_size at a time, each batch's mean gradient (its sum with summed
 * nonzero) followed by an update (batch_size 1: the paper's per-pattern updates). grad is scratch of
 * nparams floats; losses and out as in lf_gradient, for all n images, each computed before its batch's
 * update. loss is not LINEAR (its dout would be the first batch's). 0, -1 or LF_ERR_THREADS as above. */
int lf_train(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
             int batch_size, int summed, lf_optimizer *opt, float *params, float *grad, float *losses,
             float *out);

/* Pictures: the steps that find a digit in a photo before it becomes an MNIST image (lenet_fast/images.py).
 * One image, row-major (h, w), on the calling thread; the caller runs several images at once.
 *
 * lf_morphology: out = the grey-level closing (closing != 0) or opening of in by a k x k square, k odd,
 * windows cut at the image's edges. scratch holds lf_morphology_scratch(h, w, k) floats; in and out may
 * not overlap it or each other. */
size_t lf_morphology_scratch(int h, int w, int k);
void lf_morphology(const float *in, int h, int w, int k, int closing, float *out, float *scratch);
/* lf_ink: the ink of a gray picture (h, w) against its paper, less the noise floor (ink.c says how). paper:
 * (h, w), or NULL for the one level `level`. dark: (paper - gray) / max(paper, min_paper); else
 * gray - paper. Writes ink (h, w); scratch holds ((h + 1) / 2) * ((w + 1) / 2) floats. Sets contrast (the
 * strongest ink above the floor) and floor; returns 1, ink less the floor and clipped at 0, when the
 * contrast reaches max(min_contrast, sigmas * sigma), else 0 (ink then not floored). */
int lf_ink(const float *gray, const float *paper, float level, int h, int w, int dark, float min_paper,
           double sigmas, double min_contrast, float *ink, float *scratch, double *contrast, double *floor);
/* lf_components: labels[i] = the 8-connected component of mask pixel i (nonzero), numbered 1, 2, ... in
 * the raster order of each component's first pixel; 0 off the mask. Returns the number of components.
 * parent is scratch of h * w + 1 entries. */
int32_t lf_components(const uint8_t *mask, int h, int w, int32_t *labels, int32_t *parent);
/* lf_component_stats: for each of the count components lf_components numbered in labels, its box
 * boxes[c] = (top, left, bottom, right), bottom and right exclusive, and the sum and maximum of values
 * (h, w) over its pixels (the sum in double, in raster order). Labels lie in 0..count (the caller checks);
 * a number with no pixel keeps the box (h, w, 0, 0), sum 0 and maximum -INFINITY. values may be NULL: boxes
 * only (sums and peaks are not touched). */
void lf_component_stats(const int32_t *labels, int h, int w, int32_t count, const float *values, int32_t *boxes,
                        double *sums, float *peaks);

/* read_digit.c: a gray picture (h, w), float32 in [0, 1] with 1 white, to its 28x28 MNIST form, read_digit's
 * steps 2-8 (lenet_fast/images.py's module docstring). The constants are images.py's, passed in: */
typedef struct {
    int work_size;       /* WORK_SIZE: a longer side beyond it is block-averaged first */
    int polarity_size;   /* POLARITY_SIZE: the coarse picture the polarity is decided on */
    int light_window;    /* LIGHT_WINDOW: the paper's window is the longer side / this ... */
    int min_window;      /* MIN_WINDOW: ... and at least this */
    int min_size;        /* MIN_SIZE: a digit smaller both ways is a speck */
    int adjacent;        /* ADJACENT: a piece this close to the digit's box is kept */
    int box;             /* BOX: the scaled digit's longer side */
    int size;            /* SIZE: the field's side; the caller's digit holds size * size bytes */
    float flat_paper;    /* FLAT_PAPER: the border's 10th-90th percentile range that counts as evenly lit */
    float min_paper;     /* MIN_PAPER */
    double noise_sigmas, min_contrast, ink_threshold, part_share, mark_peak, part_reach, centre;
} lf_picture_params;

/* What lf_read_digit found: LF_PICTURE_OK (digit written), LF_PICTURE_NO_INK (nothing above the noise floor
 * in either polarity: contrast and floor are the last attempt's) or LF_PICTURE_SPECK (the digit is speck
 * pixels across, fewer than min_size). */
enum { LF_PICTURE_OK = 0, LF_PICTURE_NO_INK = 1, LF_PICTURE_SPECK = 2 };
typedef struct {
    int status, speck;
    double contrast, floor;
} lf_picture_result;

/* Each step's workspace is one caller buffer of the bytes its _workspace function gives, 16-byte aligned;
 * none allocates. A buffer sized for (h, w) serves any picture of at most h rows and w columns only if the
 * function gives no more for it: the caller sizes it for each picture it passes (or their maximum).
 *
 * lf_read_digit: steps 2-8; writes digit (size x size) when it returns LF_PICTURE_OK, and the status, with
 * its figures, into result.
 * lf_picture_ink: steps 3-4 on a picture already at working size: ink (h, w) less its noise floor; returns 1,
 * or 0 when nothing stands out in either polarity (contrast and floor then say by how little).
 * lf_paper: the paper under uneven light (images._paper): the closing (dark) or opening of gray, halved and
 * enlarged back when both sides reach 2 * min_window; writes paper (h, w).
 * lf_mnist_form: steps 6-8 on an ink map (h, w) of non-negative values with a positive maximum: digit
 * (size x size). */
size_t lf_read_digit_workspace(int h, int w, const lf_picture_params *p);
int lf_read_digit(const float *gray, int h, int w, const lf_picture_params *p, uint8_t *digit, void *workspace,
                  lf_picture_result *result);
size_t lf_picture_ink_workspace(int h, int w, const lf_picture_params *p);
int lf_picture_ink(const float *gray, int h, int w, const lf_picture_params *p, float *ink, void *workspace,
                   double *contrast, double *floor);
size_t lf_paper_workspace(int h, int w, const lf_picture_params *p);
void lf_paper(const float *gray, int h, int w, int dark, const lf_picture_params *p, float *paper, void *workspace);
size_t lf_mnist_form_workspace(int h, int w, const lf_picture_params *p);
void lf_mnist_form(const double *ink, int h, int w, const lf_picture_params *p, uint8_t *digit, void *workspace);

/* Build facts and threads. */
const char *lf_isa_name(void);          /* the instruction-set path chosen at run time */
int lf_select_isa(const char *name);    /* force a path ("avx512", "avx2", "baseline"); -1 if unavailable */
int lf_openmp_enabled(void);
/* The kernels' threads: OpenMP's setting for the calling thread (1 without OpenMP, and in a process forked
 * after it had started OpenMP threads). lf_set_num_threads takes 1..LF_MAX_THREADS (the caller checks):
 * 0, or LF_ERR_THREADS (that many threads cannot be created now; the setting stays) or LF_ERR_FORKED.
 * The bound: above the hardware threads of the largest machines, so it never limits a real use, while a
 * typo (a million) is refused at once instead of asking for gigabytes of thread stacks (1024 default 8 MB
 * stacks are 8 GB of address space). A fixed number rather than a multiple of the cores, which a
 * container or affinity mask reports differently from what it runs on. */
#define LF_MAX_THREADS 1024
int lf_get_num_threads(void);
int lf_set_num_threads(int n);

/* The int8 inference engine: its own interface and quantization scheme. */
#include "int8.h"

#endif
