/*
 * millis_example.c — one spoken conversation with a Millis voice agent, in C.
 *
 * The user's voice comes from a WAV file and the agent's voice goes to another (or,
 * without --input and --output, from the microphone and to the speaker: ALSA's
 * default devices). Every event is printed as it arrives. The conversation ends when
 * the agent ends it, or on Ctrl-C.
 *
 *   cc millis_example.c $(pkg-config --cflags --libs millis) -o millis_example
 *   MILLIS_PUBLIC_KEY=test-public-key ./millis_example --endpoint ws://127.0.0.1:8765/millis \
 *       --agent-id demo-agent --input ../audio/user.wav --output agent.wav
 *
 * The callbacks run on the library's network thread, never inside a call of yours:
 * they share state with main under a lock, and return quickly. What a callback is
 * handed is borrowed for the call: copy what you keep.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What the callbacks tell main, under `lock`; passed to every callback as user_data. */
struct conversation {
    pthread_mutex_t lock;
    int closed, close_code;
};

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

/* ---- The callbacks (network thread) -------------------------------------------------- */

static void on_open(millis_client *c, void *ud) { (void)c; (void)ud; printf("onopen\n"); }
static void on_session_ended(millis_client *c, void *ud) { (void)c; (void)ud; printf("onsessionended\n"); }
static void on_latency(millis_client *c, double ms, void *ud) { (void)c; (void)ud; printf("onlatency %.1f ms\n", ms); }

static void on_ready(millis_client *c, const char *session_id, const char *payload, void *ud)
{
    (void)c; (void)ud;
    printf("onready session_id=\"%s\" payload=%s\n", session_id, payload);
}

static void on_transcript(millis_client *c, const char *text, int is_final, void *ud)
{
    (void)c; (void)ud;
    printf("ontranscript (%s) \"%s\"\n", is_final ? "final" : "partial", text);
}

static void on_response_text(millis_client *c, const char *text, int is_final, void *ud)
{
    (void)c; (void)ud;
    printf("onresponsetext (%s) \"%s\"\n", is_final ? "final" : "partial", text);
}

static void on_function(millis_client *c, const char *text, const char *name, const char *params, void *ud)
{
    (void)c; (void)text; (void)ud;
    printf("onfunction %s %s\n", name, params);
}

static void on_agent_state(millis_client *c, millis_agent_state state, void *ud)
{
    (void)c; (void)ud;
    printf("onagentstate %s\n", millis_agent_state_string(state));
}

static void on_error(millis_client *c, millis_status status, const char *message, void *ud)
{
    (void)c; (void)ud;
    printf("onerror %s: %s\n", millis_status_string(status), message);
}

static void on_close(millis_client *c, int code, const char *reason, void *ud)
{
    struct conversation *conv = ud;
    (void)c;
    printf("onclose %d \"%s\"\n", code, reason);
    pthread_mutex_lock(&conv->lock);
    conv->closed = 1;
    conv->close_code = code;
    pthread_mutex_unlock(&conv->lock);
}

/* ---- The conversation (main thread) -------------------------------------------------- */

/* --help, or a wrong argument: the usage, and the exit status. */
static int usage(const char *argv0, const char *arg)
{
    int help = arg != NULL && strcmp(arg, "--help") == 0;
    fprintf(help ? stdout : stderr, "usage: %s [--endpoint URL] [--agent-id ID] [--input user.wav]"
            " [--output agent.wav]\nThe public key comes from $MILLIS_PUBLIC_KEY.\n", argv0);
    return help ? 0 : 1;
}

int main(int argc, char **argv)
{
    const char *endpoint = "ws://127.0.0.1:8765/millis", *agent_id = "demo-agent";
    const char *input = NULL, *output = NULL, *key = getenv("MILLIS_PUBLIC_KEY");
    static struct conversation conv = {PTHREAD_MUTEX_INITIALIZER, 0, -1};
    millis_config *cfg;
    millis_client *client = NULL;
    millis_status st = MILLIS_OK;
    int i, closed = 0, stopped = 0;

    for (i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0) endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--agent-id") == 0) agent_id = argv[i + 1];
        else if (strcmp(argv[i], "--input") == 0) input = argv[i + 1];
        else if (strcmp(argv[i], "--output") == 0) output = argv[i + 1];
        else return usage(argv[0], argv[i]);
    }
    if (i < argc) return usage(argv[0], argv[i]); /* --help, or an option without its value */
    setvbuf(stdout, NULL, _IOLBF, 0);   /* each line at once, even into a pipe */

    /* 1. A config. Each setter checks its argument; on an error, the config's last
     *    error says what is wrong. Device audio: the library records and plays (audio
     *    files stand in for the devices); a device that does not open fails the start. */
    cfg = millis_config_create();
    if (cfg == NULL) return 1;
    if ((st = millis_config_set_public_key(cfg, key ? key : "test-public-key")) != MILLIS_OK
        || (st = millis_config_set_endpoint(cfg, endpoint)) != MILLIS_OK
        || (st = millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_DEVICE)) != MILLIS_OK
        || (input && (st = millis_config_set_audio_input_file(cfg, input, MILLIS_FILE_REALTIME)) != MILLIS_OK)
        || (output && (st = millis_config_set_audio_output_file(cfg, output)) != MILLIS_OK)) {
        fprintf(stderr, "error: %s: %s\n", millis_status_string(st), millis_config_last_error(cfg));
        millis_config_destroy(cfg);
        return 1;
    }

    /* 2. A client, made from the config (it keeps a copy: the config can go). */
    client = millis_client_create(cfg, &st);
    if (client == NULL) fprintf(stderr, "error: %s: %s\n", millis_status_string(st), millis_config_last_error(cfg));
    millis_config_destroy(cfg);
    if (client == NULL) return 1;

    /* 3. The callbacks, before the start. */
    millis_client_on_open(client, on_open, &conv);
    millis_client_on_ready(client, on_ready, &conv);
    millis_client_on_transcript(client, on_transcript, &conv);
    millis_client_on_response_text(client, on_response_text, &conv);
    millis_client_on_function(client, on_function, &conv);
    millis_client_on_latency(client, on_latency, &conv);
    millis_client_on_agent_state(client, on_agent_state, &conv);
    millis_client_on_session_ended(client, on_session_ended, &conv);
    millis_client_on_error(client, on_error, &conv);
    millis_client_on_close(client, on_close, &conv);
    signal(SIGINT, on_sigint);

    /* 4. Start. It returns at once (it fails here only for what it can tell at once: a
     *    device or a file that does not open); onopen and onready follow, or onerror
     *    and onclose. The library streams the user's voice from onopen on, and plays
     *    (or writes) the agent's. */
    st = millis_client_start_agent(client, agent_id);
    if (st != MILLIS_OK) {
        fprintf(stderr, "error: %s: %s\n", millis_status_string(st), millis_client_last_error(client));
        millis_client_destroy(client);
        return 1;
    }

    /* 5. Wait for onclose. Ctrl-C stops the conversation: the library closes the
     *    connection (code 1000), then calls onclose. */
    while (!closed) {
        struct timespec tick = {0, 100 * 1000000L};
        if (interrupted && !stopped) {
            printf("Ctrl-C: stopping\n");
            millis_client_stop(client);
            stopped = 1;
        }
        nanosleep(&tick, NULL);
        pthread_mutex_lock(&conv.lock);
        closed = conv.closed;
        pthread_mutex_unlock(&conv.lock);
    }

    /* 6. The client still answers questions; the strings it returns are ours to free. */
    {
        char *session_id = millis_client_session_id(client), *stats = millis_client_stats_json(client);
        printf("session id: %s\nstats: %s\n", session_id ? session_id : "(none)", stats ? stats : "{}");
        millis_free(session_id);
        millis_free(stats);
    }

    /* 7. Destroy: no callback runs after it (conv needs no lock any more), and the
     *    output file is complete. */
    millis_client_destroy(client);
    if (output) printf("the agent's voice: %s\n", output);
    return conv.close_code == 1000 ? 0 : 1;
}
