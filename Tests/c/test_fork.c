/*
 * test_fork.c — the library in a child process forked after its parent used it
 * (issue 13, point 5; include/millis.h: "Processes and fork").
 *
 * Usage: test_fork WS_URL [--children N]
 *   WS_URL   the devserver's endpoint, e.g. ws://127.0.0.1:8765/millis (agent quick-agent)
 *   N        children forked one after the other (default 3)
 *
 * The parent holds a conversation (client P, quick-agent: onready, agent audio) and keeps
 * it open, a thread of its own streaming microphone audio into it, so that the network
 * thread is busy whenever the parent forks. Each child:
 *  - creates a client of its own and holds a whole conversation with it: onready,
 *    agent audio, stop, onclose 1000;
 *  - finds P, inherited from the parent, refusing every call with
 *    MILLIS_ERR_INVALID_STATE and a message that says it belongs to another process,
 *    and its getters answering neutral values, all without hanging; destroys it;
 *  - opens a conversation with a second client and, while it is ready, forks a
 *    grandchild that does the first two (the library re-created in a process whose
 *    parent was itself a forked child, the child's client being the inherited one);
 *    then stops that conversation, which must close with 1000.
 * A child reports through its exit status (waitpid): 0 when every check passed, 1 for a
 * failed check (file:line on stderr); a hang is turned into SIGALRM by alarm() (and the
 * parent kills a child that outlives a generous deadline), so it fails instead of
 * hanging. Between the children and after the last, the parent checks that P is still
 * ready (the children's destroy of P closed nothing of the parent's) and holds a second
 * conversation with a new client. Then a client's onready forks on the network thread
 * and the child returns from the callback at once: the library must end that child
 * (exit status 127, include/millis.h) and both conversations of the parent go on. At
 * the end P is stopped and must close with 1000.
 *
 * The deadlines (30 s for an event, 60 s for a child) only turn a hang into a failure;
 * nothing here measures how fast anything is. Exit status 0 on success.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define EVENT_DEADLINE_MS 30000L
#define CHILD_ALARM_S 60u
#define CHILD_DEADLINE_MS 90000L

static const char *endpoint;

static void sleep_ms(long ms)
{
    struct timespec ts;
    ts.tv_sec = ms / 1000;
    ts.tv_nsec = (ms % 1000) * 1000000L;
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* ------------------------------------------------------------------------------------
 * One conversation's events
 * ---------------------------------------------------------------------------------- */

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    long ready;
    long audio_bytes;
    long closes;
    long close_code;
    long errors;
    char last_error[256];
} conv;

static void conv_init(conv *s)
{
    pthread_condattr_t attr;
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &attr);
    pthread_condattr_destroy(&attr);
}

static void on_ready(millis_client *c, const char *sid, const char *payload, void *ud)
{
    conv *s = ud;
    (void)c, (void)sid, (void)payload;
    pthread_mutex_lock(&s->mu);
    s->ready = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_audio(millis_client *c, const uint8_t *pcm, size_t bytes, void *ud)
{
    conv *s = ud;
    (void)c, (void)pcm;
    pthread_mutex_lock(&s->mu);
    s->audio_bytes += (long)bytes;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    conv *s = ud;
    (void)c, (void)reason;
    pthread_mutex_lock(&s->mu);
    s->closes++;
    s->close_code = code;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_error(millis_client *c, millis_status status, const char *message, void *ud)
{
    conv *s = ud;
    (void)c;
    pthread_mutex_lock(&s->mu);
    s->errors++;
    snprintf(s->last_error, sizeof s->last_error, "%s: %s", millis_status_string(status),
             message ? message : "");
    pthread_mutex_unlock(&s->mu);
}

/* Waits until *field reaches at least `want`; 0 when the deadline passed first. */
static int wait_for(conv *s, const long *field, long want)
{
    struct timespec deadline;
    int ok;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += EVENT_DEADLINE_MS / 1000;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        if (*field >= want) { ok = 1; break; }
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) == ETIMEDOUT) {
            ok = *field >= want;
            break;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

#define WAIT(s, field, want, what) \
    do { if (!wait_for((s), &(s)->field, (want))) { \
             fprintf(stderr, "  [pid %ld] no %s within %ld ms (errors %ld, last: %s)\n", (long)getpid(), (what), \
                     EVENT_DEADLINE_MS, (s)->errors, (s)->last_error); \
             fail_at(__FILE__, __LINE__, "event: " what); } \
         else __atomic_add_fetch(&checks_passed, 1, __ATOMIC_RELAXED); } while (0)

static millis_client *new_client(conv *s)
{
    millis_config *cfg = millis_config_create();
    millis_status err = MILLIS_ERR_INTERNAL;
    millis_client *c;
    CHECK(cfg != NULL);
    CHECK_STATUS(millis_config_set_public_key(cfg, "test-public-key"), MILLIS_OK);
    CHECK_STATUS(millis_config_set_endpoint(cfg, endpoint), MILLIS_OK);
    CHECK_STATUS(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_APPLICATION), MILLIS_OK);
    c = millis_client_create(cfg, &err);
    CHECK(c != NULL);
    CHECK_STATUS(err, MILLIS_OK);
    millis_config_destroy(cfg);
    conv_init(s);
    CHECK_STATUS(millis_client_on_ready(c, on_ready, s), MILLIS_OK);
    CHECK_STATUS(millis_client_on_audio(c, on_audio, s), MILLIS_OK);
    CHECK_STATUS(millis_client_on_close(c, on_close, s), MILLIS_OK);
    CHECK_STATUS(millis_client_on_error(c, on_error, s), MILLIS_OK);
    return c;
}

/* Starts quick-agent and waits for onready and its agent audio. */
static void converse(millis_client *c, conv *s)
{
    CHECK_STATUS(millis_client_start_agent(c, "quick-agent"), MILLIS_OK);
    WAIT(s, ready, 1, "onready");
    WAIT(s, audio_bytes, 1, "agent audio");
    CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_READY);
}

/* A whole conversation with a new client: converse, stop, onclose 1000, destroy. */
static void whole_conversation(void)
{
    conv s;
    millis_client *c = new_client(&s);
    converse(c, &s);
    CHECK_STATUS(millis_client_stop(c), MILLIS_OK);
    WAIT(&s, closes, 1, "onclose after stop");
    CHECK_LONG_EQ(s.close_code, 1000);
    millis_client_destroy(c);
}

/* ------------------------------------------------------------------------------------
 * The child's view of the parent's client
 * ---------------------------------------------------------------------------------- */

static void check_refused(millis_client *inherited, millis_status got, const char *what)
{
    const char *message = millis_client_last_error(inherited);
    if (got != MILLIS_ERR_INVALID_STATE) {
        fprintf(stderr, "  %s on the parent's client returned %d (%s)\n", what, (int)got,
                millis_status_string(got));
    }
    CHECK(got == MILLIS_ERR_INVALID_STATE);
    CHECK(message != NULL);
    if (strstr(message, "process") == NULL) fprintf(stderr, "  %s: message \"%s\"\n", what, message);
    CHECK(strstr(message, "process") != NULL);
}

static void check_inherited_client(millis_client *inherited)
{
    static const uint8_t silence[640];
    char *text;
    check_refused(inherited, millis_client_start_agent(inherited, "quick-agent"), "start_agent");
    check_refused(inherited, millis_client_start(inherited, "{\"agent\":{\"agent_id\":\"quick-agent\"}}"), "start");
    check_refused(inherited, millis_client_send_audio(inherited, silence, sizeof silence), "send_audio");
    check_refused(inherited, millis_client_send_json(inherited, "{\"method\":\"ping\"}"), "send_json");
    check_refused(inherited, millis_client_mute(inherited), "mute");
    check_refused(inherited, millis_client_unmute(inherited), "unmute");
    check_refused(inherited, millis_client_on_audio(inherited, on_audio, NULL), "on_audio");
    check_refused(inherited, millis_client_stop_recording(inherited), "stop_recording");
    check_refused(inherited, millis_client_stop(inherited), "stop");
    /* Getters answer without waiting on anything the parent's threads may have held. */
    CHECK(millis_client_connection_state(inherited) == MILLIS_CONNECTION_IDLE);
    CHECK(millis_client_agent_state(inherited) == MILLIS_AGENT_IDLE);
    CHECK(millis_client_is_muted(inherited) == 0);
    CHECK(millis_client_audio_mode(inherited) == MILLIS_AUDIO_MODE_APPLICATION);
    text = millis_client_session_id(inherited);
    CHECK(text == NULL);
    text = millis_client_stats_json(inherited);
    CHECK(text == NULL);
    CHECK(millis_client_agent_analyser(inherited) == NULL);
    /* Forgets it: nothing of the parent's (its socket, its network thread's epoll) is
       touched, which the parent checks after this child has exited. */
    millis_client_destroy(inherited);
}

static void reap(pid_t pid, const char *who);

/* ------------------------------------------------------------------------------------
 * fork() inside a callback
 * ---------------------------------------------------------------------------------- */

static pid_t callback_child = -1;

/* Forks on the network thread; the child returns into the library at once, as a child
   whose exec failed might. The library must end it (_exit(127)) rather than let the
   copy of its network thread serve the parent's connections. */
static void on_ready_fork(millis_client *c, const char *sid, const char *payload, void *ud)
{
    pid_t pid;
    fflush(NULL);
    pid = fork();
    if (pid == 0) return;
    __atomic_store_n(&callback_child, pid, __ATOMIC_RELEASE);
    on_ready(c, sid, payload, ud);
}

/* The child's whole life: its exit status (a failed check exits 1 on its own). */
static int child(millis_client *inherited, int depth)
{
    alarm(CHILD_ALARM_S);
    whole_conversation();
    check_inherited_client(inherited);
    if (depth == 0) {
        /* A grandchild: the library again, in a child of a child that used it. */
        conv s;
        millis_client *mine = new_client(&s);
        pid_t pid;
        converse(mine, &s);
        fflush(NULL);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(child(mine, 1));
        reap(pid, "grandchild");
        /* Its own client survived the grandchild's destroy of it. */
        CHECK(millis_client_connection_state(mine) == MILLIS_CONNECTION_READY);
        CHECK_STATUS(millis_client_stop(mine), MILLIS_OK);
        WAIT(&s, closes, 1, "onclose of the child's client after the grandchild");
        CHECK_LONG_EQ(s.close_code, 1000);
        millis_client_destroy(mine);
    }
    printf("test_fork: [pid %ld] child at depth %d: %d checks passed\n", (long)getpid(), depth + 1, checks_passed);
    fflush(NULL);
    return 0;
}

/* Waits for a child and fails unless it exited with `want`. */
static void reap_expecting(pid_t pid, const char *who, int want)
{
    long deadline = now_ms() + CHILD_DEADLINE_MS;
    int status = 0;
    pid_t got;
    for (;;) {
        got = waitpid(pid, &status, WNOHANG);
        if (got == pid) break;
        if (got < 0 && errno != EINTR) fail_at(__FILE__, __LINE__, "waitpid failed");
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fprintf(stderr, "  the %s (pid %ld) did not finish within %ld ms: killed\n", who, (long)pid,
                    CHILD_DEADLINE_MS);
            fail_at(__FILE__, __LINE__, "child hung");
        }
        sleep_ms(20);
    }
    if (WIFSIGNALED(status)) {
        fprintf(stderr, "  the %s (pid %ld) was killed by signal %d%s\n", who, (long)pid, WTERMSIG(status),
                WTERMSIG(status) == SIGALRM ? " (SIGALRM: it hung)" : "");
    } else if (WEXITSTATUS(status) != want) {
        fprintf(stderr, "  the %s (pid %ld) exited %d, expected %d\n", who, (long)pid, WEXITSTATUS(status), want);
    }
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == want);
}

static void reap(pid_t pid, const char *who) { reap_expecting(pid, who, 0); }

/* ------------------------------------------------------------------------------------
 * The parent
 * ---------------------------------------------------------------------------------- */

static volatile int pacing = 1;

/* Streams silence into the parent's conversation: its network thread is at work when
   the parent forks. */
static void *pacer(void *arg)
{
    static const uint8_t frame[640];
    millis_client *c = arg;
    while (__atomic_load_n(&pacing, __ATOMIC_ACQUIRE)) {
        millis_status st = millis_client_send_audio(c, frame, sizeof frame);
        if (st != MILLIS_OK) {
            fprintf(stderr, "  send_audio in the parent returned %d (%s): %s\n", (int)st,
                    millis_status_string(st), millis_client_last_error(c));
            fail_at(__FILE__, __LINE__, "the parent's client accepts audio");
        }
        sleep_ms(20);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    conv ps;
    millis_client *p;
    pthread_t pacer_thread;
    int children = 3, i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s WS_URL [--children N]\n", argv[0]);
        return 2;
    }
    endpoint = argv[1];
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--children") == 0 && i + 1 < argc) children = atoi(argv[++i]);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);

    p = new_client(&ps);
    converse(p, &ps);
    CHECK(pthread_create(&pacer_thread, NULL, pacer, p) == 0);

    for (i = 0; i < children; i++) {
        pid_t pid;
        fflush(NULL);
        pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) _exit(child(p, 0));
        reap(pid, "child");
        /* The child's destroy of P touched nothing of the parent's: still ready, and no
           close arrived (the server would close a connection the child had closed). */
        sleep_ms(100);
        CHECK(millis_client_connection_state(p) == MILLIS_CONNECTION_READY);
        pthread_mutex_lock(&ps.mu);
        CHECK(ps.closes == 0);
        pthread_mutex_unlock(&ps.mu);
        /* A new client of the parent's works after the fork. */
        whole_conversation();
    }

    {
        conv s;
        millis_client *c = new_client(&s);
        CHECK_STATUS(millis_client_on_ready(c, on_ready_fork, &s), MILLIS_OK);
        converse(c, &s);
        CHECK(__atomic_load_n(&callback_child, __ATOMIC_ACQUIRE) > 0);
        reap_expecting(__atomic_load_n(&callback_child, __ATOMIC_ACQUIRE), "child forked in onready", 127);
        /* The parent's conversations went on; nothing of theirs was read or written by it. */
        CHECK(millis_client_connection_state(c) == MILLIS_CONNECTION_READY);
        CHECK(millis_client_connection_state(p) == MILLIS_CONNECTION_READY);
        CHECK_STATUS(millis_client_stop(c), MILLIS_OK);
        WAIT(&s, closes, 1, "onclose of the client whose onready forked");
        CHECK_LONG_EQ(s.close_code, 1000);
        CHECK(s.errors == 0);
        millis_client_destroy(c);
    }

    __atomic_store_n(&pacing, 0, __ATOMIC_RELEASE);
    CHECK(pthread_join(pacer_thread, NULL) == 0);
    CHECK_STATUS(millis_client_stop(p), MILLIS_OK);
    WAIT(&ps, closes, 1, "onclose of the parent's first client");
    CHECK_LONG_EQ(ps.close_code, 1000);
    CHECK(ps.errors == 0);
    millis_client_destroy(p);
    printf("test_fork: %d children (each with a grandchild): %d checks passed in the parent\n",
           children, checks_passed);
    return 0;
}
