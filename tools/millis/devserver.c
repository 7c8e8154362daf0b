/*
 * devserver.c — `millis devserver [ARGS...]`: runs the local Millis-compatible server
 * (devserver/millis_devserver.py) with python3, its arguments passed through.
 */
#define _XOPEN_SOURCE 700 /* realpath */

#include "common.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define SCRIPT_NAME "millis_devserver.py"
#define PYTHON "python3"

/* Where the script is looked for, in order (the first two relative to the directory of
 * the running executable): installed layout, then the build tree (build/millis). */
static const char *const relative_places[] = {
    "../share/millis/devserver/" SCRIPT_NAME,
    "../devserver/" SCRIPT_NAME,
};

static void help(void)
{
    printf("Usage: %s devserver [DEVSERVER OPTIONS...]\n"
           "       %s devserver --which\n"
           "\n"
           "Runs the local Millis-compatible voice-agent server (%s) with %s,\n"
           "passing every argument through. It accepts the public key test-public-key\n"
           "and the agent id demo-agent, and prints one line once it listens:\n"
           "  MILLIS_DEVSERVER_READY ws://127.0.0.1:8765/millis\n"
           "\n"
           "Common options (the server's own; see the list below):\n"
           "  --port N          port, 0 picks a free one (default 8765)\n"
           "  --host ADDR       address to listen on (default 127.0.0.1)\n"
           "  --record-dir DIR  keep a JSON record of each session\n"
           "  --script FILE     the conversation script\n"
           "  --voices-path P   path of the voices list (default /voices)\n"
           "Options of this command:\n"
           "  --which           print the script that would run, and exit\n"
           "  -h, --help        this help, then the server's own (`%s devserver -- --help`: only\n"
           "                    the server's)\n"
           "\n"
           "The script is found at: $%s (a path to %s), else\n"
           "<dir of %s>/../share/millis/devserver/%s (installed), else\n"
           "<dir of %s>/../devserver/%s (the source tree's build/).\n"
           "It needs Python 3.11 and the websockets package, 14 or later\n"
           "(python3 -m pip install 'websockets>=14'); without it, it says so in one line.\n"
           "\n"
           "Exit status: the server's (0 after SIGTERM/SIGINT, 1 when it cannot start:\n"
           "websockets missing or too old, port taken); 1 when %s or the script cannot\n"
           "be found.\n",
           prog_name, prog_name, SCRIPT_NAME, PYTHON, prog_name, ENV_DEVSERVER, SCRIPT_NAME, prog_name,
           SCRIPT_NAME, prog_name, SCRIPT_NAME, PYTHON);
}

static int is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Finds the script; returns 0 and fills `out`, or -1 after saying where it looked. */
static int find_script(char *out, size_t out_size)
{
    const char *env = getenv(ENV_DEVSERVER);
    char exe[PATH_MAX], tried[4 * PATH_MAX] = "";
    ssize_t n;
    size_t i;
    if (env != NULL && env[0] != '\0') {
        if (is_file(env)) {
            snprintf(out, out_size, "%s", env);
            return 0;
        }
        error_msg("%s=%s is not a file; point it at %s", ENV_DEVSERVER, env, SCRIPT_NAME);
        return -1;
    }
    n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        char *slash;
        exe[n] = '\0';
        slash = strrchr(exe, '/');
        if (slash != NULL) slash[1] = '\0';
        for (i = 0; i < sizeof relative_places / sizeof relative_places[0]; i++) {
            char candidate[PATH_MAX + 64], resolved[PATH_MAX];
            snprintf(candidate, sizeof candidate, "%s%s", exe, relative_places[i]);
            if (is_file(candidate)) {
                const char *found = realpath(candidate, resolved) ? resolved : candidate;
                size_t len = strlen(found);
                if (len >= out_size) continue;
                memcpy(out, found, len + 1);
                return 0;
            }
            if (strlen(tried) + strlen(candidate) + 4 < sizeof tried) {
                strcat(tried, "\n         ");
                strcat(tried, candidate);
            }
        }
    }
    error_msg("cannot find %s; looked at%s\n"
              "       Set %s to its path (it is devserver/%s in the libmillis sources).",
              SCRIPT_NAME, tried[0] ? tried : " (nothing: /proc/self/exe is unreadable)", ENV_DEVSERVER,
              SCRIPT_NAME);
    return -1;
}

/* 1 when `name` is an executable in $PATH. */
static int in_path(const char *name)
{
    const char *path = getenv("PATH");
    char dir[PATH_MAX + 64];
    if (path == NULL) path = "/usr/bin:/bin";
    while (*path != '\0') {
        size_t len = strcspn(path, ":");
        snprintf(dir, sizeof dir, "%.*s/%s", (int)(len > PATH_MAX ? PATH_MAX : len), len ? path : ".", name);
        if (len == 0) snprintf(dir, sizeof dir, "./%s", name);
        if (access(dir, X_OK) == 0 && is_file(dir)) return 1;
        path += len;
        if (*path == ':') path++;
    }
    return 0;
}

/* The server's own --help, after ours (nothing when it cannot run). */
static void print_server_help(const char *script)
{
    pid_t pid;
    fflush(stdout);
    if (!in_path(PYTHON)) return;
    pid = fork();
    if (pid == 0) {
        char *args[] = {(char *)PYTHON, (char *)script, (char *)"--help", NULL};
        printf("\nThe server's options (%s --help):\n", SCRIPT_NAME);
        fflush(stdout);
        execvp(PYTHON, args);
        _exit(127);
    }
    if (pid > 0) {
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
        }
    }
}

int cmd_devserver(int argc, char **argv)
{
    char script[PATH_MAX];
    char **args;
    int i, first = 1;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        help();
        if (find_script(script, sizeof script) == 0) print_server_help(script);
        return EXIT_OK;
    }
    if (find_script(script, sizeof script) != 0) return EXIT_FAILURE_RUNTIME;
    if (argc > 1 && strcmp(argv[1], "--which") == 0) {
        printf("%s\n", script);
        return EXIT_OK;
    }
    if (argc > 1 && strcmp(argv[1], "--") == 0) first = 2;
    if (!in_path(PYTHON)) {
        error_msg("%s is not in PATH; the devserver is a Python program: install Python 3.11+ "
                  "(apt-get install python3) and websockets 14 or later "
                  "(python3 -m pip install 'websockets>=14')",
                  PYTHON);
        return EXIT_FAILURE_RUNTIME;
    }
    args = calloc((size_t)argc + 3, sizeof *args);
    if (args == NULL) return EXIT_FAILURE_RUNTIME;
    args[0] = (char *)PYTHON;
    args[1] = script;
    for (i = first; i < argc; i++) args[i - first + 2] = argv[i];
    fflush(NULL);
    execvp(PYTHON, args);
    error_msg("cannot run %s %s: %s", PYTHON, script, strerror(errno));
    free(args);
    return EXIT_FAILURE_RUNTIME;
}
