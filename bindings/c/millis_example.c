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
 * The events are taken from the client's event queue on this program's own thread, in
 * one loop: no callback, no lock. (Callbacks are the other way: millis_client_on_*.)
 * What an event holds is lent until the next millis_client_next_event: copy what you
 * keep.
 */
#define _POSIX_C_SOURCE 200809L

#include <millis.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) { (void)sig; interrupted = 1; }

/* Prints one event as it arrives. */
static void print_event(const millis_event *ev)
{
    switch (ev->type) {
    case MILLIS_EVENT_OPEN: printf("onopen\n"); break;
    case MILLIS_EVENT_READY: printf("onready session_id=\"%s\" payload=%s\n", ev->session_id, ev->json); break;
    case MILLIS_EVENT_TRANSCRIPT:
        printf("ontranscript (%s) \"%s\"\n", ev->is_final ? "final" : "partial", ev->text);
        break;
    case MILLIS_EVENT_RESPONSE_TEXT:
        printf("onresponsetext (%s) \"%s\"\n", ev->is_final ? "final" : "partial", ev->text);
        break;
    case MILLIS_EVENT_FUNCTION: printf("onfunction %s %s\n", ev->name, ev->json); break;
    case MILLIS_EVENT_LATENCY: printf("onlatency %.1f ms\n", ev->latency_ms); break;
    case MILLIS_EVENT_AGENT_STATE: printf("onagentstate %s\n", millis_agent_state_string(ev->agent_state)); break;
    case MILLIS_EVENT_SESSION_ENDED: printf("onsessionended\n"); break;
    case MILLIS_EVENT_ERROR: printf("onerror %s: %s\n", millis_status_string(ev->status), ev->message); break;
    case MILLIS_EVENT_CLOSE: printf("onclose %d \"%s\"\n", ev->code, ev->message); break;
    default: break; /* audio (the library plays it), logs, analysers, ... */
    }
}

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
    millis_config *cfg;
    millis_client *client = NULL;
    millis_status st = MILLIS_OK;
    millis_event ev = MILLIS_EVENT_INIT;
    int i, close_code = -1, stopped = 0;

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
     *    files stand in for the devices); a device that does not open fails the start.
     *    The event queue keeps the client's events until this program takes them. */
    cfg = millis_config_create();
    if (cfg == NULL) return 1;
    if ((st = millis_config_set_public_key(cfg, key ? key : "test-public-key")) != MILLIS_OK
        || (st = millis_config_set_event_queue(cfg, 8u << 20)) != MILLIS_OK
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

    signal(SIGINT, on_sigint);

    /* 3. Start. It returns at once (it fails here only for what it can tell at once: a
     *    device or a file that does not open); onopen and onready follow, or onerror
     *    and onclose. The library streams the user's voice from onopen on, and plays
     *    (or writes) the agent's. */
    st = millis_client_start_agent(client, agent_id);
    if (st != MILLIS_OK) {
        fprintf(stderr, "error: %s: %s\n", millis_status_string(st), millis_client_last_error(client));
        millis_client_destroy(client);
        return 1;
    }

    /* 4. The events, until onclose: waiting at most 100 ms for each, so that Ctrl-C is
     *    seen. Ctrl-C stops the conversation: the library closes the connection (code
     *    1000), then onclose comes. */
    while (close_code < 0) {
        if (interrupted && !stopped) {
            printf("Ctrl-C: stopping\n");
            millis_client_stop(client);
            stopped = 1;
        }
        if (millis_client_next_event(client, &ev, 100) != MILLIS_OK) {
            fprintf(stderr, "error: %s\n", millis_client_last_error(client));
            break;
        }
        print_event(&ev);
        if (ev.type == MILLIS_EVENT_CLOSE) close_code = ev.code;
    }

    /* 5. The client still answers questions; the strings it returns are ours to free. */
    {
        char *session_id = millis_client_session_id(client), *stats = millis_client_stats_json(client);
        printf("session id: %s\nstats: %s\n", session_id ? session_id : "(none)", stats ? stats : "{}");
        millis_free(session_id);
        millis_free(stats);
    }

    /* 6. Destroy: the output file is complete. */
    millis_client_destroy(client);
    if (output) printf("the agent's voice: %s\n", output);
    return close_code == 1000 ? 0 : 1;
}
