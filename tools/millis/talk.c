/*
 * talk.c — `millis talk`: a conversation with an agent, through the ALSA devices or
 * audio files, shown live in the terminal.
 *
 * This file holds the command itself: the client's configuration, the start, the main
 * loop (events, keys, signals, deadlines) and the end (what stays on the terminal, the
 * exit status). talk.h says what the other talk_*.c files hold and how the threads
 * share the work.
 *
 * Output: on a terminal, a live screen (status, two level meters, the transcript);
 * otherwise (or with --plain) one stable line per final event, for scripts and tests.
 */
#define _POSIX_C_SOURCE 200809L

#include "talk.h"

#include "common.h"

#include <millis.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------------------- */

static int config_error(millis_config *cfg, const char *option, const char *value)
{
    char why[4096];
    int rc;
    cli_translate(millis_config_last_error(cfg), why, sizeof why);
    rc = usage_error("talk", "%s '%s': %s", option, value ? value : "", why);
    millis_config_destroy(cfg);
    return rc;
}

/* --header "Name: value": the name is what precedes the first colon, as given (the
 * library refuses one with spaces); the library trims the value's spaces. Returns 0,
 * else the exit code (cfg destroyed). */
static int add_headers(millis_config *cfg, const struct options *o)
{
    size_t i;
    for (i = 0; i < o->header_count; i++) {
        const char *arg = o->headers[i], *colon = strchr(arg, ':');
        char *name = malloc((size_t)(colon - arg) + 1);
        millis_status hs;
        if (name == NULL) {
            error_msg("out of memory");
            millis_config_destroy(cfg);
            return EXIT_FAILURE_RUNTIME;
        }
        memcpy(name, arg, (size_t)(colon - arg));
        name[colon - arg] = '\0';
        hs = millis_config_add_header(cfg, name, colon + 1);
        free(name);
        if (hs != MILLIS_OK) return config_error(cfg, "--header", arg);
    }
    return 0;
}

/* The config of the conversation in *out; returns 0, else the exit code (after the
 * message). */
static int configure(const struct options *o, const char *key, const char *endpoint, millis_config **out)
{
    millis_config *cfg = millis_config_create();
    int rc;
    if (cfg == NULL) {
        error_msg("out of memory");
        return EXIT_FAILURE_RUNTIME;
    }
#define SET(call, option, value)                                                                   \
    do {                                                                                           \
        if ((call) != MILLIS_OK) return config_error(cfg, option, value);                          \
    } while (0)
    SET(millis_config_set_public_key(cfg, key), ENV_PUBLIC_KEY, "(hidden)");
    SET(millis_config_set_endpoint(cfg, endpoint), o->endpoint ? "--endpoint" : ENV_ENDPOINT, endpoint);
    SET(millis_config_set_ready_timeout_ms(cfg, (unsigned)(o->timeout * 1000)), "--timeout", "");
    /* The log is shown only with --verbose: without it, none is queued. */
    SET(millis_config_set_log_level(cfg, o->verbose ? MILLIS_LOG_DEBUG : MILLIS_LOG_NONE), "--verbose", "");
    SET(talk_enable_events(cfg), "event queue", "");
    if (o->ca_file) SET(millis_config_set_ca_file(cfg, o->ca_file), "--ca-file", o->ca_file);
    if ((rc = add_headers(cfg, o)) != 0) return rc;
    /* Device audio, explicitly: a missing device is an error at start, not a silent
     * fall back to application audio (where nothing would be heard). */
    SET(millis_config_set_audio_mode(cfg, MILLIS_AUDIO_MODE_DEVICE), "audio mode", "device");
    SET(millis_config_set_audio_devices(cfg, o->capture, o->playback), o->capture ? "--capture" : "--playback",
        o->capture ? o->capture : o->playback);
    SET(millis_config_set_audio_processing(cfg, o->echo_cancellation, o->noise_suppression, o->gain_control),
        "--no-echo-cancellation", "");
    SET(millis_config_set_echo_canceller(cfg, o->echo_canceller), "--echo-canceller",
        o->echo_canceller == MILLIS_ECHO_CANCELLER_SPEEX ? "speex" : "webrtc");
    if (o->input)
        SET(millis_config_set_audio_input_file(cfg, o->input, o->fast ? MILLIS_FILE_FAST : MILLIS_FILE_REALTIME),
            "--input", o->input);
    if (o->output) SET(millis_config_set_audio_output_file(cfg, o->output), "--output", o->output);
    if (o->record)
        SET(millis_config_set_recording(cfg, o->record, o->record_mono ? MILLIS_RECORD_MONO : MILLIS_RECORD_STEREO),
            "--record", o->record);
#undef SET
    *out = cfg;
    return 0;
}

/* The client, its event queue's descriptor, its analysers, the transcript's lines and
 * the signals' self-pipe, their handlers in place. Returns 0, else the exit code (cfg
 * is destroyed either way). */
static int create_client(struct session *s, millis_config *cfg)
{
    millis_status st;
    char why[4096];
    s->client = millis_client_create(cfg, &st);
    if (s->client == NULL) {
        cli_library_error(st, millis_config_last_error(cfg), why, sizeof why);
        error_msg("cannot create the client: %s", why);
        millis_config_destroy(cfg);
        return EXIT_FAILURE_RUNTIME;
    }
    millis_config_destroy(cfg);
    s->event_fd = millis_client_event_fd(s->client);
    if (s->event_fd < 0) {
        cli_translate(millis_client_last_error(s->client), why, sizeof why);
        error_msg("cannot take the client's events: %s", why);
        millis_client_destroy(s->client);
        return EXIT_FAILURE_RUNTIME;
    }
    s->user_meter = millis_client_user_analyser(s->client);
    s->agent_meter = millis_client_agent_analyser(s->client);
    s->lines = calloc(TRANSCRIPT_MAX, sizeof *s->lines);
    if (s->lines == NULL || talk_signals_open() != 0) {
        error_msg("out of memory or descriptors");
        millis_client_destroy(s->client);
        free(s->lines);
        return EXIT_FAILURE_RUNTIME;
    }
    talk_install_signal_handlers();
    return 0;
}

/* A device that does not open: the library's message (it names the device and ALSA's
 * reason), then the option that picks another, for the side that failed. */
static void device_error(const char *message)
{
    char text[4096];
    cli_translate(message, text, sizeof text);
    if (strstr(message, "playback device") != NULL)
        error_msg("%s\n       Choose the speaker with --playback NAME (--device NAME sets both), or write the\n"
                  "       agent's voice to a file: --output FILE.",
                  text);
    else if (strstr(message, "capture device") != NULL)
        error_msg("%s\n       Choose the microphone with --capture NAME (--device NAME sets both), or read\n"
                  "       your voice from a file: --input FILE.",
                  text);
    else
        error_msg("%s\n       Choose the devices with --capture NAME and --playback NAME (or --device NAME),\n"
                  "       or use files: --input FILE --output FILE.",
                  text);
}

/* millis_client_start; returns 0, else the exit code (client destroyed). */
static int start(struct session *s, const char *options_json)
{
    millis_status st;
    char why[4096];
    if (!s->live) setvbuf(stdout, NULL, _IOLBF, 0);
    st = millis_client_start(s->client, options_json);
    if (st == MILLIS_OK) return 0;
    if (st == MILLIS_ERR_AUDIO_DEVICE) {
        device_error(millis_client_last_error(s->client));
    } else {
        cli_library_error(st, millis_client_last_error(s->client), why, sizeof why);
        error_msg("cannot start: %s", why);
    }
    millis_client_destroy(s->client);
    free(s->lines);
    talk_signals_close();
    return st == MILLIS_ERR_INVALID_JSON || st == MILLIS_ERR_INVALID_ARGUMENT ? EXIT_USAGE : EXIT_FAILURE_RUNTIME;
}

/* ------------------------------------------------------------------------------------
 * The main loop
 * ---------------------------------------------------------------------------------- */

/* The keys typed since the last look: m mutes and unmutes, q (Ctrl-C, Ctrl-D) quits.
 * Returns 1 when a second quit means not waiting for the server. */
static int handle_keys(struct session *s)
{
    char keys[64];
    ssize_t n = read(STDIN_FILENO, keys, sizeof keys), i;
    if (n <= 0 && !(n < 0 && (errno == EINTR || errno == EAGAIN))) s->keyboard = 0; /* the terminal went away */
    for (i = 0; i < n; i++) {
        char k = keys[i];
        if (k == 'm' || k == 'M') {
            if (millis_client_is_muted(s->client)) {
                millis_client_unmute(s->client);
                talk_info(s, LINE_INFO, "microphone on");
            } else {
                millis_client_mute(s->client);
                talk_info(s, LINE_INFO, "microphone muted (silence is sent)");
            }
        } else if (k == 'q' || k == 'Q' || k == 3 /* Ctrl-C */ || k == 4 /* Ctrl-D */) {
            if (s->stopping) return 1; /* a second quit does not wait for the server */
            s->quit_by_user = 1;
            talk_stop(s, "you quit");
        }
    }
    return 0;
}

/* Not ready in time, the input file's linger over, no onclose after stop. Returns 1
 * when the loop must end. */
static int check_deadlines(struct session *s, double ready_deadline)
{
    double now = now_seconds();
    if (!s->ready && !s->stopping && now > ready_deadline) {
        s->failed = 1;
        if (s->live)
            talk_info(s, LINE_ERROR, "not ready within %.1f s (--timeout)", s->opt->timeout);
        else
            error_msg("the session was not ready within %.1f s (--timeout); is the endpoint %s right?",
                      s->opt->timeout, s->endpoint);
        talk_stop(s, "not ready in time");
    }
    if (s->input_ended && !s->stopping && now >= s->linger_deadline)
        talk_stop(s, "the input ended (--linger elapsed)");
    if (s->stopping && now > s->stop_deadline) {
        if (!s->live) error_msg("no onclose within %.0f s of stopping; giving up", STOP_GRACE_SECONDS);
        s->failed = 1;
        return 1;
    }
    return 0;
}

/* The live screen: drawn after what it shows changed (`changed`) and at least once a
 * frame. The agent's audio events wake the main loop many times a frame: they alone do
 * not redraw. Returns how long poll() may wait: until the next frame, or 100 ms (the
 * deadlines) without the live screen. */
static int draw_when_due(struct session *s, int changed, double *next_frame)
{
    double now = now_seconds();
    if (!s->live) return 100;
    if (changed || now >= *next_frame) {
        talk_draw(s);
        *next_frame = now + FRAME_SECONDS;
    }
    return (int)((*next_frame - now) * 1000.0) + 1;
}

/* Events, keys, signals, deadlines; the screen 20 times a second. One poll() waits on
 * the client's event queue, the signals' self-pipe and the keyboard. Returns 1 when it
 * ended without waiting for onclose (a second Ctrl-C or quit). */
static int run(struct session *s)
{
    int handled_signals = 0, changed = 1;
    double ready_deadline = now_seconds() + s->opt->timeout + 2.0; /* the library's own timeout comes first */
    double next_frame = 0;
    for (;;) {
        struct pollfd fds[3] = {{-1, POLLIN, 0}, {-1, POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        nfds_t nfds = s->keyboard ? 3 : 2;
        int shown;
        fds[0].fd = s->event_fd;
        fds[1].fd = talk_signals_fd();
        if (poll(fds, nfds, draw_when_due(s, changed, &next_frame)) < 0 && errno != EINTR) return 0;
        talk_signals_drain();
        if ((shown = talk_take_events(s)) < 0) return 0;
        changed = shown > 0 || fds[1].revents != 0 || (nfds == 3 && fds[2].revents != 0);
        if (talk_winch) {
            talk_winch = 0;
            if (s->live) talk_update_size(s);
        }
        if (talk_signal_count > handled_signals) {
            handled_signals = talk_signal_count;
            if (talk_signal_count >= 2) return 1;
            s->quit_by_user = 1;
            talk_stop(s, talk_last_signal == SIGINT ? "interrupted" : "terminated");
        }
        if (s->keyboard && nfds == 3 && (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) && handle_keys(s)) return 1;
        if (s->closed) return 0;
        if (check_deadlines(s, ready_deadline)) return 0;
    }
}

/* ------------------------------------------------------------------------------------
 * The end
 * ---------------------------------------------------------------------------------- */

/* What was said stays on the terminal once the live screen is gone. */
static void print_transcript(const struct session *s)
{
    size_t i;
    for (i = 0; i < s->line_count; i++) {
        const struct tline *l = &s->lines[i];
        if (l->kind == LINE_USER || l->kind == LINE_AGENT)
            printf("%s%s%s\n", l->kind == LINE_USER ? "user  > " : "agent > ", l->text, l->partial ? " ..." : "");
        else if (l->kind == LINE_TURN)
            printf("        %s\n", l->text);
        else if (l->kind == LINE_ERROR)
            fprintf(stderr, "%s\n", l->text);
    }
    if (s->closed)
        printf("closed %d%s%s\n", s->close_code, s->close_reason && s->close_reason[0] ? " " : "",
               s->close_reason ? s->close_reason : "");
    fflush(stdout);
}

/* The timeline path of a recording: the extension replaced by .jsonl. */
static void timeline_path(const char *audio, char *out_buf, size_t size)
{
    const char *slash = strrchr(audio, '/'), *dot = strrchr(audio, '.');
    size_t stem = (dot && (!slash || dot > slash)) ? (size_t)(dot - audio) : strlen(audio);
    snprintf(out_buf, size, "%.*s.jsonl", (int)stem, audio);
}

static int exit_status(const struct session *s, int forced)
{
    if (s->key_refused) return EXIT_AUTH;
    if (s->failed) return EXIT_FAILURE_RUNTIME;
    if (forced) return talk_signal_count >= 2 ? 128 + SIGINT : EXIT_OK;
    if (!s->ready) {
        if (s->quit_by_user) return EXIT_OK;
        error_msg("the conversation closed before it was ready (%d %s)", s->close_code,
                  s->close_reason ? s->close_reason : "");
        return EXIT_FAILURE_RUNTIME;
    }
    if (s->closed && s->close_code != 1000) {
        error_msg("the conversation closed with code %d (%s)", s->close_code, s->close_reason ? s->close_reason : "");
        return EXIT_FAILURE_RUNTIME;
    }
    return EXIT_OK;
}

/* Destroys the client, tells what is left (transcript, recording); returns the exit
 * status and frees the session. */
static int finish(struct session *s, int forced)
{
    const struct options *o = s->opt;
    size_t i;
    int exit_code;
    talk_report_pending_error(s);
    /* Complete the recording's files before telling where they are. */
    if (o->record && !forced) millis_client_stop_recording(s->client);
    millis_client_destroy(s->client); /* the events still queued with it */
    if (s->live) {
        talk_restore_terminal();
        print_transcript(s);
    }
    if (o->record && !forced) {
        char timeline[4096];
        timeline_path(o->record, timeline, sizeof timeline);
        if (s->live)
            printf("recording: %s, timeline %s (%s replay %s)\n", o->record, timeline, prog_name, timeline);
        else
            talk_out("recording %s %s", o->record, timeline);
    }
    exit_code = exit_status(s, forced);
    for (i = 0; i < s->line_count; i++) free(s->lines[i].text);
    free(s->lines);
    free(s->session_id);
    free(s->close_reason);
    free(s->close_error);
    free(s->frame);
    talk_signals_close();
    return exit_code;
}

/* ------------------------------------------------------------------------------------
 * The command
 * ---------------------------------------------------------------------------------- */

int cmd_talk(int argc, char **argv)
{
    struct options o;
    struct session s;
    millis_config *cfg = NULL;
    const char *key;
    char *options_json;
    int rc;

    rc = talk_parse_options(argc, argv, &o);
    if (rc == -1) return EXIT_OK; /* --help */
    if (rc != 0) return rc;
    key = public_key_from_env("talk");
    if (key == NULL) return EXIT_USAGE;
    options_json = talk_start_options(&o);
    if (options_json == NULL) return EXIT_USAGE;

    memset(&s, 0, sizeof s);
    s.opt = &o;
    s.endpoint = endpoint_or_default(o.endpoint);
    s.agent_label = o.agent_id ? o.agent_id : "(from --agent-config)";
    s.user_partial = s.agent_partial = -1;
    s.utf8 = utf8_terminal();
    s.live = !o.plain && isatty(STDOUT_FILENO);
    s.keyboard = s.live && isatty(STDIN_FILENO);

    if ((rc = configure(&o, key, s.endpoint, &cfg)) != 0 || (rc = create_client(&s, cfg)) != 0
        || (rc = start(&s, options_json)) != 0) {
        free(options_json);
        return rc;
    }
    free(options_json);
    if (s.live) {
        talk_update_size(&s);
        talk_enter_screen(s.keyboard);
        talk_info(&s, LINE_INFO, "connecting to %s", s.endpoint);
    }
    return finish(&s, run(&s));
}
