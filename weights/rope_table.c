/* rope_table.c — the RoPE frequency table of a config (see rope_table.h). */
#include "weights/rope_table.h"

#include <math.h>

void armo_rope_inv_freq(const armo_config *cfg, float *inv_freq) {
    const int hd = cfg->head_dim;
    const float theta = (float)cfg->rope_theta;
    /* torch evaluates `scalar / t` as t.reciprocal() * scalar, in fp32 */
    for (int i = 0; i < hd / 2; i++) {
        float expo = (float)(2 * i) / (float)hd;
        inv_freq[i] = 1.0f / powf(theta, expo);
    }
    if (cfg->rope_type != ARMO_ROPE_LLAMA3) return;
    const float factor = (float)cfg->rope_factor;
    const float low = (float)cfg->rope_low_freq_factor;
    const float high_minus_low = (float)(cfg->rope_high_freq_factor - cfg->rope_low_freq_factor);
    const float old_ctx = (float)cfg->rope_original_max_pos;
    const float low_freq_wavelen =
        (float)((double)cfg->rope_original_max_pos / cfg->rope_low_freq_factor);
    const float high_freq_wavelen =
        (float)((double)cfg->rope_original_max_pos / cfg->rope_high_freq_factor);
    const float two_pi = (float)(2.0 * M_PI);
    for (int i = 0; i < hd / 2; i++) {
        float f = inv_freq[i];
        float wavelen = (1.0f / f) * two_pi;
        float scaled = wavelen > low_freq_wavelen ? f / factor : f;
        if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
            float smooth = ((1.0f / wavelen) * old_ctx - low) / high_minus_low;
            scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
        }
        inv_freq[i] = scaled;
    }
}
