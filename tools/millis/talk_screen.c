/*
 * talk_screen.c — `millis talk`'s live screen (main thread only): the terminal in raw
 * mode on the alternate screen, restored on every way out, and the frame drawn 20
 * times a second: status, two level meters, the transcript's last lines.
 */
#define _POSIX_C_SOURCE 200809L

#include "talk.h"

#include <millis.h>

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------
 * The terminal: raw keyboard, alternate screen; restored on every way out
 * ---------------------------------------------------------------------------------- */

static struct termios saved_termios;
static volatile sig_atomic_t termios_saved, screen_active;

#define SCREEN_ENTER "\x1b[?1049h\x1b[?25l\x1b[H\x1b[2J"
#define SCREEN_LEAVE "\x1b[0m\x1b[?25h\x1b[?1049l"

/* Async-signal-safe: write(2) and tcsetattr(3) only. */
void talk_restore_terminal(void)
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
    talk_restore_terminal();
    signal(sig, SIG_DFL);
    raise(sig);
}

void talk_enter_screen(int keyboard)
{
    static const int fatal[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
    size_t i;
    atexit(talk_restore_terminal);
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

void talk_update_size(struct session *s)
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

void talk_draw(struct session *s)
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
