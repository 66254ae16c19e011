# The C engine's public interface (csrc/lenet_fast.h) as Cython sees it; _core.pyx cimports it. Its
# constants come from the header, so that Python never keeps a copy that could drift.
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint64_t

cdef extern from "lenet_fast.h" nogil:
    enum: LF_MAX_LAYERS
    enum: LF_ERR_THREADS, LF_ERR_FORKED, LF_MAX_THREADS
    enum: LF_PICTURE_OK, LF_PICTURE_NO_INK, LF_PICTURE_SPECK
    ctypedef enum lf_act:
        LF_ACT_NONE, LF_ACT_SQUASH, LF_ACT_TANH, LF_ACT_RELU, LF_ACT_LEAKY_RELU, LF_ACT_ELU, LF_ACT_SIGMOID
    ctypedef enum lf_pool:
        LF_POOL_TRAINABLE, LF_POOL_AVERAGE, LF_POOL_MAX
    ctypedef enum lf_layer_kind:
        LF_LAYER_CONV, LF_LAYER_SUBSAMPLE, LF_LAYER_FULL, LF_LAYER_RBF, LF_LAYER_DROPOUT
    ctypedef enum lf_dtype:
        LF_U8, LF_F32
    ctypedef struct lf_layer:
        lf_layer_kind kind
        int in_c, in_h, in_w, out_c, out_h, out_w, kh, kw
        const int *conn_start
        const int *conn_in
        lf_pool pool
        lf_act act
        const float *weight
        const float *bias
        ptrdiff_t weight_at, bias_at
        float rate
        uint64_t key
        int64_t first
        int round_output
    ctypedef struct lf_input:
        const void *data
        lf_dtype dtype
        int c, h, w
        int normalize
    int lf_forward(const lf_layer *layers, int nlayers, const lf_input *input, int n, float *out)
    ctypedef enum lf_loss_kind:
        LF_LOSS_MAP, LF_LOSS_RBF, LF_LOSS_XENT, LF_LOSS_LINEAR, LF_LOSS_HINGE
    ctypedef struct lf_loss:
        lf_loss_kind kind
        float j
        float reject_j
        const float *dout
        float sign
    ctypedef enum lf_opt_kind:
        LF_OPT_SGD, LF_OPT_ADAM, LF_OPT_SDLM, LF_OPT_ADAGRAD, LF_OPT_RMSPROP, LF_OPT_ADAMW
    ctypedef struct lf_optimizer:
        lf_opt_kind kind
        float lr, momentum, weight_decay, beta1, beta2, eps, alpha
        int nesterov
        int64_t t
        float *m
        float *v
        const float *step
    ctypedef struct lf_trainer:
        pass
    lf_trainer *lf_trainer_new(const lf_layer *layers, int nlayers, size_t nparams)
    void lf_trainer_free(lf_trainer *t)
    int lf_losses(const lf_loss *loss, const float *out, int n, int k, const int64_t *labels, float *losses)
    int lf_gradient(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                    float scale, int second, float *grad, float *losses, float *out, float *dinput)
    void lf_update(lf_optimizer *opt, float *params, const float *grad, size_t nparams)
    int lf_train(lf_trainer *t, const lf_input *input, int n, const int64_t *labels, const lf_loss *loss,
                 int batch_size, int summed, lf_optimizer *opt, float *params, float *grad, float *losses,
                 float *out)
    int lf_softmax(const float *x, int n, int k, float sign, int log, float *y)
    void lf_activation(const float *x, size_t count, lf_act act, float *y)
    size_t lf_morphology_scratch(int h, int w, int k)
    void lf_morphology(const float *inp, int h, int w, int k, int closing, float *out, float *scratch)
    int lf_ink(const float *gray, const float *paper, float level, int h, int w, int dark, float min_paper,
               double sigmas, double min_contrast, float *ink, float *scratch, double *contrast, double *floor)
    int32_t lf_components(const uint8_t *mask, int h, int w, int32_t *labels, int32_t *parent)
    void lf_component_stats(const int32_t *labels, int h, int w, int32_t count, const float *values,
                            int32_t *boxes, double *sums, float *peaks)
    ctypedef struct lf_picture_params:
        int work_size, polarity_size, light_window, min_window, min_size, adjacent, box, size
        float flat_paper, min_paper
        double noise_sigmas, min_contrast, ink_threshold, part_share, mark_peak, part_reach, centre
    ctypedef struct lf_picture_result:
        int status, speck
        double contrast, floor
    size_t lf_read_digit_workspace(int h, int w, const lf_picture_params *p)
    int lf_read_digit(const float *gray, int h, int w, const lf_picture_params *p, uint8_t *digit, void *workspace,
                      lf_picture_result *result)
    size_t lf_picture_ink_workspace(int h, int w, const lf_picture_params *p)
    int lf_picture_ink(const float *gray, int h, int w, const lf_picture_params *p, float *ink, void *workspace,
                       double *contrast, double *floor)
    size_t lf_paper_workspace(int h, int w, const lf_picture_params *p)
    void lf_paper(const float *gray, int h, int w, int dark, const lf_picture_params *p, float *paper,
                  void *workspace)
    size_t lf_mnist_form_workspace(int h, int w, const lf_picture_params *p)
    void lf_mnist_form(const double *ink, int h, int w, const lf_picture_params *p, uint8_t *digit,
                       void *workspace)
    const char *lf_isa_name()
    int lf_select_isa(const char *name)
    int lf_openmp_enabled()
    int lf_get_num_threads()
    int lf_set_num_threads(int n)

cdef extern from "int8.h" nogil:
    enum: LF_I8_DEPTH, LF_I8_BLOCK, LF_I8_WEIGHT_MAX
    ctypedef enum lf_i8_kind:
        LF_I8_CONV, LF_I8_POOL, LF_I8_FULL, LF_I8_RBF
    ctypedef struct lf_int8_layer:
        lf_i8_kind kind
        int in_c, in_h, in_w, out_c, out_h, out_w, k, depth
        const int8_t *weight
        const int32_t *offset
        const float *scale
        const float *bias
        const float *centers
        int pool, act, out_codes
        float out_inv_scale, out_zero
    int lf_int8_forward(const lf_int8_layer *layers, int nlayers, const uint8_t *pixels, int h, int w, int n,
                        void *out)
    void lf_int8_gemm(const uint8_t *a, size_t lda, int m, const int8_t *w, int depth, int nw, int32_t *c)
    const char *lf_int8_isa_name()
    int lf_int8_select_isa(const char *name)
