/*
 * voices.c — `millis voices`: the voices available to the public key, from Millis'
 * REST API (libcurl).
 *
 * The API lives on the WebSocket endpoint's host (docs/protocol.md, "not known"): the base
 * URL is derived from the endpoint by one rule, overridable with --base-url:
 *   scheme  wss → https, ws → http
 *   host    kept
 *   port    kept, unless it is 8080 (the port of Millis' WebSocket service, which the
 *           HTTPS API does not share): dropped
 *   path    dropped
 * so wss://api-west.millis.ai:8080/millis → https://api-west.millis.ai and
 * ws://127.0.0.1:8765/millis → http://127.0.0.1:8765.
 */
#define _POSIX_C_SOURCE 200809L

#include "common.h"

#include <millis.h>

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_VOICES_PATH "/voices"
#define MAX_BODY_BYTES (16u * 1024u * 1024u)
#define CELL_MAX 40

static void help(void)
{
    printf("Usage: %s voices [OPTIONS]\n"
           "\n"
           "Lists the voices available to your public key, from Millis' REST API: a\n"
           "GET request to BASE-URL + PATH with the key in the Authorization header.\n"
           "\n"
           "Options:\n"
           "  --endpoint URL   the WebSocket endpoint the API's address is derived from\n"
           "                   (default: $MILLIS_ENDPOINT, else %s)\n"
           "  --base-url URL   the API's address, instead of deriving it from the endpoint\n"
           "  --path PATH      the voices path (default: $%s, else %s)\n"
           "  --timeout SECS   give up after this long (default 15)\n"
           "  --json           print the server's JSON as is\n"
           "  -h, --help       this help\n"
           "\n"
           "The base URL is the endpoint with wss:// → https:// (ws:// → http://), the\n"
           "same host, the port kept unless it is 8080 (Millis' WebSocket port), and no path:\n"
           "  wss://api-west.millis.ai:8080/millis → https://api-west.millis.ai\n"
           "  ws://127.0.0.1:8765/millis           → http://127.0.0.1:8765\n"
           "\n"
           "Environment: %s (required), %s, %s.\n"
           "Exit status: 0 listed; 1 network error, HTTP error or an answer that is not\n"
           "JSON; 2 usage error (bad option, no public key); 3 the server refused the\n"
           "public key (HTTP 401/403).\n",
           prog_name, MILLIS_DEFAULT_ENDPOINT, ENV_VOICES_PATH, DEFAULT_VOICES_PATH,
           ENV_PUBLIC_KEY, ENV_ENDPOINT, ENV_VOICES_PATH);
}

/* The API base URL of a ws:// or wss:// endpoint (see the top of this file); NULL
 * for an endpoint that is not one. Caller frees. */
static char *base_url_of_endpoint(const char *endpoint)
{
    const char *scheme, *rest, *host_end, *authority_end, *port = NULL;
    size_t host_len, port_len = 0;
    char *out;
    if (strncmp(endpoint, "wss://", 6) == 0) {
        scheme = "https";
        rest = endpoint + 6;
    } else if (strncmp(endpoint, "ws://", 5) == 0) {
        scheme = "http";
        rest = endpoint + 5;
    } else {
        return NULL;
    }
    authority_end = rest + strcspn(rest, "/?#");
    if (authority_end == rest) return NULL;
    if (rest[0] == '[') { /* [IPv6] */
        const char *close = memchr(rest, ']', (size_t)(authority_end - rest));
        if (close == NULL) return NULL;
        host_end = close + 1;
    } else {
        host_end = memchr(rest, ':', (size_t)(authority_end - rest));
        if (host_end == NULL) host_end = authority_end;
    }
    host_len = (size_t)(host_end - rest);
    if (host_len == 0) return NULL;
    if (host_end < authority_end && *host_end == ':') {
        port = host_end + 1;
        port_len = (size_t)(authority_end - port);
        if (port_len == 4 && strncmp(port, "8080", 4) == 0) port_len = 0;
    }
    out = malloc(strlen(scheme) + 3 + host_len + 1 + port_len + 1);
    if (out == NULL) return NULL;
    sprintf(out, "%s://%.*s", scheme, (int)host_len, rest);
    if (port_len > 0) sprintf(out + strlen(out), ":%.*s", (int)port_len, port);
    return out;
}

struct body {
    char *data;
    size_t len;
    int too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct body *b = userdata;
    size_t n = size * nmemb;
    char *bigger;
    if (b->len + n > MAX_BODY_BYTES) {
        b->too_big = 1;
        return 0; /* aborts the transfer */
    }
    bigger = realloc(b->data, b->len + n + 1);
    if (bigger == NULL) return 0;
    b->data = bigger;
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    b->data[b->len] = '\0';
    return n;
}

/* The first 200 characters of a body, on one line, for error messages. */
static void excerpt(const char *body, size_t len, char *out, size_t out_size)
{
    size_t i, j = 0;
    if (len == 0) {
        snprintf(out, out_size, "(empty body)");
        return;
    }
    for (i = 0; i < len && j + 4 < out_size && i < 200; i++) {
        unsigned char ch = (unsigned char)body[i];
        out[j++] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
    }
    if (i < len && j + 4 < out_size) {
        memcpy(out + j, "...", 3);
        j += 3;
    }
    out[j] = '\0';
}

/* A cell's text: strings as they are, other values as compact JSON; cut to CELL_MAX
 * display columns. */
static char *cell_text(const cJSON *v)
{
    char *s;
    if (v == NULL || cJSON_IsNull(v)) {
        s = strdup("");
    } else if (cJSON_IsString(v)) {
        s = strdup(v->valuestring);
    } else {
        s = cJSON_PrintUnformatted(v);
    }
    if (s == NULL) return NULL;
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20) *p = ' ';
    if (display_width(s) > CELL_MAX) {
        size_t i = 0, cols = 0;
        while (s[i] && cols < CELL_MAX - 3) {
            i++;
            while (((unsigned char)s[i] & 0xC0) == 0x80) i++;
            cols++;
        }
        strcpy(s + i, "...");
    }
    return s;
}

/* Columns shown first when present, in this order; every other field follows. */
static const char *const preferred[] = {"voice_id", "id", "name", "provider", "language",
                                        "gender", "accent", "age", "description"};

struct columns {
    char **names;
    size_t count, cap;
};

static void add_column(struct columns *cols, const char *name)
{
    size_t i;
    for (i = 0; i < cols->count; i++)
        if (strcmp(cols->names[i], name) == 0) return;
    if (cols->count == cols->cap) {
        size_t cap = cols->cap ? cols->cap * 2 : 16;
        char **bigger = realloc(cols->names, cap * sizeof *bigger);
        if (bigger == NULL) return;
        cols->names = bigger;
        cols->cap = cap;
    }
    cols->names[cols->count] = strdup(name);
    if (cols->names[cols->count] != NULL) cols->count++;
}

/* The list of voices inside an answer: the array itself, or the array member of an
 * object ("voices", "data", ...), or, for an object of arrays keyed by provider, all
 * of them (each item noted with its provider). Returns a new array (caller deletes). */
static cJSON *voice_list(const cJSON *root)
{
    static const char *const members[] = {"voices", "data", "items", "results"};
    const cJSON *m;
    size_t i;
    int all_arrays = 1;
    cJSON *list;
    if (cJSON_IsArray(root)) return cJSON_Duplicate(root, 1);
    if (!cJSON_IsObject(root)) return NULL;
    for (i = 0; i < sizeof members / sizeof members[0]; i++) {
        m = cJSON_GetObjectItemCaseSensitive(root, members[i]);
        if (cJSON_IsArray(m)) return cJSON_Duplicate(m, 1);
    }
    cJSON_ArrayForEach(m, root) {
        if (!cJSON_IsArray(m)) all_arrays = 0;
    }
    if (!all_arrays || root->child == NULL) return NULL;
    list = cJSON_CreateArray();
    if (list == NULL) return NULL;
    cJSON_ArrayForEach(m, root) {
        const cJSON *item;
        cJSON_ArrayForEach(item, m) {
            cJSON *copy = cJSON_Duplicate(item, 1);
            if (copy == NULL) continue;
            if (cJSON_IsObject(copy) && !cJSON_HasObjectItem(copy, "provider"))
                cJSON_AddStringToObject(copy, "provider", m->string);
            cJSON_AddItemToArray(list, copy);
        }
    }
    return list;
}

static void print_table(const cJSON *list)
{
    struct columns cols = {NULL, 0, 0};
    const cJSON *item;
    size_t i, *width, n = 0, others = 0;
    cJSON_ArrayForEach(item, list) {
        n++;
        if (!cJSON_IsObject(item)) others++;
    }
    if (n == 0) {
        printf("No voices.\n");
        return;
    }
    for (i = 0; i < sizeof preferred / sizeof preferred[0]; i++) {
        cJSON_ArrayForEach(item, list) {
            if (cJSON_IsObject(item) && cJSON_HasObjectItem(item, preferred[i])) {
                add_column(&cols, preferred[i]);
                break;
            }
        }
    }
    cJSON_ArrayForEach(item, list) {
        const cJSON *field;
        if (!cJSON_IsObject(item)) continue;
        cJSON_ArrayForEach(field, item) add_column(&cols, field->string);
    }
    width = calloc(cols.count ? cols.count : 1, sizeof *width);
    if (width == NULL) return;
    for (i = 0; i < cols.count; i++) width[i] = display_width(cols.names[i]);
    cJSON_ArrayForEach(item, list) {
        if (!cJSON_IsObject(item)) continue;
        for (i = 0; i < cols.count; i++) {
            char *t = cell_text(cJSON_GetObjectItemCaseSensitive(item, cols.names[i]));
            if (t != NULL && display_width(t) > width[i]) width[i] = display_width(t);
            free(t);
        }
    }
    if (cols.count > 0) {
        for (i = 0; i < cols.count; i++) {
            print_padded(cols.names[i], i + 1 < cols.count ? width[i] + 2 : 0);
            if (i + 1 == cols.count) putchar('\n');
        }
        cJSON_ArrayForEach(item, list) {
            if (!cJSON_IsObject(item)) continue;
            for (i = 0; i < cols.count; i++) {
                char *t = cell_text(cJSON_GetObjectItemCaseSensitive(item, cols.names[i]));
                print_padded(t ? t : "", i + 1 < cols.count ? width[i] + 2 : 0);
                if (i + 1 == cols.count) putchar('\n');
                free(t);
            }
        }
    }
    if (others > 0) {
        cJSON_ArrayForEach(item, list) {
            char *t;
            if (cJSON_IsObject(item)) continue;
            t = cell_text(item);
            printf("%s\n", t ? t : "");
            free(t);
        }
    }
    printf("%lu voice%s\n", (unsigned long)n, n == 1 ? "" : "s");
    for (i = 0; i < cols.count; i++) free(cols.names[i]);
    free(cols.names);
    free(width);
}

int cmd_voices(int argc, char **argv)
{
    static const struct option options[] = {
        {"endpoint", required_argument, NULL, 'e'},
        {"base-url", required_argument, NULL, 'b'},
        {"path", required_argument, NULL, 'p'},
        {"timeout", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *endpoint_opt = NULL, *base_opt = NULL, *path = getenv(ENV_VOICES_PATH);
    const char *key;
    double timeout = 15.0;
    int json = 0, c, status = EXIT_OK;
    char *base = NULL, *url = NULL;
    char errbuf[CURL_ERROR_SIZE];
    char auth[4096], shown[256];
    struct body body = {NULL, 0, 0};
    struct curl_slist *headers = NULL;
    CURL *curl;
    CURLcode rc;
    long http = 0;
    cJSON *root, *list;

    opterr = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, ":h", options, NULL)) != -1) {
        switch (c) {
        case 'e': endpoint_opt = optarg; break;
        case 'b': base_opt = optarg; break;
        case 'p': path = optarg; break;
        case 't':
            if (parse_seconds(optarg, 0.1, 3600, &timeout) != 0)
                return usage_error("voices", "--timeout '%s': give a number of seconds from 0.1 to 3600", optarg);
            break;
        case 'j': json = 1; break;
        case 'h': help(); return EXIT_OK;
        default: return bad_option("voices", argv, c);
        }
    }
    if (optind < argc) return usage_error("voices", "unexpected argument '%s'", argv[optind]);
    if (path == NULL || path[0] == '\0') path = DEFAULT_VOICES_PATH;
    if (path[0] != '/')
        return usage_error("voices", "--path '%s': the path must start with '/', e.g. /voices", path);

    if (base_opt != NULL) {
        size_t n = strlen(base_opt);
        if (strncmp(base_opt, "http://", 7) != 0 && strncmp(base_opt, "https://", 8) != 0)
            return usage_error("voices", "--base-url '%s': give an http:// or https:// URL, e.g. https://api-west.millis.ai",
                               base_opt);
        while (n > 0 && base_opt[n - 1] == '/') n--;
        base = strndup(base_opt, n);
    } else {
        const char *endpoint = endpoint_or_default(endpoint_opt);
        base = base_url_of_endpoint(endpoint);
        if (base == NULL)
            return usage_error("voices",
                               "endpoint '%s' is not a ws:// or wss:// URL with a host; fix --endpoint "
                               "(or %s), or give --base-url",
                               endpoint, ENV_ENDPOINT);
    }
    key = public_key_from_env("voices");
    if (key == NULL) {
        free(base);
        return EXIT_USAGE;
    }
    if (strlen(key) > sizeof auth - 32 || strpbrk(key, "\r\n") != NULL) {
        free(base);
        return usage_error("voices", "%s holds a line break or is too long", ENV_PUBLIC_KEY);
    }
    url = malloc(strlen(base) + strlen(path) + 1);
    if (url == NULL) {
        free(base);
        return EXIT_FAILURE_RUNTIME;
    }
    sprintf(url, "%s%s", base, path);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || (curl = curl_easy_init()) == NULL) {
        error_msg("libcurl could not be initialised");
        free(base);
        free(url);
        return EXIT_FAILURE_RUNTIME;
    }
    snprintf(auth, sizeof auth, "Authorization: %s", key);
    headers = curl_slist_append(headers, auth);
    headers = curl_slist_append(headers, "Accept: application/json");
    errbuf[0] = '\0';
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "millis/" MILLIS_VERSION_STRING);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)(timeout * 1000));
    curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(curl, CURLOPT_MAXREDIRS, 5L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    rc = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &http);
    curl_easy_cleanup(curl);
    curl_slist_free_all(headers);
    /* The key is in that buffer: clear it. */
    memset(auth, 0, sizeof auth);

    if (rc != CURLE_OK) {
        if (body.too_big) {
            error_msg("the answer from %s is larger than %u MiB; is --path right?", url, MAX_BODY_BYTES >> 20);
        } else {
            error_msg("cannot get %s: %s\n       Check the endpoint (--endpoint, %s) or give the API's address "
                      "with --base-url.",
                      url, errbuf[0] ? errbuf : curl_easy_strerror(rc), ENV_ENDPOINT);
        }
        status = EXIT_FAILURE_RUNTIME;
        goto done;
    }
    excerpt(body.data, body.len, shown, sizeof shown);
    if (http == 401 || http == 403) {
        error_msg("HTTP %ld from %s: the server refused the public key.\n"
                  "       Check %s (the public key from the Millis playground). Server said: %s",
                  http, url, ENV_PUBLIC_KEY, shown);
        status = EXIT_AUTH;
        goto done;
    }
    if (http == 404) {
        error_msg("HTTP 404 from %s: no voices at that path. If the API lists them elsewhere, pass "
                  "--path (or %s). Server said: %s",
                  url, ENV_VOICES_PATH, shown);
        status = EXIT_FAILURE_RUNTIME;
        goto done;
    }
    if (http < 200 || http >= 300) {
        error_msg("HTTP %ld from %s. Server said: %s", http, url, shown);
        status = EXIT_FAILURE_RUNTIME;
        goto done;
    }
    root = cJSON_ParseWithLength(body.data ? body.data : "", body.len);
    if (root == NULL) {
        error_msg("the answer from %s is not JSON: %s", url, shown);
        status = EXIT_FAILURE_RUNTIME;
        goto done;
    }
    if (json) {
        fwrite(body.data, 1, body.len, stdout);
        if (body.len == 0 || body.data[body.len - 1] != '\n') putchar('\n');
        cJSON_Delete(root);
        goto done;
    }
    list = voice_list(root);
    if (list == NULL) {
        char *pretty = cJSON_Print(root);
        warn_msg("the answer from %s holds no list of voices; here it is as JSON", url);
        printf("%s\n", pretty ? pretty : "");
        free(pretty);
    } else {
        print_table(list);
        cJSON_Delete(list);
    }
    cJSON_Delete(root);

done:
    free(body.data);
    free(base);
    free(url);
    curl_global_cleanup();
    return status;
}
