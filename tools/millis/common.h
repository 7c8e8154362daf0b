/*
 * common.h — what the commands of the `millis` command-line tool share: exit codes,
 * messages, the environment, small parsing helpers.
 */
#ifndef MILLIS_CLI_COMMON_H
#define MILLIS_CLI_COMMON_H

#include <stddef.h>

#include <millis.h>

/* Exit codes, the same for every command. EXIT_STATUS_HELP says what they mean in
 * `millis --help`; docs/millis.1 says it again (test_cli checks the two agree). */
enum {
    EXIT_OK = 0,
    /** Runtime failure: connection, device, file, server error; for talk, the
     *  conversation ended with an error; for devserver, the server could not start. */
    EXIT_FAILURE_RUNTIME = 1,
    /** Usage error: unknown option, bad value, missing public key. */
    EXIT_USAGE = 2,
    /** The server refused the public key: voices' HTTP 401/403, talk's close code
     *  CLOSE_KEY_REFUSED or an upgrade answered with HTTP 401/403. */
    EXIT_AUTH = 3
};

#define EXIT_STATUS_HELP                                                                  \
    "Exit status (every command):\n"                                                      \
    "  0  success\n"                                                                      \
    "  1  runtime failure: connection, audio device, file or server error; for talk,\n"  \
    "     the conversation ended with an error; for devserver, the server could not\n"   \
    "     start (Python or its websockets package missing, port taken)\n"                \
    "  2  usage error: unknown option, bad value, missing public key\n"                   \
    "  3  the server refused the public key (HTTP 401/403, or close code 4001)\n"

/* The close code with which a Millis server refuses the public key. */
#define CLOSE_KEY_REFUSED 4001

/* The environment variables the commands read. */
#define ENV_PUBLIC_KEY "MILLIS_PUBLIC_KEY"
#define ENV_ENDPOINT "MILLIS_ENDPOINT"
#define ENV_AGENT_ID "MILLIS_AGENT_ID"
#define ENV_VOICES_PATH "MILLIS_VOICES_PATH"
#define ENV_DEVSERVER "MILLIS_DEVSERVER"

/** The name the tool was called by ("millis"), for messages. */
extern const char *prog_name;

/* Each command: argv[0] is the command's name. Returns the exit code. */
int cmd_talk(int argc, char **argv);
int cmd_devices(int argc, char **argv);
int cmd_audio_test(int argc, char **argv);
int cmd_voices(int argc, char **argv);
int cmd_devserver(int argc, char **argv);
int cmd_replay(int argc, char **argv);

/** "error: ..." on stderr, with a line break. */
void error_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** "warning: ..." on stderr. */
void warn_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/** A usage error: "millis CMD: ..." then "Try 'millis CMD --help'."; returns EXIT_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The usage error for the option getopt_long refused: result is what it returned
 *  (':' a missing value, '?' an unknown option; the option string starts with ':'). */
int bad_option(const char *cmd, char **argv, int result);

/** The public key from MILLIS_PUBLIC_KEY, or NULL after printing what to do. */
const char *public_key_from_env(const char *cmd);
/** --endpoint if given, else MILLIS_ENDPOINT, else the library's default. */
const char *endpoint_or_default(const char *option);

/** --echo-canceller's value ("webrtc", "speex") -> *out; 0 on success. */
int parse_echo_canceller(const char *name, millis_echo_canceller *out);
/** --echo-canceller's usage error for `name`, for command `cmd`. */
int echo_canceller_error(const char *cmd, const char *name);

/** Parses a non-negative number of seconds ("10", "2.5"); 0 on success. */
int parse_seconds(const char *text, double min, double max, double *out);

/** Reads a whole file into a NUL-terminated buffer (free()); NULL with errno set. */
char *read_text_file(const char *path, size_t *len);

/** "line L, column C" of `at` inside `text` (for JSON parse errors). */
void text_position(const char *text, const char *at, int *line, int *column);

/** 1 when the terminal's character set is UTF-8 (arrows, bars), 0 otherwise. */
int utf8_terminal(void);

/** Display columns of a UTF-8 string (one per code point). */
size_t display_width(const char *text);
/** Prints text left-aligned in `width` display columns (UTF-8 aware). */
void print_padded(const char *text, size_t width);

/** A library message with the C functions its hints name rewritten as the options and
 *  commands of this tool (messages.c); always NUL-terminated. */
void cli_translate(const char *message, char *out, size_t size);
/** An error the library reported, for the user: its message translated (the status's
 *  summary when there is no message). */
void cli_library_error(millis_status status, const char *message, char *out, size_t size);

/** Seconds on CLOCK_MONOTONIC. */
double now_seconds(void);

/** Median of values[0..n) (sorted in place); NaN when n is 0. */
double median(double *values, size_t n);

#endif
