/*
 * talk_args.c — `millis talk`'s command line: --help, the options and their checks,
 * and the options object of millis_client_start (agent, metadata, continuation).
 */
#define _POSIX_C_SOURCE 200809L

#include "talk.h"

#include "common.h"

#include <millis.h>

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void help(void)
{
    printf(
        "Usage: %s talk [OPTIONS]\n"
        "\n"
        "Holds a conversation with a Millis agent: your microphone and speaker (ALSA),\n"
        "or audio files. On a terminal it shows the agent's state, the levels of both\n"
        "sides, the live transcript and the latency of each answer; keys: m mute/unmute,\n"
        "q or Ctrl-C quit. Otherwise (a pipe, a file, or --plain) it prints one line per\n"
        "event: ready SESSION_ID, user: TEXT, agent: TEXT, state: STATE,\n"
        "turn N: total MS ms (...), closed CODE REASON; errors go to stderr.\n"
        "\n"
        "The agent:\n"
        "  --agent-id ID          a stored agent (default: $%s)\n"
        "  --agent-config FILE    a JSON object of agent settings (prompt, voice,\n"
        "                         language, ...); with --agent-id it overrides that\n"
        "                         agent's settings for this conversation\n"
        "  --metadata JSON        metadata for the agent: a JSON object, or @FILE\n"
        "  --metadata-in-prompt   include the metadata in the agent's prompt\n"
        "  --session-id ID        continue an earlier conversation (its session id)\n"
        "  --endpoint URL         ws:// or wss:// (default: $%s, else\n"
        "                         %s)\n"
        "  --ca-file FILE         PEM CA certificates for a wss:// server\n"
        "  --header 'NAME: VALUE'\n"
        "                         an extra header for the WebSocket upgrade request, sent\n"
        "                         after libmillis' own (repeatable, in order): Origin, a\n"
        "                         gateway's Authorization, ...; a User-Agent replaces\n"
        "                         libmillis' own\n"
        "Audio:\n"
        "  --device NAME          ALSA device for both microphone and speaker\n"
        "  --capture NAME         ALSA microphone (default \"default\")\n"
        "  --playback NAME        ALSA speaker (default \"default\")\n"
        "                         (`%s devices` lists the names)\n"
        "  --input FILE           the user's voice from a WAV or Ogg Opus file instead of\n"
        "                         the microphone; silence follows its end\n"
        "  --fast                 stream --input as fast as the server takes it\n"
        "  --output FILE          the agent's voice to a file (.wav, .opus, .ogg) instead\n"
        "                         of the speaker\n"
        "  --record FILE          record both sides (.opus, .ogg or .wav; user left,\n"
        "                         agent right) and a timeline FILE.jsonl beside it\n"
        "                         (`%s replay FILE.jsonl` prints it)\n"
        "  --record-mono          record both sides mixed to one channel\n"
        "  --no-echo-cancellation, --no-noise-suppression, --no-gain-control\n"
        "                         switch off the microphone's processing\n"
        "  --echo-canceller NAME  the module that processes the microphone: webrtc\n"
        "                         (default: removes far more echo) or speex (keeps more\n"
        "                         of your voice while the agent speaks)\n"
        "Time:\n"
        "  --timeout SECS         give up if the session is not ready by then (default 15)\n"
        "  --linger SECS          with --input: once the file has ended, stop when the\n"
        "                         agent has answered and is idle again, or after SECS\n"
        "                         at most (default 10)\n"
        "Output:\n"
        "  --plain                line output even on a terminal\n"
        "  -v, --verbose          the library's debug log (stderr; on screen when live)\n"
        "  -h, --help             this help\n"
        "\n"
        "Environment: %s (required: the public key from the Millis playground;\n"
        "the devserver accepts test-public-key), %s, %s.\n"
        "\n"
        "Exit status: 0 the conversation ended normally (closed with 1000, or you quit);\n"
        "1 it could not start or ended with an error (connection, server, audio device,\n"
        "file, not ready in time); 2 usage error (bad option or value, no public key,\n"
        "no agent); 3 the server refused the public key (close code 4001, or HTTP\n"
        "401/403 to the upgrade).\n"
        "\n"
        "Example (against `%s devserver`):\n"
        "  MILLIS_PUBLIC_KEY=test-public-key %s talk --agent-id demo-agent \\\n"
        "    --endpoint ws://127.0.0.1:8765/millis --input speech.wav --output agent.wav\n",
        prog_name, ENV_AGENT_ID, ENV_ENDPOINT, MILLIS_DEFAULT_ENDPOINT, prog_name, prog_name, ENV_PUBLIC_KEY,
        ENV_ENDPOINT, ENV_AGENT_ID, prog_name, prog_name);
}

/* ------------------------------------------------------------------------------------
 * Start options JSON
 * ---------------------------------------------------------------------------------- */

/* Parses JSON text that must be an object; prints where it is wrong. */
static cJSON *parse_object(const char *what, const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (j == NULL) {
        int line, col;
        text_position(text, cJSON_GetErrorPtr(), &line, &col);
        usage_error("talk", "%s is not valid JSON (line %d, column %d)", what, line, col);
        return NULL;
    }
    if (!cJSON_IsObject(j)) {
        usage_error("talk", "%s must be a JSON object ({...})", what);
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

static cJSON *load_json_file(const char *option, const char *path)
{
    char what[512];
    char *text = read_text_file(path, NULL);
    cJSON *j;
    if (text == NULL) {
        usage_error("talk", "%s %s: cannot read it: %s", option, path, strerror(errno));
        return NULL;
    }
    snprintf(what, sizeof what, "%s %s", option, path);
    j = parse_object(what, text);
    free(text);
    return j;
}

/* The options object of millis_client_start; NULL after a usage error. */
char *talk_start_options(const struct options *o)
{
    cJSON *root = cJSON_CreateObject(), *agent = cJSON_CreateObject();
    char *text;
    cJSON_AddItemToObject(root, "agent", agent);
    if (o->agent_id) cJSON_AddStringToObject(agent, "agent_id", o->agent_id);
    if (o->agent_config) {
        cJSON *cfg = load_json_file("--agent-config", o->agent_config);
        if (cfg == NULL) goto fail;
        cJSON_AddItemToObject(agent, "agent_config", cfg);
    }
    if (o->metadata) {
        cJSON *m = o->metadata[0] == '@' ? load_json_file("--metadata", o->metadata + 1)
                                         : parse_object("--metadata", o->metadata);
        if (m == NULL) goto fail;
        cJSON_AddItemToObject(root, "metadata", m);
    }
    if (o->metadata_in_prompt) cJSON_AddTrueToObject(root, "include_metadata_in_prompt");
    if (o->session_id) {
        cJSON *cont = cJSON_CreateObject();
        cJSON_AddStringToObject(cont, "session_id", o->session_id);
        cJSON_AddItemToObject(root, "session_continuation", cont);
    }
    text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
fail:
    cJSON_Delete(root);
    return NULL;
}

/* ------------------------------------------------------------------------------------
 * Options
 * ---------------------------------------------------------------------------------- */

enum {
    O_AGENT_ID = 256, O_AGENT_CONFIG, O_METADATA, O_METADATA_PROMPT, O_SESSION, O_ENDPOINT, O_CA,
    O_DEVICE, O_CAPTURE, O_PLAYBACK, O_INPUT, O_FAST, O_OUTPUT, O_RECORD, O_RECORD_MONO, O_NO_AEC,
    O_NO_NS, O_NO_AGC, O_CANCELLER, O_TIMEOUT, O_LINGER, O_PLAIN, O_HEADER
};

static const struct option long_options[] = {
    {"agent-id", required_argument, NULL, O_AGENT_ID},
    {"agent-config", required_argument, NULL, O_AGENT_CONFIG},
    {"metadata", required_argument, NULL, O_METADATA},
    {"metadata-in-prompt", no_argument, NULL, O_METADATA_PROMPT},
    {"session-id", required_argument, NULL, O_SESSION},
    {"endpoint", required_argument, NULL, O_ENDPOINT},
    {"ca-file", required_argument, NULL, O_CA},
    {"header", required_argument, NULL, O_HEADER},
    {"device", required_argument, NULL, O_DEVICE},
    {"capture", required_argument, NULL, O_CAPTURE},
    {"playback", required_argument, NULL, O_PLAYBACK},
    {"input", required_argument, NULL, O_INPUT},
    {"fast", no_argument, NULL, O_FAST},
    {"output", required_argument, NULL, O_OUTPUT},
    {"record", required_argument, NULL, O_RECORD},
    {"record-mono", no_argument, NULL, O_RECORD_MONO},
    {"no-echo-cancellation", no_argument, NULL, O_NO_AEC},
    {"no-noise-suppression", no_argument, NULL, O_NO_NS},
    {"no-gain-control", no_argument, NULL, O_NO_AGC},
    {"echo-canceller", required_argument, NULL, O_CANCELLER},
    {"timeout", required_argument, NULL, O_TIMEOUT},
    {"linger", required_argument, NULL, O_LINGER},
    {"plain", no_argument, NULL, O_PLAIN},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* One option getopt_long returned, with its value in optarg: 0, -1 after --help, else
 * the exit code of a usage error. */
static int apply_option(struct options *o, int c, char **argv)
{
    switch (c) {
    case O_AGENT_ID: o->agent_id = optarg; break;
    case O_AGENT_CONFIG: o->agent_config = optarg; break;
    case O_METADATA: o->metadata = optarg; break;
    case O_METADATA_PROMPT: o->metadata_in_prompt = 1; break;
    case O_SESSION: o->session_id = optarg; break;
    case O_ENDPOINT: o->endpoint = optarg; break;
    case O_CA: o->ca_file = optarg; break;
    case O_HEADER:
        if (strchr(optarg, ':') == NULL)
            return usage_error("talk", "--header '%s': give NAME: VALUE (a colon between the name and the value), "
                               "e.g. --header 'Origin: https://example.com'", optarg);
        if (o->header_count == MAX_HEADERS)
            return usage_error("talk", "--header '%s': too many headers: at most %d", optarg, MAX_HEADERS);
        o->headers[o->header_count++] = optarg;
        break;
    case O_DEVICE: o->capture = o->playback = optarg; break;
    case O_CAPTURE: o->capture = optarg; break;
    case O_PLAYBACK: o->playback = optarg; break;
    case O_INPUT: o->input = optarg; break;
    case O_FAST: o->fast = 1; break;
    case O_OUTPUT: o->output = optarg; break;
    case O_RECORD: o->record = optarg; break;
    case O_RECORD_MONO: o->record_mono = 1; break;
    case O_NO_AEC: o->echo_cancellation = 0; break;
    case O_NO_NS: o->noise_suppression = 0; break;
    case O_NO_AGC: o->gain_control = 0; break;
    case O_CANCELLER:
        if (parse_echo_canceller(optarg, &o->echo_canceller) != 0) return echo_canceller_error("talk", optarg);
        break;
    case O_TIMEOUT:
        if (parse_seconds(optarg, 0.1, 600, &o->timeout) != 0)
            return usage_error("talk", "--timeout '%s': give a number of seconds from 0.1 to 600", optarg);
        o->timeout_set = 1;
        break;
    case O_LINGER:
        if (parse_seconds(optarg, 0, 86400, &o->linger) != 0)
            return usage_error("talk", "--linger '%s': give a number of seconds (0 or more)", optarg);
        break;
    case O_PLAIN: o->plain = 1; break;
    case 'v': o->verbose = 1; break;
    case 'h': help(); return -1;
    default: return bad_option("talk", argv, c);
    }
    return 0;
}

/* What the options say together: an agent, and options that need another. */
static int check_options(struct options *o)
{
    if (o->agent_id == NULL) {
        const char *env = getenv(ENV_AGENT_ID);
        if (env != NULL && env[0] != '\0') o->agent_id = env;
    }
    if (o->agent_id != NULL && o->agent_id[0] == '\0') return usage_error("talk", "--agent-id is empty");
    if (o->agent_id == NULL && o->agent_config == NULL)
        return usage_error("talk", "which agent? give --agent-id ID (or set %s), or --agent-config FILE.json",
                           ENV_AGENT_ID);
    if (o->record_mono && o->record == NULL) return usage_error("talk", "--record-mono needs --record FILE");
    if (o->fast && o->input == NULL) return usage_error("talk", "--fast needs --input FILE");
    if (o->input != NULL && access(o->input, R_OK) != 0)
        return usage_error("talk", "--input %s: cannot read it: %s", o->input, strerror(errno));
    return 0;
}

int talk_parse_options(int argc, char **argv, struct options *o)
{
    int c, rc;
    memset(o, 0, sizeof *o);
    o->echo_cancellation = o->noise_suppression = o->gain_control = 1;
    o->timeout = 15.0;
    o->linger = DEFAULT_LINGER;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":hv", long_options, NULL)) != -1) {
        rc = apply_option(o, c, argv);
        if (rc != 0) return rc;
    }
    if (optind < argc)
        return usage_error("talk", "unexpected argument '%s' (every option starts with --)", argv[optind]);
    return check_options(o);
}
