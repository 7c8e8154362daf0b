/*
 * test_api.c — the C API's promises that need no Millis server.
 *
 * Usage: test_api
 *
 * NULL for every pointer parameter, status and enum names, version macros against the
 * library, config ranges, extra upgrade headers (millis_config_add_header's refusals),
 * client creation, start's JSON validation, start twice, stop
 * when idle, ready timeout, an unreachable endpoint (onerror then onclose 1006), destroy
 * from inside onclose and destroy while connecting. The only sockets used are to
 * 127.0.0.1: port 1 (nothing listens) and a listener of this process that accepts TCP
 * but never answers the WebSocket upgrade.
 * Exit status 0 on success; on failure it prints file:line and the condition, exits 1.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "listener.h"

static int nonempty(const char *s) { return s != NULL && s[0] != '\0'; }

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static double mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* ------------------------------------------------------------------------------------
 * A recorder of callbacks for the connection cases.
 * ---------------------------------------------------------------------------------- */

static pthread_t main_thread;

struct rec {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    millis_client *client;
    int in_callback;          /* atomic */
    int seq, callbacks;
    int opens, readies, others;
    int errors, error_seq;
    millis_status first_error;
    char first_error_message[1024];
    int closes, close_seq, close_code;
    char close_reason[512];
    double close_at_ms;
    double error_at_ms;
    int destroy_in_close;     /* onclose destroys the client */
    int destroyed;            /* set by onclose after millis_client_destroy returned */
    int frozen;               /* main destroyed the client: no callback may follow */
    int after_freeze;
};

static void rec_init(struct rec *r)
{
    pthread_condattr_t attr;
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->cond, &attr);
    pthread_condattr_destroy(&attr);
}

static void rec_fini(struct rec *r)
{
    pthread_cond_destroy(&r->cond);
    pthread_mutex_destroy(&r->lock);
}

static void enter(millis_client *c, struct rec *r)
{
    CHECK(__atomic_exchange_n(&r->in_callback, 1, __ATOMIC_SEQ_CST) == 0);
    CHECK(!pthread_equal(pthread_self(), main_thread));
    CHECK(c == r->client);
    pthread_mutex_lock(&r->lock);
    r->seq++;
    r->callbacks++;
    if (r->frozen || r->destroyed) r->after_freeze++;
    pthread_mutex_unlock(&r->lock);
}

static void leave(struct rec *r) { __atomic_store_n(&r->in_callback, 0, __ATOMIC_SEQ_CST); }

static void r_open(millis_client *c, void *ud)
{
    struct rec *r = ud;
    enter(c, r);
    pthread_mutex_lock(&r->lock);
    r->opens++;
    pthread_mutex_unlock(&r->lock);
    leave(r);
}

static void r_ready(millis_client *c, const char *sid, const char *payload, void *ud)
{
    struct rec *r = ud;
    (void)sid; (void)payload;
    enter(c, r);
    pthread_mutex_lock(&r->lock);
    r->readies++;
    pthread_mutex_unlock(&r->lock);
    leave(r);
}

static void r_error(millis_client *c, millis_status st, const char *msg, void *ud)
{
    struct rec *r = ud;
    enter(c, r);
    CHECK(msg != NULL);
    printf("  onerror %s: %s\n", millis_status_string(st), msg ? msg : "(null)");
    pthread_mutex_lock(&r->lock);
    if (r->errors++ == 0) {
        r->first_error = st;
        r->error_seq = r->seq;
        r->error_at_ms = mono_ms();
        snprintf(r->first_error_message, sizeof r->first_error_message, "%s", msg ? msg : "");
    }
    pthread_mutex_unlock(&r->lock);
    leave(r);
}

static void r_close(millis_client *c, int code, const char *reason, void *ud)
{
    struct rec *r = ud;
    int destroy;
    enter(c, r);
    CHECK(reason != NULL);
    printf("  onclose %d \"%s\"\n", code, reason ? reason : "(null)");
    pthread_mutex_lock(&r->lock);
    r->closes++;
    r->close_seq = r->seq;
    r->close_code = code;
    r->close_at_ms = mono_ms();
    snprintf(r->close_reason, sizeof r->close_reason, "%s", reason ? reason : "");
    destroy = r->destroy_in_close;
    pthread_mutex_unlock(&r->lock);
    leave(r);
    if (destroy) {
        /* The header allows this from the client's own callback. */
        millis_client_destroy(c);
        pthread_mutex_lock(&r->lock);
        r->destroyed = 1;
        pthread_mutex_unlock(&r->lock);
    }
    pthread_mutex_lock(&r->lock);
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void r_other(struct rec *r, millis_client *c)
{
    enter(c, r);
    pthread_mutex_lock(&r->lock);
    r->others++;
    pthread_mutex_unlock(&r->lock);
    leave(r);
}

static void r_ended(millis_client *c, void *ud) { r_other(ud, c); }
static void r_audio(millis_client *c, const uint8_t *p, size_t n, void *ud) { (void)p; (void)n; r_other(ud, c); }
static void r_text(millis_client *c, const char *t, int f, void *ud) { (void)t; (void)f; r_other(ud, c); }
static void r_function(millis_client *c, const char *t, const char *n, const char *p, void *ud)
{
    (void)t; (void)n; (void)p;
    r_other(ud, c);
}
static void r_latency(millis_client *c, double ms, void *ud) { (void)ms; r_other(ud, c); }
static void r_state(millis_client *c, millis_agent_state s, void *ud) { (void)s; r_other(ud, c); }
static void r_message(millis_client *c, const char *m, const char *j, void *ud) { (void)m; (void)j; r_other(ud, c); }

static void r_log(millis_client *c, millis_log_level level, const char *msg, void *ud)
{
    struct rec *r = ud;
    (void)level;
    /* Logs are callbacks too: same thread rules. Not counted as events. */
    CHECK(!pthread_equal(pthread_self(), main_thread));
    CHECK(c == r->client);
    CHECK(msg != NULL);
}

static millis_client *make_client(const char *endpoint, unsigned ready_timeout_ms, struct rec *r)
{
    millis_config *cfg = millis_config_create();
    millis_client *c;
    millis_status st = MILLIS_ERR_INTERNAL;
    CHECK(cfg != NULL);
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_endpoint(cfg, endpoint), MILLIS_OK);
    if (ready_timeout_ms) CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, ready_timeout_ms), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    CHECK(c != NULL);
    CHECK_STATUS(st, MILLIS_OK);
    millis_config_destroy(cfg);
    r->client = c;
    CHECK_STATUS(millis_client_on_open(c, r_open, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_ready(c, r_ready, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_session_ended(c, r_ended, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_audio(c, r_audio, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_response_text(c, r_text, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_transcript(c, r_text, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_function(c, r_function, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_latency(c, r_latency, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_agent_state(c, r_state, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_close(c, r_close, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_error(c, r_error, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_message(c, r_message, r), MILLIS_OK);
    CHECK_STATUS(millis_client_on_log(c, r_log, r), MILLIS_OK);
    return c;
}

/* Waits up to `ms` for the close callback (and, with destroy_in_close, the destroy). */
static int wait_close(struct rec *r, long ms)
{
    struct timespec deadline;
    int done;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += ms / 1000;
    deadline.tv_nsec += (ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_nsec -= 1000000000L;
        deadline.tv_sec++;
    }
    pthread_mutex_lock(&r->lock);
    while (!(r->closes > 0 && (!r->destroy_in_close || r->destroyed)))
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT) break;
    done = r->closes > 0 && (!r->destroy_in_close || r->destroyed);
    pthread_mutex_unlock(&r->lock);
    return done;
}

static int wait_idle(millis_client *c)
{
    int i;
    for (i = 0; i < 200 && millis_client_connection_state(c) != MILLIS_CONNECTION_IDLE; i++) sleep_ms(10);
    return millis_client_connection_state(c) == MILLIS_CONNECTION_IDLE;
}

/* ------------------------------------------------------------------------------------
 * Cases
 * ---------------------------------------------------------------------------------- */

static void test_version(void)
{
    char expected[64];
    printf("version\n");
    CHECK(MILLIS_VERSION_NUMBER == MILLIS_VERSION_MAJOR * 1000000 + MILLIS_VERSION_MINOR * 1000 + MILLIS_VERSION_PATCH);
    CHECK(millis_version_number() == MILLIS_VERSION_NUMBER);
    CHECK_STR_EQ(millis_version(), MILLIS_VERSION_STRING);
    snprintf(expected, sizeof expected, "%d.%d.%d", MILLIS_VERSION_MAJOR, MILLIS_VERSION_MINOR, MILLIS_VERSION_PATCH);
    CHECK_STR_EQ(MILLIS_VERSION_STRING, expected);
    CHECK(millis_version() == millis_version()); /* static */
}

static void test_names(void)
{
    int i, j;
    static const char *const agent_names[] = {"idle", "prepare_answer", "answer", "pause"};
    static const char *const conn_names[] = {"idle", "connecting", "open", "ready", "closing"};
    printf("status, agent state and connection state names\n");
    for (i = MILLIS_OK; i <= MILLIS_ERR_FILE; i++) {
        const char *s = millis_status_string((millis_status)i);
        CHECK(nonempty(s));
        if (strcmp(s, "unknown status") == 0) fprintf(stderr, "  status %d is unnamed\n", i);
        CHECK(strcmp(s, "unknown status") != 0);
        for (j = MILLIS_OK; j < i; j++) {
            if (strcmp(s, millis_status_string((millis_status)j)) == 0)
                fprintf(stderr, "  statuses %d and %d share the name \"%s\"\n", j, i, s);
            CHECK(strcmp(s, millis_status_string((millis_status)j)) != 0);
        }
    }
    CHECK_STR_EQ(millis_status_string((millis_status)999), "unknown status");
    CHECK_STR_EQ(millis_status_string((millis_status)(MILLIS_ERR_FILE + 1)), "unknown status");
    for (i = 0; i < 4; i++) CHECK_STR_EQ(millis_agent_state_string((millis_agent_state)i), agent_names[i]);
    CHECK(millis_agent_state_string((millis_agent_state)99) != NULL);
    for (i = 0; i < 5; i++) CHECK_STR_EQ(millis_connection_state_string((millis_connection_state)i), conn_names[i]);
    CHECK(millis_connection_state_string((millis_connection_state)99) != NULL);
}

static void test_null_arguments(void)
{
    millis_config *cfg;
    millis_client *c;
    millis_status st = MILLIS_OK;
    char buf[4] = {0, 0, 0, 0};
    printf("NULL arguments\n");

    millis_free(NULL);
    millis_config_destroy(NULL);
    millis_client_destroy(NULL);

    CHECK(millis_config_last_error(NULL) == NULL);
    CHECK_STATUS(millis_config_set_public_key(NULL, "k"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_endpoint(NULL, "ws://127.0.0.1/millis"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_endpoint(NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_log_level(NULL, MILLIS_LOG_INFO), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_audio_mode(NULL, MILLIS_AUDIO_MODE_APPLICATION), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_frame_ms(NULL, 20), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_max_message_bytes(NULL, 4096), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_ready_timeout_ms(NULL, 1000), MILLIS_ERR_INVALID_ARGUMENT);

    CHECK(millis_client_create(NULL, &st) == NULL);
    CHECK_STATUS(st, MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(millis_client_create(NULL, NULL) == NULL);

    cfg = millis_config_create();
    CHECK(cfg != NULL);
    CHECK_STR_EQ(millis_config_last_error(cfg), "");
    CHECK_STATUS(millis_config_set_public_key(cfg, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_public_key(cfg, ""), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_endpoint(cfg, NULL), MILLIS_OK); /* restores the default */
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    c = millis_client_create(cfg, NULL); /* err is nullable */
    CHECK(c != NULL);
    millis_config_destroy(cfg);

    CHECK(millis_client_last_error(NULL) == NULL);
    CHECK_STR_EQ(millis_client_last_error(c), "");
    CHECK_STATUS(millis_client_start(NULL, "{\"agent\": {\"agent_id\": \"a\"}}"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_start(c, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_client_last_error(c)));
    CHECK_STATUS(millis_client_start_agent(NULL, "a"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_start_agent(c, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_client_last_error(c)));
    CHECK_STATUS(millis_client_start_agent(c, ""), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_client_last_error(c)));
    CHECK_STATUS(millis_client_stop(NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_mute(NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_unmute(NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(millis_client_is_muted(NULL) == 0);
    CHECK_STATUS(millis_client_send_audio(NULL, buf, 2), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_send_audio(c, NULL, 2), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_client_last_error(c)));
    CHECK_STATUS(millis_client_send_audio(c, buf, 3), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_client_last_error(c)));
    CHECK_STATUS(millis_client_send_audio(c, buf, 4), MILLIS_ERR_NOT_READY);
    CHECK(nonempty(millis_client_last_error(c)));
    /* A size_t no buffer can have (above SSIZE_MAX) is refused, not wrapped negative. */
    CHECK_STATUS(millis_client_send_audio(c, buf, SIZE_MAX), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(millis_client_last_error(c), "too large") != NULL);
    CHECK_STATUS(millis_client_send_json(NULL, "{}"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_send_json(c, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_client_last_error(c)));
    CHECK_STATUS(millis_client_send_json(c, "{\"method\": \"x\"}"), MILLIS_ERR_NOT_READY);
    CHECK(millis_client_session_id(NULL) == NULL);
    CHECK(millis_client_session_id(c) == NULL);
    CHECK(millis_client_connection_state(NULL) == MILLIS_CONNECTION_IDLE);
    CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_IDLE);
    CHECK(millis_client_agent_state(NULL) == MILLIS_AGENT_IDLE);
    CHECK(millis_client_agent_state(c) == MILLIS_AGENT_IDLE);
    CHECK(millis_client_stats_json(NULL) == NULL);
    {
        char *stats = millis_client_stats_json(c);
        CHECK(stats != NULL && stats[0] == '{' && strstr(stats, "\"frames_sent\"") != NULL);
        CHECK(strstr(stats, "\"audio_frames_dropped\"") != NULL);
        millis_free(stats);
    }

    CHECK_STATUS(millis_client_on_open(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_ready(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_session_ended(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_audio(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_response_text(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_transcript(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_function(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_latency(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_agent_state(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_close(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_error(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_message(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_client_on_log(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    /* NULL removes a callback. */
    CHECK_STATUS(millis_client_on_open(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_ready(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_session_ended(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_audio(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_response_text(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_transcript(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_function(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_latency(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_agent_state(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_close(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_error(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_message(c, NULL, NULL), MILLIS_OK);
    CHECK_STATUS(millis_client_on_log(c, NULL, NULL), MILLIS_OK);

    /* Mute state, and stop when nothing is under way. */
    CHECK(millis_client_is_muted(c) == 0);
    CHECK_STATUS(millis_client_mute(c), MILLIS_OK);
    CHECK(millis_client_is_muted(c) == 1);
    CHECK_STATUS(millis_client_mute(c), MILLIS_OK);
    CHECK(millis_client_is_muted(c) == 1);
    CHECK_STATUS(millis_client_unmute(c), MILLIS_OK);
    CHECK(millis_client_is_muted(c) == 0);
    CHECK_STATUS(millis_client_stop(c), MILLIS_OK);
    CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_IDLE);
    millis_client_destroy(c);
}

static void test_config_ranges(void)
{
    millis_config *cfg = millis_config_create();
    static const char *const good_urls[] = {
        "ws://127.0.0.1:8765/millis", "wss://api-west.millis.ai:8080/millis", "ws://localhost",
        "wss://example.com/path/to/millis", "ws://127.0.0.1:65535/",
    };
    static const char *const bad_urls[] = {
        "", "http://example.com/millis", "https://api-west.millis.ai:8080/millis", "example.com",
        "ws://", "wss://", "ws://:8765/millis", "ws://host:99999/millis", "ws://host:abc/millis",
        "ws://ho st/millis", "ws://host/mil lis", "ws://host/millis\n", "ws://host\t/millis",
    };
    size_t i;
    printf("config setters and ranges\n");
    CHECK(cfg != NULL);
    /* A path that is not UTF-8 is refused, never repaired into another file's name. */
    CHECK_STATUS(millis_config_set_audio_input_file(cfg, "/tmp/caf\xe9.wav", MILLIS_FILE_FAST), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(millis_config_last_error(cfg), "UTF-8") != NULL);
    CHECK_STATUS(millis_config_set_audio_output_file(cfg, "/tmp/caf\xe9.wav"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(millis_config_last_error(cfg), "UTF-8") != NULL);
    CHECK_STATUS(millis_config_set_recording(cfg, "/tmp/caf\xe9.opus", MILLIS_RECORD_STEREO), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(strstr(millis_config_last_error(cfg), "UTF-8") != NULL);
    CHECK_STATUS(millis_config_set_audio_input_file(cfg, NULL, MILLIS_FILE_FAST), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_output_file(cfg, NULL), MILLIS_OK);
    CHECK_STATUS(millis_config_set_recording(cfg, NULL, MILLIS_RECORD_STEREO), MILLIS_OK);
    for (i = 0; i < sizeof good_urls / sizeof good_urls[0]; i++) {
        millis_status st = millis_config_set_endpoint(cfg, good_urls[i]);
        if (st != MILLIS_OK) fprintf(stderr, "  endpoint \"%s\": %s\n", good_urls[i], millis_config_last_error(cfg));
        CHECK_STATUS(st, MILLIS_OK);
    }
    for (i = 0; i < sizeof bad_urls / sizeof bad_urls[0]; i++) {
        millis_status st = millis_config_set_endpoint(cfg, bad_urls[i]);
        if (st != MILLIS_ERR_INVALID_ARGUMENT) fprintf(stderr, "  endpoint \"%s\" accepted\n", bad_urls[i]);
        CHECK_STATUS(st, MILLIS_ERR_INVALID_ARGUMENT);
        CHECK(nonempty(millis_config_last_error(cfg)));
    }
    CHECK_STATUS(millis_config_set_endpoint(cfg, NULL), MILLIS_OK);

    for (i = MILLIS_LOG_NONE; i <= MILLIS_LOG_DEBUG; i++)
        CHECK_STATUS(millis_config_set_log_level(cfg, (millis_log_level)i), MILLIS_OK);
    CHECK_STATUS(millis_config_set_log_level(cfg, (millis_log_level)5), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_log_level(cfg, (millis_log_level)-1), MILLIS_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_DEFAULT), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_DEVICE), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, (millis_audio_mode)3), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_audio_mode(cfg, (millis_audio_mode)-1), MILLIS_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(millis_config_set_frame_ms(cfg, 0), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_frame_ms(cfg, 4), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_frame_ms(cfg, 5), MILLIS_OK);
    CHECK_STATUS(millis_config_set_frame_ms(cfg, 200), MILLIS_OK);
    CHECK_STATUS(millis_config_set_frame_ms(cfg, 201), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_frame_ms(cfg, 20), MILLIS_OK);

    CHECK_STATUS(millis_config_set_max_message_bytes(cfg, 0), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_max_message_bytes(cfg, 1023), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_max_message_bytes(cfg, 1024), MILLIS_OK);
    CHECK_STATUS(millis_config_set_max_message_bytes(cfg, (size_t)64 * 1024 * 1024), MILLIS_OK);
    CHECK_STATUS(millis_config_set_max_message_bytes(cfg, (size_t)64 * 1024 * 1024 + 1), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_max_message_bytes(cfg, (size_t)-1), MILLIS_ERR_INVALID_ARGUMENT);

    CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, 0), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, 99), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, 100), MILLIS_OK);
    CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, 600000), MILLIS_OK);
    CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, 600001), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    millis_config_destroy(cfg);
}

/* A header the config must refuse: INVALID_ARGUMENT and a message holding `word`. */
static void refuse_header(millis_config *cfg, const char *name, const char *value, const char *word)
{
    millis_status st = millis_config_add_header(cfg, name, value);
    const char *msg = millis_config_last_error(cfg);
    if (st != MILLIS_ERR_INVALID_ARGUMENT || !nonempty(msg) || strstr(msg, word) == NULL)
        fprintf(stderr, "  header \"%.60s\": \"%.60s\": status %d (%s), message \"%s\" (expected one naming \"%s\")\n",
                name ? name : "(null)", value ? value : "(null)", (int)st, millis_status_string(st),
                msg ? msg : "(null)", word);
    CHECK_STATUS(st, MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(msg));
    CHECK(strstr(msg, word) != NULL);
}

static void test_headers(void)
{
    millis_config *cfg = millis_config_create();
    millis_client *c;
    char name[258], value[8194], numbered[32];
    int i;
    static const char *const reserved[] = {
        "Host", "host", "HOST", "Upgrade", "Connection", "Content-Length", "Transfer-Encoding",
        "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Accept", "Sec-WebSocket-Protocol",
        "Sec-WebSocket-Extensions", "sec-websocket-key", "Sec-WebSocket-Anything",
    };
    static const char *const bad_names[] = {
        "", "X Header", " X-Header", "X-Header ", "X-Header:", "X:Y", "X\r\nY", "X\n", "X\tY", "X(Y)",
        "X\"Y", "X/Y", "X@Y", "X,Y", "X;Y", "X=Y", "X{Y}", "X\x7fY", "X\xc3\xa9",
    };
    static const char *const bad_values[] = {
        "a\r\nEvil: 1", "a\rb", "a\nb", "\r\n", "a\x01" "b", "a\x1f" "b", "a\x7f", "\x1b[31m",
    };
    static const char *const good[][2] = {
        {"Origin", "https://example.com"}, {"X-Gateway-Token", "abc123"}, {"User-Agent", "my-app/1.0"},
        {"Authorization", "Bearer x.y.z"}, {"X-Tab", "a\tb"}, {"X-Empty", ""}, {"X-Spaces", "  padded  "},
        {"X-UTF8", "caf\xc3\xa9"}, {"!#$%&'*+-.^_`|~09azAZ", "token characters"}, {"X-Tag", "one"},
        {"X-Tag", "two"}, {"Sec-WebSocketX", "not the Sec-WebSocket- prefix"},
    };
    printf("extra upgrade headers: millis_config_add_header, millis_config_clear_headers\n");
    CHECK(cfg != NULL);

    /* NULL config, name, value. */
    CHECK_STATUS(millis_config_add_header(NULL, "Origin", "https://example.com"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_add_header(NULL, NULL, NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_clear_headers(NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK_STATUS(millis_config_add_header(cfg, NULL, "x"), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    CHECK_STATUS(millis_config_add_header(cfg, "X-Header", NULL), MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));

    /* Names the handshake writes itself (any case), names that are not HTTP tokens,
     * values that could end their line. */
    for (i = 0; i < (int)(sizeof reserved / sizeof reserved[0]); i++) refuse_header(cfg, reserved[i], "x", reserved[i]);
    for (i = 0; i < (int)(sizeof bad_names / sizeof bad_names[0]); i++) refuse_header(cfg, bad_names[i], "x", "name");
    for (i = 0; i < (int)(sizeof bad_values / sizeof bad_values[0]); i++) refuse_header(cfg, "X-Header", bad_values[i], "X-Header");
    printf("  CR LF in a value: ");
    refuse_header(cfg, "X-Header", "a\r\nHost: evil", "control");
    printf("%s\n", millis_config_last_error(cfg));
    printf("  Host: ");
    refuse_header(cfg, "Host", "evil.example", "Host");
    printf("%s\n", millis_config_last_error(cfg));

    /* Lengths: a name of 256 bytes and a value of 8192 pass, one more byte does not. */
    memset(name, 'n', 256);
    name[256] = '\0';
    CHECK_STATUS(millis_config_add_header(cfg, name, "x"), MILLIS_OK);
    name[256] = 'n';
    name[257] = '\0';
    refuse_header(cfg, name, "x", "256");
    memset(value, 'v', 8192);
    value[8192] = '\0';
    CHECK_STATUS(millis_config_add_header(cfg, "X-Long", value), MILLIS_OK);
    value[8192] = 'v';
    value[8193] = '\0';
    refuse_header(cfg, "X-Long", value, "8192");
    CHECK_STATUS(millis_config_clear_headers(cfg), MILLIS_OK);

    /* What is valid, a repeated name included. */
    for (i = 0; i < (int)(sizeof good / sizeof good[0]); i++) {
        millis_status st = millis_config_add_header(cfg, good[i][0], good[i][1]);
        if (st != MILLIS_OK) fprintf(stderr, "  header \"%s: %s\": %s\n", good[i][0], good[i][1], millis_config_last_error(cfg));
        CHECK_STATUS(st, MILLIS_OK);
    }
    CHECK_STATUS(millis_config_clear_headers(cfg), MILLIS_OK);
    CHECK_STATUS(millis_config_clear_headers(cfg), MILLIS_OK); /* nothing to clear */

    /* At most 64: the 65th is refused, and the 64 stay; clearing makes room again. */
    for (i = 0; i < 64; i++) {
        snprintf(numbered, sizeof numbered, "X-H%d", i);
        CHECK_STATUS(millis_config_add_header(cfg, numbered, "v"), MILLIS_OK);
    }
    refuse_header(cfg, "X-H64", "v", "64");
    printf("  65th header: %s\n", millis_config_last_error(cfg));
    refuse_header(cfg, "Origin", "https://example.com", "64");
    CHECK_STATUS(millis_config_clear_headers(cfg), MILLIS_OK);
    CHECK_STATUS(millis_config_add_header(cfg, "Origin", "https://example.com"), MILLIS_OK);

    /* A config with headers makes a client; the client keeps a copy. */
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    c = millis_client_create(cfg, NULL);
    CHECK(c != NULL);
    CHECK_STATUS(millis_config_clear_headers(cfg), MILLIS_OK);
    millis_config_destroy(cfg);
    millis_client_destroy(c);
}

static void test_create(void)
{
    millis_config *cfg = millis_config_create();
    millis_client *c;
    millis_status st = MILLIS_OK;
    printf("client creation\n");
    CHECK(cfg != NULL);
    /* No public key. */
    c = millis_client_create(cfg, &st);
    CHECK(c == NULL);
    CHECK_STATUS(st, MILLIS_ERR_INVALID_ARGUMENT);
    CHECK(nonempty(millis_config_last_error(cfg)));
    printf("  without a public key: %s\n", millis_config_last_error(cfg));
    /* With one; the config may go before the client. */
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    st = MILLIS_ERR_INTERNAL;
    c = millis_client_create(cfg, &st);
    CHECK(c != NULL);
    CHECK_STATUS(st, MILLIS_OK);
    millis_config_destroy(cfg);
    CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_IDLE);
    millis_client_destroy(c);
}

static void test_start_json(void)
{
    static const char *const bad[] = {
        "", "not json", "{", "[]", "42", "\"agent\"", "null", "{}",
        "{\"agent\": null}", "{\"agent\": \"demo-agent\"}", "{\"agent\": []}", "{\"agent\": {}}",
        "{\"agent\": {\"agent_id\": \"\"}}", "{\"agent\": {\"agent_id\": 5}}",
        "{\"agent\": {\"agent_config\": []}}", "{\"agent\": {\"agent_config\": \"x\"}}",
        "{\"agent\": {\"agent_id\": \"demo-agent\"}, \"public_key\": \"k\"}",
        "{\"agent\": {\"agent_id\": \"demo-agent\"}",
        "{\"agent\": {\"agent_id\": \"demo-agent\"}} trailing",
        "{\"metadata\": {\"agent\": {\"agent_id\": \"demo-agent\"}}}",
    };
    millis_config *cfg = millis_config_create();
    millis_client *c;
    size_t i;
    printf("start: options JSON validation\n");
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_endpoint(cfg, "ws://127.0.0.1:1/millis"), MILLIS_OK);
    c = millis_client_create(cfg, NULL);
    CHECK(c != NULL);
    millis_config_destroy(cfg);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        millis_status st = millis_client_start(c, bad[i]);
        if (st != MILLIS_ERR_INVALID_JSON) fprintf(stderr, "  options '%s'\n", bad[i]);
        CHECK_STATUS(st, MILLIS_ERR_INVALID_JSON);
        CHECK(nonempty(millis_client_last_error(c)));
        if (i == 1 || i == 7 || i == 16) printf("  '%s': %s\n", bad[i], millis_client_last_error(c));
        CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_IDLE);
    }
    millis_client_destroy(c);
}

/* start twice, stop while connecting, stop when idle, start again, destroy while
 * connecting; against a listener that never answers the upgrade. */
static void test_start_twice_and_stop(void)
{
    char url[64];
    int fd = silent_listener(url, sizeof url, 16);
    struct rec r;
    millis_client *c;
    int before;
    printf("start twice, stop, stop when idle, restart, destroy while connecting (%s)\n", url);
    rec_init(&r);
    c = make_client(url, 0, &r);
    CHECK_STATUS(millis_client_start_agent(c, "demo-agent"), MILLIS_OK);
    CHECK(millis_client_connection_state(c) != MILLIS_CONNECTION_IDLE);
    CHECK_STATUS(millis_client_start_agent(c, "demo-agent"), MILLIS_ERR_INVALID_STATE);
    CHECK(nonempty(millis_client_last_error(c)));
    printf("  second start: %s\n", millis_client_last_error(c));
    CHECK_STATUS(millis_client_start(c, "{\"agent\": {\"agent_id\": \"demo-agent\"}}"), MILLIS_ERR_INVALID_STATE);
    sleep_ms(200);
    CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_CONNECTING);
    CHECK_STATUS(millis_client_send_audio(c, "\0\0", 2), MILLIS_ERR_NOT_READY);

    CHECK_STATUS(millis_client_stop(c), MILLIS_OK);
    CHECK(wait_close(&r, 5000));
    CHECK(wait_idle(c));
    pthread_mutex_lock(&r.lock);
    CHECK(r.closes == 1);
    CHECK(r.opens == 0);
    CHECK(r.readies == 0);
    CHECK(r.others == 0);
    pthread_mutex_unlock(&r.lock);

    /* Stop when idle: OK, and nothing is called. */
    before = r.callbacks;
    CHECK_STATUS(millis_client_stop(c), MILLIS_OK);
    sleep_ms(300);
    pthread_mutex_lock(&r.lock);
    CHECK(r.callbacks == before);
    pthread_mutex_unlock(&r.lock);

    /* After onclose a new conversation may start; destroy it while it connects. */
    CHECK_STATUS(millis_client_start_agent(c, "demo-agent"), MILLIS_OK);
    sleep_ms(100);
    millis_client_destroy(c);
    pthread_mutex_lock(&r.lock);
    r.frozen = 1;
    before = r.callbacks;
    pthread_mutex_unlock(&r.lock);
    sleep_ms(500);
    pthread_mutex_lock(&r.lock);
    CHECK(r.callbacks == before);
    CHECK(r.after_freeze == 0);
    CHECK(r.closes == 1); /* destroy does not call onclose */
    pthread_mutex_unlock(&r.lock);
    rec_fini(&r);
    close(fd);
}

/* The server accepts TCP but never upgrades: MILLIS_ERR_TIMEOUT after the ready
 * timeout, then onclose(1006). */
static void test_ready_timeout(void)
{
    char url[64];
    int fd = silent_listener(url, sizeof url, 16);
    struct rec r;
    millis_client *c;
    double started, elapsed;
    printf("ready timeout (%s, 300 ms)\n", url);
    rec_init(&r);
    c = make_client(url, 300, &r);
    started = mono_ms();
    CHECK_STATUS(millis_client_start_agent(c, "demo-agent"), MILLIS_OK);
    CHECK(wait_close(&r, 5000));
    pthread_mutex_lock(&r.lock);
    elapsed = r.error_at_ms - started;
    printf("  error after %.0f ms\n", elapsed);
    CHECK(r.errors >= 1);
    CHECK_STATUS(r.first_error, MILLIS_ERR_TIMEOUT);
    CHECK(nonempty(r.first_error_message));
    CHECK(elapsed >= 250 && elapsed < 3000);
    CHECK(r.error_seq < r.close_seq);
    CHECK(r.close_code == 1006);
    CHECK(r.opens == 0 && r.readies == 0);
    pthread_mutex_unlock(&r.lock);
    CHECK(wait_idle(c));
    millis_client_destroy(c);
    rec_fini(&r);
    close(fd);
}

/* Nothing listens on port 1: onerror(CONNECT) naming the address, then onclose(1006);
 * the client is destroyed from inside onclose. */
static void test_unreachable(void)
{
    struct rec r;
    millis_client *c;
    int callbacks;
    printf("unreachable endpoint, destroy from inside onclose\n");
    rec_init(&r);
    r.destroy_in_close = 1;
    c = make_client("ws://127.0.0.1:1/millis", 0, &r);
    CHECK_STATUS(millis_client_start_agent(c, "demo-agent"), MILLIS_OK);
    CHECK(wait_close(&r, 10000));
    pthread_mutex_lock(&r.lock);
    CHECK(r.errors == 1);
    CHECK_STATUS(r.first_error, MILLIS_ERR_CONNECT);
    if (strstr(r.first_error_message, "127.0.0.1:1") == NULL)
        fprintf(stderr, "  message: %s\n", r.first_error_message);
    CHECK(strstr(r.first_error_message, "127.0.0.1:1") != NULL);
    CHECK(r.error_seq < r.close_seq);
    CHECK(r.closes == 1);
    CHECK(r.close_code == 1006);
    CHECK(r.opens == 0 && r.readies == 0 && r.others == 0);
    CHECK(r.destroyed == 1);
    callbacks = r.callbacks;
    pthread_mutex_unlock(&r.lock);
    sleep_ms(300);
    pthread_mutex_lock(&r.lock);
    CHECK(r.callbacks == callbacks);
    CHECK(r.after_freeze == 0);
    pthread_mutex_unlock(&r.lock);
    rec_fini(&r);
}

/* Two threads fail different calls on one client, each reading its own message while
 * the other keeps failing: the message must be the thread's own, and never freed under
 * its reader (ASan and TSan run this too). */
struct error_thread {
    millis_client *c;
    int which;
    int wrong;
};

static void *fail_and_read(void *arg)
{
    struct error_thread *t = arg;
    static const unsigned char pcm[3] = {0, 0, 0};
    int i;
    for (i = 0; i < 20000; i++) {
        const char *msg;
        if (t->which == 0) {
            if (millis_client_send_audio(t->c, pcm, 3) != MILLIS_ERR_INVALID_ARGUMENT) t->wrong++;
            msg = millis_client_last_error(t->c);
            if (msg == NULL || strstr(msg, "even") == NULL) t->wrong++;
        } else {
            if (millis_client_start(t->c, "{") == MILLIS_OK) t->wrong++;
            msg = millis_client_last_error(t->c);
            if (msg == NULL || strstr(msg, "JSON") == NULL) t->wrong++;
        }
    }
    return NULL;
}

static void test_error_messages_per_thread(void)
{
    millis_config *cfg = millis_config_create();
    millis_client *c;
    millis_status st;
    pthread_t threads[2];
    struct error_thread t[2];
    int i;
    printf("error messages per thread\n");
    CHECK_STATUS(millis_config_set_public_key(cfg, "k"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    CHECK(c != NULL);
    millis_config_destroy(cfg);
    CHECK_STR_EQ(millis_client_last_error(c), "");
    for (i = 0; i < 2; i++) {
        t[i].c = c;
        t[i].which = i;
        t[i].wrong = 0;
        CHECK(pthread_create(&threads[i], NULL, fail_and_read, &t[i]) == 0);
    }
    for (i = 0; i < 2; i++) CHECK(pthread_join(threads[i], NULL) == 0);
    CHECK_LONG_EQ(t[0].wrong, 0);
    CHECK_LONG_EQ(t[1].wrong, 0);
    /* The threads' failures are not this thread's. */
    CHECK_STR_EQ(millis_client_last_error(c), "");
    millis_client_destroy(c);
}

/* Two threads ask for a recording at the same moment, on a client with a conversation
 * under way (connecting to a listener that never answers): one gets it, the other
 * MILLIS_ERR_INVALID_STATE, never both, 30 rounds. */
struct recording_thread {
    millis_client *c;
    pthread_barrier_t *barrier;
    char path[128];
    millis_status status;
};

static void *start_recording_at_once(void *arg)
{
    struct recording_thread *t = arg;
    pthread_barrier_wait(t->barrier);
    t->status = millis_client_start_recording(t->c, t->path, MILLIS_RECORD_STEREO);
    return NULL;
}

static void test_overlapping_start_recording(void)
{
    char url[64], dir[] = "/tmp/millis-test-api-XXXXXX";
    int listener = silent_listener(url, sizeof url, 16), round, i;
    millis_config *cfg = millis_config_create();
    millis_client *c;
    millis_status st;
    pthread_barrier_t barrier;
    pthread_t threads[2];
    struct recording_thread t[2];
    printf("overlapping millis_client_start_recording\n");
    CHECK(mkdtemp(dir) != NULL);
    CHECK_STATUS(millis_config_set_public_key(cfg, "k"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_endpoint(cfg, url), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION), MILLIS_OK);
    CHECK_STATUS(millis_config_set_ready_timeout_ms(cfg, 60000), MILLIS_OK);
    c = millis_client_create(cfg, &st);
    CHECK(c != NULL);
    millis_config_destroy(cfg);
    CHECK_STATUS(millis_client_start_agent(c, "a"), MILLIS_OK);
    CHECK(pthread_barrier_init(&barrier, NULL, 2) == 0);
    for (round = 0; round < 30; round++) {
        int ok = 0, refused = 0;
        for (i = 0; i < 2; i++) {
            t[i].c = c;
            t[i].barrier = &barrier;
            snprintf(t[i].path, sizeof t[i].path, "%s/r%d-%d.wav", dir, round, i);
            CHECK(pthread_create(&threads[i], NULL, start_recording_at_once, &t[i]) == 0);
        }
        for (i = 0; i < 2; i++) {
            CHECK(pthread_join(threads[i], NULL) == 0);
            ok += t[i].status == MILLIS_OK;
            refused += t[i].status == MILLIS_ERR_INVALID_STATE;
        }
        if (ok != 1 || refused != 1)
            fprintf(stderr, "  round %d: statuses %d and %d\n", round, (int)t[0].status, (int)t[1].status);
        CHECK(ok == 1 && refused == 1);
        CHECK_STATUS(millis_client_stop_recording(c), MILLIS_OK);
        for (i = 0; i < 2; i++) {
            char jsonl[160];
            snprintf(jsonl, sizeof jsonl, "%.*s.jsonl", (int)(strlen(t[i].path) - 4), t[i].path);
            unlink(t[i].path);
            unlink(jsonl);
        }
    }
    pthread_barrier_destroy(&barrier);
    millis_client_destroy(c);
    close(listener);
    CHECK(rmdir(dir) == 0);
}

int main(void)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    main_thread = pthread_self();
    test_version();
    test_names();
    test_null_arguments();
    test_config_ranges();
    test_headers();
    test_create();
    test_start_json();
    test_start_twice_and_stop();
    test_ready_timeout();
    test_unreachable();
    test_error_messages_per_thread();
    test_overlapping_start_recording();
    millis_client_destroy(NULL);
    printf("test_api: %d checks passed\n", __atomic_load_n(&checks_passed, __ATOMIC_RELAXED));
    return 0;
}
