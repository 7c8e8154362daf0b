/*
 * test_example_flows.c — the flows bindings/c/millis_example.c was tested on before it
 * became a short example, kept as a test program (Tests/python/test_c_programs.py
 * runs it against the devserver and checks its output, its exit status, the WAV file
 * it writes and the devserver's record of the session).
 *
 * File mode (the default, application audio): the user's voice comes from a WAV file
 * (16 kHz, mono, 16-bit PCM, RIFF chunks walked), streamed by the program itself in
 * real time in 20 ms chunks once the session is ready (none before onready), then
 * silence until the conversation ends; the agent's voice (onaudio) is written to
 * another WAV file after millis_client_destroy().
 *
 * Device mode (--device, --capture NAME, --playback NAME): the library records and
 * plays through ALSA; the program prints the conversation and, once a second, the RMS
 * levels of the agent's and the user's analysers. --list-devices prints the PCMs.
 *
 * Every event is printed with the time since start, onaudio once per answer. A
 * summary follows: session id, user turns, audio sent and received, close code, stats.
 *
 * Usage: test_example_flows [--endpoint URL] [--agent-id ID] [--input WAV]
 *            [--output WAV] [--timeout SECONDS] [--verbose]
 *        test_example_flows --device[=NAME] [--capture NAME] [--playback NAME] ...
 *        test_example_flows --list-devices
 * (MILLIS_ENDPOINT, MILLIS_AGENT_ID and MILLIS_PUBLIC_KEY are read from the environment)
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
            "          [--timeout SECONDS] [--verbose] [--help]\n"
            "       %s --device[=NAME] [--capture NAME] [--playback NAME] [--endpoint URL]\n"
            "          [--agent-id ID] [--timeout SECONDS] [--verbose]\n"
            "       %s --list-devices\n"
            "\n"
            "Holds one conversation with a Millis voice agent. File mode (the default):\n"
            "streams the input WAV (16 kHz mono 16-bit PCM) as the user's voice in real\n"
            "time, then silence until the conversation ends, and writes the agent's voice\n"
            "to the output WAV. Device mode: talks through ALSA devices; the levels of both\n"
            "sides print once a second; Ctrl-C ends the conversation.\n"
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
            "  --list-devices     print the PCMs ALSA knows (JSON) and exit\n"
            "  --verbose          also print the library's debug log\n"
            "  --help             this text\n"
            "\n"
            "The public key is read from env MILLIS_PUBLIC_KEY (default \"%s\").\n"
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
 * The conversation
 * ---------------------------------------------------------------------------------- */

struct args {
    const char *endpoint, *agent_id, *public_key, *input, *output;
    const char *capture, *playback; /* device mode; NULL: ALSA's "default" */
    double timeout_s;
    int verbose, device_mode, list_devices;
};

/* Returns -1 to go on, else the exit status (after --help or a usage error). */
static int parse_args(int argc, char **argv, struct args *a)
{
    const char *timeout_arg = NULL, *v;
    int i, file_option = 0;
    a->endpoint = env_or("MILLIS_ENDPOINT", DEFAULT_ENDPOINT);
    a->agent_id = env_or("MILLIS_AGENT_ID", DEFAULT_AGENT_ID);
    a->public_key = env_or("MILLIS_PUBLIC_KEY", DEFAULT_PUBLIC_KEY);
    a->input = DEFAULT_INPUT;
    a->output = DEFAULT_OUTPUT;
    a->capture = a->playback = NULL;
    a->timeout_s = DEFAULT_TIMEOUT_S;
    a->verbose = a->device_mode = a->list_devices = 0;
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout, argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--verbose") == 0) {
            a->verbose = 1;
        } else if (strcmp(argv[i], "--list-devices") == 0) {
            a->list_devices = 1;
        } else if (strcmp(argv[i], "--device") == 0) {
            /* No separate value: ALSA names hold commas ("hw:1,0"), so --device=NAME
             * names one PCM for both sides and --capture/--playback name them apart. */
            a->device_mode = 1;
        } else if (strncmp(argv[i], "--device=", 9) == 0) {
            a->device_mode = 1;
            a->capture = a->playback = argv[i] + 9;
        } else if (option(argc, argv, &i, "--capture", &v)) {
            a->device_mode = 1;
            a->capture = v;
        } else if (option(argc, argv, &i, "--playback", &v)) {
            a->device_mode = 1;
            a->playback = v;
        } else if (option(argc, argv, &i, "--endpoint", &v)) {
            a->endpoint = v;
        } else if (option(argc, argv, &i, "--agent-id", &v)) {
            a->agent_id = v;
        } else if (option(argc, argv, &i, "--input", &v)) {
            a->input = v;
            file_option = 1;
        } else if (option(argc, argv, &i, "--output", &v)) {
            a->output = v;
            file_option = 1;
        } else if (option(argc, argv, &i, "--timeout", &v)) {
            timeout_arg = v;
        } else {
            fprintf(stderr, "error: unknown argument '%s'\n\n", argv[i]);
            usage(stderr, argv[0]);
            return EXIT_USAGE;
        }
    }
    if (a->device_mode && file_option) {
        fprintf(stderr, "error: --input and --output are for file mode; device mode (--device, "
                        "--capture, --playback) talks through ALSA\n");
        return EXIT_USAGE;
    }
    if ((a->capture != NULL && a->capture[0] == '\0') || (a->playback != NULL && a->playback[0] == '\0')) {
        fprintf(stderr, "error: an ALSA device name must not be empty (see --list-devices)\n");
        return EXIT_USAGE;
    }
    if (a->device_mode) a->timeout_s = DEFAULT_DEVICE_TIMEOUT_S;
    if (timeout_arg != NULL) {
        char *end;
        a->timeout_s = strtod(timeout_arg, &end);
        if (end == timeout_arg || *end != '\0' || !(a->timeout_s > 0) || a->timeout_s > 86400) {
            fprintf(stderr, "error: --timeout wants a number of seconds in (0, 86400], not '%s'\n", timeout_arg);
            return EXIT_USAGE;
        }
    }
    if (a->agent_id[0] == '\0') {
        fprintf(stderr, "error: --agent-id must not be empty\n");
        return EXIT_USAGE;
    }
    return -1;
}

/* The client, configured for application or device audio, with every callback on `s`; NULL
 * after a message, with the exit status in *exit_code. */
static millis_client *create_client(const struct args *a, struct session *s, int *exit_code)
{
    millis_config *cfg = millis_config_create();
    millis_client *client;
    millis_status st = MILLIS_OK;
    if (cfg == NULL) {
        fprintf(stderr, "error: millis_config_create failed\n");
        *exit_code = EXIT_SESSION;
        return NULL;
    }
    if ((st = millis_config_set_public_key(cfg, a->public_key)) != MILLIS_OK
        || (st = millis_config_set_endpoint(cfg, a->endpoint)) != MILLIS_OK
        || (st = millis_config_set_frame_ms(cfg, CHUNK_MS)) != MILLIS_OK
        /* File mode pushes audio itself: application audio, even on a machine whose
         * devices would open (MILLIS_AUDIO_MODE_DEFAULT would then pick them). */
        || (st = millis_config_set_audio_mode(cfg, a->device_mode ? MILLIS_AUDIO_MODE_DEVICE
                                                                  : MILLIS_AUDIO_MODE_APPLICATION)) != MILLIS_OK
        || (a->device_mode && (st = millis_config_set_audio_devices(cfg, a->capture, a->playback)) != MILLIS_OK)
        || (a->verbose && (st = millis_config_set_log_level(cfg, MILLIS_LOG_DEBUG)) != MILLIS_OK)) {
        fprintf(stderr, "error: configuration: %s: %s\n", millis_status_string(st), millis_config_last_error(cfg));
        millis_config_destroy(cfg);
        *exit_code = st == MILLIS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_SESSION;
        return NULL;
    }
    client = millis_client_create(cfg, &st);
    if (client == NULL) {
        fprintf(stderr, "error: millis_client_create: %s: %s\n", millis_status_string(st),
                millis_config_last_error(cfg));
        *exit_code = EXIT_SESSION;
    }
    millis_config_destroy(cfg); /* the client keeps its own copy */
    if (client == NULL) return NULL;
    millis_client_on_open(client, on_open, s);
    millis_client_on_ready(client, on_ready, s);
    millis_client_on_session_ended(client, on_session_ended, s);
    millis_client_on_audio(client, on_audio, s);
    millis_client_on_response_text(client, on_response_text, s);
    millis_client_on_transcript(client, on_transcript, s);
    millis_client_on_function(client, on_function, s);
    millis_client_on_latency(client, on_latency, s);
    millis_client_on_agent_state(client, on_agent_state, s);
    millis_client_on_close(client, on_close, s);
    millis_client_on_error(client, on_error, s);
    millis_client_on_message(client, on_message, s);
    millis_client_on_reconnecting(client, on_reconnecting, s);
    millis_client_on_reconnected(client, on_reconnected, s);
    millis_client_on_analyzer(client, on_analyzer, s);
    millis_client_on_user_audio_ready(client, on_user_audio_ready, s);
    if (a->verbose) millis_client_on_log(client, on_log, s);
    return client;
}

static void session_init(struct session *s)
{
    pthread_condattr_t attr;
    struct sigaction sa;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &attr);
    pthread_condattr_destroy(&attr);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

/* Waits for onready (or an early close, Ctrl-C, the deadline); returns ready. */
static int wait_ready(struct session *s, const struct timespec *deadline)
{
    int ready;
    pthread_mutex_lock(&s->lock);
    while (!s->ready && !s->closed && !interrupted) {
        struct timespec slice; /* wake every 100 ms to notice Ctrl-C */
        clock_gettime(CLOCK_MONOTONIC, &slice);
        timespec_add_ns(&slice, 100000000L);
        if (before(deadline, &slice)) slice = *deadline;
        if (pthread_cond_timedwait(&s->cond, &s->lock, &slice) == ETIMEDOUT && !before(&slice, deadline)) break;
    }
    ready = s->ready;
    pthread_mutex_unlock(&s->lock);
    return ready;
}

static int is_closed(struct session *s)
{
    int closed;
    pthread_mutex_lock(&s->lock);
    closed = s->closed;
    pthread_mutex_unlock(&s->lock);
    return closed;
}

/* Streams the user's voice in real time, then silence, on an absolute 20 ms clock
 * (sleeping until next += 20 ms keeps the average rate exact whatever each send
 * costs), until the close, Ctrl-C or the deadline. Adds the bytes accepted to *sent.
 * Returns 0, 1 when the deadline passed, or EXIT_SESSION after a failed send. */
static int stream(millis_client *client, struct session *s, const struct args *a, const unsigned char *pcm,
                  size_t bytes, const struct timespec *deadline, size_t *sent)
{
    static const unsigned char silence[CHUNK_BYTES];
    size_t offset = 0;
    struct timespec next;
    say("streaming %s in %d ms chunks", a->input, CHUNK_MS);
    clock_gettime(CLOCK_MONOTONIC, &next);
    for (;;) {
        unsigned char chunk[CHUNK_BYTES];
        const unsigned char *p = silence;
        struct timespec now;
        millis_status st;
        if (is_closed(s) || interrupted) return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (!before(&now, deadline)) return 1;
        if (offset < bytes) {
            size_t n = bytes - offset < CHUNK_BYTES ? bytes - offset : CHUNK_BYTES;
            memcpy(chunk, pcm + offset, n);
            memset(chunk + n, 0, CHUNK_BYTES - n);
            p = chunk;
            offset += n;
            if (offset == bytes) say("end of %s; sending silence until the conversation ends", a->input);
        }
        st = millis_client_send_audio(client, p, CHUNK_BYTES);
        if (st == MILLIS_OK) {
            *sent += CHUNK_BYTES;
        } else if (!is_closed(s) && st != MILLIS_ERR_NOT_READY) {
            /* NOT_READY right as the session closes is expected; anything else is not. */
            fprintf(stderr, "error: millis_client_send_audio: %s: %s\n", millis_status_string(st),
                    millis_client_last_error(client));
            return EXIT_SESSION;
        }
        timespec_add_ns(&next, CHUNK_MS * 1000000L);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
}

/* After a timeout, Ctrl-C or a failed send: stop, and give the close handshake 5 s.
 * Returns 0, or EXIT_SESSION when no onclose came. */
static int stop_and_wait(millis_client *client, struct session *s, int timed_out, double timeout_s)
{
    struct timespec grace;
    int closed;
    if (is_closed(s)) return 0;
    if (timed_out) say("timeout: %.1f s passed, stopping", timeout_s);
    if (interrupted) say("interrupted, stopping");
    millis_client_stop(client);
    clock_gettime(CLOCK_MONOTONIC, &grace);
    grace.tv_sec += 5;
    pthread_mutex_lock(&s->lock);
    closed = wait_flag(s, &s->closed, &grace);
    pthread_mutex_unlock(&s->lock);
    if (closed) return 0;
    fprintf(stderr, "error: no onclose within 5 s of millis_client_stop\n");
    return EXIT_SESSION;
}

/* The summary, while the client is alive (its session id and stats can be read).
 * Returns EXIT_SESSION when the session never became ready or closed abnormally. */
static int print_summary(millis_client *client, struct session *s, size_t sent, int ready)
{
    char *session_id = millis_client_session_id(client);
    char *stats = millis_client_stats_json(client);
    int exit_code = 0;
    pthread_mutex_lock(&s->lock);
    printf("\n--- summary ---\n");
    printf("session id:        %s\n", session_id ? session_id : "(none)");
    printf("user turns:        %d (final transcripts)\n", s->user_turns);
    printf("agent replies:     %d (final response texts)\n", s->agent_replies);
    if (!s->device_mode)
        printf("user audio sent:   %lu bytes (%.2f s)\n", (unsigned long)sent, (double)sent / (SAMPLE_RATE * 2));
    printf("onaudio total:     %lu bytes in %lu frames (%.2f s)%s\n", (unsigned long)s->agent_bytes,
           (unsigned long)s->agent_frames, (double)s->agent_bytes / (SAMPLE_RATE * 2),
           s->device_mode ? ", played by the library" : "");
    printf("close code:        %d\n", s->closed ? s->close_code : -1);
    printf("errors:            %d\n", s->errors);
    printf("stats:             %s\n", stats ? stats : "(none)");
    if (!ready) {
        fprintf(stderr, "error: the session never became ready\n");
        exit_code = EXIT_SESSION;
    } else if (s->closed && s->close_code != 1000) {
        fprintf(stderr, "error: the conversation closed with code %d\n", s->close_code);
        exit_code = EXIT_SESSION;
    }
    pthread_mutex_unlock(&s->lock);
    millis_free(session_id);
    millis_free(stats);
    return exit_code;
}

/* The user's voice (file mode) and the version line. Returns 0, else the exit status. */
static int prepare(const struct args *a, unsigned char **pcm, size_t *bytes)
{
    if (a->device_mode) {
        printf("libmillis %s (header %s); device audio: capture %s, playback %s\n", millis_version(),
               MILLIS_VERSION_STRING, a->capture ? a->capture : "default", a->playback ? a->playback : "default");
    } else {
        if (load_wav(a->input, pcm, bytes) != 0) {
            if (strcmp(a->input, DEFAULT_INPUT) == 0)
                fprintf(stderr, "       (name the user's voice with --input FILE.wav)\n");
            return EXIT_FILE;
        }
        printf("libmillis %s (header %s); %s: %.2f s of user audio\n", millis_version(), MILLIS_VERSION_STRING,
               a->input, (double)*bytes / (SAMPLE_RATE * 2));
    }
    if (millis_version_number() != MILLIS_VERSION_NUMBER)
        fprintf(stderr, "warning: compiled against libmillis %s but running %s\n", MILLIS_VERSION_STRING,
                millis_version());
    return 0;
}

static int list_devices(void)
{
    char *json = millis_audio_devices_json();
    if (json == NULL) {
        fprintf(stderr, "error: ALSA could not list its devices\n");
        return EXIT_DEVICE;
    }
    printf("%s\n", json);
    millis_free(json);
    return 0;
}

int main(int argc, char **argv)
{
    struct args a;
    struct session s;
    struct timespec deadline;
    millis_client *client;
    millis_status st;
    unsigned char *user_pcm = NULL;
    size_t user_bytes = 0, sent = 0;
    int rc, exit_code = 0, ready, timed_out = 0;

    if ((rc = parse_args(argc, argv, &a)) >= 0) return rc;
    if (a.list_devices) return list_devices();
    setvbuf(stdout, NULL, _IOLBF, 0);
    if ((rc = prepare(&a, &user_pcm, &user_bytes)) != 0) return rc;
    session_init(&s);
    s.device_mode = a.device_mode;
    if ((client = create_client(&a, &s, &exit_code)) == NULL) {
        free(user_pcm);
        return exit_code;
    }

    clock_gettime(CLOCK_MONOTONIC, &t0);
    deadline = t0;
    deadline.tv_sec += (time_t)a.timeout_s;
    timespec_add_ns(&deadline, (long)((a.timeout_s - (double)(time_t)a.timeout_s) * 1e9));
    say("start: endpoint %s, agent %s", a.endpoint, a.agent_id);
    st = millis_client_start_agent(client, a.agent_id);
    if (st != MILLIS_OK) {
        /* Device mode opens the devices here: a missing or busy one fails the start. */
        fprintf(stderr, "error: millis_client_start_agent: %s: %s\n", millis_status_string(st),
                millis_client_last_error(client));
        if (st == MILLIS_ERR_AUDIO_DEVICE)
            fprintf(stderr, "       (%s --list-devices shows the PCMs ALSA knows)\n", argv[0]);
        millis_client_destroy(client);
        free(user_pcm);
        return st == MILLIS_ERR_AUDIO_DEVICE ? EXIT_DEVICE : st == MILLIS_ERR_FILE ? EXIT_FILE : EXIT_SESSION;
    }
    ready = wait_ready(&s, &deadline);
    if (ready && !is_closed(&s)) {
        rc = a.device_mode ? run_device_conversation(client, &s, &deadline)
                           : stream(client, &s, &a, user_pcm, user_bytes, &deadline, &sent);
        timed_out = rc == 1;
        if (rc == EXIT_SESSION) exit_code = EXIT_SESSION;
    } else if (!ready && !is_closed(&s) && !interrupted) {
        timed_out = 1;
    }
    if ((rc = stop_and_wait(client, &s, timed_out, a.timeout_s)) != 0) exit_code = rc;
    if ((rc = print_summary(client, &s, sent, ready)) != 0) exit_code = rc;

    /* After destroy no callback runs, so the agent audio can be read without the lock. */
    millis_client_destroy(client);
    if (!a.device_mode) {
        if (s.agent_oom) fprintf(stderr, "warning: out of memory: agent audio truncated\n");
        if (write_wav(a.output, s.agent_pcm, s.agent_bytes) != 0) {
            if (exit_code == 0) exit_code = EXIT_FILE;
        } else {
            printf("agent audio:       %s\n", a.output);
        }
    }
    free(s.agent_pcm);
    free(user_pcm);
    pthread_cond_destroy(&s.cond);
    pthread_mutex_destroy(&s.lock);
    return exit_code;
}
