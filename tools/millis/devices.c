/*
 * devices.c — `millis devices`: the ALSA capture and playback devices.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

static void help(void)
{
    printf("Usage: %s devices [--json]\n"
           "\n"
           "Lists the PCMs ALSA knows, for `%s talk --capture NAME --playback NAME`\n"
           "(or --device NAME for both): capture devices (microphones), then playback\n"
           "devices (speakers). \"default\" is what talk uses when no device is given.\n"
           "\n"
           "Options:\n"
           "  --json       print the library's JSON as is:\n"
           "               {\"capture\": [{\"name\", \"description\"}], \"playback\": [...]}\n"
           "  -h, --help   this help\n"
           "\n"
           "Exit status: 0 listed; 1 ALSA could not list its devices; 2 usage error.\n",
           prog_name, prog_name);
}

static void print_list(const cJSON *list, const char *title, const char *option)
{
    const cJSON *item;
    int width = 0, count = 0;
    cJSON_ArrayForEach(item, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        if (cJSON_IsString(name) && (int)strlen(name->valuestring) > width)
            width = (int)strlen(name->valuestring);
    }
    if (width > 40) width = 40;
    printf("%s (%s NAME):\n", title, option);
    cJSON_ArrayForEach(item, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
        const cJSON *desc = cJSON_GetObjectItemCaseSensitive(item, "description");
        const char *d = cJSON_IsString(desc) ? desc->valuestring : "";
        if (!cJSON_IsString(name)) continue;
        count++;
        printf("  %-*s", width, name->valuestring);
        /* ALSA's descriptions hold line breaks: continue them under the first line. */
        if (d[0] != '\0') {
            printf("  ");
            for (; *d != '\0'; d++) {
                if (*d == '\n') {
                    printf("\n  %-*s  ", width, "");
                } else {
                    putchar(*d);
                }
            }
        }
        putchar('\n');
    }
    if (count == 0) printf("  (none)\n");
}

int cmd_devices(int argc, char **argv)
{
    static const struct option options[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, c;
    char *text;
    cJSON *root;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'j': json = 1; break;
        case 'h': help(); return EXIT_OK;
        default: return bad_option("devices", argv, c);
        }
    }
    if (optind < argc) return usage_error("devices", "unexpected argument '%s'", argv[optind]);

    text = millis_audio_devices_json();
    if (text == NULL) {
        error_msg("ALSA could not list its devices (is libasound2 installed, and "
                  "/usr/share/alsa/alsa.conf readable?)");
        return EXIT_FAILURE_RUNTIME;
    }
    if (json) {
        printf("%s\n", text);
        millis_free(text);
        return EXIT_OK;
    }
    root = cJSON_Parse(text);
    millis_free(text);
    if (root == NULL || !cJSON_IsObject(root)) {
        error_msg("the library's device list is not a JSON object (please report it)");
        cJSON_Delete(root);
        return EXIT_FAILURE_RUNTIME;
    }
    print_list(cJSON_GetObjectItemCaseSensitive(root, "capture"), "Capture devices", "--capture");
    printf("\n");
    print_list(cJSON_GetObjectItemCaseSensitive(root, "playback"), "Playback devices", "--playback");
    cJSON_Delete(root);
    return EXIT_OK;
}
