/*
 * talk.c — `millis talk`: a conversation with an agent, through the ALSA devices or
 * audio files, shown live in the terminal.
 *
 * Threads: the library calls the callbacks on its network thread; they only copy what
 * they get into an event queue (mutex) and wake the main thread through a self-pipe.
 * The main thread owns everything else: it reads the queue, the keyboard and the
 * analysers, and draws. Signal handlers write to the same pipe.
 *
 * Output: on a terminal, a live screen (status, two level meters, the transcript);
 * otherwise (or with --plain) one stable line per final event, for scripts and tests.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#define FRAME_SECONDS 0.05       /* the live screen is redrawn 20 times a second */
#define STOP_GRACE_SECONDS 5.0   /* after stop, how long onclose may take */
#define DEFAULT_LINGER 10.0
#define METER_FLOOR_DB (-60.0)
#define TRANSCRIPT_MAX 2000      /* lines kept for the live screen */
#define MAX_HEADERS 64           /* millis_config_add_header's limit */

/* ------------------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------------------- */

struct options {
    const char *agent_id, *agent_config, *metadata, *session_id, *endpoint;
    const char *input, *output, *record, *capture, *playback, *ca_file;
    int metadata_in_prompt, fast, record_mono, plain, verbose;
    int echo_cancellation, noise_suppression, gain_control;
    double timeout, linger;
    int timeout_set;
    /* --header "Name: value", in order (argv strings). */
    const char *headers[MAX_HEADERS];
    size_t header_count;
};

static void help(void)
{
    printf(
        "Usage: %s talk [OPTIONS]\n"
        "\n"
        "Holds a conversation with a Millis agent: your microphone and speaker (ALSA),\n"
        "or audio files. On a terminal it shows the agent's state, the levels of both\n"
        "sides, the live transcript and the latency of each answer; keys: m mute/unmute,\n"
        "q or Ctrl-C quit. Otherwise (a pipe, a file, or --plain) it prints one line per\n"
        "event: ready SESSION_ID, user: TEXT, agent: TEXT, state: STATE,\n"
        "turn N: total MS ms (...), closed CODE REASON; errors go to stderr.\n"
        "\n"
        "The agent:\n"
        "  --agent-id ID          a stored agent (default: $%s)\n"
        "  --agent-config FILE    a JSON object of agent settings (prompt, voice,\n"
        "                         language, ...); with --agent-id it overrides that\n"
        "                         agent's settings for this conversation\n"
        "  --metadata JSON        metadata for the agent: a JSON object, or @FILE\n"
        "  --metadata-in-prompt   include the metadata in the agent's prompt\n"
        "  --session-id ID        continue an earlier conversation (its session id)\n"
        "  --endpoint URL         ws:// or wss:// (default: $%s, else\n"
        "                         %s)\n"
        "  --ca-file FILE         PEM CA certificates for a wss:// server\n"
        "  --header 'NAME: VALUE'\n"
        "                         an extra header for the WebSocket upgrade request, sent\n"
        "                         after libmillis' own (repeatable, in order): Origin, a\n"
        "                         gateway's Authorization, ...; a User-Agent replaces\n"
        "                         libmillis' own\n"
        "Audio:\n"
        "  --device NAME          ALSA device for both microphone and speaker\n"
        "  --capture NAME         ALSA microphone (default \"default\")\n"
        "  --playback NAME        ALSA speaker (default \"default\")\n"
        "                         (`%s devices` lists the names)\n"
        "  --input FILE           the user's voice from a WAV or Ogg Opus file instead of\n"
        "                         the microphone; silence follows its end\n"
        "  --fast                 stream --input as fast as the server takes it\n"
        "  --output FILE          the agent's voice to a file (.wav, .opus, .ogg) instead\n"
        "                         of the speaker\n"
        "  --record FILE          record both sides (.opus, .ogg or .wav; user left,\n"
        "                         agent right) and a timeline FILE.jsonl beside it\n"
        "                         (`%s replay FILE.jsonl` prints it)\n"
        "  --record-mono          record both sides mixed to one channel\n"
        "  --no-echo-cancellation, --no-noise-suppression, --no-gain-control\n"
        "                         switch off the microphone's processing\n"
        "Time:\n"
        "  --timeout SECS         give up if the session is not ready by then (default 15)\n"
        "  --linger SECS          with --input: once the file has ended, stop when the\n"
        "                         agent has answered and is idle again, or after SECS\n"
        "                         at most (default 10)\n"
        "Output:\n"
        "  --plain                line output even on a terminal\n"
        "  -v, --verbose          the library's debug log (stderr; on screen when live)\n"
        "  -h, --help             this help\n"
        "\n"
        "Environment: %s (required: the public key from the Millis playground;\n"
        "the devserver accepts test-public-key), %s, %s.\n"
        "\n"
        "Exit status: 0 the conversation ended normally (closed with 1000, or you quit);\n"
        "1 it could not start or ended with an error (connection, server, audio device,\n"
        "file, no onready in time); 2 usage error (bad option or value, no public key,\n"
        "no agent).\n"
        "\n"
        "Example (against `%s devserver`):\n"
        "  MILLIS_PUBLIC_KEY=test-public-key %s talk --agent-id demo-agent \\\n"
        "    --endpoint ws://127.0.0.1:8765/millis --input speech.wav --output agent.wav\n",
        prog_name, ENV_AGENT_ID, ENV_ENDPOINT, MILLIS_DEFAULT_ENDPOINT, prog_name, prog_name, ENV_PUBLIC_KEY,
        ENV_ENDPOINT, ENV_AGENT_ID, prog_name, prog_name);
}

/* ------------------------------------------------------------------------------------
 * Events: from the network thread to the main thread
 * ---------------------------------------------------------------------------------- */

enum event_kind {
    EV_OPEN, EV_READY, EV_SESSION_ENDED, EV_TRANSCRIPT, EV_RESPONSE, EV_FUNCTION, EV_LATENCY,
    EV_STATE, EV_CLOSE, EV_ERROR, EV_MESSAGE, EV_RECONNECTING, EV_RECONNECTED, EV_USER_AUDIO,
    EV_INPUT_ENDED, EV_TURN, EV_LOG
};

struct event {
    enum event_kind kind;
    int i1, i2;
    double d;
    char *s1, *s2, *s3;
    struct event *next;
};

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event *queue_head, *queue_tail;
static int wake_pipe[2] = {-1, -1};
static volatile sig_atomic_t signal_count, last_signal, winch;

static void wake(void)
{
    int saved = errno;
    if (wake_pipe[1] >= 0) {
        ssize_t n = write(wake_pipe[1], "x", 1);
        (void)n; /* a full pipe already wakes the main thread */
    }
    errno = saved;
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static void push(enum event_kind kind, int i1, int i2, double d, const char *s1, const char *s2, const char *s3)
{
    struct event *e = calloc(1, sizeof *e);
    if (e == NULL) return;
    e->kind = kind;
    e->i1 = i1;
    e->i2 = i2;
    e->d = d;
    e->s1 = dup_or_null(s1);
    e->s2 = dup_or_null(s2);
    e->s3 = dup_or_null(s3);
    pthread_mutex_lock(&queue_lock);
    if (queue_tail)
        queue_tail->next = e;
    else
        queue_head = e;
    queue_tail = e;
    pthread_mutex_unlock(&queue_lock);
    wake();
}

static struct event *pop(void)
{
    struct event *e;
    pthread_mutex_lock(&queue_lock);
    e = queue_head;
    if (e) {
        queue_head = e->next;
        if (queue_head == NULL) queue_tail = NULL;
    }
    pthread_mutex_unlock(&queue_lock);
    return e;
}

static void free_event(struct event *e)
{
    free(e->s1);
    free(e->s2);
    free(e->s3);
    free(e);
}

static void on_open(millis_client *c, void *ud) { (void)c; (void)ud; push(EV_OPEN, 0, 0, 0, NULL, NULL, NULL); }
static void on_ready(millis_client *c, const char *sid, const char *payload, void *ud)
{
    (void)c; (void)ud; (void)payload;
    push(EV_READY, 0, 0, 0, sid, NULL, NULL);
}
static void on_session_ended(millis_client *c, void *ud) { (void)c; (void)ud; push(EV_SESSION_ENDED, 0, 0, 0, NULL, NULL, NULL); }
static void on_transcript(millis_client *c, const char *text, int is_final, void *ud)
{
    (void)c; (void)ud;
    push(EV_TRANSCRIPT, is_final, 0, 0, text, NULL, NULL);
}
static void on_response(millis_client *c, const char *text, int is_final, void *ud)
{
    (void)c; (void)ud;
    push(EV_RESPONSE, is_final, 0, 0, text, NULL, NULL);
}
static void on_function(millis_client *c, const char *text, const char *name, const char *params, void *ud)
{
    (void)c; (void)ud;
    push(EV_FUNCTION, 0, 0, 0, name, params, text);
}
static void on_latency(millis_client *c, double ms, void *ud) { (void)c; (void)ud; push(EV_LATENCY, 0, 0, ms, NULL, NULL, NULL); }
static void on_state(millis_client *c, millis_agent_state s, void *ud) { (void)c; (void)ud; push(EV_STATE, (int)s, 0, 0, NULL, NULL, NULL); }
static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    (void)c; (void)ud;
    push(EV_CLOSE, code, 0, 0, reason, NULL, NULL);
}
static void on_error(millis_client *c, millis_status st, const char *message, void *ud)
{
    (void)c; (void)ud;
    push(EV_ERROR, (int)st, 0, 0, message, NULL, NULL);
}
static void on_message(millis_client *c, const char *method, const char *json, void *ud)
{
    (void)c; (void)ud;
    push(EV_MESSAGE, 0, 0, 0, method, json, NULL);
}
static void on_reconnecting(millis_client *c, unsigned attempt, unsigned delay_ms, void *ud)
{
    (void)c; (void)ud;
    push(EV_RECONNECTING, (int)attempt, (int)delay_ms, 0, NULL, NULL, NULL);
}
static void on_reconnected(millis_client *c, const char *sid, void *ud) { (void)c; (void)ud; push(EV_RECONNECTED, 0, 0, 0, sid, NULL, NULL); }
static void on_user_audio_ready(millis_client *c, millis_analyser *a, const char *stream, void *ud)
{
    (void)c; (void)ud; (void)a;
    push(EV_USER_AUDIO, 0, 0, 0, stream, NULL, NULL);
}
static void on_input_ended(millis_client *c, void *ud) { (void)c; (void)ud; push(EV_INPUT_ENDED, 0, 0, 0, NULL, NULL, NULL); }
static void on_turn(millis_client *c, const char *json, void *ud) { (void)c; (void)ud; push(EV_TURN, 0, 0, 0, json, NULL, NULL); }
static void on_log(millis_client *c, millis_log_level level, const char *message, void *ud)
{
    (void)c; (void)ud;
    push(EV_LOG, (int)level, 0, 0, message, NULL, NULL);
}

static void on_signal(int sig)
{
    if (sig == SIGWINCH) {
        winch = 1;
    } else {
        last_signal = sig;
        signal_count += 1;
    }
    wake();
}

/* ------------------------------------------------------------------------------------
 * The terminal: raw keyboard, alternate screen; restored on every way out
 * ---------------------------------------------------------------------------------- */

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved, screen_active;

#define SCREEN_ENTER "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
#define SCREEN_LEAVE "\x1b[0m\x1b[?25h\x1b[?1049l"

/* Async-signal-safe: write(2) and tcsetattr(3) only. */
static void restore_terminal(void)
{
    if (screen_active) {
        ssize_t n = write(STDOUT_FILENO, SCREEN_LEAVE, sizeof SCREEN_LEAVE - 1);
        (void)n;
        screen_active = 0;
    }
    if (termios_saved) {
        tcsetattr(STDIN_FILENO, TCSANOW, &saved_termios);
        termios_saved = 0;
    }
}

static void on_fatal_signal(int sig)
{
    restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

static void enter_screen(int keyboard)
{
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    size_t i;
    atexit(restore_terminal);
    for (i = 0; i < sizeof fatal / sizeof fatal[0]; i++) signal(fatal[i], on_fatal_signal);
    if (keyboard && tcgetattr(STDIN_FILENO, &saved_termios) == 0) {
        struct termios raw = saved_termios;
        /* Keys arrive one by one, unechoed; Ctrl-C is a key (so quitting is clean) and
         * output processing stays on ("\n" still returns the carriage). */
        raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
        raw.c_iflag &= ~(tcflag_t)(IXON | ICRNL);
        raw.c_cc[VMIN] = 0;
        raw.c_cc[VTIME] = 0;
        termios_saved = 1;
        tcsetattr(STDIN_FILENO, TCSANOW, &raw);
    }
    if (write(STDOUT_FILENO, SCREEN_ENTER, sizeof SCREEN_ENTER - 1) > 0) screen_active = 1;
}

/* ------------------------------------------------------------------------------------
 * The session as the main thread sees it
 * ---------------------------------------------------------------------------------- */

enum line_kind { LINE_USER, LINE_AGENT, LINE_TURN, LINE_INFO, LINE_ERROR };

struct tline {
    enum line_kind kind;
    char *text;
    int partial;
};

struct session {
    const struct options *opt;
    millis_client *client;
    millis_analyser *user_meter, *agent_meter;
    const char *endpoint, *agent_label;
    int live;       /* the live screen is on */
    int keyboard;   /* keys are read */
    int utf8;
    char *session_id;
    char device_info[256];
    int agent_state;
    int ready, closed, close_code;
    char *close_reason;
    int failed;          /* an error that makes the exit status 1 */
    int stopping;        /* stop was called */
    double stop_deadline;
    int quit_by_user;
    int input_ended, busy_since_input;
    double linger_deadline;
    int turns;
    struct tline *lines;
    size_t line_count;
    long user_partial, agent_partial; /* index of the partial line being updated, or -1 */
    int rows, cols;
    int col, esc, clipping; /* emit()'s position in the row being drawn */
    char *frame;
    size_t frame_len, frame_cap;
};

static void add_line(struct session *s, enum line_kind kind, const char *text, int partial)
{
    struct tline *l;
    if (s->line_count == TRANSCRIPT_MAX) {
        /* Drop the oldest line; the partial indexes move with the rest. */
        free(s->lines[0].text);
        memmove(s->lines, s->lines + 1, (TRANSCRIPT_MAX - 1) * sizeof *s->lines);
        s->line_count--;
        if (s->user_partial >= 0) s->user_partial--;
        if (s->agent_partial >= 0) s->agent_partial--;
    }
    l = &s->lines[s->line_count++];
    l->kind = kind;
    l->text = strdup(text ? text : "");
    l->partial = partial;
}

/* A transcript or response: a partial updates the speaker's partial line in place; the
 * final replaces it. */
static void speech_line(struct session *s, enum line_kind kind, const char *text, int is_final)
{
    long *partial = kind == LINE_USER ? &s->user_partial : &s->agent_partial;
    if (*partial >= 0 && (size_t)*partial < s->line_count) {
        struct tline *l = &s->lines[*partial];
        free(l->text);
        l->text = strdup(text ? text : "");
        l->partial = !is_final;
    } else {
        add_line(s, kind, text, !is_final);
        if (!is_final) *partial = (long)s->line_count - 1;
    }
    if (is_final) *partial = -1;
}

static void info(struct session *s, enum line_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void info(struct session *s, enum line_kind kind, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    add_line(s, kind, text, 0);
}

/* Plain output: one line, flushed at once. */
static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void stop_conversation(struct session *s, const char *why)
{
    if (s->stopping || s->closed) return;
    s->stopping = 1;
    s->stop_deadline = now_seconds() + STOP_GRACE_SECONDS;
    if (s->live)
        info(s, LINE_INFO, "stopping: %s", why);
    else if (s->opt->verbose)
        fprintf(stderr, "stopping: %s\n", why);
    millis_client_stop(s->client);
}

/* "612" or "-" for a latency figure. */
static void figure(const cJSON *obj, const char *key, int decimals, char *out_buf, size_t size)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (cJSON_IsNumber(v))
        snprintf(out_buf, size, "%.*f", decimals, v->valuedouble);
    else
        snprintf(out_buf, size, decimals ? "null" : "-");
}

static void handle_turn(struct session *s, const char *json)
{
    cJSON *t = cJSON_Parse(json ? json : "");
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(t, "latency_ms");
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "turn");
    int number = cJSON_IsNumber(n) ? n->valueint : s->turns + 1;
    char a[32], b[32], c[32], total[32];
    s->turns++;
    if (t == NULL) {
        if (s->live)
            info(s, LINE_ERROR, "turn: unreadable breakdown %s", json ? json : "");
        else
            fprintf(stderr, "warning: unreadable turn breakdown: %s\n", json ? json : "");
        return;
    }
    if (s->live) {
        const char *arrow = s->utf8 ? "→" : "->";
        figure(lat, "total", 0, total, sizeof total);
        figure(lat, "end_of_speech_to_start_answering", 0, a, sizeof a);
        figure(lat, "start_answering_to_first_audio", 0, b, sizeof b);
        figure(lat, "first_audio_to_played", 0, c, sizeof c);
        info(s, LINE_TURN, "turn %d: %s ms (end of speech %s start_answering %s, %s first audio %s, %s played %s)",
             number, total, arrow, a, arrow, b, arrow, c);
    } else {
        figure(lat, "total", 1, total, sizeof total);
        figure(lat, "end_of_speech_to_start_answering", 1, a, sizeof a);
        figure(lat, "start_answering_to_first_audio", 1, b, sizeof b);
        figure(lat, "first_audio_to_played", 1, c, sizeof c);
        out("turn %d: total %s ms (end_of_speech_to_start_answering %s, start_answering_to_first_audio %s, "
            "first_audio_to_played %s)",
            number, total, a, b, c);
    }
    cJSON_Delete(t);
}

/* "mic NAME 48000 Hz" for a device, "in FILE" for a file (the basename). */
static void describe_stream(const cJSON *side, const char *device_word, const char *file_word, char *out_buf,
                            size_t size)
{
    const cJSON *device = cJSON_GetObjectItemCaseSensitive(side, "device");
    const cJSON *file = cJSON_GetObjectItemCaseSensitive(side, "file");
    const cJSON *rate = cJSON_GetObjectItemCaseSensitive(side, "rate");
    out_buf[0] = '\0';
    if (cJSON_IsString(file)) {
        const char *slash = strrchr(file->valuestring, '/');
        snprintf(out_buf, size, "%s %s", file_word, slash ? slash + 1 : file->valuestring);
    } else if (cJSON_IsString(device) && cJSON_IsNumber(rate)) {
        snprintf(out_buf, size, "%s %s %.0f Hz", device_word, device->valuestring, rate->valuedouble);
    } else if (cJSON_IsString(device)) {
        snprintf(out_buf, size, "%s %s", device_word, device->valuestring);
    }
}

static void handle_user_audio(struct session *s, const char *json)
{
    cJSON *j = cJSON_Parse(json ? json : "");
    char mic[96], speaker[96];
    if (j == NULL) return;
    describe_stream(j, "mic", "in", mic, sizeof mic);
    describe_stream(cJSON_GetObjectItemCaseSensitive(j, "playback"), "speaker", "out", speaker, sizeof speaker);
    snprintf(s->device_info, sizeof s->device_info, "%s%s%s", mic, mic[0] && speaker[0] ? "   " : "", speaker);
    cJSON_Delete(j);
}

static const char *log_level_name(int level)
{
    static const char *const names[] = {"none", "error", "warn", "info", "debug"};
    return level >= 0 && level <= 4 ? names[level] : "log";
}

static void handle_event(struct session *s, struct event *e)
{
    switch (e->kind) {
    case EV_OPEN:
        if (s->live) info(s, LINE_INFO, "connected to %s", s->endpoint);
        break;
    case EV_READY:
        s->ready = 1;
        free(s->session_id);
        s->session_id = strdup(e->s1 ? e->s1 : "");
        if (s->live)
            info(s, LINE_INFO, "ready: session %s", e->s1 && e->s1[0] ? e->s1 : "(no id)");
        else
            out("ready %s", e->s1 && e->s1[0] ? e->s1 : "-");
        break;
    case EV_SESSION_ENDED:
        if (s->live)
            info(s, LINE_INFO, "the agent ended the session");
        else
            out("session ended");
        break;
    case EV_TRANSCRIPT:
        if (s->live)
            speech_line(s, LINE_USER, e->s1, e->i1);
        else if (e->i1)
            out("user: %s", e->s1 ? e->s1 : "");
        break;
    case EV_RESPONSE:
        if (s->live)
            speech_line(s, LINE_AGENT, e->s1, e->i1);
        else if (e->i1)
            out("agent: %s", e->s1 ? e->s1 : "");
        break;
    case EV_FUNCTION:
        if (s->live)
            info(s, LINE_INFO, "tool call: %s %s", e->s1 ? e->s1 : "?", e->s2 ? e->s2 : "null");
        else
            out("function: %s %s", e->s1 ? e->s1 : "?", e->s2 ? e->s2 : "null");
        break;
    case EV_LATENCY:
        if (!s->live) out("latency: %.1f ms", e->d);
        break;
    case EV_STATE:
        s->agent_state = e->i1;
        if (!s->live) out("state: %s", millis_agent_state_string((millis_agent_state)e->i1));
        if (s->input_ended && !s->stopping) {
            if (e->i1 != MILLIS_AGENT_IDLE) {
                s->busy_since_input = 1;
            } else if (s->busy_since_input) {
                stop_conversation(s, "the input ended and the agent has answered");
            }
        }
        break;
    case EV_CLOSE:
        s->closed = 1;
        s->close_code = e->i1;
        free(s->close_reason);
        s->close_reason = strdup(e->s1 ? e->s1 : "");
        if (s->live)
            info(s, e->i1 == 1000 ? LINE_INFO : LINE_ERROR, "closed %d %s", e->i1, e->s1 ? e->s1 : "");
        else
            out("closed %d%s%s", e->i1, e->s1 && e->s1[0] ? " " : "", e->s1 ? e->s1 : "");
        break;
    case EV_ERROR:
        /* A malformed server message is reported but does not end the conversation. */
        if (e->i1 != MILLIS_ERR_BAD_MESSAGE) s->failed = 1;
        if (s->live)
            info(s, LINE_ERROR, "error: %s: %s", millis_status_string((millis_status)e->i1), e->s1 ? e->s1 : "");
        else
            error_msg("%s: %s", millis_status_string((millis_status)e->i1), e->s1 ? e->s1 : "");
        break;
    case EV_MESSAGE:
        if (s->live)
            info(s, LINE_INFO, "message %s %s", e->s1 ? e->s1 : "?", e->s2 ? e->s2 : "");
        else
            out("message: %s %s", e->s1 ? e->s1 : "?", e->s2 ? e->s2 : "");
        break;
    case EV_RECONNECTING:
        if (s->live)
            info(s, LINE_ERROR, "connection lost: reconnecting, attempt %d in %d ms", e->i1, e->i2);
        else
            out("reconnecting: attempt %d in %d ms", e->i1, e->i2);
        break;
    case EV_RECONNECTED:
        if (s->live)
            info(s, LINE_INFO, "reconnected: session %s", e->s1 ? e->s1 : "");
        else
            out("reconnected %s", e->s1 ? e->s1 : "-");
        break;
    case EV_USER_AUDIO:
        handle_user_audio(s, e->s1);
        break;
    case EV_INPUT_ENDED:
        s->input_ended = 1;
        s->busy_since_input = s->agent_state != MILLIS_AGENT_IDLE;
        s->linger_deadline = now_seconds() + s->opt->linger;
        if (s->live)
            info(s, LINE_INFO, "the input file ended; silence follows");
        else
            out("input ended");
        break;
    case EV_TURN:
        handle_turn(s, e->s1);
        break;
    case EV_LOG:
        if (s->live)
            info(s, LINE_INFO, "[%s] %s", log_level_name(e->i1), e->s1 ? e->s1 : "");
        else
            fprintf(stderr, "[%s] %s\n", log_level_name(e->i1), e->s1 ? e->s1 : "");
        break;
    }
}

/* ------------------------------------------------------------------------------------
 * Drawing (main thread only)
 * ---------------------------------------------------------------------------------- */

/* Appends to the frame, clipping every row to the screen's width: visible characters
 * past column cols - 1 are dropped (a row never wraps), escape sequences and line
 * breaks always pass. The column count runs across calls (reset by '\n'). */
static void emit(struct session *s, const char *text, size_t len)
{
    size_t i;
    if (s->frame_len + len + 1 > s->frame_cap) {
        size_t cap = s->frame_cap ? s->frame_cap : 16384;
        char *bigger;
        while (cap < s->frame_len + len + 1) cap *= 2;
        bigger = realloc(s->frame, cap);
        if (bigger == NULL) return;
        s->frame = bigger;
        s->frame_cap = cap;
    }
    for (i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        int keep = 1;
        if (s->esc == 1) {
            s->esc = ch == '[' ? 2 : 0;
        } else if (s->esc == 2) {
            if (ch >= 0x40 && ch <= 0x7e) s->esc = 0;
        } else if (ch == 0x1b) {
            s->esc = 1;
        } else if (ch == '\n') {
            s->col = 0;
            s->clipping = 0;
        } else if ((ch & 0xC0) == 0x80) {
            keep = !s->clipping; /* the rest of a character kept or dropped */
        } else {
            s->clipping = s->col >= s->cols - 1;
            keep = !s->clipping;
            if (keep) s->col++;
        }
        if (keep) s->frame[s->frame_len++] = (char)ch;
    }
}

static void emitf(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void emitf(struct session *s, const char *fmt, ...)
{
    char text[4096];
    int n;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    emit(s, text, (size_t)n < sizeof text ? (size_t)n : sizeof text - 1);
}

/* How many bytes of `text` fit in `cols` columns, cut at a space when possible. */
static size_t fit(const char *text, int cols, int at_space)
{
    size_t i = 0, last_space = 0;
    int n = 0;
    while (text[i]) {
        if (((unsigned char)text[i] & 0xC0) != 0x80) {
            if (n == cols) break;
            n++;
            if (text[i] == ' ') last_space = i;
        }
        i++;
    }
    if (text[i] && at_space && last_space > 0) return last_space + 1;
    return i;
}

/* Copies text into a row, control characters made visible as spaces. */
static void emit_clean(struct session *s, const char *text, size_t len)
{
    size_t i, start = 0;
    for (i = 0; i < len; i++) {
        if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f) {
            emit(s, text + start, i - start);
            emit(s, " ", 1);
            start = i + 1;
        }
    }
    emit(s, text + start, len - start);
}

static void update_size(struct session *s)
{
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
        s->rows = ws.ws_row;
        s->cols = ws.ws_col;
    } else {
        s->rows = 24;
        s->cols = 80;
    }
}

static void draw_meter(struct session *s, const char *label, millis_analyser *a)
{
    static const char *const eighths[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
    double db = millis_analyser_rms_dbfs(a);
    int width = s->cols - 25, i, full, part;
    double frac;
    if (width > 60) width = 60;
    if (width < 10) width = 10;
    frac = (db - METER_FLOOR_DB) / -METER_FLOOR_DB;
    if (frac < 0) frac = 0;
    if (frac > 1) frac = 1;
    full = (int)(frac * width);
    part = (int)((frac * width - full) * 8);
    emitf(s, " %-6s ", label);
    emit(s, "\x1b[", 2);
    emit(s, db > -6 ? "31m" : db > -20 ? "33m" : "32m", 3);
    for (i = 0; i < full; i++) emit(s, s->utf8 ? "█" : "#", s->utf8 ? 3 : 1);
    if (full < width) {
        int rest = full;
        if (s->utf8 && part > 0) {
            emit(s, eighths[part], strlen(eighths[part]));
            rest++;
        }
        emit(s, "\x1b[0;2m", 6);
        for (i = rest; i < width; i++) emit(s, s->utf8 ? "·" : ".", s->utf8 ? 2 : 1);
    }
    emit(s, "\x1b[0m", 4);
    if (db <= -119.5)
        emitf(s, "   silent\x1b[K\n");
    else
        emitf(s, " %6.1f dBFS\x1b[K\n", db);
}

static const char *connection_label(struct session *s)
{
    if (s->closed) return "closed";
    return millis_connection_state_string(millis_client_connection_state(s->client));
}

/* A transcript line's prefix and colour. */
static void line_style(const struct tline *l, const char **prefix, const char **color)
{
    switch (l->kind) {
    case LINE_USER: *prefix = "user  > "; *color = l->partial ? "\x1b[36;2m" : "\x1b[36m"; break;
    case LINE_AGENT: *prefix = "agent > "; *color = l->partial ? "\x1b[32;2m" : "\x1b[32m"; break;
    case LINE_TURN: *prefix = "        "; *color = "\x1b[33m"; break;
    case LINE_ERROR: *prefix = "        "; *color = "\x1b[31m"; break;
    default: *prefix = "        "; *color = "\x1b[2m"; break;
    }
}

/* The rows one transcript line takes at this width. */
static int rows_of(const struct tline *l, int width)
{
    const char *p = l->text;
    int rows = 0;
    if (width < 1) width = 1;
    do {
        size_t n = fit(p, width, 1);
        if (n == 0 && *p) n = 1;
        p += n;
        rows++;
    } while (*p);
    return rows;
}

static void draw_line(struct session *s, const struct tline *l, int width, int skip_rows, int *rows_left)
{
    const char *prefix, *color, *p = l->text;
    int row = 0;
    line_style(l, &prefix, &color);
    do {
        size_t n = fit(p, width, 1);
        if (n == 0 && *p) n = 1;
        if (row >= skip_rows && *rows_left > 0) {
            emitf(s, "%s%s", color, row == 0 ? prefix : "        ");
            emit_clean(s, p, n);
            if (l->partial && p[n] == '\0') emit(s, s->utf8 ? " …" : " ...", s->utf8 ? 4 : 4);
            emit(s, "\x1b[0m\x1b[K", 7);
            *rows_left -= 1;
            if (*rows_left > 0) emit(s, "\n", 1);
        }
        p += n;
        row++;
    } while (*p);
}

static void draw(struct session *s)
{
    int area, width, used = 0, rows_left;
    long first;
    size_t i;
    const char *sep = s->utf8 ? "─" : "-";
    s->frame_len = 0;
    s->col = s->esc = s->clipping = 0;
    emit(s, "\x1b[H", 3);
    /* Header. */
    emitf(s, "\x1b[1m millis talk\x1b[0m  %s  agent %s\x1b[K\n", s->endpoint, s->agent_label);
    emitf(s, " connection \x1b[1m%-12s\x1b[0m agent \x1b[1m%-15s\x1b[0m %s\x1b[0m   %s%s\x1b[K\n",
          s->stopping && !s->closed ? "closing" : connection_label(s),
          millis_agent_state_string((millis_agent_state)s->agent_state),
          millis_client_is_muted(s->client) ? "\x1b[41;97m MUTED " : "\x1b[32mmic on",
          s->session_id && s->session_id[0] ? "session " : "", s->session_id ? s->session_id : "");
    draw_meter(s, "user", s->user_meter);
    draw_meter(s, "agent", s->agent_meter);
    emitf(s, "\x1b[2m %s%s%s%s%s\x1b[0m\x1b[K\n", s->keyboard ? "m mute/unmute   q quit" : "Ctrl-C quits",
          s->device_info[0] ? "   " : "", s->device_info, s->opt->record ? "   recording " : "",
          s->opt->record ? s->opt->record : "");
    emit(s, "\x1b[2m", 4);
    for (i = 0; i < (size_t)s->cols; i++) emit(s, sep, strlen(sep));
    emit(s, "\x1b[0m\n", 5);
    /* The transcript: the last lines that fit. */
    area = s->rows - 6;
    if (area < 1) area = 1;
    width = s->cols - 8 - 3;
    if (width < 10) width = 10;
    first = (long)s->line_count;
    while (first > 0 && used < area) {
        used += rows_of(&s->lines[first - 1], width);
        if (used <= area || first == (long)s->line_count) first--;
        else break;
    }
    rows_left = area;
    for (i = (size_t)first; i < s->line_count && rows_left > 0; i++) {
        int rows = rows_of(&s->lines[i], width);
        /* Only the newest line may be cut (at its top) when it is taller than the area. */
        int skip = rows > rows_left && i + 1 == s->line_count ? rows - rows_left : 0;
        draw_line(s, &s->lines[i], width, skip, &rows_left);
    }
    emit(s, "\x1b[J", 3);
    {
        size_t off = 0;
        while (off < s->frame_len) {
            ssize_t n = write(STDOUT_FILENO, s->frame + off, s->frame_len - off);
            if (n < 0) {
                if (errno == EINTR) continue;
                break;
            }
            off += (size_t)n;
        }
    }
}

/* ------------------------------------------------------------------------------------
 * Start options JSON
 * ---------------------------------------------------------------------------------- */

/* Parses JSON text that must be an object; prints where it is wrong. */
static cJSON *parse_object(const char *what, const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL) {
        int line, col;
        text_position(text, cJSON_GetErrorPtr(), &line, &col);
        usage_error("talk", "%s is not valid JSON (line %d, column %d)", what, line, col);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        usage_error("talk", "%s must be a JSON object ({...})", what);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *load_json_file(const char *option, const char *path)
{
    char what[512];
    char *text = read_text_file(path, NULL);
    cJSON *j;
    if (text == NULL) {
        usage_error("talk", "%s %s: cannot read it: %s", option, path, strerror(errno));
        return NULL;
    }
    snprintf(what, sizeof what, "%s %s", option, path);
    j = parse_object(what, text);
    free(text);
    return j;
}

/* The options object of millis_client_start; NULL after a usage error. */
static char *start_options(const struct options *o)
{
    cJSON *root = cJSON_CreateObject(), *agent = cJSON_CreateObject();
    char *text;
    cJSON_AddItemToObject(root, "agent", agent);
    if (o->agent_id) cJSON_AddStringToObject(agent, "agent_id", o->agent_id);
    if (o->agent_config) {
        cJSON *cfg = load_json_file("--agent-config", o->agent_config);
        if (cfg == NULL) goto fail;
        cJSON_AddItemToObject(agent, "agent_config", cfg);
    }
    if (o->metadata) {
        cJSON *m = o->metadata[0] == '@' ? load_json_file("--metadata", o->metadata + 1)
                                         : parse_object("--metadata", o->metadata);
        if (m == NULL) goto fail;
        cJSON_AddItemToObject(root, "metadata", m);
    }
    if (o->metadata_in_prompt) cJSON_AddTrueToObject(root, "include_metadata_in_prompt");
    if (o->session_id) {
        cJSON *cont = cJSON_CreateObject();
        cJSON_AddStringToObject(cont, "session_id", o->session_id);
        cJSON_AddItemToObject(root, "session_continuation", cont);
    }
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
fail:
    cJSON_Delete(root);
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * The command
 * ---------------------------------------------------------------------------------- */

static int config_error(millis_config *cfg, const char *option, const char *value)
{
    int rc = usage_error("talk", "%s '%s': %s", option, value ? value : "", millis_config_last_error(cfg));
    millis_config_destroy(cfg);
    return rc;
}

/* The timeline path of a recording: the extension replaced by .jsonl. */
static void timeline_path(const char *audio, char *out_buf, size_t size)
{
    const char *slash = strrchr(audio, '/'), *dot = strrchr(audio, '.');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - audio) : strlen(audio);
    snprintf(out_buf, size, "%.*s.jsonl", (int)stem, audio);
}

static int parse_options(int argc, char **argv, struct options *o)
{
    enum {
        O_AGENT_ID = 256, O_AGENT_CONFIG, O_METADATA, O_METADATA_PROMPT, O_SESSION, O_ENDPOINT, O_CA,
        O_DEVICE, O_CAPTURE, O_PLAYBACK, O_INPUT, O_FAST, O_OUTPUT, O_RECORD, O_RECORD_MONO, O_NO_AEC,
        O_NO_NS, O_NO_AGC, O_TIMEOUT, O_LINGER, O_PLAIN, O_HEADER
    };
    static const struct option options[] = {
        {"agent-id", required_argument, NULL, O_AGENT_ID},
        {"agent-config", required_argument, NULL, O_AGENT_CONFIG},
        {"metadata", required_argument, NULL, O_METADATA},
        {"metadata-in-prompt", no_argument, NULL, O_METADATA_PROMPT},
        {"session-id", required_argument, NULL, O_SESSION},
        {"endpoint", required_argument, NULL, O_ENDPOINT},
        {"ca-file", required_argument, NULL, O_CA},
        {"header", required_argument, NULL, O_HEADER},
        {"device", required_argument, NULL, O_DEVICE},
        {"capture", required_argument, NULL, O_CAPTURE},
        {"playback", required_argument, NULL, O_PLAYBACK},
        {"input", required_argument, NULL, O_INPUT},
        {"fast", no_argument, NULL, O_FAST},
        {"output", required_argument, NULL, O_OUTPUT},
        {"record", required_argument, NULL, O_RECORD},
        {"record-mono", no_argument, NULL, O_RECORD_MONO},
        {"no-echo-cancellation", no_argument, NULL, O_NO_AEC},
        {"no-noise-suppression", no_argument, NULL, O_NO_NS},
        {"no-gain-control", no_argument, NULL, O_NO_AGC},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"linger", required_argument, NULL, O_LINGER},
        {"plain", no_argument, NULL, O_PLAIN},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    memset(o, 0, sizeof *o);
    o->echo_cancellation = o->noise_suppression = o->gain_control = 1;
    o->timeout = 15.0;
    o->linger = DEFAULT_LINGER;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":hv", options, NULL)) != -1) {
        switch (c) {
        case O_AGENT_ID: o->agent_id = optarg; break;
        case O_AGENT_CONFIG: o->agent_config = optarg; break;
        case O_METADATA: o->metadata = optarg; break;
        case O_METADATA_PROMPT: o->metadata_in_prompt = 1; break;
        case O_SESSION: o->session_id = optarg; break;
        case O_ENDPOINT: o->endpoint = optarg; break;
        case O_CA: o->ca_file = optarg; break;
        case O_HEADER:
            if (strchr(optarg, ':') == NULL)
                return usage_error("talk", "--header '%s': give NAME: VALUE (a colon between the name and the value), "
                                   "e.g. --header 'Origin: https://example.com'", optarg);
            if (o->header_count == MAX_HEADERS)
                return usage_error("talk", "--header '%s': too many headers: at most %d", optarg, MAX_HEADERS);
            o->headers[o->header_count++] = optarg;
            break;
        case O_DEVICE: o->capture = o->playback = optarg; break;
        case O_CAPTURE: o->capture = optarg; break;
        case O_PLAYBACK: o->playback = optarg; break;
        case O_INPUT: o->input = optarg; break;
        case O_FAST: o->fast = 1; break;
        case O_OUTPUT: o->output = optarg; break;
        case O_RECORD: o->record = optarg; break;
        case O_RECORD_MONO: o->record_mono = 1; break;
        case O_NO_AEC: o->echo_cancellation = 0; break;
        case O_NO_NS: o->noise_suppression = 0; break;
        case O_NO_AGC: o->gain_control = 0; break;
        case O_TIMEOUT:
            if (parse_seconds(optarg, 0.1, 600, &o->timeout) != 0)
                return usage_error("talk", "--timeout '%s': give a number of seconds from 0.1 to 600", optarg);
            o->timeout_set = 1;
            break;
        case O_LINGER:
            if (parse_seconds(optarg, 0, 86400, &o->linger) != 0)
                return usage_error("talk", "--linger '%s': give a number of seconds (0 or more)", optarg);
            break;
        case O_PLAIN: o->plain = 1; break;
        case 'v': o->verbose = 1; break;
        case 'h': help(); return -1;
        default: return bad_option("talk", argv, c);
        }
    }
    if (optind < argc)
        return usage_error("talk", "unexpected argument '%s' (every option starts with --)", argv[optind]);
    if (o->agent_id == NULL) {
        const char *env = getenv(ENV_AGENT_ID);
        if (env != NULL && env[0] != '\0') o->agent_id = env;
    }
    if (o->agent_id != NULL && o->agent_id[0] == '\0') return usage_error("talk", "--agent-id is empty");
    if (o->agent_id == NULL && o->agent_config == NULL)
        return usage_error("talk", "which agent? give --agent-id ID (or set %s), or --agent-config FILE.json",
                           ENV_AGENT_ID);
    if (o->record_mono && o->record == NULL) return usage_error("talk", "--record-mono needs --record FILE");
    if (o->fast && o->input == NULL) return usage_error("talk", "--fast needs --input FILE");
    if (o->input != NULL && access(o->input, R_OK) != 0)
        return usage_error("talk", "--input %s: cannot read it: %s", o->input, strerror(errno));
    return 0;
}

int cmd_talk(int argc, char **argv)
{
    struct options o;
    struct session s;
    millis_config *cfg;
    millis_status st;
    const char *key;
    char *options_json;
    int rc, exit_code = EXIT_OK, forced = 0, handled_signals = 0;
    double ready_deadline;
    struct sigaction sa;

    rc = parse_options(argc, argv, &o);
    if (rc == -1) return EXIT_OK; /* --help */
    if (rc != 0) return rc;
    key = public_key_from_env("talk");
    if (key == NULL) return EXIT_USAGE;
    options_json = start_options(&o);
    if (options_json == NULL) return EXIT_USAGE;

    cfg = millis_config_create();
    if (cfg == NULL) {
        error_msg("out of memory");
        free(options_json);
        return EXIT_FAILURE_RUNTIME;
    }
    memset(&s, 0, sizeof s);
    s.opt = &o;
    s.endpoint = endpoint_or_default(o.endpoint);
    s.agent_label = o.agent_id ? o.agent_id : "(from --agent-config)";
    s.user_partial = s.agent_partial = -1;
    s.utf8 = utf8_terminal();
    s.live = !o.plain && isatty(STDOUT_FILENO);
    s.keyboard = s.live && isatty(STDIN_FILENO);

#define SET(call, option, value)                                                                   \
    do {                                                                                           \
        if ((call) != MILLIS_OK) {                                                                 \
            free(options_json);                                                                    \
            return config_error(cfg, option, value);                                               \
        }                                                                                          \
    } while (0)
    SET(millis_config_set_public_key(cfg, key), ENV_PUBLIC_KEY, "(hidden)");
    SET(millis_config_set_endpoint(cfg, s.endpoint), o.endpoint ? "--endpoint" : ENV_ENDPOINT, s.endpoint);
    SET(millis_config_set_ready_timeout_ms(cfg, (unsigned)(o.timeout * 1000)), "--timeout", "");
    SET(millis_config_set_log_level(cfg, o.verbose ? MILLIS_LOG_DEBUG : MILLIS_LOG_WARN), "--verbose", "");
    if (o.ca_file) SET(millis_config_set_ca_file(cfg, o.ca_file), "--ca-file", o.ca_file);
    {
        size_t i;
        for (i = 0; i < o.header_count; i++) {
            /* "Name: value": the name is what precedes the first colon, as given (the
             * library refuses one with spaces); the library trims the value's spaces. */
            const char *arg = o.headers[i], *colon = strchr(arg, ':');
            char *name = malloc((size_t)(colon - arg) + 1);
            millis_status hs;
            if (name == NULL) {
                error_msg("out of memory");
                millis_config_destroy(cfg);
                free(options_json);
                return EXIT_FAILURE_RUNTIME;
            }
            memcpy(name, arg, (size_t)(colon - arg));
            name[colon - arg] = '\0';
            hs = millis_config_add_header(cfg, name, colon + 1);
            free(name);
            SET(hs, "--header", arg);
        }
    }
    /* Device audio, explicitly: a missing device is an error at start, not a silent
     * fall back to application audio (where nothing would be heard). */
    SET(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_DEVICE), "audio mode", "device");
    SET(millis_config_set_audio_devices(cfg, o.capture, o.playback), o.capture ? "--capture" : "--playback",
        o.capture ? o.capture : o.playback);
    SET(millis_config_set_audio_processing(cfg, o.echo_cancellation, o.noise_suppression, o.gain_control),
        "--no-echo-cancellation", "");
    if (o.input)
        SET(millis_config_set_audio_input_file(cfg, o.input, o.fast ? MILLIS_FILE_FAST : MILLIS_FILE_REALTIME),
            "--input", o.input);
    if (o.output) SET(millis_config_set_audio_output_file(cfg, o.output), "--output", o.output);
    if (o.record)
        SET(millis_config_set_recording(cfg, o.record, o.record_mono ? MILLIS_RECORD_MONO : MILLIS_RECORD_STEREO),
            "--record", o.record);
#undef SET

    s.client = millis_client_create(cfg, &st);
    if (s.client == NULL) {
        error_msg("cannot create the client: %s: %s", millis_status_string(st), millis_config_last_error(cfg));
        millis_config_destroy(cfg);
        free(options_json);
        return EXIT_FAILURE_RUNTIME;
    }
    millis_config_destroy(cfg);
    s.user_meter = millis_client_user_analyser(s.client);
    s.agent_meter = millis_client_agent_analyser(s.client);
    s.lines = calloc(TRANSCRIPT_MAX, sizeof *s.lines);
    if (s.lines == NULL || pipe(wake_pipe) != 0) {
        error_msg("out of memory or descriptors");
        millis_client_destroy(s.client);
        free(options_json);
        return EXIT_FAILURE_RUNTIME;
    }
    fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(wake_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(wake_pipe[1], F_SETFD, FD_CLOEXEC);

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    millis_client_on_open(s.client, on_open, NULL);
    millis_client_on_ready(s.client, on_ready, NULL);
    millis_client_on_session_ended(s.client, on_session_ended, NULL);
    millis_client_on_transcript(s.client, on_transcript, NULL);
    millis_client_on_response_text(s.client, on_response, NULL);
    millis_client_on_function(s.client, on_function, NULL);
    millis_client_on_latency(s.client, on_latency, NULL);
    millis_client_on_agent_state(s.client, on_state, NULL);
    millis_client_on_close(s.client, on_close, NULL);
    millis_client_on_error(s.client, on_error, NULL);
    millis_client_on_message(s.client, on_message, NULL);
    millis_client_on_reconnecting(s.client, on_reconnecting, NULL);
    millis_client_on_reconnected(s.client, on_reconnected, NULL);
    millis_client_on_user_audio_ready(s.client, on_user_audio_ready, NULL);
    millis_client_on_input_ended(s.client, on_input_ended, NULL);
    millis_client_on_turn(s.client, on_turn, NULL);
    if (o.verbose) millis_client_on_log(s.client, on_log, NULL);

    if (!s.live) setvbuf(stdout, NULL, _IOLBF, 0);
    st = millis_client_start(s.client, options_json);
    free(options_json);
    if (st != MILLIS_OK) {
        const char *msg = millis_client_last_error(s.client);
        if (st == MILLIS_ERR_AUDIO_DEVICE) {
            error_msg("%s\n       Pick a device with --device NAME (or --capture/--playback; `%s devices` lists "
                      "them),\n       or use files: --input FILE --output FILE.",
                      msg, prog_name);
        } else {
            error_msg("cannot start: %s: %s", millis_status_string(st), msg);
        }
        millis_client_destroy(s.client);
        free(s.lines);
        return st == MILLIS_ERR_INVALID_JSON || st == MILLIS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
    }
    ready_deadline = now_seconds() + o.timeout + 2.0; /* the library's own timeout comes first */

    if (s.live) {
        update_size(&s);
        enter_screen(s.keyboard);
        info(&s, LINE_INFO, "connecting to %s", s.endpoint);
    }

    /* The main loop: events, keys, signals, deadlines; the screen 20 times a second. */
    for (;;) {
        struct pollfd fds[2];
        int nfds = 1;
        double now;
        struct event *e;
        fds[0].fd = wake_pipe[0];
        fds[0].events = POLLIN;
        if (s.keyboard) {
            fds[1].fd = STDIN_FILENO;
            fds[1].events = POLLIN;
            nfds = 2;
        }
        if (s.live) draw(&s);
        if (poll(fds, (nfds_t)nfds, s.live ? (int)(FRAME_SECONDS * 1000) : 100) < 0 && errno != EINTR) break;
        {
            char drain[256];
            while (read(wake_pipe[0], drain, sizeof drain) > 0) {
            }
        }
        while ((e = pop()) != NULL) {
            handle_event(&s, e);
            free_event(e);
        }
        if (winch) {
            winch = 0;
            if (s.live) update_size(&s);
        }
        if (signal_count > handled_signals) {
            handled_signals = signal_count;
            if (signal_count >= 2) {
                forced = 1;
                break;
            }
            s.quit_by_user = 1;
            stop_conversation(&s, last_signal == SIGINT ? "interrupted" : "terminated");
        }
        if (s.keyboard && nfds == 2 && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            char keys[64];
            ssize_t n = read(STDIN_FILENO, keys, sizeof keys), i;
            if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) s.keyboard = 0; /* the terminal went away */
            for (i = 0; i < n; i++) {
                char k = keys[i];
                if (k == 'm' || k == 'M') {
                    if (millis_client_is_muted(s.client)) {
                        millis_client_unmute(s.client);
                        info(&s, LINE_INFO, "microphone on");
                    } else {
                        millis_client_mute(s.client);
                        info(&s, LINE_INFO, "microphone muted (silence is sent)");
                    }
                } else if (k == 'q' || k == 'Q' || k == 3 /* Ctrl-C */ || k == 4 /* Ctrl-D */) {
                    if (s.stopping) {
                        forced = 1; /* a second quit does not wait for the server */
                        break;
                    }
                    s.quit_by_user = 1;
                    stop_conversation(&s, "you quit");
                }
            }
            if (forced) break;
        }
        if (s.closed) break;
        now = now_seconds();
        if (!s.ready && !s.stopping && now > ready_deadline) {
            s.failed = 1;
            if (s.live)
                info(&s, LINE_ERROR, "no onready within %.1f s", o.timeout);
            else
                error_msg("the session was not ready within %.1f s (--timeout); is the endpoint %s right?", o.timeout,
                          s.endpoint);
            stop_conversation(&s, "not ready in time");
        }
        if (s.input_ended && !s.stopping && now >= s.linger_deadline)
            stop_conversation(&s, "the input ended (--linger elapsed)");
        if (s.stopping && now > s.stop_deadline) {
            if (!s.live) error_msg("no onclose within %.0f s of stopping; giving up", STOP_GRACE_SECONDS);
            s.failed = 1;
            break;
        }
    }

    /* Complete the recording's files before telling where they are. */
    if (o.record && !forced) millis_client_stop_recording(s.client);
    millis_client_destroy(s.client);
    {
        struct event *e;
        while ((e = pop()) != NULL) free_event(e);
    }

    if (s.live) {
        size_t i;
        restore_terminal();
        /* What was said stays on the terminal once the live screen is gone. */
        for (i = 0; i < s.line_count; i++) {
            const struct tline *l = &s.lines[i];
            if (l->kind == LINE_USER || l->kind == LINE_AGENT)
                printf("%s%s%s\n", l->kind == LINE_USER ? "user  > " : "agent > ", l->text, l->partial ? " ..." : "");
            else if (l->kind == LINE_TURN)
                printf("        %s\n", l->text);
            else if (l->kind == LINE_ERROR)
                fprintf(stderr, "%s\n", l->text);
        }
        if (s.closed)
            printf("closed %d%s%s\n", s.close_code, s.close_reason && s.close_reason[0] ? " " : "",
                   s.close_reason ? s.close_reason : "");
        fflush(stdout);
    }
    if (o.record && !forced) {
        char timeline[4096];
        timeline_path(o.record, timeline, sizeof timeline);
        if (s.live)
            printf("recording: %s, timeline %s (%s replay %s)\n", o.record, timeline, prog_name, timeline);
        else
            out("recording %s %s", o.record, timeline);
    }

    if (s.failed) {
        exit_code = EXIT_FAILURE_RUNTIME;
    } else if (forced) {
        exit_code = signal_count >= 2 ? 128 + SIGINT : EXIT_OK;
    } else if (!s.ready) {
        if (s.quit_by_user) {
            exit_code = EXIT_OK;
        } else {
            error_msg("the conversation closed before it was ready (%d %s)", s.close_code,
                      s.close_reason ? s.close_reason : "");
            exit_code = EXIT_FAILURE_RUNTIME;
        }
    } else if (s.closed && s.close_code != 1000) {
        error_msg("the conversation closed with code %d (%s)", s.close_code, s.close_reason ? s.close_reason : "");
        exit_code = EXIT_FAILURE_RUNTIME;
    }

    {
        size_t i;
        for (i = 0; i < s.line_count; i++) free(s.lines[i].text);
    }
    free(s.lines);
    free(s.session_id);
    free(s.close_reason);
    free(s.frame);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
    return exit_code;
}
