/*
 * audio_test.c — `millis audio-test`: the speaker and microphone checked without a
 * server (millis_audio_test): echo delay and level, what the echo canceller removes,
 * the formats the devices opened at, underruns, clipping.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void help(void)
{
    printf("Usage: %s audio-test [OPTIONS]\n"
           "\n"
           "Checks a speaker and a microphone for a conversation, without a server: plays a\n"
           "probe (a few seconds of speech-like noise) through the speaker and records the\n"
           "microphone, once as it is and once through the echo canceller, then reports\n"
           "the echo's delay and level, how much of it the canceller removed (ERLE), the\n"
           "noise floor, clipping, the rates and formats the devices opened at, and\n"
           "underruns, with advice for what looks wrong. Takes about 10 s.\n"
           "\n"
           "Options:\n"
           "  --device NAME          ALSA device for both microphone and speaker\n"
           "  --capture NAME         ALSA microphone (default \"default\")\n"
           "  --playback NAME        ALSA speaker (default \"default\")\n"
           "                         (`%s devices` lists the names)\n"
           "  --echo-canceller NAME  webrtc (default) or speex\n"
           "  --seconds SECS         the probe's length, 1 to 30 (default 3)\n"
           "  --json                 print the report as JSON (millis.h, millis_audio_test)\n"
           "  -h, --help             this help\n"
           "\n"
           "Exit status: 0 tested (the advice says what to fix, if anything); 1 a device\n"
           "could not be opened or failed; 2 usage error.\n",
           prog_name, prog_name);
}

static double number(const cJSON *report, const char *name, int *present)
{
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(report, name);
    *present = cJSON_IsNumber(item);
    return *present ? item->valuedouble : 0;
}

static void print_device(const cJSON *report, const char *side, const char *label)
{
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(report, side);
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(d, "device");
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(d, "format");
    int has_rate, has_channels, has_period, has_buffer;
    double rate = number(d, "rate", &has_rate), channels = number(d, "channels", &has_channels);
    double period = number(d, "period_frames", &has_period), buffer = number(d, "buffer_frames", &has_buffer);
    printf("%-16s %s: %.0f Hz, %.0f channel%s, %s", label, cJSON_IsString(name) ? name->valuestring : "?", rate,
           channels, channels == 1 ? "" : "s", cJSON_IsString(format) ? format->valuestring : "?");
    if (has_rate && rate > 0 && has_period && has_buffer)
        printf(" (period %.1f ms, buffer %.1f ms)", 1000 * period / rate, 1000 * buffer / rate);
    printf("\n");
}

static void print_figure(const cJSON *report, const char *name, const char *label, const char *unit,
                         const char *missing)
{
    int present;
    double value = number(report, name, &present);
    if (present)
        printf("%-16s %.1f %s\n", label, value, unit);
    else
        printf("%-16s %s\n", label, missing);
}

static void print_report(const cJSON *report)
{
    const cJSON *canceller = cJSON_GetObjectItemCaseSensitive(report, "echo_canceller");
    const cJSON *advice = cJSON_GetObjectItemCaseSensitive(report, "advice");
    const cJSON *line;
    int present;
    print_device(report, "capture", "microphone");
    print_device(report, "playback", "speaker");
    print_figure(report, "echo_delay_ms", "echo delay", "ms", "- (no echo heard)");
    print_figure(report, "echo_level_db", "echo level", "dB (against what the speaker played)", "-");
    print_figure(report, "noise_floor_dbfs", "noise floor", "dBFS", "-");
    print_figure(report, "microphone_peak_dbfs", "microphone peak", "dBFS", "-");
    printf("%-16s %.0f samples at full scale\n", "clipping", number(report, "clipped_samples", &present));
    if (cJSON_IsString(canceller)) {
        char label[64];
        snprintf(label, sizeof label, "ERLE (%s)", canceller->valuestring);
        print_figure(report, "erle_db", label, "dB removed", "- (nothing played was heard)");
        print_figure(report, "erle_recent_db", "  last 2 s", "dB removed", "-");
    } else {
        printf("%-16s off\n", "echo canceller");
    }
    printf("%-16s %.0f underruns, %.0f xruns; microphone: %.0f overruns\n", "speaker",
           number(report, "playback_underruns", &present), number(report, "playback_xruns", &present),
           number(report, "capture_overruns", &present));
    if (cJSON_GetArraySize(advice) == 0) {
        printf("\nNothing to fix.\n");
        return;
    }
    printf("\n");
    cJSON_ArrayForEach(line, advice) {
        char said[1024];
        if (!cJSON_IsString(line)) continue;
        cli_translate(line->valuestring, said, sizeof said);
        printf("- %s\n", said);
    }
}

int cmd_audio_test(int argc, char **argv)
{
    enum { O_DEVICE = 256, O_CAPTURE, O_PLAYBACK, O_CANCELLER, O_SECONDS, O_JSON };
    static const struct option options[] = {
        {"device", required_argument, NULL, O_DEVICE},
        {"capture", required_argument, NULL, O_CAPTURE},
        {"playback", required_argument, NULL, O_PLAYBACK},
        {"echo-canceller", required_argument, NULL, O_CANCELLER},
        {"seconds", required_argument, NULL, O_SECONDS},
        {"json", no_argument, NULL, O_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *capture = NULL, *playback = NULL;
    millis_echo_canceller canceller = MILLIS_ECHO_CANCELLER_WEBRTC;
    double seconds = 3;
    int json = 0, c, rc = EXIT_OK;
    millis_config *cfg;
    char *report = NULL;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case O_DEVICE: capture = playback = optarg; break;
        case O_CAPTURE: capture = optarg; break;
        case O_PLAYBACK: playback = optarg; break;
        case O_CANCELLER:
            if (parse_echo_canceller(optarg, &canceller) != 0) return echo_canceller_error("audio-test", optarg);
            break;
        case O_SECONDS:
            if (parse_seconds(optarg, 1, 30, &seconds) != 0)
                return usage_error("audio-test", "--seconds '%s': give a number of seconds from 1 to 30", optarg);
            break;
        case O_JSON: json = 1; break;
        case 'h': help(); return EXIT_OK;
        default: return bad_option("audio-test", argv, c);
        }
    }
    if (optind < argc) return usage_error("audio-test", "unexpected argument '%s'", argv[optind]);

    cfg = millis_config_create();
    if (cfg == NULL) {
        error_msg("out of memory");
        return EXIT_FAILURE_RUNTIME;
    }
    if (millis_config_set_audio_devices(cfg, capture, playback) != MILLIS_OK ||
        millis_config_set_echo_canceller(cfg, canceller) != MILLIS_OK) {
        char said[1024];
        cli_translate(millis_config_last_error(cfg), said, sizeof said);
        millis_config_destroy(cfg);
        return usage_error("audio-test", "%s", said);
    }
    if (!json) {
        fprintf(stderr, "Playing a probe through the speaker and recording the microphone (about %.0f s)...\n",
                2 * seconds + 3);
    }
    if (millis_audio_test(cfg, (unsigned)(seconds * 1000 + 0.5), &report) != MILLIS_OK) {
        char said[1024];
        cli_translate(millis_config_last_error(cfg), said, sizeof said);
        error_msg("%s", said);
        millis_config_destroy(cfg);
        return EXIT_FAILURE_RUNTIME;
    }
    millis_config_destroy(cfg);
    if (json) {
        printf("%s\n", report);
    } else {
        cJSON *root = cJSON_Parse(report);
        if (root == NULL || !cJSON_IsObject(root)) {
            error_msg("the library's report is not a JSON object (please report it)");
            rc = EXIT_FAILURE_RUNTIME;
        } else {
            print_report(root);
        }
        cJSON_Delete(root);
    }
    millis_free(report);
    return rc;
}
