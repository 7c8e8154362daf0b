/*
 * common.c — messages, environment, parsing helpers shared by the commands.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <errno.h>
#include <getopt.h>
#include <langinfo.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

const char *prog_name = "millis";

static void vmessage(const char *prefix, const char *fmt, va_list ap)
{
    char text[4096];
    vsnprintf(text, sizeof text, fmt, ap);
    /* One write per message: lines from two threads never interleave. */
    fprintf(stderr, "%s%s\n", prefix, text);
}

void error_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("error: ", fmt, ap);
    va_end(ap);
}

void warn_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vmessage("warning: ", fmt, ap);
    va_end(ap);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
    char text[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (cmd != NULL) {
        fprintf(stderr, "%s %s: %s\nTry '%s %s --help'.\n", prog_name, cmd, text, prog_name, cmd);
    } else {
        fprintf(stderr, "%s: %s\nTry '%s --help'.\n", prog_name, text, prog_name);
    }
    return EXIT_USAGE;
}

int bad_option(const char *cmd, char **argv, int result)
{
    /* getopt_long (with a ':' first in the option string) returned ':' for a missing
     * value, '?' for an unknown option; the word is argv[optind - 1], optopt a short
     * option's letter. */
    const char *word = optind > 0 ? argv[optind - 1] : "";
    char shown[128];
    if (strncmp(word, "--", 2) == 0) {
        const char *eq = strchr(word, '=');
        int len = eq ? (int)(eq - word) : (int)strlen(word);
        snprintf(shown, sizeof shown, "%.*s", len > 100 ? 100 : len, word);
    } else if (optopt > 0 && optopt < 128) {
        snprintf(shown, sizeof shown, "-%c", optopt);
    } else {
        snprintf(shown, sizeof shown, "%.100s", word);
    }
    if (result == ':') return usage_error(cmd, "option '%s' needs a value", shown);
    return usage_error(cmd, "unknown option '%s'", shown);
}

const char *public_key_from_env(const char *cmd)
{
    const char *key = getenv(ENV_PUBLIC_KEY);
    if (key == NULL || key[0] == '\0') {
        fprintf(stderr,
                "%s %s: no public key: set %s to the public key from the Millis playground,\n"
                "e.g.  export %s=pk_...   (the local devserver accepts test-public-key)\n",
                prog_name, cmd, ENV_PUBLIC_KEY, ENV_PUBLIC_KEY);
        return NULL;
    }
    return key;
}

const char *endpoint_or_default(const char *option)
{
    const char *env = getenv(ENV_ENDPOINT);
    if (option != NULL) return option;
    if (env != NULL && env[0] != '\0') return env;
    return MILLIS_DEFAULT_ENDPOINT;
}

int parse_echo_canceller(const char *name, millis_echo_canceller *out)
{
    if (strcmp(name, "webrtc") == 0) {
        *out = MILLIS_ECHO_CANCELLER_WEBRTC;
    } else if (strcmp(name, "speex") == 0) {
        *out = MILLIS_ECHO_CANCELLER_SPEEX;
    } else {
        return -1;
    }
    return 0;
}

int echo_canceller_error(const char *cmd, const char *name)
{
    return usage_error(cmd, "--echo-canceller '%s': give webrtc (the default) or speex", name);
}

int parse_seconds(const char *text, double min, double max, double *out)
{
    char *end = NULL;
    double v;
    if (text == NULL || text[0] == '\0') return -1;
    errno = 0;
    v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || !isfinite(v) || v < min || v > max) return -1;
    *out = v;
    return 0;
}

char *read_text_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    size_t used = 0, cap = 0;
    if (f == NULL) return NULL;
    for (;;) {
        size_t n;
        if (cap - used < 4096) {
            char *bigger;
            cap = cap ? cap * 2 : 65536;
            bigger = realloc(buf, cap);
            if (bigger == NULL) {
                free(buf);
                fclose(f);
                errno = ENOMEM;
                return NULL;
            }
            buf = bigger;
        }
        n = fread(buf + used, 1, cap - used - 1, f);
        used += n;
        if (n == 0) break;
    }
    if (ferror(f)) {
        int e = errno ? errno : EIO;
        free(buf);
        fclose(f);
        errno = e;
        return NULL;
    }
    fclose(f);
    buf[used] = '\0';
    if (len != NULL) *len = used;
    return buf;
}

void text_position(const char *text, const char *at, int *line, int *column)
{
    const char *p;
    *line = 1;
    *column = 1;
    if (text == NULL || at == NULL) return;
    for (p = text; *p != '\0' && p < at; p++) {
        if (*p == '\n') {
            *line += 1;
            *column = 1;
        } else {
            *column += 1;
        }
    }
}

int utf8_terminal(void)
{
    const char *codeset = nl_langinfo(CODESET);
    return codeset != NULL && (strcasecmp(codeset, "UTF-8") == 0 || strcasecmp(codeset, "utf8") == 0);
}

size_t display_width(const char *text)
{
    size_t n = 0;
    for (; *text; text++)
        if (((unsigned char)*text & 0xC0) != 0x80) n++;
    return n;
}

void print_padded(const char *text, size_t width)
{
    size_t w = display_width(text);
    fputs(text, stdout);
    for (; w < width; w++) putchar(' ');
}

double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double median(double *values, size_t n)
{
    if (n == 0) return NAN;
    qsort(values, n, sizeof *values, compare_doubles);
    return n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2.0;
}
