/*
 * millis_example.c — hold one spoken conversation with a Millis voice agent from C.
 *
 * File mode (the default, application audio): the user's voice comes from a WAV file
 * (16 kHz, mono, 16-bit PCM), streamed in real time in 20 ms chunks once the session is
 * ready; silence follows until the conversation ends. The agent's voice is written to
 * another WAV file.
 *
 * Device mode (--device, --capture NAME, --playback NAME): the library records the
 * microphone and plays the agent through ALSA (with echo cancellation, noise suppression
 * and gain control); the example prints the conversation and, once a second, the RMS
 * levels of the agent's and the user's analysers. --list-devices prints the PCMs ALSA
 * knows.
 *
 * Every event is printed as it arrives, with the time since start.
 *
 * Build:  cc millis_example.c $(pkg-config --cflags --libs millis) -o millis_example
 * Run:    ./millis_example --input ../audio/user.wav --output agent.wav
 *         ./millis_example --device                 (talk through the default devices)
 *         (see --help; MILLIS_ENDPOINT, MILLIS_AGENT_ID and MILLIS_PUBLIC_KEY are read
 *         from the environment)
 *
 * Exit status: 0 the conversation closed normally (1000), 1 usage, 2 file error,
 * 3 library or session error, 4 audio device error.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_USAGE 1
#define EXIT_FILE 2
#define EXIT_SESSION 3
#define EXIT_DEVICE 4

#define SAMPLE_RATE 16000
#define CHUNK_MS 20
#define CHUNK_BYTES (SAMPLE_RATE / 1000 * CHUNK_MS * 2) /* 640 bytes of PCM16 */

#define DEFAULT_ENDPOINT "ws://127.0.0.1:8765/millis"
#define DEFAULT_AGENT_ID "demo-agent"
#define DEFAULT_PUBLIC_KEY "test-public-key"
#define DEFAULT_INPUT "bindings/audio/user.wav"
#define DEFAULT_OUTPUT "agent.wav"
#define DEFAULT_TIMEOUT_S 60.0
#define DEFAULT_DEVICE_TIMEOUT_S 600.0

/* ------------------------------------------------------------------------------------
 * Time
 * ---------------------------------------------------------------------------------- */

static struct timespec t0;

static double seconds_since(const struct timespec *since)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - since->tv_sec) + (double)(now.tv_nsec - since->tv_nsec) / 1e9;
}

static void timespec_add_ns(struct timespec *ts, long ns)
{
    ts->tv_nsec += ns;
    while (ts->tv_nsec >= 1000000000L) {
        ts->tv_nsec -= 1000000000L;
        ts->tv_sec += 1;
    }
}

/* printf with a "[  1.234] " prefix. One printf per line: stdio locks the stream, so
 * lines from the network thread and the main thread never mix. */
static void say(const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    printf("[%7.3f] %s\n", seconds_since(&t0), line);
}

/* ------------------------------------------------------------------------------------
 * WAV files
 * ---------------------------------------------------------------------------------- */

static unsigned read_u16(const unsigned char *p) { return (unsigned)p[0] | ((unsigned)p[1] << 8); }
static unsigned long read_u32(const unsigned char *p)
{
    return (unsigned long)p[0] | ((unsigned long)p[1] << 8) | ((unsigned long)p[2] << 16)
           | ((unsigned long)p[3] << 24);
}
static void put_u16(unsigned char *p, unsigned v) { p[0] = (unsigned char)(v & 0xff); p[1] = (unsigned char)(v >> 8); }
static void put_u32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char)(v & 0xff);
    p[1] = (unsigned char)((v >> 8) & 0xff);
    p[2] = (unsigned char)((v >> 16) & 0xff);
    p[3] = (unsigned char)((v >> 24) & 0xff);
}

static int read_whole_file(const char *path, unsigned char **out, size_t *out_len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    if (f == NULL) {
        fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            unsigned char *bigger;
            cap = cap ? cap * 2 : 65536;
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                fprintf(stderr, "error: out of memory reading %s\n", path);
                free(buf);
                fclose(f);
                return -1;
            }
            buf = bigger;
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        fprintf(stderr, "error: cannot read %s: %s\n", path, strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *out = buf;
    *out_len = len;
    return 0;
}

/* Loads a WAV file and returns its PCM data if, and only if, it is 16 kHz mono 16-bit
 * PCM. Walks the RIFF chunks, skipping those it does not need (LIST, fact, ...). */
static int load_wav(const char *path, unsigned char **pcm, size_t *pcm_bytes)
{
    unsigned char *file = NULL;
    size_t len = 0, pos = 12;
    int have_fmt = 0;
    unsigned format = 0, channels = 0, bits = 0;
    unsigned long rate = 0;
    const unsigned char *data = NULL;
    size_t data_len = 0;

    if (read_whole_file(path, &file, &len) != 0) return -1;
    if (len < 12 || memcmp(file, "RIFF", 4) != 0 || memcmp(file + 8, "WAVE", 4) != 0) {
        fprintf(stderr, "error: %s is not a WAV file (no RIFF/WAVE header)\n", path);
        free(file);
        return -1;
    }
    while (pos + 8 <= len) {
        const unsigned char *id = file + pos;
        unsigned long size = read_u32(file + pos + 4);
        size_t body = pos + 8;
        size_t avail = len - body;
        if (memcmp(id, "fmt ", 4) == 0) {
            if (size < 16 || size > avail) {
                fprintf(stderr, "error: %s: truncated fmt chunk\n", path);
                free(file);
                return -1;
            }
            format = read_u16(file + body);
            channels = read_u16(file + body + 2);
            rate = read_u32(file + body + 4);
            bits = read_u16(file + body + 14);
            /* WAVE_FORMAT_EXTENSIBLE: the real format is the sub-format GUID's first word. */
            if (format == 0xFFFE && size >= 26) format = read_u16(file + body + 24);
            have_fmt = 1;
        } else if (memcmp(id, "data", 4) == 0) {
            data = file + body;
            /* Streaming writers leave 0 or 0xFFFFFFFF here: take what the file holds. */
            data_len = (size == 0 || size > avail) ? avail : (size_t)size;
            break;
        }
        if (size > avail) break;
        pos = body + (size_t)size + (size & 1); /* chunks are padded to even sizes */
    }
    if (!have_fmt || data == NULL) {
        fprintf(stderr, "error: %s: no %s chunk; is it a valid WAV file?\n", path,
                have_fmt ? "data" : "fmt");
        free(file);
        return -1;
    }
    if (format != 1 || channels != 1 || rate != SAMPLE_RATE || bits != 16) {
        const char *kind = format == 1 ? "PCM" : format == 3 ? "IEEE float" : format == 6 ? "A-law"
                         : format == 7 ? "mu-law" : "compressed";
        fprintf(stderr,
                "error: %s is %lu Hz, %u channel%s, %u-bit %s (format tag %u);\n"
                "       libmillis needs 16000 Hz, mono, 16-bit PCM. Convert it with:\n"
                "       sox '%s' -r 16000 -c 1 -b 16 -e signed-integer converted.wav\n",
                path, rate, channels, channels == 1 ? "" : "s", bits, kind, format, path);
        free(file);
        return -1;
    }
    data_len &= ~(size_t)1;
    *pcm = malloc(data_len ? data_len : 1);
    if (*pcm == NULL) {
        fprintf(stderr, "error: out of memory\n");
        free(file);
        return -1;
    }
    memcpy(*pcm, data, data_len);
    *pcm_bytes = data_len;
    free(file);
    return 0;
}

static int write_wav(const char *path, const unsigned char *pcm, size_t bytes)
{
    unsigned char h[44];
    FILE *f;
    if (bytes > 0xFFFFFFFFUL - 36) bytes = 0xFFFFFFFFUL - 36;
    memcpy(h, "RIFF", 4);
    put_u32(h + 4, (unsigned long)(36 + bytes));
    memcpy(h + 8, "WAVEfmt ", 8);
    put_u32(h + 16, 16);
    put_u16(h + 20, 1);                     /* PCM */
    put_u16(h + 22, 1);                     /* mono */
    put_u32(h + 24, SAMPLE_RATE);
    put_u32(h + 28, SAMPLE_RATE * 2);       /* byte rate */
    put_u16(h + 32, 2);                     /* block align */
    put_u16(h + 34, 16);                    /* bits per sample */
    memcpy(h + 36, "data", 4);
    put_u32(h + 40, (unsigned long)bytes);
    f = fopen(path, "wb");
    if (f == NULL) {
        fprintf(stderr, "error: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fwrite(h, 1, sizeof h, f) != sizeof h || (bytes && fwrite(pcm, 1, bytes, f) != bytes)
        || fclose(f) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------
 * State shared between the callbacks (network thread) and main. Everything below is
 * read and written under `lock`; `cond` is signalled on ready and on close.
 * ---------------------------------------------------------------------------------- */

struct session {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int device_mode;      /* set before start, read-only afterwards */
    int ready;
    int closed;
    int close_code;
    int errors;
    int user_turns;       /* final transcripts */
    int agent_replies;    /* final response texts */
    int in_answer_audio;  /* a frame of the current answer was already printed */
    unsigned char *agent_pcm;
    size_t agent_bytes, agent_cap, agent_frames;
    int agent_oom;
};

static void on_open(millis_client *c, void *ud)
{
    (void)c; (void)ud;
    say("onopen");
}

static void on_ready(millis_client *c, const char *session_id, const char *payload, void *ud)
{
    struct session *s = ud;
    (void)c;
    say("onready session_id=\"%s\" payload=%s", session_id, payload);
    pthread_mutex_lock(&s->lock);
    s->ready = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void on_session_ended(millis_client *c, void *ud)
{
    (void)c; (void)ud;
    say("onsessionended");
}

static void on_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud)
{
    struct session *s = ud;
    int first;
    (void)c;
    pthread_mutex_lock(&s->lock);
    first = !s->in_answer_audio;
    s->in_answer_audio = 1;
    if (s->device_mode) {
        /* The library plays it; the callback still gets it (to record or display). */
        s->agent_bytes += bytes;
    } else if (s->agent_bytes + bytes > s->agent_cap && !s->agent_oom) {
        size_t cap = s->agent_cap ? s->agent_cap : 16000 * 2 * 10;
        unsigned char *bigger;
        while (cap < s->agent_bytes + bytes) cap *= 2;
        bigger = realloc(s->agent_pcm, cap);
        if (bigger == NULL) {
            s->agent_oom = 1;
        } else {
            s->agent_pcm = bigger;
            s->agent_cap = cap;
        }
    }
    if (!s->device_mode && !s->agent_oom) {
        memcpy(s->agent_pcm + s->agent_bytes, pcm, bytes);
        s->agent_bytes += bytes;
    }
    s->agent_frames += 1;
    pthread_mutex_unlock(&s->lock);
    if (first) say("onaudio %lu bytes (first frame of this answer; the rest is counted, not printed)",
                   (unsigned long)bytes);
}

static void on_response_text(millis_client *c, const char *text, int is_final, void *ud)
{
    struct session *s = ud;
    (void)c;
    if (is_final) {
        pthread_mutex_lock(&s->lock);
        s->agent_replies += 1;
        pthread_mutex_unlock(&s->lock);
    }
    say("onresponsetext (%s) \"%s\"", is_final ? "final" : "partial", text);
}

static void on_transcript(millis_client *c, const char *text, int is_final, void *ud)
{
    struct session *s = ud;
    (void)c;
    if (is_final) {
        pthread_mutex_lock(&s->lock);
        s->user_turns += 1;
        pthread_mutex_unlock(&s->lock);
    }
    say("ontranscript (%s) \"%s\"", is_final ? "final" : "partial", text);
}

static void on_function(millis_client *c, const char *text, const char *name, const char *params,
                        void *ud)
{
    (void)c; (void)ud;
    say("onfunction %s %s text=\"%s\"", name, params, text);
}

static void on_latency(millis_client *c, double ms, void *ud)
{
    (void)c; (void)ud;
    say("onlatency %.1f ms", ms);
}

static void on_agent_state(millis_client *c, millis_agent_state state, void *ud)
{
    struct session *s = ud;
    (void)c;
    if (state != MILLIS_AGENT_ANSWER && state != MILLIS_AGENT_PAUSE) {
        pthread_mutex_lock(&s->lock);
        s->in_answer_audio = 0;
        pthread_mutex_unlock(&s->lock);
    }
    say("onagentstate %s", millis_agent_state_string(state));
}

static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    struct session *s = ud;
    (void)c;
    say("onclose %d \"%s\"", code, reason);
    pthread_mutex_lock(&s->lock);
    s->closed = 1;
    s->close_code = code;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static void on_error(millis_client *c, millis_status status, const char *message, void *ud)
{
    struct session *s = ud;
    (void)c;
    pthread_mutex_lock(&s->lock);
    s->errors += 1;
    pthread_mutex_unlock(&s->lock);
    say("onerror %s (%d): %s", millis_status_string(status), (int)status, message);
}

static void on_reconnecting(millis_client *c, unsigned int attempt, unsigned int delay_ms, void *ud)
{
    (void)c; (void)ud;
    say("onreconnecting attempt %u in %u ms", attempt, delay_ms);
}

static void on_reconnected(millis_client *c, const char *session_id, void *ud)
{
    (void)c; (void)ud;
    say("onreconnected session_id=\"%s\"", session_id);
}

/* The web SDK's `analyzer` and `useraudioready`. The analysers belong to the client and
 * stay valid until millis_client_destroy(); main reads their levels. */
static void on_analyzer(millis_client *c, millis_analyser *agent, void *ud)
{
    (void)c; (void)ud;
    say("onanalyzer fft_size=%u", millis_analyser_fft_size(agent));
}

static void on_user_audio_ready(millis_client *c, millis_analyser *user, const char *stream_json,
                                void *ud)
{
    (void)c; (void)ud; (void)user;
    say("onuseraudioready %s", stream_json);
}

static void on_message(millis_client *c, const char *method, const char *json, void *ud)
{
    (void)c; (void)ud;
    say("onmessage %s %s", method, json);
}

static void on_log(millis_client *c, millis_log_level level, const char *message, void *ud)
{
    static const char *names[] = {"none", "error", "warn", "info", "debug"};
    (void)c; (void)ud;
    say("log %s: %s", (unsigned)level < 5 ? names[level] : "?", message);
}

/* Waits until `*flag` is set or the absolute CLOCK_MONOTONIC deadline passes. Called
 * with s->lock held. Returns the flag. */
static int wait_flag(struct session *s, const int *flag, const struct timespec *deadline)
{
    while (!*flag) {
        if (pthread_cond_timedwait(&s->cond, &s->lock, deadline) == ETIMEDOUT) break;
    }
    return *flag;
}

/* Ctrl-C ends the conversation properly (close 1000, agent audio written). */
static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* ------------------------------------------------------------------------------------
 * Device mode: the library records and plays; main only watches.
 * ---------------------------------------------------------------------------------- */

static int before(const struct timespec *a, const struct timespec *b)
{
    return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Waits until the conversation closes, Ctrl-C, or the deadline, printing the RMS levels
 * of the agent's audio (as played) and the user's (the processed microphone) once a
 * second. The analysers belong to the client and may be read from any thread. Returns 1
 * when the deadline passed. */
static int run_device_conversation(millis_client *client, struct session *s,
                                   const struct timespec *deadline)
{
    millis_analyser *agent = millis_client_agent_analyser(client);
    millis_analyser *user = millis_client_user_analyser(client);
    struct timespec next;
    int closed = 0;

    say("talking through ALSA: speak now; Ctrl-C ends the conversation");
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        timespec_add_ns(&next, 1000000000L);
        pthread_mutex_lock(&s->lock);
        /* Wake every 100 ms to notice Ctrl-C; print at each full second. */
        while (!s->closed && !interrupted) {
            struct timespec slice, now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (!before(&now, &next) || !before(&now, deadline)) break;
            slice = now;
            timespec_add_ns(&slice, 100000000L);
            if (before(&next, &slice)) slice = next;
            if (before(deadline, &slice)) slice = *deadline;
            pthread_cond_timedwait(&s->cond, &s->lock, &slice);
        }
        closed = s->closed;
        pthread_mutex_unlock(&s->lock);
        if (closed || interrupted) return 0;
        {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (!before(&now, deadline)) return 1;
        }
        say("levels: agent %6.1f dBFS   user %6.1f dBFS   (agent %s)", millis_analyser_rms_dbfs(agent),
            millis_analyser_rms_dbfs(user), millis_agent_state_string(millis_client_agent_state(client)));
    }
}

/* ------------------------------------------------------------------------------------
 * Command line
 * ---------------------------------------------------------------------------------- */

static void usage(FILE *to, const char *argv0)
{
    fprintf(to,
            "usage: %s [--endpoint URL] [--agent-id ID] [--input WAV] [--output WAV]\n"
            "          [--record FILE] [--timeout SECONDS] [--verbose] [--help]\n"
            "       %s --device[=NAME] [--capture NAME] [--playback NAME] [--endpoint URL]\n"
            "          [--agent-id ID] [--timeout SECONDS] [--verbose]\n"
            "       %s --list-devices\n"
            "\n"
            "Holds one conversation with a Millis voice agent. File mode (the default):\n"
            "streams the input WAV (16 kHz mono 16-bit PCM) as the user's voice in real\n"
            "time, then silence until the conversation ends, and writes the agent's voice\n"
            "to the output WAV. Device mode: talk through ALSA devices (microphone and\n"
            "speaker, with echo cancellation); the levels of both sides print once a\n"
            "second; Ctrl-C ends the conversation.\n"
            "\n"
            "  --endpoint URL     WebSocket endpoint (env MILLIS_ENDPOINT, else %s)\n"
            "  --agent-id ID      agent to talk to (env MILLIS_AGENT_ID, else %s)\n"
            "  --input WAV        the user's voice (default %s)\n"
            "  --output WAV       where to write the agent's voice (default %s)\n"
            "  --timeout SECONDS  stop the conversation after this long (default %.0f,\n"
            "                     %.0f in device mode)\n"
            "  --device           device mode with ALSA's \"default\" PCMs\n"
            "  --device=NAME      device mode, NAME for both capture and playback\n"
            "  --capture NAME     device mode, the microphone's ALSA PCM (e.g. plughw:1,0)\n"
            "  --playback NAME    device mode, the speaker's ALSA PCM\n"
            "  --record FILE      record the conversation (.opus, .ogg or .wav; stereo: user\n"
            "                     left, agent right) with its timeline in FILE's .jsonl\n"
            "  --list-devices     print the PCMs ALSA knows (JSON) and exit\n"
            "  --verbose          also print the library's debug log\n"
            "  --help             this text\n"
            "\n"
            "The public key is read from env MILLIS_PUBLIC_KEY (default \"%s\", which the\n"
            "local devserver accepts).\n"
            "Exit status: 0 normal close, 1 usage, 2 file error, 3 library or session error,\n"
            "4 audio device error.\n",
            argv0, argv0, argv0, DEFAULT_ENDPOINT, DEFAULT_AGENT_ID, DEFAULT_INPUT, DEFAULT_OUTPUT,
            DEFAULT_TIMEOUT_S, DEFAULT_DEVICE_TIMEOUT_S, DEFAULT_PUBLIC_KEY);
}

static const char *env_or(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v != NULL && v[0] != '\0') ? v : fallback;
}

/* Matches "--name VALUE" and "--name=VALUE"; advances *i past what it consumed. */
static int option(int argc, char **argv, int *i, const char *name, const char **value)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", name);
        exit(EXIT_USAGE);
    }
    *i += 1;
    *value = argv[*i];
    return 1;
}

/* ------------------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *endpoint = env_or("MILLIS_ENDPOINT", DEFAULT_ENDPOINT);
    const char *agent_id = env_or("MILLIS_AGENT_ID", DEFAULT_AGENT_ID);
    const char *public_key = env_or("MILLIS_PUBLIC_KEY", DEFAULT_PUBLIC_KEY);
    const char *input = DEFAULT_INPUT, *output = DEFAULT_OUTPUT, *timeout_arg = NULL;
    const char *capture = NULL, *playback = NULL; /* NULL: ALSA's "default" */
    const char *record = NULL;                      /* --record FILE */
    double timeout_s = DEFAULT_TIMEOUT_S;
    int verbose = 0, i, exit_code = 0, ready, closed, timed_out = 0;
    int device_mode = 0, list_devices = 0, file_option = 0;
    unsigned char *user_pcm = NULL;
    size_t user_bytes = 0, sent_ok = 0, offset = 0;
    millis_config *cfg;
    millis_client *client;
    millis_status st;
    struct session s;
    struct timespec deadline, next;
    static const unsigned char silence[CHUNK_BYTES];
    char *session_id, *stats;

    for (i = 1; i < argc; i++) {
        const char *v;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            verbose = 1;
        } else if (strcmp(argv[i], "--list-devices") == 0) {
            list_devices = 1;
        } else if (strcmp(argv[i], "--device") == 0) {
            /* No separate value: ALSA names hold commas ("hw:1,0"), so --device=NAME
             * names one PCM for both sides and --capture/--playback name them apart. */
            device_mode = 1;
        } else if (strncmp(argv[i], "--device=", 9) == 0) {
            device_mode = 1;
            capture = playback = argv[i] + 9;
        } else if (option(argc, argv, &i, "--record", &v)) {
            record = v;
        } else if (option(argc, argv, &i, "--capture", &v)) {
            device_mode = 1;
            capture = v;
        } else if (option(argc, argv, &i, "--playback", &v)) {
            device_mode = 1;
            playback = v;
        } else if (option(argc, argv, &i, "--endpoint", &v)) {
            endpoint = v;
        } else if (option(argc, argv, &i, "--agent-id", &v)) {
            agent_id = v;
        } else if (option(argc, argv, &i, "--input", &v)) {
            input = v;
            file_option = 1;
        } else if (option(argc, argv, &i, "--output", &v)) {
            output = v;
            file_option = 1;
        } else if (option(argc, argv, &i, "--timeout", &v)) {
            timeout_arg = v;
        } else {
            fprintf(stderr, "error: unknown argument '%s'\n\n", argv[i]);
            usage(stderr, argv[0]);
            return EXIT_USAGE;
        }
    }
    if (list_devices) {
        char *json = millis_audio_devices_json();
        if (json == NULL) {
            fprintf(stderr, "error: ALSA could not list its devices\n");
            return EXIT_DEVICE;
        }
        printf("%s\n", json);
        millis_free(json);
        return 0;
    }
    if (device_mode && file_option) {
        fprintf(stderr, "error: --input and --output are for file mode; device mode (--device, "
                        "--capture, --playback) talks through ALSA\n");
        return EXIT_USAGE;
    }
    if ((capture != NULL && capture[0] == '\0') || (playback != NULL && playback[0] == '\0')) {
        fprintf(stderr, "error: an ALSA device name must not be empty (see --list-devices)\n");
        return EXIT_USAGE;
    }
    if (device_mode) timeout_s = DEFAULT_DEVICE_TIMEOUT_S;
    if (timeout_arg != NULL) {
        char *end;
        timeout_s = strtod(timeout_arg, &end);
        if (end == timeout_arg || *end != '\0' || !(timeout_s > 0) || timeout_s > 86400) {
            fprintf(stderr, "error: --timeout wants a number of seconds in (0, 86400], not '%s'\n",
                    timeout_arg);
            return EXIT_USAGE;
        }
    }
    if (agent_id[0] == '\0') {
        fprintf(stderr, "error: --agent-id must not be empty\n");
        return EXIT_USAGE;
    }

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (device_mode) {
        printf("libmillis %s (header %s); device audio: capture %s, playback %s\n", millis_version(),
               MILLIS_VERSION_STRING, capture ? capture : "default", playback ? playback : "default");
    } else {
        if (load_wav(input, &user_pcm, &user_bytes) != 0) {
            if (strcmp(input, DEFAULT_INPUT) == 0)
                fprintf(stderr, "       (name the user's voice with --input FILE.wav)\n");
            return EXIT_FILE;
        }
        printf("libmillis %s (header %s); %s: %.2f s of user audio\n", millis_version(),
               MILLIS_VERSION_STRING, input, (double)user_bytes / (SAMPLE_RATE * 2));
    }
    if (millis_version_number() != MILLIS_VERSION_NUMBER)
        fprintf(stderr, "warning: compiled against libmillis %s but running %s\n",
                MILLIS_VERSION_STRING, millis_version());

    /* Configuration and client. */
    cfg = millis_config_create();
    if (cfg == NULL) {
        fprintf(stderr, "error: millis_config_create failed\n");
        free(user_pcm);
        return EXIT_SESSION;
    }
    if ((st = millis_config_set_public_key(cfg, public_key)) != MILLIS_OK
        || (st = millis_config_set_endpoint(cfg, endpoint)) != MILLIS_OK
        || (st = millis_config_set_frame_ms(cfg, CHUNK_MS)) != MILLIS_OK
        /* File mode pushes audio itself: application audio, even on a machine whose
         * devices would open (MILLIS_AUDIO_MODE_DEFAULT would then pick them). */
        || (st = millis_config_set_audio_mode(cfg, device_mode ? MILLIS_AUDIO_MODE_DEVICE
                                                               : MILLIS_AUDIO_MODE_APPLICATION)) != MILLIS_OK
        || (device_mode && (st = millis_config_set_audio_devices(cfg, capture, playback)) != MILLIS_OK)
        /* Both sides and a timeline beside the file (call.opus -> call.jsonl). */
        || (record != NULL && (st = millis_config_set_recording(cfg, record, MILLIS_RECORD_STEREO)) != MILLIS_OK)
        || (verbose && (st = millis_config_set_log_level(cfg, MILLIS_LOG_DEBUG)) != MILLIS_OK)) {
        fprintf(stderr, "error: configuration: %s: %s\n", millis_status_string(st),
                millis_config_last_error(cfg));
        millis_config_destroy(cfg);
        free(user_pcm);
        return st == MILLIS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_SESSION;
    }
    client = millis_client_create(cfg, &st);
    if (client == NULL) {
        fprintf(stderr, "error: millis_client_create: %s: %s\n", millis_status_string(st),
                millis_config_last_error(cfg));
        millis_config_destroy(cfg);
        free(user_pcm);
        return EXIT_SESSION;
    }
    millis_config_destroy(cfg); /* the client keeps its own copy */

    memset(&s, 0, sizeof s);
    s.device_mode = device_mode;
    pthread_mutex_init(&s.lock, NULL);
    {
        pthread_condattr_t attr;
        pthread_condattr_init(&attr);
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
        pthread_cond_init(&s.cond, &attr);
        pthread_condattr_destroy(&attr);
    }
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_sigint;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    millis_client_on_open(client, on_open, &s);
    millis_client_on_ready(client, on_ready, &s);
    millis_client_on_session_ended(client, on_session_ended, &s);
    millis_client_on_audio(client, on_audio, &s);
    millis_client_on_response_text(client, on_response_text, &s);
    millis_client_on_transcript(client, on_transcript, &s);
    millis_client_on_function(client, on_function, &s);
    millis_client_on_latency(client, on_latency, &s);
    millis_client_on_agent_state(client, on_agent_state, &s);
    millis_client_on_close(client, on_close, &s);
    millis_client_on_error(client, on_error, &s);
    millis_client_on_message(client, on_message, &s);
    millis_client_on_reconnecting(client, on_reconnecting, &s);
    millis_client_on_reconnected(client, on_reconnected, &s);
    millis_client_on_analyzer(client, on_analyzer, &s);
    millis_client_on_user_audio_ready(client, on_user_audio_ready, &s);
    if (verbose) millis_client_on_log(client, on_log, &s);

    /* Start, and wait for onready (or an early close). */
    clock_gettime(CLOCK_MONOTONIC, &t0);
    deadline = t0;
    deadline.tv_sec += (time_t)timeout_s;
    timespec_add_ns(&deadline, (long)((timeout_s - (double)(time_t)timeout_s) * 1e9));
    say("start: endpoint %s, agent %s", endpoint, agent_id);
    st = millis_client_start_agent(client, agent_id);
    if (st != MILLIS_OK) {
        /* Device mode opens the devices here: a missing or busy one fails the start. */
        fprintf(stderr, "error: millis_client_start_agent: %s: %s\n", millis_status_string(st),
                millis_client_last_error(client));
        if (st == MILLIS_ERR_AUDIO_DEVICE)
            fprintf(stderr, "       (%s --list-devices shows the PCMs ALSA knows)\n", argv[0]);
        millis_client_destroy(client);
        free(user_pcm);
        return st == MILLIS_ERR_AUDIO_DEVICE ? EXIT_DEVICE
             : st == MILLIS_ERR_FILE       ? EXIT_FILE
                                           : EXIT_SESSION;
    }
    pthread_mutex_lock(&s.lock);
    while (!s.ready && !s.closed && !interrupted) {
        struct timespec slice; /* wake every 100 ms to notice Ctrl-C */
        clock_gettime(CLOCK_MONOTONIC, &slice);
        timespec_add_ns(&slice, 100000000L);
        if (slice.tv_sec > deadline.tv_sec || (slice.tv_sec == deadline.tv_sec && slice.tv_nsec > deadline.tv_nsec))
            slice = deadline;
        if (pthread_cond_timedwait(&s.cond, &s.lock, &slice) == ETIMEDOUT && slice.tv_sec == deadline.tv_sec
            && slice.tv_nsec == deadline.tv_nsec)
            break;
    }
    ready = s.ready;
    closed = s.closed;
    pthread_mutex_unlock(&s.lock);

    if (device_mode && ready && !closed) {
        timed_out = run_device_conversation(client, &s, &deadline);
    } else if (device_mode) {
        if (!ready && !closed && !interrupted) timed_out = 1;
    }
    /* Stream the user's voice in real time, then silence, on an absolute 20 ms clock:
     * sleeping until next += 20 ms keeps the average rate exact whatever each send costs. */
    else if (ready && !closed) {
        say("streaming %s in %d ms chunks", input, CHUNK_MS);
        clock_gettime(CLOCK_MONOTONIC, &next);
        for (;;) {
            unsigned char chunk[CHUNK_BYTES];
            const unsigned char *p = silence;
            struct timespec now;
            pthread_mutex_lock(&s.lock);
            closed = s.closed;
            pthread_mutex_unlock(&s.lock);
            if (closed || interrupted) break;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec > deadline.tv_sec
                || (now.tv_sec == deadline.tv_sec && now.tv_nsec >= deadline.tv_nsec)) {
                timed_out = 1;
                break;
            }
            if (offset < user_bytes) {
                size_t n = user_bytes - offset < CHUNK_BYTES ? user_bytes - offset : CHUNK_BYTES;
                memcpy(chunk, user_pcm + offset, n);
                memset(chunk + n, 0, CHUNK_BYTES - n);
                p = chunk;
                offset += n;
                if (offset == user_bytes) say("end of %s; sending silence until the conversation ends", input);
            }
            st = millis_client_send_audio(client, p, CHUNK_BYTES);
            if (st == MILLIS_OK) {
                sent_ok += CHUNK_BYTES;
            } else {
                /* NOT_READY right as the session closes is expected; anything else is not. */
                pthread_mutex_lock(&s.lock);
                closed = s.closed;
                pthread_mutex_unlock(&s.lock);
                if (!closed && st != MILLIS_ERR_NOT_READY) {
                    fprintf(stderr, "error: millis_client_send_audio: %s: %s\n",
                            millis_status_string(st), millis_client_last_error(client));
                    exit_code = EXIT_SESSION;
                    break;
                }
            }
            timespec_add_ns(&next, CHUNK_MS * 1000000L);
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
            }
        }
    } else if (!ready && !closed && !interrupted) {
        timed_out = 1;
    }

    /* Timed out, or a send failed: stop, and give the close handshake a few seconds. */
    pthread_mutex_lock(&s.lock);
    closed = s.closed;
    pthread_mutex_unlock(&s.lock);
    if (!closed) {
        struct timespec grace;
        if (timed_out) say("timeout: %.1f s passed, stopping", timeout_s);
        if (interrupted) say("interrupted, stopping");
        millis_client_stop(client);
        clock_gettime(CLOCK_MONOTONIC, &grace);
        grace.tv_sec += 5;
        pthread_mutex_lock(&s.lock);
        closed = wait_flag(&s, &s.closed, &grace);
        pthread_mutex_unlock(&s.lock);
        if (!closed) {
            fprintf(stderr, "error: no onclose within 5 s of millis_client_stop\n");
            exit_code = EXIT_SESSION;
        }
    }

    /* Summary. The client is still alive, so its session id and stats can be read. */
    session_id = millis_client_session_id(client);
    stats = millis_client_stats_json(client);
    pthread_mutex_lock(&s.lock);
    printf("\n--- summary ---\n");
    printf("session id:        %s\n", session_id ? session_id : "(none)");
    printf("user turns:        %d (final transcripts)\n", s.user_turns);
    printf("agent replies:     %d (final response texts)\n", s.agent_replies);
    if (!device_mode)
        printf("user audio sent:   %lu bytes (%.2f s)\n", (unsigned long)sent_ok,
               (double)sent_ok / (SAMPLE_RATE * 2));
    printf("onaudio total:     %lu bytes in %lu frames (%.2f s)%s\n", (unsigned long)s.agent_bytes,
           (unsigned long)s.agent_frames, (double)s.agent_bytes / (SAMPLE_RATE * 2),
           device_mode ? ", played by the library" : "");
    printf("close code:        %d\n", s.closed ? s.close_code : -1);
    printf("errors:            %d\n", s.errors);
    printf("stats:             %s\n", stats ? stats : "(none)");
    if (!ready) {
        fprintf(stderr, "error: the session never became ready\n");
        exit_code = EXIT_SESSION;
    } else if (s.closed && s.close_code != 1000) {
        fprintf(stderr, "error: the conversation closed with code %d\n", s.close_code);
        exit_code = EXIT_SESSION;
    }
    pthread_mutex_unlock(&s.lock);
    millis_free(session_id);
    millis_free(stats);

    /* The files are complete after onclose; stop_recording also covers a conversation
     * that did not reach its close (timeout, Ctrl-C), and reports a write failure. */
    if (record != NULL) {
        if ((st = millis_client_stop_recording(client)) != MILLIS_OK) {
            fprintf(stderr, "error: recording: %s\n", millis_client_last_error(client));
            if (exit_code == 0) exit_code = EXIT_FILE;
        } else {
            printf("recording:         %s\n", record);
        }
    }
    /* After destroy no callback runs, so the agent audio can be read without the lock. */
    millis_client_destroy(client);
    if (!device_mode) {
        if (s.agent_oom) fprintf(stderr, "warning: out of memory: agent audio truncated\n");
        if (write_wav(output, s.agent_pcm, s.agent_bytes) != 0) {
            if (exit_code == 0) exit_code = EXIT_FILE;
        } else {
            printf("agent audio:       %s\n", output);
        }
    }
    free(s.agent_pcm);
    free(user_pcm);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    return exit_code;
}
