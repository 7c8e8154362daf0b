/*
 * devices.c — `millis devices`: the ALSA capture and playback devices.
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
    printf("Usage: %s devices [--all] [--json]\n"
           "\n"
           "Lists the PCMs ALSA knows, for `%s talk --capture NAME --playback NAME`\n"
           "(or --device NAME for both): capture devices (microphones), then playback\n"
           "devices (speakers). \"default\" is what talk uses when no device is given.\n"
           "\n"
           "Shown: the sound cards' devices (names with CARD=, e.g. plughw:CARD=PCH,DEV=0),\n"
           "default, sysdefault, null, the sound servers (pulse, pipewire), and the PCMs\n"
           "defined in ~/.asoundrc, ~/.config/alsa/asoundrc, /etc/asound.conf or the files\n"
           "of $ALSA_CONFIG_PATH. Not shown: the plugins other packages define (rate\n"
           "converters, up- and downmixers, jack, oss, ...), which are no devices.\n"
           "\n"
           "Options:\n"
           "  --all        list every PCM ALSA knows, plugins too\n"
           "  --json       print the list as JSON:\n"
           "               {\"capture\": [{\"name\", \"description\"}], \"playback\": [...]}\n"
           "  -h, --help   this help\n"
           "\n"
           "Exit status: 0 listed; 1 ALSA could not list its devices; 2 usage error.\n",
           prog_name, prog_name);
}

/* ------------------------------------------------------------------------------------
 * The PCMs the user's or the system's configuration defines
 *
 * ALSA's device hints mix the sound cards' devices with every PCM a configuration file
 * defines with a hint, and alsa-plugins' files define many (lavrate, upmix, ...) that
 * are filters for another PCM, not devices. The hints do not say which file defined a
 * name, so the files a user or administrator writes are read for `pcm.NAME` (and
 * `pcm { NAME ... }`) definitions: the names they define are shown.
 * ---------------------------------------------------------------------------------- */

#define MAX_DEPTH 32
#define MAX_INCLUDE_DEPTH 4

struct names {
    char **items;
    size_t count, cap;
};

static void add_name(struct names *n, const char *name, size_t len)
{
    size_t i;
    char *copy;
    if (len == 0) return;
    for (i = 0; i < n->count; i++)
        if (strlen(n->items[i]) == len && strncmp(n->items[i], name, len) == 0) return;
    if (n->count == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 16;
        char **bigger = realloc(n->items, cap * sizeof *bigger);
        if (bigger == NULL) return;
        n->items = bigger;
        n->cap = cap;
    }
    copy = strndup(name, len);
    if (copy != NULL) n->items[n->count++] = copy;
}

static int has_name(const struct names *n, const char *name)
{
    size_t i;
    for (i = 0; i < n->count; i++)
        if (strcmp(n->items[i], name) == 0) return 1;
    return 0;
}

static void free_names(struct names *n)
{
    size_t i;
    for (i = 0; i < n->count; i++) free(n->items[i]);
    free(n->items);
}

/* One token of ALSA's configuration syntax: a punctuation character, a word (quotes
 * removed) or an include (<path>). Returns its kind ('w', 'i', the character itself,
 * or 0 at the end) with the word in buf. */
static int next_token(const char **pp, char *buf, size_t size)
{
    const char *p = *pp;
    size_t n = 0;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') p++;
        if (*p != '#') break;
        while (*p != '\0' && *p != '\n') p++;
    }
    if (*p == '\0') {
        *pp = p;
        return 0;
    }
    if (strchr("{}[]=;,", *p) != NULL) {
        *pp = p + 1;
        return *p;
    }
    if (*p == '<') {
        p++;
        while (*p != '\0' && *p != '>') {
            if (n + 1 < size) buf[n++] = *p;
            p++;
        }
        buf[n] = '\0';
        *pp = *p ? p + 1 : p;
        return 'i';
    }
    /* A word, its quoted parts unquoted: pcm."my mic" is the key path pcm.my mic. */
    while (*p != '\0' && strchr(" \t\r\n{}[]=;,#", *p) == NULL) {
        if (*p == '"' || *p == '\'') {
            char quote = *p++;
            while (*p != '\0' && *p != quote) {
                if (*p == '\\' && p[1] != '\0') p++;
                if (n + 1 < size) buf[n++] = *p;
                p++;
            }
            if (*p != '\0') p++;
            continue;
        }
        if (n + 1 < size) buf[n++] = *p;
        p++;
    }
    buf[n] = '\0';
    *pp = p;
    return 'w';
}

/* The NAME of a key path "pcm.NAME..." (ALSA's operators ! ? + - dropped), into out. */
static void note_pcm(struct names *out, const char *path)
{
    const char *p = path, *name, *end;
    while (*p == '!' || *p == '?' || *p == '+' || *p == '-') p++;
    if (strncmp(p, "pcm.", 4) != 0) return;
    name = p + 4;
    while (*name == '!' || *name == '?' || *name == '+' || *name == '-') name++;
    end = name + strcspn(name, ".");
    add_name(out, name, (size_t)(end - name));
}

static void scan_file(struct names *out, const char *path, int include_depth);

static void scan_text(struct names *out, const char *text, int include_depth)
{
    /* Each open compound's key path ("" inside an array); in_array says which are arrays. */
    char paths[MAX_DEPTH][512], word[512], key[512];
    int in_array[MAX_DEPTH];
    int depth = 0, expect_value = 0, t;
    const char *p = text;
    paths[0][0] = '\0';
    in_array[0] = 0;
    key[0] = '\0';
    while ((t = next_token(&p, word, sizeof word)) != 0) {
        switch (t) {
        case 'w':
            if (in_array[depth] || expect_value) {
                expect_value = 0; /* a value */
            } else {
                size_t plen = strlen(paths[depth]), wlen = strlen(word);
                if (plen + 1 + wlen >= sizeof key) wlen = 0; /* too deep to be a PCM's name */
                memcpy(key, paths[depth], plen);
                if (plen > 0) key[plen++] = '.';
                memcpy(key + plen, word, wlen);
                key[plen + wlen] = '\0';
                note_pcm(out, key);
                expect_value = 1;
            }
            break;
        case 'i':
            /* <confdir:...> is ALSA's own; a user's file may include other files. */
            if (word[0] == '/') scan_file(out, word, include_depth + 1);
            break;
        case '{':
        case '[':
            if (depth + 1 >= MAX_DEPTH) return;
            depth++;
            if (t == '{' && expect_value && !in_array[depth - 1] && strlen(key) < sizeof paths[depth])
                memcpy(paths[depth], key, strlen(key) + 1);
            else
                paths[depth][0] = '\0';
            in_array[depth] = t == '[';
            expect_value = 0;
            break;
        case '}':
        case ']':
            if (depth > 0) depth--;
            expect_value = 0;
            break;
        case ';':
        case ',':
            expect_value = 0;
            break;
        default: /* '=' */
            break;
        }
    }
}

static void scan_file(struct names *out, const char *path, int include_depth)
{
    char *text;
    if (include_depth > MAX_INCLUDE_DEPTH) return;
    text = read_text_file(path, NULL);
    if (text == NULL) return;
    scan_text(out, text, include_depth);
    free(text);
}

/* The names the user's and the administrator's files define (as alsa-lib finds them). */
static void user_defined_pcms(struct names *out)
{
    const char *home = getenv("HOME"), *xdg = getenv("XDG_CONFIG_HOME"), *list = getenv("ALSA_CONFIG_PATH");
    char path[4096];
    if (list != NULL && list[0] != '\0') {
        /* alsa-lib reads these instead of its alsa.conf: each is the user's choice. */
        while (*list != '\0') {
            size_t len = strcspn(list, ":");
            if (len > 0 && len < sizeof path) {
                memcpy(path, list, len);
                path[len] = '\0';
                scan_file(out, path, 0);
            }
            list += len;
            if (*list == ':') list++;
        }
    }
    if (home != NULL && home[0] != '\0') {
        snprintf(path, sizeof path, "%s/.asoundrc", home);
        scan_file(out, path, 0);
    }
    if (xdg != NULL && xdg[0] == '/') {
        snprintf(path, sizeof path, "%s/alsa/asoundrc", xdg);
        scan_file(out, path, 0);
    } else if (home != NULL && home[0] != '\0') {
        snprintf(path, sizeof path, "%s/.config/alsa/asoundrc", home);
        scan_file(out, path, 0);
    }
    scan_file(out, "/etc/asound.conf", 0);
}

/* ALSA's own PCMs and the sound servers', shown by name. */
static const char *const known_devices[] = {"default", "sysdefault", "null", "pulse", "pipewire"};

/* 1 when `name` (a hint: "plughw:CARD=PCH,DEV=0", "pulse", ...) is a device to show. */
static int is_device(const char *name, const struct names *user)
{
    char base[256];
    size_t i, len = strcspn(name, ":");
    if (strstr(name, "CARD=") != NULL) return 1; /* a sound card's device */
    if (len >= sizeof base) return 0;
    memcpy(base, name, len);
    base[len] = '\0';
    for (i = 0; i < sizeof known_devices / sizeof known_devices[0]; i++)
        if (strcmp(base, known_devices[i]) == 0) return 1;
    return has_name(user, base);
}

/* Drops from each side of the list the PCMs that are no devices; returns how many
 * names it dropped (a name of both sides counted once). */
static int keep_devices(cJSON *root)
{
    static const char *const sides[] = {"capture", "playback"};
    struct names user = {NULL, 0, 0}, dropped = {NULL, 0, 0};
    size_t i;
    int count;
    user_defined_pcms(&user);
    for (i = 0; i < 2; i++) {
        cJSON *list = cJSON_GetObjectItemCaseSensitive(root, sides[i]), *item = list ? list->child : NULL;
        while (item != NULL) {
            cJSON *next = item->next;
            const cJSON *name = cJSON_GetObjectItemCaseSensitive(item, "name");
            if (!cJSON_IsString(name) || !is_device(name->valuestring, &user)) {
                if (cJSON_IsString(name)) add_name(&dropped, name->valuestring, strlen(name->valuestring));
                cJSON_Delete(cJSON_DetachItemViaPointer(list, item));
            }
            item = next;
        }
    }
    count = (int)dropped.count;
    free_names(&user);
    free_names(&dropped);
    return count;
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
        /* ALSA's descriptions hold line breaks: continue them under the first line. */
        if (d[0] == '\0') {
            printf("  %s", name->valuestring);
        } else {
            printf("  %-*s  ", width, name->valuestring);
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
        {"all", no_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int json = 0, all = 0, dropped = 0, c;
    char *text;
    cJSON *root;
    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'a': all = 1; break;
        case 'j': json = 1; break;
        case 'h': help(); return EXIT_OK;
        default: return bad_option("devices", argv, c);
        }
    }
    if (optind < argc) return usage_error("devices", "unexpected argument '%s'", argv[optind]);

    text = millis_audio_devices_json();
    if (text == NULL) {
        const char *why = millis_audio_devices_last_error();
        char said[1024];
        cli_translate(why != NULL ? why : "ALSA could not list its devices", said, sizeof said);
        error_msg("%s", said);
        return EXIT_FAILURE_RUNTIME;
    }
    root = cJSON_Parse(text);
    millis_free(text);
    if (root == NULL || !cJSON_IsObject(root)) {
        error_msg("the library's device list is not a JSON object (please report it)");
        cJSON_Delete(root);
        return EXIT_FAILURE_RUNTIME;
    }
    if (!all) dropped = keep_devices(root);
    if (json) {
        char *out = cJSON_PrintUnformatted(root);
        printf("%s\n", out ? out : "{}");
        free(out);
        cJSON_Delete(root);
        return EXIT_OK;
    }
    print_list(cJSON_GetObjectItemCaseSensitive(root, "capture"), "Capture devices", "--capture");
    printf("\n");
    print_list(cJSON_GetObjectItemCaseSensitive(root, "playback"), "Playback devices", "--playback");
    if (dropped > 0)
        printf("\n(%d plugin%s not shown: `%s devices --all` lists %s)\n", dropped, dropped == 1 ? "" : "s",
               prog_name, dropped == 1 ? "it" : "them");
    cJSON_Delete(root);
    return EXIT_OK;
}
