#ifndef CWEBRTC_AUDIO_H
#define CWEBRTC_AUDIO_H

/* The WebRTC audio processing module (libwebrtc-audio-processing 0.3, the one
 * PulseAudio's module-echo-cancel uses), behind C functions Swift can call: the module's
 * API is C++. */

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct cwebrtc_apm cwebrtc_apm;

/* 16 kHz mono, 10 ms frames (160 samples). Echo cancellation: the AEC in delay-agnostic
 * mode with its normal filter and high suppression; noise suppression: high; gain
 * control: adaptive digital. NULL when the module cannot be created, or when the module
 * loaded does not take these options (they would silently not apply). */
cwebrtc_apm *cwebrtc_apm_create(int echo_cancellation, int noise_suppression, int auto_gain_control);

void cwebrtc_apm_destroy(cwebrtc_apm *apm);

/* One frame: `reference` is what the speaker played, aligned with the echo in `frame`
 * (NULL when the echo canceller is off); `frame` is processed in place. Returns 0, or
 * the module's error code (the frame is then left as it came). Allocates nothing and
 * takes only the module's own lock, which no other thread holds. */
int cwebrtc_apm_process(cwebrtc_apm *apm, int16_t *frame, const int16_t *reference);

#ifdef __cplusplus
}
#endif

#endif
