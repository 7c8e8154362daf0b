#ifndef CAUDIO_H
#define CAUDIO_H
/* ALSA and speexdsp for the audio engine, plus the few things Swift cannot reach
 * directly: ALSA's constants defined as macros and errno-style strings.
 * Internal: hidden from libmillis.so's exports by the version script. */
#include <alsa/asoundlib.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>
#include <speex/speex_resampler.h>

enum {
    CAUDIO_NONBLOCK = SND_PCM_NONBLOCK
};

/* snd_device_name_hint over "pcm": calls visit(name, description, ioid, ctx) for each
 * PCM ALSA knows; ioid is "Input", "Output" or NULL (both). Returns 0 or -errno. */
typedef void (*caudio_hint_visitor)(const char *name, const char *description,
                                    const char *ioid, void *ctx);
int caudio_list_pcms(caudio_hint_visitor visit, void *ctx);
/* Opens and closes a PCM (non-blocking), with alsa-lib's own stderr messages muted
 * for the duration: a probe that fails is an answer, not an error to print. The
 * process-wide error handler is restored afterwards. Returns 0 or -errno. */
int caudio_probe_pcm(const char *name, snd_pcm_stream_t stream);
#endif
