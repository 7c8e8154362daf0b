/*
 * talk_events.c — `millis talk`: the callbacks, which run on the library's network
 * thread and only queue what they get, the queue, and the self-pipe that wakes the
 * main thread (written by the callbacks and the signal handlers).
 */
#define _POSIX_C_SOURCE 200809L

#include "talk.h"

#include <millis.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event *queue_head, *queue_tail;
static int wake_pipe[2] = {-1, -1};
volatile sig_atomic_t talk_signal_count, talk_last_signal, talk_winch;

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

struct event *talk_pop_event(void)
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

void talk_free_event(struct event *e)
{
    free(e->s1);
    free(e->s2);
    free(e->s3);
    free(e);
}

/* ------------------------------------------------------------------------------------
 * The callbacks (network thread): copy, queue, wake
 * ---------------------------------------------------------------------------------- */

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
        talk_winch = 1;
    } else {
        talk_last_signal = sig;
        talk_signal_count += 1;
    }
    wake();
}

/* ------------------------------------------------------------------------------------
 * Set-up, for the main thread
 * ---------------------------------------------------------------------------------- */

int talk_wake_open(void)
{
    if (pipe(wake_pipe) != 0) return -1;
    fcntl(wake_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(wake_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(wake_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(wake_pipe[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

int talk_wake_fd(void)
{
    return wake_pipe[0];
}

void talk_wake_drain(void)
{
    char drain[256];
    while (read(wake_pipe[0], drain, sizeof drain) > 0) {
    }
}

void talk_wake_close(void)
{
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
}

void talk_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

void talk_register_callbacks(millis_client *c, int verbose)
{
    millis_client_on_open(c, on_open, NULL);
    millis_client_on_ready(c, on_ready, NULL);
    millis_client_on_session_ended(c, on_session_ended, NULL);
    millis_client_on_transcript(c, on_transcript, NULL);
    millis_client_on_response_text(c, on_response, NULL);
    millis_client_on_function(c, on_function, NULL);
    millis_client_on_latency(c, on_latency, NULL);
    millis_client_on_agent_state(c, on_state, NULL);
    millis_client_on_close(c, on_close, NULL);
    millis_client_on_error(c, on_error, NULL);
    millis_client_on_message(c, on_message, NULL);
    millis_client_on_reconnecting(c, on_reconnecting, NULL);
    millis_client_on_reconnected(c, on_reconnected, NULL);
    millis_client_on_user_audio_ready(c, on_user_audio_ready, NULL);
    millis_client_on_input_ended(c, on_input_ended, NULL);
    millis_client_on_turn(c, on_turn, NULL);
    if (verbose) millis_client_on_log(c, on_log, NULL);
}
