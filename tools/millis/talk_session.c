/*
 * talk_session.c — `millis talk`'s events as the main thread handles them: the
 * session's state, the plain output (one stable line per final event, for scripts and
 * tests) and the transcript the live screen draws.
 */
#define _POSIX_C_SOURCE 200809L

#include "talk.h"

#include "common.h"

#include <millis.h>

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

void talk_info(struct session *s, enum line_kind kind, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    add_line(s, kind, text, 0);
}

/* Plain output: one line, flushed at once. */
void talk_out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

void talk_stop(struct session *s, const char *why)
{
    if (s->stopping || s->closed) return;
    s->stopping = 1;
    s->stop_deadline = now_seconds() + STOP_GRACE_SECONDS;
    if (s->live)
        talk_info(s, LINE_INFO, "stopping: %s", why);
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
            talk_info(s, LINE_ERROR, "turn: unreadable breakdown %s", json ? json : "");
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
        talk_info(s, LINE_TURN, "turn %d: %s ms (end of speech %s start_answering %s, %s first audio %s, %s played %s)",
             number, total, arrow, a, arrow, b, arrow, c);
    } else {
        figure(lat, "total", 1, total, sizeof total);
        figure(lat, "end_of_speech_to_start_answering", 1, a, sizeof a);
        figure(lat, "start_answering_to_first_audio", 1, b, sizeof b);
        figure(lat, "first_audio_to_played", 1, c, sizeof c);
        talk_out("turn %d: total %s ms (end_of_speech_to_start_answering %s, start_answering_to_first_audio %s, "
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

/* Events that change the session's state. */
static void handle_ready(struct session *s, const char *session_id)
{
    s->ready = 1;
    free(s->session_id);
    s->session_id = strdup(session_id ? session_id : "");
    if (s->live)
        talk_info(s, LINE_INFO, "ready: session %s", session_id && session_id[0] ? session_id : "(no id)");
    else
        talk_out("ready %s", session_id && session_id[0] ? session_id : "-");
}

static void handle_state(struct session *s, int state)
{
    s->agent_state = state;
    if (!s->live) talk_out("state: %s", millis_agent_state_string((millis_agent_state)state));
    if (s->input_ended && !s->stopping) {
        if (state != MILLIS_AGENT_IDLE) {
            s->busy_since_input = 1;
        } else if (s->busy_since_input) {
            talk_stop(s, "the input ended and the agent has answered");
        }
    }
}

/* An error, once: a line of the live screen, or stderr; with what to do about a
 * refused key. */
static void report_error(struct session *s, const char *text)
{
    if (s->live)
        talk_info(s, LINE_ERROR, "error: %s%s%s", text, s->key_refused ? "; the server refused the public key: check " : "",
                  s->key_refused ? ENV_PUBLIC_KEY : "");
    else if (s->key_refused)
        error_msg("%s\n       The server refused the public key: check %s (the public key from the Millis\n"
                  "       playground; the devserver takes test-public-key).",
                  text, ENV_PUBLIC_KEY);
    else
        error_msg("%s", text);
}

void talk_report_pending_error(struct session *s)
{
    if (s->close_error == NULL) return;
    report_error(s, s->close_error);
    free(s->close_error);
    s->close_error = NULL;
}

static void handle_close(struct session *s, int code, const char *reason)
{
    if (code == CLOSE_KEY_REFUSED) s->key_refused = 1;
    s->closed = 1;
    s->close_code = code;
    free(s->close_reason);
    s->close_reason = strdup(reason ? reason : "");
    if (s->live)
        talk_info(s, code == 1000 ? LINE_INFO : LINE_ERROR, "closed %d %s", code, reason ? reason : "");
    else
        talk_out("closed %d%s%s", code, reason && reason[0] ? " " : "", reason ? reason : "");
    talk_report_pending_error(s);
}

static void handle_error(struct session *s, millis_status status, const char *message)
{
    char text[4096];
    /* A malformed server message is reported but does not end the conversation. */
    if (status != MILLIS_ERR_BAD_MESSAGE) s->failed = 1;
    cli_library_error(status, message, text, sizeof text);
    if (status == MILLIS_ERR_HANDSHAKE && message != NULL
        && (strstr(message, "HTTP 401") != NULL || strstr(message, "HTTP 403") != NULL))
        s->key_refused = 1;
    if (status == MILLIS_ERR_SERVER_CLOSED) {
        /* The close that follows tells whether the key was refused: one report, then. */
        free(s->close_error);
        s->close_error = strdup(text);
        if (s->close_error != NULL) return;
    }
    report_error(s, text);
}

static void handle_input_ended(struct session *s)
{
    s->input_ended = 1;
    s->busy_since_input = s->agent_state != MILLIS_AGENT_IDLE;
    s->linger_deadline = now_seconds() + s->opt->linger;
    if (s->live)
        talk_info(s, LINE_INFO, "the input file ended; silence follows");
    else
        talk_out("input ended");
}

/* Reconnections and, with --verbose (the library's log level is none without it), the
 * library's log. */
static void show_connection_event(struct session *s, const millis_event *e)
{
    char message[4096];
    cli_translate(e->message, message, sizeof message);
    switch (e->type) {
    case MILLIS_EVENT_RECONNECTING:
        if (s->live)
            talk_info(s, LINE_ERROR, "connection lost: reconnecting, attempt %d in %d ms", (int)e->attempt,
                      (int)e->delay_ms);
        else
            talk_out("reconnecting: attempt %d in %d ms", (int)e->attempt, (int)e->delay_ms);
        break;
    case MILLIS_EVENT_RECONNECTED:
        if (s->live)
            talk_info(s, LINE_INFO, "reconnected: session %s", e->session_id ? e->session_id : "");
        else
            talk_out("reconnected %s", e->session_id ? e->session_id : "-");
        break;
    case MILLIS_EVENT_LOG:
        if (s->live)
            talk_info(s, LINE_INFO, "[%s] %s", log_level_name((int)e->level), message);
        else
            fprintf(stderr, "[%s] %s\n", log_level_name((int)e->level), message);
        break;
    default:
        break;
    }
}

/* Events that are only shown: a line of the live screen, or a plain line. The agent's
 * audio and analyser events are not: the meters read the analysers. */
static void show_event(struct session *s, const millis_event *e)
{
    const char *text = e->text ? e->text : "";
    switch (e->type) {
    case MILLIS_EVENT_OPEN:
        if (s->live) talk_info(s, LINE_INFO, "connected to %s", s->endpoint);
        break;
    case MILLIS_EVENT_SESSION_ENDED:
        if (s->live)
            talk_info(s, LINE_INFO, "the agent ended the session");
        else
            talk_out("session ended");
        break;
    case MILLIS_EVENT_TRANSCRIPT:
        if (s->live)
            speech_line(s, LINE_USER, e->text, e->is_final);
        else if (e->is_final)
            talk_out("user: %s", text);
        break;
    case MILLIS_EVENT_RESPONSE_TEXT:
        if (s->live)
            speech_line(s, LINE_AGENT, e->text, e->is_final);
        else if (e->is_final)
            talk_out("agent: %s", text);
        break;
    case MILLIS_EVENT_FUNCTION:
        if (s->live)
            talk_info(s, LINE_INFO, "tool call: %s %s", e->name ? e->name : "?", e->json ? e->json : "null");
        else
            talk_out("function: %s %s", e->name ? e->name : "?", e->json ? e->json : "null");
        break;
    case MILLIS_EVENT_LATENCY:
        if (!s->live) talk_out("latency: %.1f ms", e->latency_ms);
        break;
    case MILLIS_EVENT_MESSAGE:
        if (s->live)
            talk_info(s, LINE_INFO, "message %s %s", e->name ? e->name : "?", e->json ? e->json : "");
        else
            talk_out("message: %s %s", e->name ? e->name : "?", e->json ? e->json : "");
        break;
    default:
        show_connection_event(s, e);
        break;
    }
}

void talk_handle_event(struct session *s, const millis_event *e)
{
    switch (e->type) {
    case MILLIS_EVENT_READY: handle_ready(s, e->session_id); break;
    case MILLIS_EVENT_AGENT_STATE: handle_state(s, (int)e->agent_state); break;
    case MILLIS_EVENT_CLOSE: handle_close(s, e->code, e->message); break;
    case MILLIS_EVENT_ERROR: handle_error(s, e->status, e->message); break;
    case MILLIS_EVENT_INPUT_ENDED: handle_input_ended(s); break;
    case MILLIS_EVENT_USER_AUDIO_READY: handle_user_audio(s, e->json); break;
    case MILLIS_EVENT_TURN: handle_turn(s, e->json); break;
    default: show_event(s, e); break;
    }
}
