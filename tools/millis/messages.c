/*
 * messages.c — the library's messages as the command line shows them.
 *
 * libmillis writes its messages for C programmers: its hints name C functions
 * ("choose them with millis_config_set_audio_devices()"). A user of the command line
 * has options instead, so every hint the library can give is rewritten here, in one
 * table. Test test_cli.py::test_library_hints_are_translated reads the library's
 * sources and fails when a message names a function this table does not know.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <stdio.h>
#include <string.h>

struct hint {
    const char *library; /* as the library writes it */
    const char *cli;     /* what the command line says instead */
};

static const struct hint hints[] = {
    /* A device that does not open (AlsaPCM); talk adds which option to change. */
    {"; list the devices with millis_audio_devices_json() and choose them with millis_config_set_audio_devices()",
     " (`millis devices` lists the devices)"},
    /* --capture '' and the like (ClientConfig). */
    {" (see millis_audio_devices_json), or NULL for \"default\"",
     " (`millis devices` lists them), or leave the option out for \"default\""},
    /* Kept out by audio-test's options (AudioTest). */
    {"leave out millis_config_set_audio_input_file / _output_file", "leave out --input and --output"},
    /* The WebRTC module could not be set up (VoiceProcessor). */
    {"the speexdsp canceller (millis_config_set_echo_canceller) works without it", "--echo-canceller speex works without it"},
    /* A server whose certificate does not verify (NetworkLoop+Curl). */
    {"or use application audio mode (MILLIS_AUDIO_MODE_APPLICATION)",
     "or give files instead of devices (--input FILE, --output FILE)"},
    {"pass it with millis_config_set_ca_file", "pass it with --ca-file FILE"},
    {" (millis_config_set_tls_verification_disabled_insecure)", ""},
    /* talk's event queue overflows while its output is not read (EventQueue). */
    {"Take events sooner (millis_client_next_event), or raise the limit (millis_config_set_event_queue)",
     "`millis talk` waits while its output is not read: read it as it comes"},
    /* No ready in time (Session). */
    {"no onready from", "the session did not become ready at"},
    {"(the ready timeout)", "(--timeout)"},
    /* Kept out by talk's own checks; rewritten all the same. */
    {"call millis_config_set_public_key with", "set " ENV_PUBLIC_KEY " to"},
    {"set it in the client config (millis_config_set_public_key)", "set " ENV_PUBLIC_KEY " instead"},
    {" (millis_config_clear_headers removes them)", ": give fewer --header options"},
    {"millis_client_send_audio is for application audio mode", "audio from a program is for application audio mode"},
    {"audio files are devices (millis_config_set_audio_input_file / _output_file)",
     "audio files (--input, --output) are devices"},
    {"call millis_client_stop and wait for onclose before starting again", "wait for it to end"},
    {"call millis_client_stop_recording first", "it cannot start twice"},
    {"(millis_client_destroy on this one releases nothing of the other process's)", ""},
    {"call millis_config_set_event_queue on its configuration before millis_client_create",
     "this is a bug in millis talk, please report it"},
    {"millis_client_next_event was called from inside a callback", "events were taken from inside a callback"},
};

void cli_translate(const char *message, char *out, size_t size)
{
    size_t used = 0;
    const char *p = message ? message : "";
    if (size == 0) return;
    while (*p != '\0' && used + 1 < size) {
        size_t i, n = 0;
        for (i = 0; i < sizeof hints / sizeof hints[0]; i++) {
            size_t len = strlen(hints[i].library);
            if (strncmp(p, hints[i].library, len) == 0) {
                n = len;
                break;
            }
        }
        if (n > 0) {
            int w = snprintf(out + used, size - used, "%s", hints[i].cli);
            used += (w > 0 && (size_t)w < size - used) ? (size_t)w : size - used - 1;
            p += n;
        } else {
            out[used++] = *p++;
        }
    }
    out[used] = '\0';
}

void cli_library_error(millis_status status, const char *message, char *out, size_t size)
{
    /* The library's messages say what failed in full ("could not connect to URL: ...");
     * its status's summary ("could not connect") would only say it twice. */
    cli_translate(message, out, size);
    if (out[0] == '\0') snprintf(out, size, "%s", millis_status_string(status));
}
