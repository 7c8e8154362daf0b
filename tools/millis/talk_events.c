/*
 * talk_events.c — `millis talk`: what the main loop waits on beside the keyboard. The
 * client's events come from the library's event queue (millis.h, "Event queue"),
 * taken on the main thread; the signals come through a self-pipe.
 */
#define _POSIX_C_SOURCE 200809L

#include "talk.h"

#include "common.h"

#include <millis.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static int signal_pipe[2] = {-1, -1};
volatile sig_atomic_t talk_signal_count, talk_last_signal, talk_winch;

/* ------------------------------------------------------------------------------------
 * The client's events
 * ---------------------------------------------------------------------------------- */

millis_status talk_enable_events(millis_config *cfg)
{
    return millis_config_set_event_queue(cfg, TALK_EVENT_QUEUE_BYTES);
}

int talk_take_events(struct session *s)
{
    millis_event ev = MILLIS_EVENT_INIT;
    int shown = 0;
    for (;;) {
        millis_status st = millis_client_next_event(s->client, &ev, 0);
        if (st != MILLIS_OK) {
            char why[4096];
            cli_library_error(st, millis_client_last_error(s->client), why, sizeof why);
            if (s->live)
                talk_info(s, LINE_ERROR, "cannot take the client's events: %s", why);
            else
                error_msg("cannot take the client's events: %s", why);
            s->failed = 1;
            return -1;
        }
        if (ev.type == MILLIS_EVENT_NONE) return shown;
        /* The queue holds the agent's audio too, which talk does not use (the meters
         * read the analysers; the library plays it or writes it to --output). */
        if (ev.type == MILLIS_EVENT_AUDIO || ev.type == MILLIS_EVENT_ANALYZER) continue;
        talk_handle_event(s, &ev);
        shown++;
    }
}

/* ------------------------------------------------------------------------------------
 * Signals: a self-pipe
 * ---------------------------------------------------------------------------------- */

static void on_signal(int sig)
{
    int saved = errno;
    if (sig == SIGWINCH) {
        talk_winch = 1;
    } else {
        talk_last_signal = sig;
        talk_signal_count += 1;
    }
    if (signal_pipe[1] >= 0) {
        ssize_t n = write(signal_pipe[1], "x", 1);
        (void)n; /* a full pipe already wakes the main thread */
    }
    errno = saved;
}

int talk_signals_open(void)
{
    if (pipe(signal_pipe) != 0) return -1;
    fcntl(signal_pipe[0], F_SETFL, O_NONBLOCK);
    fcntl(signal_pipe[1], F_SETFL, O_NONBLOCK);
    fcntl(signal_pipe[0], F_SETFD, FD_CLOEXEC);
    fcntl(signal_pipe[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

int talk_signals_fd(void)
{
    return signal_pipe[0];
}

void talk_signals_drain(void)
{
    char drain[256];
    while (read(signal_pipe[0], drain, sizeof drain) > 0) {
    }
}

void talk_signals_close(void)
{
    close(signal_pipe[0]);
    close(signal_pipe[1]);
    signal_pipe[0] = signal_pipe[1] = -1;
}

void talk_install_signal_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGWINCH, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
