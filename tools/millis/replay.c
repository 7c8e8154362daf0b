/*
 * replay.c — `millis replay FILE.jsonl`: a recorded conversation's timeline and its
 * latency table.
 *
 * The timeline is what libmillis writes beside a recording (millis.h, "Recording"):
 * JSON Lines, each with "t" (seconds on the recording's clock) and "type":
 * "recording" (the header), "event", "recv", "send", "vad", "turn", "end". Unknown
 * types and fields are shown generically, malformed lines reported and skipped.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUMMARY_MAX 100

/* The four figures of a turn, in the order of the table; NaN for null. */
static const char *const latency_keys[4] = {"end_of_speech_to_start_answering",
                                            "start_answering_to_first_audio",
                                            "first_audio_to_played", "total"};

struct turn {
    int number;
    double ms[4];
};

struct replay {
    const char *file;
    int turns_only, finals_only, no_messages, json;
    int utf8;
    struct turn *turns;
    size_t turn_count, turn_cap;
    cJSON *header, *end; /* copies of the header and end lines, or NULL */
    unsigned long valid, malformed;
};

static void help(void)
{
    printf("Usage: %s replay [OPTIONS] FILE.jsonl\n"
           "\n"
           "Prints a recorded conversation: one line per timeline entry (time mm:ss.mmm,\n"
           "kind, content: transcripts, response texts, agent states, control messages\n"
           "sent and received, the user's speech start/end, errors, close), then a table\n"
           "of the agent's turns with their latency breakdown and the medians.\n"
           "FILE.jsonl is the timeline written beside a recording (`%s talk --record\n"
           "call.opus` writes call.opus and call.jsonl); '-' reads standard input.\n"
           "\n"
           "Options:\n"
           "  --turns-only    only the latency table\n"
           "  --finals-only   leave out partial transcripts and response texts\n"
           "  --no-messages   leave out the control messages sent and received\n"
           "  --json          the turns and medians as one JSON object\n"
           "  -h, --help      this help\n"
           "\n"
           "Table columns (ms): end of speech (the library's voice activity detector) →\n"
           "start_answering (the server began its answer) → first audio (its first audio\n"
           "frame arrived) → played (its first sample reached the speaker); total is end\n"
           "of speech → played. '-' where a time is missing (a turn cut short).\n"
           "\n"
           "Malformed lines are reported as FILE:LINE on stderr and skipped.\n"
           "Exit status: 0 printed; 1 the file is missing, unreadable or holds no valid\n"
           "entry; 2 usage error.\n",
           prog_name, prog_name);
}

/* mm:ss.mmm (minutes keep counting past 59). */
static void format_time(const cJSON *t, char *out, size_t size)
{
    double v;
    long ms, minutes;
    if (!cJSON_IsNumber(t) || !isfinite(t->valuedouble) || t->valuedouble < 0) {
        snprintf(out, size, "--:--.---");
        return;
    }
    v = t->valuedouble;
    ms = (long)llround(v * 1000.0);
    minutes = ms / 60000;
    snprintf(out, size, "%02ld:%02ld.%03ld", minutes, (ms / 1000) % 60, ms % 1000);
}

static const char *str(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double num(const cJSON *obj, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

static int is_final(const cJSON *obj)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "is_final");
    return cJSON_IsTrue(v);
}

/* Compact JSON of `v`, cut to max characters (with "..."). Caller frees. */
static char *compact(const cJSON *v, size_t max)
{
    char *s = v ? cJSON_PrintUnformatted(v) : strdup("");
    if (s != NULL && strlen(s) > max && max > 3) strcpy(s + max - 3, "...");
    return s;
}

/* Compact JSON of an object without some of its members. Caller frees. */
static char *compact_without(const cJSON *obj, const char *const *skip, size_t nskip, size_t max)
{
    cJSON *copy = cJSON_Duplicate(obj, 1);
    char *s;
    size_t i;
    if (copy == NULL) return strdup("");
    for (i = 0; i < nskip; i++) cJSON_DeleteItemFromObjectCaseSensitive(copy, skip[i]);
    s = copy->child ? compact(copy, max) : strdup("");
    cJSON_Delete(copy);
    return s;
}

static void line(const char *time, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void line(const char *time, const char *kind, const char *fmt, ...)
{
    char text[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printf("%s  %-11s %s\n", time, kind, text);
}

static void print_event(struct replay *r, const char *time, const cJSON *e)
{
    const char *name = str(e, "event");
    char buf[64];
    if (name == NULL) name = "?";
    if (strcmp(name, "open") == 0) {
        line(time, "open", "WebSocket open");
    } else if (strcmp(name, "ready") == 0) {
        const char *sid = str(e, "session_id");
        line(time, "ready", "session %s", sid && sid[0] ? sid : "(no id)");
    } else if (strcmp(name, "session_ended") == 0) {
        line(time, "ended", "the server ended the session");
    } else if (strcmp(name, "transcript") == 0 || strcmp(name, "response_text") == 0) {
        int fin = is_final(e);
        const char *text = str(e, "text");
        if (!fin && r->finals_only) return;
        line(time, strcmp(name, "transcript") == 0 ? "user" : "agent", "%s%s", text ? text : "",
             fin ? "" : "  (partial)");
    } else if (strcmp(name, "function") == 0) {
        char *params = compact(cJSON_GetObjectItemCaseSensitive(e, "params"), SUMMARY_MAX);
        const char *fn = str(e, "name"), *text = str(e, "text");
        line(time, "function", "%s %s%s%s%s", fn ? fn : "?", params ? params : "",
             text && text[0] ? " text \"" : "", text && text[0] ? text : "", text && text[0] ? "\"" : "");
        free(params);
    } else if (strcmp(name, "latency") == 0) {
        line(time, "latency", "%.1f ms (start_answering → first audio)", num(e, "ms"));
    } else if (strcmp(name, "agent_state") == 0) {
        const char *s = str(e, "state");
        line(time, "state", "%s", s ? s : "?");
    } else if (strcmp(name, "close") == 0) {
        const char *reason = str(e, "reason");
        line(time, "close", "%.0f%s%s", num(e, "code"), reason && reason[0] ? " " : "", reason ? reason : "");
    } else if (strcmp(name, "error") == 0) {
        const char *sn = str(e, "status_name"), *msg = str(e, "message");
        line(time, "error", "%s (%.0f): %s", sn ? sn : "?", num(e, "status"), msg ? msg : "");
    } else if (strcmp(name, "reconnecting") == 0) {
        line(time, "reconnect", "attempt %.0f in %.0f ms", num(e, "attempt"), num(e, "delay_ms"));
    } else if (strcmp(name, "reconnected") == 0) {
        const char *sid = str(e, "session_id");
        line(time, "reconnected", "session %s", sid ? sid : "?");
    } else if (strcmp(name, "input_ended") == 0) {
        line(time, "input", "the input file ended (silence follows)");
    } else if (strcmp(name, "message") == 0) {
        const char *m = str(e, "method");
        line(time, "message", "%s (a method this version does not know)", m ? m : "?");
    } else {
        static const char *const skip[] = {"t", "type", "event"};
        char *rest = compact_without(e, skip, 3, SUMMARY_MAX);
        snprintf(buf, sizeof buf, "%.40s", name);
        line(time, buf, "%s", rest ? rest : "");
        free(rest);
    }
}

/* send / recv: the method and what the message carries. */
static void print_message(struct replay *r, const char *time, const char *kind, const cJSON *e)
{
    const char *method = str(e, "method");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    const char *text = str(e, "text");
    char *summary;
    if (r->no_messages) return;
    if (r->finals_only && cJSON_IsObject(msg)) {
        const cJSON *payload = cJSON_GetObjectItemCaseSensitive(msg, "payload");
        const char *m = method ? method : "";
        if ((strcmp(m, "ontranscript") == 0 || strcmp(m, "onresponsetext") == 0) && !is_final(payload)) return;
    }
    if (cJSON_IsObject(msg)) {
        static const char *const skip[] = {"method"};
        summary = compact_without(msg, skip, 1, SUMMARY_MAX);
    } else if (msg != NULL) {
        summary = compact(msg, SUMMARY_MAX);
    } else if (text != NULL) {
        summary = compact(cJSON_GetObjectItemCaseSensitive(e, "text"), SUMMARY_MAX);
    } else {
        summary = strdup("");
    }
    line(time, kind, "%s%s%s", method ? method : "?", summary && summary[0] ? " " : "", summary ? summary : "");
    free(summary);
}

static void add_turn(struct replay *r, const cJSON *e)
{
    const cJSON *lat = cJSON_GetObjectItemCaseSensitive(e, "latency_ms");
    struct turn t;
    int i;
    t.number = (int)num(e, "turn");
    if (isnan(num(e, "turn"))) t.number = (int)r->turn_count + 1;
    for (i = 0; i < 4; i++) t.ms[i] = num(lat, latency_keys[i]);
    if (r->turn_count == r->turn_cap) {
        size_t cap = r->turn_cap ? r->turn_cap * 2 : 16;
        struct turn *bigger = realloc(r->turns, cap * sizeof *bigger);
        if (bigger == NULL) return;
        r->turns = bigger;
        r->turn_cap = cap;
    }
    r->turns[r->turn_count++] = t;
}

static void print_turn_line(struct replay *r, const char *time, const cJSON *e)
{
    const struct turn *t = &r->turns[r->turn_count - 1];
    const char *arrow = r->utf8 ? "→" : "->";
    char parts[4][32];
    int i;
    for (i = 0; i < 4; i++) {
        if (isnan(t->ms[i]))
            snprintf(parts[i], sizeof parts[i], "-");
        else
            snprintf(parts[i], sizeof parts[i], "%.1f", t->ms[i]);
    }
    (void)e;
    line(time, "turn", "%d: total %s%s (end of speech %s start_answering %s, %s first audio %s, %s played %s)",
         t->number, parts[3], isnan(t->ms[3]) ? "" : " ms", arrow, parts[0], arrow, parts[1], arrow, parts[2]);
}

static void print_header(struct replay *r, const char *time, const cJSON *e)
{
    const char *audio = str(e, "audio"), *format = str(e, "format"), *layout = str(e, "layout");
    const char *started = str(e, "started_at"), *version = str(e, "version");
    (void)r;
    line(time, "recording", "%s (%s, %.0f Hz, %.0f channel%s%s%s), started %s, libmillis %s", audio ? audio : "?",
         format ? format : "?", num(e, "sample_rate"), num(e, "channels"), num(e, "channels") == 1 ? "" : "s",
         layout ? ", " : "", layout ? layout : "", started ? started : "?", version ? version : "?");
}

static void print_end(const char *time, const cJSON *e)
{
    line(time, "end", "duration %.3f s; samples: user %.0f, agent %.0f, dropped %.0f", num(e, "duration"),
         num(e, "user_samples"), num(e, "agent_samples"), num(e, "dropped_samples"));
}

static void print_vad(struct replay *r, const char *time, const cJSON *e)
{
    const char *side = str(e, "side"), *ev = str(e, "event");
    cJSON at_item;
    char at[32];
    memset(&at_item, 0, sizeof at_item);
    at_item.type = cJSON_Number;
    at_item.valuedouble = num(e, "at");
    format_time(isnan(at_item.valuedouble) ? NULL : &at_item, at, sizeof at);
    (void)r;
    if (ev != NULL && strcmp(ev, "speech_start") == 0) {
        line(time, "vad", "%s speech starts (at %s)", side ? side : "?", at);
    } else if (ev != NULL && strcmp(ev, "speech_end") == 0) {
        line(time, "vad", "%s speech ends (at %s)", side ? side : "?", at);
    } else {
        line(time, "vad", "%s %s (at %s)", side ? side : "?", ev ? ev : "?", at);
    }
}

/* One valid entry. */
static void handle_entry(struct replay *r, const cJSON *e, const char *type)
{
    char time[32];
    int show = !r->turns_only && !r->json;
    format_time(cJSON_GetObjectItemCaseSensitive(e, "t"), time, sizeof time);
    if (strcmp(type, "turn") == 0) {
        add_turn(r, e);
        if (show) print_turn_line(r, time, e);
        return;
    }
    if (strcmp(type, "recording") == 0) {
        if (r->header == NULL) r->header = cJSON_Duplicate(e, 1);
        if (show) print_header(r, time, e);
        return;
    }
    if (strcmp(type, "end") == 0) {
        cJSON_Delete(r->end);
        r->end = cJSON_Duplicate(e, 1);
        if (show) print_end(time, e);
        return;
    }
    if (!show) return;
    if (strcmp(type, "event") == 0) {
        print_event(r, time, e);
    } else if (strcmp(type, "recv") == 0 || strcmp(type, "send") == 0) {
        print_message(r, time, type, e);
    } else if (strcmp(type, "vad") == 0) {
        print_vad(r, time, e);
    } else {
        static const char *const skip[] = {"t", "type"};
        char *rest = compact_without(e, skip, 2, SUMMARY_MAX);
        char kind[48];
        snprintf(kind, sizeof kind, "%.40s", type);
        line(time, kind, "%s", rest ? rest : "");
        free(rest);
    }
}

/* The medians of the four columns over the turns where each is known. */
static void medians(const struct replay *r, double out[4], size_t counts[4])
{
    double *values = malloc((r->turn_count ? r->turn_count : 1) * sizeof *values);
    int c;
    for (c = 0; c < 4; c++) {
        size_t i, n = 0;
        for (i = 0; values && i < r->turn_count; i++)
            if (!isnan(r->turns[i].ms[c])) values[n++] = r->turns[i].ms[c];
        out[c] = values ? median(values, n) : NAN;
        counts[c] = n;
    }
    free(values);
}

static void print_cell(int width, double v)
{
    if (isnan(v))
        printf("%*s", width, "-");
    else
        printf("%*.1f", width, v);
}

static void print_table(const struct replay *r)
{
    /* Display widths of the header's columns (an arrow is one column wide). */
    static const int widths[5] = {6, 33, 15, 10, 9};
    const char *arrow = r->utf8 ? "→" : "->";
    int pad = r->utf8 ? 0 : 1; /* "->" is one column wider than "→" */
    double med[4];
    size_t counts[4], i;
    int c;
    if (r->turn_count == 0) {
        printf("No turns recorded.\n");
        return;
    }
    printf("%*s  end of speech %s start_answering  %s first audio  %s played    total\n", widths[0], "turn",
           arrow, arrow, arrow);
    for (i = 0; i < r->turn_count; i++) {
        printf("%*d", widths[0], r->turns[i].number);
        for (c = 0; c < 4; c++) print_cell(widths[c + 1] + (c < 3 ? pad : 0), r->turns[i].ms[c]);
        printf("\n");
    }
    medians(r, med, counts);
    printf("%-*s", widths[0], "median");
    for (c = 0; c < 4; c++) print_cell(widths[c + 1] + (c < 3 ? pad : 0), med[c]);
    printf("\n");
    printf("%lu turn%s (ms); median total %s", (unsigned long)r->turn_count, r->turn_count == 1 ? "" : "s",
           isnan(med[3]) ? "-" : "");
    if (!isnan(med[3])) printf("%.1f ms", med[3]);
    if (counts[3] < r->turn_count) printf(" over %lu complete turn%s", (unsigned long)counts[3], counts[3] == 1 ? "" : "s");
    printf("\n");
}

static cJSON *number_or_null(double v)
{
    return isnan(v) ? cJSON_CreateNull() : cJSON_CreateNumber(v);
}

static void print_json(const struct replay *r)
{
    cJSON *root = cJSON_CreateObject(), *turns = cJSON_CreateArray(), *med_obj = cJSON_CreateObject();
    double med[4];
    size_t counts[4], i;
    int c;
    char *text;
    cJSON_AddStringToObject(root, "file", r->file);
    cJSON_AddItemToObject(root, "recording", r->header ? cJSON_Duplicate(r->header, 1) : cJSON_CreateNull());
    for (i = 0; i < r->turn_count; i++) {
        cJSON *t = cJSON_CreateObject(), *lat = cJSON_CreateObject();
        cJSON_AddNumberToObject(t, "turn", r->turns[i].number);
        for (c = 0; c < 4; c++) cJSON_AddItemToObject(lat, latency_keys[c], number_or_null(r->turns[i].ms[c]));
        cJSON_AddItemToObject(t, "latency_ms", lat);
        cJSON_AddItemToArray(turns, t);
    }
    cJSON_AddItemToObject(root, "turns", turns);
    medians(r, med, counts);
    for (c = 0; c < 4; c++) cJSON_AddItemToObject(med_obj, latency_keys[c], number_or_null(med[c]));
    cJSON_AddItemToObject(root, "median_ms", med_obj);
    cJSON_AddItemToObject(root, "end", r->end ? cJSON_Duplicate(r->end, 1) : cJSON_CreateNull());
    cJSON_AddNumberToObject(root, "entries", (double)r->valid);
    cJSON_AddNumberToObject(root, "malformed_lines", (double)r->malformed);
    text = cJSON_Print(root);
    printf("%s\n", text ? text : "{}");
    free(text);
    cJSON_Delete(root);
}

int cmd_replay(int argc, char **argv)
{
    static const struct option options[] = {
        {"turns-only", no_argument, NULL, 't'},
        {"finals-only", no_argument, NULL, 'f'},
        {"no-messages", no_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct replay r;
    FILE *f;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t len;
    unsigned long lineno = 0;
    int c;

    memset(&r, 0, sizeof r);
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 't': r.turns_only = 1; break;
        case 'f': r.finals_only = 1; break;
        case 'n': r.no_messages = 1; break;
        case 'j': r.json = 1; break;
        case 'h': help(); return EXIT_OK;
        default: return bad_option("replay", argv, c);
        }
    }
    if (optind >= argc) return usage_error("replay", "give the timeline to print, e.g. %s replay call.jsonl", prog_name);
    if (optind + 1 < argc) return usage_error("replay", "one file at a time (got '%s' and '%s')", argv[optind], argv[optind + 1]);
    r.file = argv[optind];
    r.utf8 = utf8_terminal();

    if (strcmp(r.file, "-") == 0) {
        f = stdin;
        r.file = "(stdin)";
    } else {
        f = fopen(r.file, "r");
        if (f == NULL) {
            error_msg("cannot open %s: %s%s", r.file, strerror(errno),
                      errno == ENOENT ? " (a recording's timeline is its audio path with .jsonl: call.opus -> call.jsonl)" : "");
            return EXIT_FAILURE_RUNTIME;
        }
    }
    while ((len = getline(&buf, &cap, f)) != -1) {
        cJSON *e;
        const char *type;
        lineno++;
        while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) buf[--len] = '\0';
        if (strspn(buf, " \t") == (size_t)len) continue; /* blank line */
        e = cJSON_ParseWithLength(buf, (size_t)len);
        if (e == NULL) {
            const char *at = cJSON_GetErrorPtr();
            long col = (at != NULL && at >= buf && at <= buf + len) ? (long)(at - buf) + 1 : 0;
            fprintf(stderr, "%s:%lu: not valid JSON%s", r.file, lineno, col ? "" : "\n");
            if (col) fprintf(stderr, " (column %ld): %.60s%s\n", col, buf, len > 60 ? "..." : "");
            r.malformed++;
            continue;
        }
        type = str(e, "type");
        if (!cJSON_IsObject(e) || type == NULL) {
            fprintf(stderr, "%s:%lu: not a timeline entry (a JSON object with a \"type\" is expected)\n", r.file,
                    lineno);
            r.malformed++;
            cJSON_Delete(e);
            continue;
        }
        r.valid++;
        handle_entry(&r, e, type);
        cJSON_Delete(e);
    }
    if (ferror(f)) {
        error_msg("cannot read %s: %s", r.file, strerror(errno));
        if (f != stdin) fclose(f);
        free(buf);
        free(r.turns);
        cJSON_Delete(r.header);
        cJSON_Delete(r.end);
        return EXIT_FAILURE_RUNTIME;
    }
    if (f != stdin) fclose(f);
    free(buf);

    if (r.valid == 0) {
        error_msg("%s holds no timeline entry%s", r.file,
                  r.malformed ? " (every line was malformed)" : " (it is empty)");
        free(r.turns);
        return EXIT_FAILURE_RUNTIME;
    }
    if (r.json) {
        print_json(&r);
    } else {
        if (!r.turns_only) printf("\n");
        print_table(&r);
        if (r.end == NULL && !r.turns_only)
            printf("(no \"end\" line: the recording was cut short, or is still being written)\n");
    }
    if (r.malformed) fprintf(stderr, "%s: %lu malformed line%s skipped\n", r.file, r.malformed, r.malformed == 1 ? "" : "s");
    free(r.turns);
    cJSON_Delete(r.header);
    cJSON_Delete(r.end);
    return EXIT_OK;
}
