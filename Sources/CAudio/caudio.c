#include "caudio.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The soname, not "libasound.so": that link exists only where the -dev package is. */
#define ALSA_LIBRARY "libasound.so.2"

static struct {
#define FIELD(type, name, parameters, arguments) type (*name) parameters;
    CAUDIO_ALSA_FUNCTIONS(FIELD)
    CAUDIO_ALSA_PROCEDURES(FIELD)
#undef FIELD
    const char *(*snd_strerror)(int errnum);
    int (*snd_lib_error_set_handler)(snd_lib_error_handler_t handler);
} alsa;

static pthread_once_t alsa_once = PTHREAD_ONCE_INIT;
/* Written once inside pthread_once. Read after it, except by caudio_snd_strerror, which
 * a file stream may call before ALSA is ever asked for: hence atomic. */
static int alsa_loaded;
static char alsa_error[512];

#define NOTES_SIZE 1024
static __thread struct {
    size_t length;
    char text[NOTES_SIZE];
} notes;

void caudio_alsa_notes_clear(void) {
    notes.length = 0;
    notes.text[0] = '\0';
}

const char *caudio_alsa_notes(void) {
    return notes.text;
}

/* What is kept is what fits: the first lines name the cause, the later ones are the
 * configuration evaluator unwinding. */
static void notes_append(const char *line) {
    size_t room = NOTES_SIZE - notes.length;
    if (notes.length > 0) {
        if (room < 2) return;
        notes.text[notes.length++] = '\n';
        room--;
    }
    size_t n = strlen(line);
    if (n >= room) n = room - 1;
    memcpy(notes.text + notes.length, line, n);
    notes.length += n;
    notes.text[notes.length] = '\0';
}

/* Replaces alsa-lib's default handler, which prints "ALSA lib file:line:(function) ..."
 * on stderr, from any thread that calls ALSA, including the audio threads (on their
 * open and recover paths): the line is formatted on the stack and kept in the thread's
 * notes, no allocation, no lock. */
static void keep_line(const char *file, int line, const char *function, int err, const char *fmt, va_list args) {
    char text[320];
    int n = snprintf(text, sizeof text, "%s:%d:(%s) ", file != NULL ? file : "?", line,
                     function != NULL ? function : "?");
    if (n < 0) return;
    if ((size_t)n < sizeof text && fmt != NULL) vsnprintf(text + n, sizeof text - (size_t)n, fmt, args);
    size_t used = strnlen(text, sizeof text);
    if (err != 0 && used < sizeof text)
        snprintf(text + used, sizeof text - used, ": %s", alsa.snd_strerror(err));
    used = strnlen(text, sizeof text);
    while (used > 0 && text[used - 1] == '\n') text[--used] = '\0';
    notes_append(text);
}

/* Swift cannot define a variadic C function: the handler lives here. */
static void keep_error(const char *file, int line, const char *function, int err, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    keep_line(file, line, function, err, fmt, args);
    va_end(args);
}

/* alsa-lib 1.2.15 logs through a handler of its own (snd_lib_log_set_handler), the
 * error handler becoming its deprecated predecessor. Headers older than that lack its
 * type, so it is spelled here and the setter resolved by name, when the library has it. */
typedef void (*log_handler)(int priority, int interface, const char *file, int line,
                            const char *function, int err, const char *fmt, va_list args);
typedef log_handler (*log_handler_setter)(log_handler handler);

static void keep_log(int priority, int interface, const char *file, int line,
                     const char *function, int err, const char *fmt, va_list args) {
    (void)priority;
    (void)interface;
    keep_line(file, line, function, err, fmt, args);
}

static void load(void) {
    void *library = dlopen(ALSA_LIBRARY, RTLD_NOW | RTLD_GLOBAL);
    if (library == NULL) {
        const char *why = dlerror();
        snprintf(alsa_error, sizeof alsa_error, "%s", why != NULL ? why : ALSA_LIBRARY ": not found");
        return;
    }
    const char *missing = NULL;
#define RESOLVE(type, name, parameters, arguments) \
    if (missing == NULL && (*(void **)&alsa.name = dlsym(library, #name)) == NULL) missing = #name;
    CAUDIO_ALSA_FUNCTIONS(RESOLVE)
    CAUDIO_ALSA_PROCEDURES(RESOLVE)
    RESOLVE(, snd_strerror, , )
    RESOLVE(, snd_lib_error_set_handler, , )
#undef RESOLVE
    if (missing != NULL) {
        snprintf(alsa_error, sizeof alsa_error, "%s has no %s", ALSA_LIBRARY, missing);
        memset(&alsa, 0, sizeof alsa);
        dlclose(library);
        return;
    }
    alsa.snd_lib_error_set_handler(keep_error);
    log_handler_setter set_log_handler;
    *(void **)&set_log_handler = dlsym(library, "snd_lib_log_set_handler");
    if (set_log_handler != NULL) set_log_handler(keep_log);
    __atomic_store_n(&alsa_loaded, 1, __ATOMIC_RELEASE);
}

int caudio_alsa_load(void) {
    pthread_once(&alsa_once, load);
    return __atomic_load_n(&alsa_loaded, __ATOMIC_ACQUIRE) ? 0 : -1;
}

const char *caudio_alsa_load_error(void) {
    pthread_once(&alsa_once, load);
    return alsa_error;
}

#define WRAP(type, name, parameters, arguments) \
    type caudio_##name parameters { return alsa.name arguments; }
CAUDIO_ALSA_FUNCTIONS(WRAP)
#undef WRAP
#define WRAP(type, name, parameters, arguments) \
    type caudio_##name parameters { alsa.name arguments; }
CAUDIO_ALSA_PROCEDURES(WRAP)
#undef WRAP

const char *caudio_snd_strerror(int errnum) {
    if (__atomic_load_n(&alsa_loaded, __ATOMIC_ACQUIRE)) return alsa.snd_strerror(errnum);
    return strerror(errnum < 0 ? -errnum : errnum);
}

int caudio_list_pcms(caudio_hint_visitor visit, void *ctx) {
    void **hints = NULL;
    int rc = caudio_snd_device_name_hint(-1, "pcm", &hints);
    if (rc < 0) return rc;
    for (void **hint = hints; *hint != NULL; hint++) {
        char *name = caudio_snd_device_name_get_hint(*hint, "NAME");
        char *desc = caudio_snd_device_name_get_hint(*hint, "DESC");
        char *ioid = caudio_snd_device_name_get_hint(*hint, "IOID");
        if (name != NULL) visit(name, desc != NULL ? desc : "", ioid, ctx);
        free(name);
        free(desc);
        free(ioid);
    }
    caudio_snd_device_name_free_hint(hints);
    return 0;
}

int caudio_probe_pcm(const char *name, snd_pcm_stream_t stream) {
    snd_pcm_t *pcm = NULL;
    int rc = caudio_snd_pcm_open(&pcm, name, stream, SND_PCM_NONBLOCK);
    if (rc >= 0) caudio_snd_pcm_close(pcm);
    return rc;
}
