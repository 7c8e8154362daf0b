#include "caudio.h"
#include <stdlib.h>

int caudio_list_pcms(caudio_hint_visitor visit, void *ctx) {
    void **hints = NULL;
    int rc = snd_device_name_hint(-1, "pcm", &hints);
    if (rc < 0) return rc;
    for (void **hint = hints; *hint != NULL; hint++) {
        char *name = snd_device_name_get_hint(*hint, "NAME");
        char *desc = snd_device_name_get_hint(*hint, "DESC");
        char *ioid = snd_device_name_get_hint(*hint, "IOID");
        if (name != NULL) visit(name, desc != NULL ? desc : "", ioid, ctx);
        free(name);
        free(desc);
        free(ioid);
    }
    snd_device_name_free_hint(hints);
    return 0;
}

static void quiet(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    (void)file; (void)line; (void)function; (void)err; (void)fmt;
}

int caudio_probe_pcm(const char *name, snd_pcm_stream_t stream) {
    snd_lib_error_handler_t saved = snd_lib_error;
    snd_lib_error_set_handler(quiet);
    snd_pcm_t *pcm = NULL;
    int rc = snd_pcm_open(&pcm, name, stream, SND_PCM_NONBLOCK);
    if (rc >= 0) snd_pcm_close(pcm);
    snd_lib_error_set_handler(saved);
    return rc;
}
