/*
 * main.c — `millis`, the command-line tool of libmillis: dispatches to a command.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <locale.h>
#include <stdio.h>
#include <string.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"talk", cmd_talk, "hold a conversation with an agent (microphone and speaker, or files)"},
    {"devices", cmd_devices, "list the ALSA capture and playback devices"},
    {"audio-test", cmd_audio_test, "check a speaker and microphone: echo, its cancellation, levels"},
    {"voices", cmd_voices, "list the voices available to your public key (Millis REST API)"},
    {"devserver", cmd_devserver, "run the local Millis-compatible server (for development)"},
    {"replay", cmd_replay, "print a recorded conversation's timeline and latency table"},
};

static void print_help(FILE *out)
{
    size_t i;
    fprintf(out,
            "Usage: %s COMMAND [OPTIONS]\n"
            "       %s COMMAND --help\n"
            "       %s --version\n"
            "\n"
            "A command-line client for Millis AI voice agents (libmillis %s).\n"
            "\n"
            "Commands:\n",
            prog_name, prog_name, prog_name, millis_version());
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(out, "  %-10s  %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "Environment:\n"
            "  MILLIS_PUBLIC_KEY   your public key from the Millis playground (talk, voices)\n"
            "  MILLIS_ENDPOINT     WebSocket endpoint (default %s)\n"
            "  MILLIS_AGENT_ID     agent id for talk when --agent-id is not given\n"
            "  MILLIS_VOICES_PATH  the voices list's path for voices (default /voices)\n"
            "  MILLIS_DEVSERVER    the devserver script devserver runs\n"
            "\n"
            "%s"
            "\n"
            "Examples:\n"
            "  %s devserver --port 8765 &          # a local server (key test-public-key)\n"
            "  MILLIS_PUBLIC_KEY=test-public-key %s talk --agent-id demo-agent \\\n"
            "      --endpoint ws://127.0.0.1:8765/millis --input speech.wav --output agent.wav\n"
            "  %s talk --agent-id AGENT --record call.opus     # microphone and speaker\n"
            "  %s replay call.jsonl\n",
            MILLIS_DEFAULT_ENDPOINT, EXIT_STATUS_HELP, prog_name, prog_name, prog_name, prog_name);
}

int main(int argc, char **argv)
{
    size_t i;
    /* The terminal's character set decides between arrows/bars and ASCII; numbers stay
     * in the C locale's format (LC_NUMERIC untouched). */
    setlocale(LC_CTYPE, "");

    if (argc < 2) {
        print_help(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        if (argc > 2 && strcmp(argv[1], "help") == 0) {
            /* `millis help talk` == `millis talk --help` */
            for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
                if (strcmp(argv[2], commands[i].name) == 0) {
                    char *sub[] = {argv[2], (char *)"--help", NULL};
                    return commands[i].run(2, sub);
                }
            }
            return usage_error(NULL, "unknown command '%s'", argv[2]);
        }
        print_help(stdout);
        return EXIT_OK;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        printf("millis %s (libmillis %s", MILLIS_VERSION_STRING, millis_version());
        if (millis_version_number() != MILLIS_VERSION_NUMBER)
            printf("; built against the header of %s", MILLIS_VERSION_STRING);
        printf(")\n");
        return EXIT_OK;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    }
    if (argv[1][0] == '-') return usage_error(NULL, "unknown option '%s' (options follow the command)", argv[1]);
    return usage_error(NULL, "unknown command '%s'; the commands are talk, devices, audio-test, voices, devserver, replay",
                       argv[1]);
}
