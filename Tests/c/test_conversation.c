/*
 * test_conversation.c — one whole conversation with the devserver, through the C ABI.
 *
 * Usage: test_conversation WS_URL RECORD_DIR USER_WAV
 *   WS_URL      the devserver's endpoint, e.g. ws://127.0.0.1:8765/millis
 *   RECORD_DIR  the devserver's --record-dir (its <session_id>.json is checked)
 *   USER_WAV    bindings/audio/user.wav (16 kHz mono PCM16)
 *
 * Streams the WAV in real time (20 ms chunks on an absolute clock) from onready on,
 * then silence, and checks every event against the devserver's two-turn script and the
 * header's threading promises. After the user's last turn is transcribed the test stops
 * sending, so that the bytes the server counted can be compared exactly with the bytes
 * millis_client_send_audio() accepted. Exit status 0 on success; on failure it prints
 * file:line and the failed condition and exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

/* ------------------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------------------- */

static struct timespec t0;

static double now_s(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t0.tv_sec) + (double)(now.tv_nsec - t0.tv_nsec) / 1e9;
}

static void add_ms(struct timespec *ts, long ms)
{
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_nsec -= 1000000000L;
        ts->tv_sec += 1;
    }
}

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d == NULL) fail_at(__FILE__, __LINE__, "out of memory");
    memcpy(d, s, n);
    return d;
}

/* Lower case, letters and digits only, single spaces: "Hello, what..." -> "hello what". */
static void normalize(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    int space = 0;
    for (; *in && n + 1 < cap; in++) {
        unsigned char ch = (unsigned char)*in;
        if (isalnum(ch)) {
            if (space && n > 0 && n + 2 < cap) out[n++] = ' ';
            space = 0;
            out[n++] = (char)tolower(ch);
        } else if (isspace(ch)) {
            space = 1;
        }
    }
    out[n] = '\0';
}

static int same_words(const char *a, const char *b)
{
    char na[512], nb[512];
    normalize(a, na, sizeof na);
    normalize(b, nb, sizeof nb);
    return strcmp(na, nb) == 0;
}

static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;
    if (f == NULL) return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (len = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)len + 1);
    if (buf == NULL || fread(buf, 1, (size_t)len, f) != (size_t)len) {
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[len] = '\0';
    if (len_out) *len_out = (size_t)len;
    return buf;
}

/* The PCM data of a 16 kHz mono PCM16 WAV file (RIFF chunks walked, others skipped). */
static unsigned char *load_wav(const char *path, size_t *bytes)
{
    size_t len = 0, pos = 12;
    unsigned char *f = (unsigned char *)read_file(path, &len);
    int fmt_ok = 0;
    if (f == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        return NULL;
    }
    if (len < 12 || memcmp(f, "RIFF", 4) != 0 || memcmp(f + 8, "WAVE", 4) != 0) goto bad;
    while (pos + 8 <= len) {
        unsigned long size = (unsigned long)f[pos + 4] | ((unsigned long)f[pos + 5] << 8)
                             | ((unsigned long)f[pos + 6] << 16) | ((unsigned long)f[pos + 7] << 24);
        size_t body = pos + 8;
        if (size > len - body) size = (unsigned long)(len - body);
        if (memcmp(f + pos, "fmt ", 4) == 0 && size >= 16) {
            unsigned format = f[body] | (f[body + 1] << 8), channels = f[body + 2] | (f[body + 3] << 8);
            unsigned long rate = (unsigned long)f[body + 4] | ((unsigned long)f[body + 5] << 8)
                                 | ((unsigned long)f[body + 6] << 16);
            unsigned bits = f[body + 14] | (f[body + 15] << 8);
            fmt_ok = format == 1 && channels == 1 && rate == 16000 && bits == 16;
            if (!fmt_ok) goto bad;
        } else if (memcmp(f + pos, "data", 4) == 0 && fmt_ok) {
            unsigned char *pcm = malloc(size ? size : 1);
            if (pcm == NULL) goto bad;
            memcpy(pcm, f + body, size);
            *bytes = size & ~1UL;
            free(f);
            return pcm;
        }
        pos = body + size + (size & 1);
    }
bad:
    fprintf(stderr, "%s: not a 16 kHz mono 16-bit PCM WAV file\n", path);
    free(f);
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * A tiny JSON reader: enough to skip values and look members up, no allocation.
 * ---------------------------------------------------------------------------------- */

static const char *js_ws(const char *p)
{
    while (p && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

static const char *js_skip_string(const char *p)
{
    if (*p != '"') return NULL;
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1]) p++;
    return *p == '"' ? p + 1 : NULL;
}

static const char *js_skip(const char *p)
{
    p = js_ws(p);
    if (p == NULL || *p == '\0') return NULL;
    if (*p == '"') return js_skip_string(p);
    if (*p == '{' || *p == '[') {
        char close = *p == '{' ? '}' : ']';
        p = js_ws(p + 1);
        if (*p == close) return p + 1;
        for (;;) {
            if (close == '}') {
                p = js_skip_string(p);
                p = js_ws(p);
                if (p == NULL || *p != ':') return NULL;
                p++;
            }
            p = js_ws(js_skip(p));
            if (p == NULL) return NULL;
            if (*p == ',') {
                p = js_ws(p + 1);
                continue;
            }
            return *p == close ? p + 1 : NULL;
        }
    }
    if (strchr("-0123456789tfn", *p) == NULL) return NULL;
    while (*p && strchr(",}] \t\r\n", *p) == NULL) p++;
    return p;
}

/* The value of member `key` of the object at `obj`, or NULL. */
static const char *js_get(const char *obj, const char *key)
{
    const char *p = js_ws(obj);
    size_t klen = strlen(key);
    if (p == NULL || *p != '{') return NULL;
    p = js_ws(p + 1);
    if (*p == '}') return NULL;
    for (;;) {
        const char *k = p, *end = js_skip_string(p);
        if (end == NULL) return NULL;
        p = js_ws(end);
        if (*p != ':') return NULL;
        p = js_ws(p + 1);
        if ((size_t)(end - k - 2) == klen && memcmp(k + 1, key, klen) == 0) return p;
        p = js_ws(js_skip(p));
        if (p == NULL || *p != ',') return NULL;
        p = js_ws(p + 1);
    }
}

static int js_number(const char *v, double *out)
{
    char *end;
    if (v == NULL) return 0;
    *out = strtod(v, &end);
    return end != v;
}

/* 1 when the value at v is the JSON string s (s must need no escaping). */
static int js_string_is(const char *v, const char *s)
{
    size_t n = strlen(s);
    return v != NULL && v[0] == '"' && strncmp(v + 1, s, n) == 0 && v[n + 1] == '"';
}

/* The number of elements of the array at v, or -1. */
static int js_array_len(const char *v)
{
    const char *p = js_ws(v);
    int n = 0;
    if (p == NULL || *p != '[') return -1;
    p = js_ws(p + 1);
    if (*p == ']') return 0;
    for (;;) {
        p = js_ws(js_skip(p));
        if (p == NULL) return -1;
        n++;
        if (*p == ']') return n;
        if (*p != ',') return -1;
        p = js_ws(p + 1);
    }
}

static int js_complete(const char *text)
{
    const char *end = js_ws(js_skip(text));
    return end != NULL && *end == '\0';
}

static double stat_number(const char *stats, const char *key)
{
    double v = -1;
    if (!js_number(js_get(stats, key), &v)) {
        fprintf(stderr, "  stats: %s\n", stats);
        fail_at(__FILE__, __LINE__, "stats JSON member missing or not a number");
    }
    return v;
}

/* ------------------------------------------------------------------------------------
 * What the callbacks saw. Written on the network thread under `lock`, read by main.
 * ---------------------------------------------------------------------------------- */

#define MAX_TEXTS 64
#define USER_TURNS 2
static const char *const expected_finals[USER_TURNS] = {
    "Hello, what is the weather like today?",
    "Thank you, goodbye.",
};

struct seen {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    millis_client *client;
    pthread_t main_thread;
    int in_callback;       /* atomic: 1 while a callback runs */
    int callbacks;
    int seq;               /* order of the events below */
    int open_seq, ready_seq, ended_seq, close_seq;
    int open_calls, ready_calls, ended_calls, close_calls;
    millis_status send_in_open;
    millis_connection_state state_in_open, state_in_ready;
    char *session_id;
    char *ready_payload;
    int partial_pending;   /* a partial transcript arrived since the last final */
    int finals_without_partial;
    char *finals[MAX_TEXTS];
    int final_count;
    int response_partials, response_finals, empty_response_finals;
    int function_calls, weather_calls;
    char function_params[512];
    int latency_calls, bad_latencies;
    double first_latency;
    int agent_states[MAX_TEXTS * 4];
    int agent_state_count;
    size_t audio_bytes, audio_frames, odd_audio_frames, empty_audio_frames;
    int errors;
    char first_error[512];
    int close_code;
    char close_reason[256];
    int events_after_close;
};

static struct seen S;

/* Entry and exit of every callback: right client, right user_data, never the main
 * thread, never two at once, nothing after onclose. */
static void enter(millis_client *c, void *ud, const char *name)
{
    CHECK(__atomic_exchange_n(&S.in_callback, 1, __ATOMIC_SEQ_CST) == 0);
    CHECK(!pthread_equal(pthread_self(), S.main_thread));
    CHECK(c == S.client);
    CHECK(ud == &S);
    pthread_mutex_lock(&S.lock);
    S.callbacks++;
    S.seq++;
    if (S.close_calls > 0) {
        fprintf(stderr, "  %s after onclose\n", name);
        S.events_after_close++;
    }
    pthread_mutex_unlock(&S.lock);
}

static void leave(void)
{
    __atomic_store_n(&S.in_callback, 0, __ATOMIC_SEQ_CST);
}

static void on_open(millis_client *c, void *ud)
{
    static const unsigned char early[640];
    millis_status st;
    millis_connection_state state;
    enter(c, ud, "onopen");
    printf("[%7.3f] onopen\n", now_s());
    /* The WebSocket is open and initiate sent: this audio goes out before onready, as
     * the web client streams its microphone from the socket's opening. */
    st = millis_client_send_audio(c, early, sizeof early);
    state = millis_client_connection_state(c);
    pthread_mutex_lock(&S.lock);
    S.open_calls++;
    S.open_seq = S.seq;
    S.send_in_open = st;
    S.state_in_open = state;
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_ready(millis_client *c, const char *session_id, const char *payload, void *ud)
{
    millis_connection_state state;
    enter(c, ud, "onready");
    printf("[%7.3f] onready session_id=\"%s\" payload=%s\n", now_s(), session_id ? session_id : "(null)",
           payload ? payload : "(null)");
    CHECK(session_id != NULL);
    CHECK(payload != NULL);
    state = millis_client_connection_state(c);
    pthread_mutex_lock(&S.lock);
    S.ready_calls++;
    S.ready_seq = S.seq;
    S.state_in_ready = state;
    S.session_id = dup_str(session_id);
    S.ready_payload = dup_str(payload);
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_session_ended(millis_client *c, void *ud)
{
    enter(c, ud, "onsessionended");
    printf("[%7.3f] onsessionended\n", now_s());
    pthread_mutex_lock(&S.lock);
    S.ended_calls++;
    S.ended_seq = S.seq;
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud)
{
    enter(c, ud, "onaudio");
    CHECK(pcm != NULL);
    pthread_mutex_lock(&S.lock);
    if (S.audio_frames == 0) printf("[%7.3f] onaudio %lu bytes (first frame)\n", now_s(), (unsigned long)bytes);
    S.audio_frames++;
    S.audio_bytes += bytes;
    if (bytes % 2) S.odd_audio_frames++;
    if (bytes == 0) S.empty_audio_frames++;
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_response_text(millis_client *c, const char *text, int is_final, void *ud)
{
    enter(c, ud, "onresponsetext");
    CHECK(text != NULL);
    printf("[%7.3f] onresponsetext (%s) \"%s\"\n", now_s(), is_final ? "final" : "partial", text);
    pthread_mutex_lock(&S.lock);
    if (is_final) {
        S.response_finals++;
        if (text[0] == '\0') S.empty_response_finals++;
    } else {
        S.response_partials++;
    }
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_transcript(millis_client *c, const char *text, int is_final, void *ud)
{
    enter(c, ud, "ontranscript");
    CHECK(text != NULL);
    printf("[%7.3f] ontranscript (%s) \"%s\"\n", now_s(), is_final ? "final" : "partial", text);
    pthread_mutex_lock(&S.lock);
    if (!is_final) {
        S.partial_pending = 1;
    } else {
        if (!S.partial_pending) S.finals_without_partial++;
        S.partial_pending = 0;
        if (S.final_count < MAX_TEXTS) S.finals[S.final_count++] = dup_str(text);
        pthread_cond_broadcast(&S.cond);
    }
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_function(millis_client *c, const char *text, const char *name, const char *params,
                        void *ud)
{
    enter(c, ud, "onfunction");
    CHECK(text != NULL && name != NULL && params != NULL);
    printf("[%7.3f] onfunction %s %s\n", now_s(), name, params);
    pthread_mutex_lock(&S.lock);
    S.function_calls++;
    if (strcmp(name, "get_weather") == 0 && strstr(params, "Paris") != NULL) {
        S.weather_calls++;
        snprintf(S.function_params, sizeof S.function_params, "%s", params);
    }
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_latency(millis_client *c, double ms, void *ud)
{
    enter(c, ud, "onlatency");
    printf("[%7.3f] onlatency %.1f ms\n", now_s(), ms);
    pthread_mutex_lock(&S.lock);
    if (S.latency_calls == 0) S.first_latency = ms;
    S.latency_calls++;
    if (!(ms > 0.0 && ms < 60000.0)) S.bad_latencies++;
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_agent_state(millis_client *c, millis_agent_state state, void *ud)
{
    enter(c, ud, "onagentstate");
    printf("[%7.3f] onagentstate %s\n", now_s(), millis_agent_state_string(state));
    pthread_mutex_lock(&S.lock);
    if (S.agent_state_count < (int)(sizeof S.agent_states / sizeof S.agent_states[0]))
        S.agent_states[S.agent_state_count++] = (int)state;
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    enter(c, ud, "onclose");
    printf("[%7.3f] onclose %d \"%s\"\n", now_s(), code, reason ? reason : "(null)");
    CHECK(reason != NULL);
    pthread_mutex_lock(&S.lock);
    S.close_calls++;
    S.close_seq = S.seq;
    S.close_code = code;
    snprintf(S.close_reason, sizeof S.close_reason, "%s", reason ? reason : "");
    pthread_cond_broadcast(&S.cond);
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_error(millis_client *c, millis_status status, const char *message, void *ud)
{
    enter(c, ud, "onerror");
    printf("[%7.3f] onerror %s: %s\n", now_s(), millis_status_string(status), message ? message : "(null)");
    pthread_mutex_lock(&S.lock);
    if (S.errors++ == 0)
        snprintf(S.first_error, sizeof S.first_error, "%s: %s", millis_status_string(status),
                 message ? message : "(null)");
    pthread_mutex_unlock(&S.lock);
    leave();
}

static void on_message(millis_client *c, const char *method, const char *json, void *ud)
{
    enter(c, ud, "onmessage");
    printf("[%7.3f] onmessage %s %s\n", now_s(), method ? method : "(null)", json ? json : "(null)");
    leave();
}

/* ------------------------------------------------------------------------------------
 * The conversation
 * ---------------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    const char *url, *record_dir, *wav;
    unsigned char *user_pcm;
    size_t user_bytes = 0, offset = 0, sent_ok = 0, chunks_refused = 0;
    millis_config *cfg;
    millis_status st = MILLIS_ERR_INTERNAL;
    pthread_condattr_t attr;
    struct timespec deadline, next;
    char *sid, *stats, *record = NULL, path[4096];
    int i, ready, closed, stopped_sending = 0, saw_prepare = 0, saw_answer = 0, idle_after_answer = 0;
    double v;

    if (argc != 4) {
        fprintf(stderr, "usage: %s WS_URL RECORD_DIR USER_WAV\n", argv[0]);
        return 2;
    }
    url = argv[1];
    record_dir = argv[2];
    wav = argv[3];
    setvbuf(stdout, NULL, _IOLBF, 0);
    clock_gettime(CLOCK_MONOTONIC, &t0);

    user_pcm = load_wav(wav, &user_bytes);
    CHECK(user_pcm != NULL);
    CHECK(user_bytes > 16000); /* at least half a second of speech */

    memset(&S, 0, sizeof S);
    S.main_thread = pthread_self();
    pthread_mutex_init(&S.lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&S.cond, &attr);
    pthread_condattr_destroy(&attr);

    cfg = millis_config_create();
    CHECK(cfg != NULL);
    CHECK(millis_config_set_public_key(cfg, "test-public-key") == MILLIS_OK);
    CHECK(millis_config_set_endpoint(cfg, url) == MILLIS_OK);
    CHECK(millis_config_set_frame_ms(cfg, 20) == MILLIS_OK);
    S.client = millis_client_create(cfg, &st);
    CHECK(S.client != NULL);
    CHECK(st == MILLIS_OK);
    millis_config_destroy(cfg);

    CHECK(millis_client_on_open(S.client, on_open, &S) == MILLIS_OK);
    CHECK(millis_client_on_ready(S.client, on_ready, &S) == MILLIS_OK);
    CHECK(millis_client_on_session_ended(S.client, on_session_ended, &S) == MILLIS_OK);
    CHECK(millis_client_on_audio(S.client, on_audio, &S) == MILLIS_OK);
    CHECK(millis_client_on_response_text(S.client, on_response_text, &S) == MILLIS_OK);
    CHECK(millis_client_on_transcript(S.client, on_transcript, &S) == MILLIS_OK);
    CHECK(millis_client_on_function(S.client, on_function, &S) == MILLIS_OK);
    CHECK(millis_client_on_latency(S.client, on_latency, &S) == MILLIS_OK);
    CHECK(millis_client_on_agent_state(S.client, on_agent_state, &S) == MILLIS_OK);
    CHECK(millis_client_on_close(S.client, on_close, &S) == MILLIS_OK);
    CHECK(millis_client_on_error(S.client, on_error, &S) == MILLIS_OK);
    CHECK(millis_client_on_message(S.client, on_message, &S) == MILLIS_OK);

    CHECK(millis_client_connection_state(S.client) == MILLIS_CONNECTION_IDLE);
    CHECK(millis_client_session_id(S.client) == NULL);

    /* Start. The metadata must reach the server untouched. */
    printf("[%7.3f] start %s\n", now_s(), url);
    CHECK(millis_client_start(S.client,
                              "{\"agent\": {\"agent_id\": \"demo-agent\"},"
                              " \"metadata\": {\"test\": \"test_conversation.c\", \"n\": 7}}")
          == MILLIS_OK);
    CHECK(millis_client_connection_state(S.client) != MILLIS_CONNECTION_IDLE);

    /* Wait for onready (or a premature close). */
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    add_ms(&deadline, 20000);
    pthread_mutex_lock(&S.lock);
    while (S.ready_calls == 0 && S.close_calls == 0)
        if (pthread_cond_timedwait(&S.cond, &S.lock, &deadline) == ETIMEDOUT) break;
    ready = S.ready_calls;
    closed = S.close_calls;
    pthread_mutex_unlock(&S.lock);
    if (!ready) fprintf(stderr, "  no onready within 20 s (closed: %d, first error: %s)\n", closed, S.first_error);
    CHECK(ready == 1);

    pthread_mutex_lock(&S.lock);
    CHECK(S.open_calls == 1);
    CHECK(S.open_seq < S.ready_seq);
    CHECK(S.send_in_open == MILLIS_OK);
    CHECK(S.state_in_open == MILLIS_CONNECTION_OPEN);
    CHECK(S.state_in_ready == MILLIS_CONNECTION_READY);
    CHECK(S.session_id[0] != '\0');
    pthread_mutex_unlock(&S.lock);
    sid = millis_client_session_id(S.client);
    CHECK_STR_EQ(sid, S.session_id);
    millis_free(sid);
    CHECK(millis_client_connection_state(S.client) == MILLIS_CONNECTION_READY);

    /* Malformed control messages are refused before anything is sent. */
    CHECK(millis_client_send_json(S.client, "{\"method\": ") == MILLIS_ERR_INVALID_JSON);
    CHECK(millis_client_last_error(S.client) != NULL && millis_client_last_error(S.client)[0] != '\0');
    CHECK(millis_client_send_json(S.client, "[1, 2]") == MILLIS_ERR_INVALID_JSON);
    CHECK(millis_client_send_audio(S.client, user_pcm, 3) == MILLIS_ERR_INVALID_ARGUMENT);

    /* Stream the user's voice in real time on an absolute clock, then silence, until the
     * last user turn is transcribed; then wait for the server to end the session. */
    clock_gettime(CLOCK_MONOTONIC, &next);
    deadline = next;
    add_ms(&deadline, 90000);
    for (;;) {
        unsigned char chunk[640];
        int finals;
        struct timespec now;
        pthread_mutex_lock(&S.lock);
        closed = S.close_calls;
        finals = S.final_count;
        pthread_mutex_unlock(&S.lock);
        if (closed) break;
        clock_gettime(CLOCK_MONOTONIC, &now);
        CHECK(now.tv_sec < deadline.tv_sec || (now.tv_sec == deadline.tv_sec && now.tv_nsec < deadline.tv_nsec));
        if (finals >= USER_TURNS && !stopped_sending) {
            stopped_sending = 1;
            printf("[%7.3f] last user turn transcribed: stop sending audio (%lu bytes sent)\n", now_s(),
                   (unsigned long)sent_ok);
        }
        if (!stopped_sending) {
            memset(chunk, 0, sizeof chunk);
            if (offset < user_bytes) {
                size_t n = user_bytes - offset < sizeof chunk ? user_bytes - offset : sizeof chunk;
                memcpy(chunk, user_pcm + offset, n);
                offset += n;
                if (offset == user_bytes) printf("[%7.3f] end of %s, silence follows\n", now_s(), wav);
            }
            st = millis_client_send_audio(S.client, chunk, sizeof chunk);
            if (st == MILLIS_OK) {
                sent_ok += sizeof chunk;
            } else {
                /* Only acceptable when the session has just closed under us. */
                chunks_refused++;
                CHECK(st == MILLIS_ERR_NOT_READY);
            }
        }
        add_ms(&next, 20);
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR) {
        }
    }
    printf("[%7.3f] closed; %lu audio bytes accepted, %lu chunks refused\n", now_s(), (unsigned long)sent_ok,
           (unsigned long)chunks_refused);

    /* onclose has run (or is returning): the connection state reaches IDLE. */
    for (i = 0; i < 100 && millis_client_connection_state(S.client) != MILLIS_CONNECTION_IDLE; i++) sleep_ms(10);
    CHECK(millis_client_connection_state(S.client) == MILLIS_CONNECTION_IDLE);
    CHECK(millis_client_send_audio(S.client, user_pcm, 640) == MILLIS_ERR_NOT_READY);

    /* Everything the script promises, in order. */
    pthread_mutex_lock(&S.lock);
    if (S.errors) fprintf(stderr, "  first error: %s\n", S.first_error);
    CHECK(S.errors == 0);
    CHECK(S.final_count == USER_TURNS);
    for (i = 0; i < S.final_count && i < USER_TURNS; i++) {
        if (!same_words(S.finals[i], expected_finals[i]))
            fprintf(stderr, "  final transcript %d: \"%s\", expected \"%s\"\n", i, S.finals[i], expected_finals[i]);
        CHECK(same_words(S.finals[i], expected_finals[i]));
    }
    CHECK(S.finals_without_partial == 0);
    CHECK(S.response_finals >= 1);
    CHECK(S.empty_response_finals == 0);
    CHECK(S.weather_calls >= 1);
    CHECK(S.latency_calls >= 1);
    CHECK(S.bad_latencies == 0);
    CHECK(S.first_latency > 0.0);
    for (i = 0; i < S.agent_state_count; i++) {
        if (S.agent_states[i] == MILLIS_AGENT_PREPARE_ANSWER) saw_prepare = 1;
        if (S.agent_states[i] == MILLIS_AGENT_ANSWER && saw_prepare) saw_answer = 1;
        if (S.agent_states[i] == MILLIS_AGENT_IDLE && saw_answer) idle_after_answer = 1;
    }
    CHECK(saw_prepare);
    CHECK(saw_answer);
    CHECK(idle_after_answer);
    CHECK(S.audio_bytes > 0);
    CHECK(S.audio_bytes % 2 == 0);
    CHECK(S.odd_audio_frames == 0);
    CHECK(S.empty_audio_frames == 0);
    CHECK(S.ended_calls == 1);
    CHECK(S.close_calls == 1);
    CHECK(S.ended_seq < S.close_seq);
    CHECK_LONG_EQ(S.close_code, 1000);
    CHECK(S.events_after_close == 0);
    CHECK(stopped_sending);
    pthread_mutex_unlock(&S.lock);

    stats = millis_client_stats_json(S.client);
    CHECK(stats != NULL);
    printf("stats: %s\n", stats);
    CHECK(js_complete(stats));
    CHECK(stat_number(stats, "frames_sent") > 0);
    CHECK(stat_number(stats, "bytes_sent") >= (double)sent_ok);
    CHECK(stat_number(stats, "frames_received") > 0);
    CHECK(stat_number(stats, "bytes_received") >= (double)S.audio_bytes);
    CHECK(stat_number(stats, "audio_frames_dropped") >= 1); /* the chunk sent from onopen */
    CHECK(js_number(js_get(stats, "last_latency_ms"), &v) && v > 0);
    millis_free(stats);

    /* The server's own account of the session. */
    snprintf(path, sizeof path, "%s/%s.json", record_dir, S.session_id);
    for (i = 0; i < 200; i++) {
        free(record);
        record = read_file(path, NULL);
        if (record != NULL && js_complete(record)) break;
        sleep_ms(50);
    }
    if (record == NULL || !js_complete(record)) fprintf(stderr, "  no complete record %s within 10 s\n", path);
    CHECK(record != NULL && js_complete(record));
    {
        const char *initiate = js_get(record, "initiate");
        const char *data = js_get(initiate, "data");
        const char *metadata = js_get(data, "metadata");
        double received = -1, before_ready = -1, agent_sent = -1, code = -1;
        int turns = js_array_len(js_get(record, "user_turns")); /* [{start, end}, ...] */
        CHECK(js_string_is(js_get(record, "session_id"), S.session_id));
        CHECK(js_string_is(js_get(record, "agent_id"), "demo-agent"));
        CHECK(js_string_is(js_get(initiate, "method"), "initiate"));
        CHECK(js_string_is(js_get(js_get(data, "agent"), "agent_id"), "demo-agent"));
        CHECK(js_string_is(js_get(data, "public_key"), "test-public-key"));
        CHECK(js_string_is(js_get(metadata, "test"), "test_conversation.c"));
        CHECK(js_number(js_get(metadata, "n"), &v) && v == 7);
        CHECK(js_number(js_get(record, "audio_bytes_received"), &received));
        CHECK(js_number(js_get(record, "audio_bytes_received_before_ready"), &before_ready));
        CHECK(js_number(js_get(record, "agent_audio_bytes_sent"), &agent_sent));
        CHECK(js_number(js_get(js_get(record, "close"), "code"), &code));
        printf("record: audio_bytes_received=%.0f (client accepted %lu), before_ready=%.0f, "
               "agent_audio_bytes_sent=%.0f (client received %lu), user_turns=%d, close=%.0f\n",
               received, (unsigned long)sent_ok, before_ready, agent_sent, (unsigned long)S.audio_bytes,
               turns, code);
        /* The 640 bytes sent in onopen reached the server before its onready. */
        CHECK_LONG_EQ(received, sent_ok + 640);
        CHECK_LONG_EQ(before_ready, 640);
        CHECK_LONG_EQ(agent_sent, S.audio_bytes);
        CHECK_LONG_EQ(turns, USER_TURNS);
        CHECK_LONG_EQ(code, 1000);
    }
    free(record);

    millis_client_destroy(S.client);
    for (i = 0; i < S.final_count; i++) free(S.finals[i]);
    free(S.session_id);
    free(S.ready_payload);
    free(user_pcm);
    printf("test_conversation: %d checks passed\n", __atomic_load_n(&checks_passed, __ATOMIC_RELAXED));
    return 0;
}
