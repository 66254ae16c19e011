/* placeholder until tools/fit_tanh.py output lands */
#define LF_TANH_CLAMP 9.0f
#define LF_TANH_NP 2
#define LF_TANH_NQ 2
static const float LF_TANH_P[LF_TANH_NP] = {1.0f, 0.0f};
static const float LF_TANH_Q[LF_TANH_NQ] = {1.0f, 0.0f};
