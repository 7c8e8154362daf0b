#ifndef CAUDIO_H
#define CAUDIO_H
/* ALSA and speexdsp for the audio engine, plus the few things Swift cannot reach
 * directly: ALSA's constants defined as macros, its variadic error handler.
 * Internal: hidden from libmillis.so's exports by the version script.
 *
 * ALSA is not linked: libmillis.so must load on a machine without libasound (an
 * application-audio program, a wheel on a bare root), and device audio must use the
 * machine's own ALSA, configuration and plugins. Its headers give the types and
 * constants; its functions are loaded with dlopen on first device use
 * (caudio_alsa_load) and called through the caudio_snd_* wrappers below, which are
 * valid only after caudio_alsa_load() returned 0. */
#include <alsa/asoundlib.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>
#include <speex/speex_resampler.h>

enum {
    CAUDIO_NONBLOCK = SND_PCM_NONBLOCK
};

/* Loads libasound.so.2 and installs libmillis' error handler, once per process
 * (later calls return the first call's answer at once). Thread-safe. Returns 0, or -1
 * when ALSA cannot be loaded: caudio_alsa_load_error() then says why (dlerror's text). */
int caudio_alsa_load(void);
const char *caudio_alsa_load_error(void);

/* ALSA's own error lines ("confmisc.c:855:(parse_card) cannot find card '0'"), which
 * it would print on stderr, are kept instead for the thread that caused them, in a
 * bounded buffer (the first lines, which name the cause, are the ones kept).
 * caudio_alsa_notes_clear() empties the calling thread's buffer; caudio_alsa_notes()
 * returns its lines, separated by '\n' ("" when none), valid until the thread's next
 * ALSA call or clear. Neither allocates nor locks: an audio thread may call them (it
 * should clear once when it starts, so that its buffer exists before ALSA reports). */
void caudio_alsa_notes_clear(void);
const char *caudio_alsa_notes(void);

/* ALSA's functions that libmillis calls, as X(return type, name, parameters,
 * arguments); each becomes caudio_<name>, which calls <name> through the table
 * caudio_alsa_load() filled. */
#define CAUDIO_ALSA_FUNCTIONS(X) \
    X(int, snd_pcm_open, (snd_pcm_t **pcm, const char *name, snd_pcm_stream_t stream, int mode), (pcm, name, stream, mode)) \
    X(int, snd_pcm_close, (snd_pcm_t *pcm), (pcm)) \
    X(int, snd_pcm_hw_params_malloc, (snd_pcm_hw_params_t **ptr), (ptr)) \
    X(int, snd_pcm_hw_params_any, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params), (pcm, params)) \
    X(int, snd_pcm_hw_params_set_rate_resample, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int val), (pcm, params, val)) \
    X(int, snd_pcm_hw_params_set_access, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, snd_pcm_access_t access), (pcm, params, access)) \
    X(int, snd_pcm_hw_params_test_format, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, snd_pcm_format_t val), (pcm, params, val)) \
    X(int, snd_pcm_hw_params_set_format, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, snd_pcm_format_t val), (pcm, params, val)) \
    X(int, snd_pcm_hw_params_set_channels_near, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int *val), (pcm, params, val)) \
    X(int, snd_pcm_hw_params_set_rate_near, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int *val, int *dir), (pcm, params, val, dir)) \
    X(int, snd_pcm_hw_params_set_period_time_near, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int *val, int *dir), (pcm, params, val, dir)) \
    X(int, snd_pcm_hw_params_set_buffer_time_near, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params, unsigned int *val, int *dir), (pcm, params, val, dir)) \
    X(int, snd_pcm_hw_params, (snd_pcm_t *pcm, snd_pcm_hw_params_t *params), (pcm, params)) \
    X(int, snd_pcm_hw_params_get_period_size, (const snd_pcm_hw_params_t *params, snd_pcm_uframes_t *frames, int *dir), (params, frames, dir)) \
    X(int, snd_pcm_hw_params_get_buffer_size, (const snd_pcm_hw_params_t *params, snd_pcm_uframes_t *val), (params, val)) \
    X(int, snd_pcm_sw_params_malloc, (snd_pcm_sw_params_t **ptr), (ptr)) \
    X(int, snd_pcm_sw_params_current, (snd_pcm_t *pcm, snd_pcm_sw_params_t *params), (pcm, params)) \
    X(int, snd_pcm_sw_params_set_avail_min, (snd_pcm_t *pcm, snd_pcm_sw_params_t *params, snd_pcm_uframes_t val), (pcm, params, val)) \
    X(int, snd_pcm_sw_params_set_start_threshold, (snd_pcm_t *pcm, snd_pcm_sw_params_t *params, snd_pcm_uframes_t val), (pcm, params, val)) \
    X(int, snd_pcm_sw_params, (snd_pcm_t *pcm, snd_pcm_sw_params_t *params), (pcm, params)) \
    X(snd_pcm_sframes_t, snd_pcm_readi, (snd_pcm_t *pcm, void *buffer, snd_pcm_uframes_t size), (pcm, buffer, size)) \
    X(snd_pcm_sframes_t, snd_pcm_writei, (snd_pcm_t *pcm, const void *buffer, snd_pcm_uframes_t size), (pcm, buffer, size)) \
    X(int, snd_pcm_recover, (snd_pcm_t *pcm, int err, int silent), (pcm, err, silent)) \
    X(int, snd_pcm_delay, (snd_pcm_t *pcm, snd_pcm_sframes_t *delayp), (pcm, delayp)) \
    X(snd_pcm_sframes_t, snd_pcm_avail_update, (snd_pcm_t *pcm), (pcm)) \
    X(int, snd_pcm_drop, (snd_pcm_t *pcm), (pcm)) \
    X(int, snd_pcm_prepare, (snd_pcm_t *pcm), (pcm)) \
    X(int, snd_pcm_start, (snd_pcm_t *pcm), (pcm)) \
    X(int, snd_pcm_poll_descriptors_count, (snd_pcm_t *pcm), (pcm)) \
    X(int, snd_pcm_poll_descriptors, (snd_pcm_t *pcm, struct pollfd *pfds, unsigned int space), (pcm, pfds, space)) \
    X(int, snd_pcm_poll_descriptors_revents, (snd_pcm_t *pcm, struct pollfd *pfds, unsigned int nfds, unsigned short *revents), (pcm, pfds, nfds, revents)) \
    X(int, snd_device_name_hint, (int card, const char *iface, void ***hints), (card, iface, hints)) \
    X(char *, snd_device_name_get_hint, (const void *hint, const char *id), (hint, id)) \
    X(int, snd_device_name_free_hint, (void **hints), (hints))
/* The same for the functions that return nothing. */
#define CAUDIO_ALSA_PROCEDURES(X) \
    X(void, snd_pcm_hw_params_free, (snd_pcm_hw_params_t *obj), (obj)) \
    X(void, snd_pcm_sw_params_free, (snd_pcm_sw_params_t *obj), (obj))

#define CAUDIO_DECLARE(type, name, parameters, arguments) type caudio_##name parameters;
CAUDIO_ALSA_FUNCTIONS(CAUDIO_DECLARE)
CAUDIO_ALSA_PROCEDURES(CAUDIO_DECLARE)
#undef CAUDIO_DECLARE

/* ALSA's text for a negative error code; strerror's when ALSA is not loaded (a file
 * stream reports errno codes through the same path, with or without ALSA). */
const char *caudio_snd_strerror(int errnum);

/* snd_device_name_hint over "pcm": calls visit(name, description, ioid, ctx) for each
 * PCM ALSA knows; ioid is "Input", "Output" or NULL (both). Returns 0 or -errno. */
typedef void (*caudio_hint_visitor)(const char *name, const char *description,
                                    const char *ioid, void *ctx);
int caudio_list_pcms(caudio_hint_visitor visit, void *ctx);
/* Opens and closes a PCM (non-blocking). Returns 0 or -errno; ALSA's lines are left
 * in the calling thread's notes. */
int caudio_probe_pcm(const char *name, snd_pcm_stream_t stream);
#endif
