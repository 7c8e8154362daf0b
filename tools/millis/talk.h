/*
 * talk.h — what the files of `millis talk` share (internal to tools/millis).
 *
 *   talk.c          the command: configure the client, start it, the main loop, the end
 *   talk_args.c     --help, the options, the start options JSON
 *   talk_events.c   the client's events, from the library's event queue; signals
 *   talk_session.c  the events as the main thread handles them: state, plain output,
 *                   the transcript kept for the live screen
 *   talk_screen.c   the terminal (raw keyboard, alternate screen) and the live screen
 *
 * Threads: the client keeps its events in the library's event queue (millis.h, "Event
 * queue"); the main thread takes them when the queue's descriptor is readable. It owns
 * everything: it reads the events, the keyboard and the analysers, and draws. The
 * signal handlers only set flags and write to a self-pipe the main thread polls too.
 * talk's one callback does nothing: it asks the library for the turn reports.
 */
#ifndef MILLIS_CLI_TALK_H
#define MILLIS_CLI_TALK_H

#include <millis.h>

#include <signal.h>
#include <stddef.h>

#define FRAME_SECONDS 0.05       /* the live screen is redrawn 20 times a second */
#define STOP_GRACE_SECONDS 5.0   /* after stop, how long onclose may take */
#define DEFAULT_LINGER 10.0
#define METER_FLOOR_DB (-60.0)
#define TRANSCRIPT_MAX 2000      /* lines kept for the live screen */
#define MAX_HEADERS 64           /* millis_config_add_header's limit */
/* The library's event queue holds every event, the agent's audio too (16 kHz PCM16:
 * 32 kB a second), though talk uses none of it: 32 MiB keep about a quarter of an hour
 * of it (with each event's 64 bytes of overhead) while the main thread cannot take
 * events (its stdout blocked by a slow terminal or a reader that does not read), before
 * the queue drops events and says so (an error: exit status 1). A bound, not an
 * allocation: the queue holds only what is waiting. */
#define TALK_EVENT_QUEUE_BYTES ((size_t)32 << 20)

/* ------------------------------------------------------------------------------------
 * Options (talk_args.c)
 * ---------------------------------------------------------------------------------- */

struct options {
    const char *agent_id, *agent_config, *metadata, *session_id, *endpoint;
    const char *input, *output, *record, *capture, *playback, *ca_file;
    int metadata_in_prompt, fast, record_mono, plain, verbose;
    int echo_cancellation, noise_suppression, gain_control;
    millis_echo_canceller echo_canceller;
    double timeout, linger;
    int timeout_set;
    /* --header "Name: value", in order (argv strings). */
    const char *headers[MAX_HEADERS];
    size_t header_count;
};

/** Parses talk's arguments into *o: 0, -1 after --help (printed), else the exit code
 *  of a usage error (printed). */
int talk_parse_options(int argc, char **argv, struct options *o);
/** The options object of millis_client_start (free()); NULL after a usage error. */
char *talk_start_options(const struct options *o);

/* ------------------------------------------------------------------------------------
 * Events and signals: what the main loop waits on beside the keyboard (talk_events.c)
 * ---------------------------------------------------------------------------------- */

struct session;

/** Set by the signal handlers (SIGINT, SIGTERM, SIGHUP; SIGWINCH). */
extern volatile sig_atomic_t talk_signal_count, talk_last_signal, talk_winch;

/** Opens the signals' self-pipe (non-blocking, close-on-exec); 0 on success. */
int talk_signals_open(void);
/** The descriptor the main thread polls: readable after a signal. */
int talk_signals_fd(void);
/** Empties the self-pipe (after poll). */
void talk_signals_drain(void);
void talk_signals_close(void);
/** SIGINT, SIGTERM, SIGHUP and SIGWINCH wake the main thread; SIGPIPE is ignored. */
void talk_install_signal_handlers(void);
/** The client of cfg keeps its events in the library's queue (TALK_EVENT_QUEUE_BYTES). */
millis_status talk_enable_events(millis_config *cfg);
/** Handles every queued event (talk_handle_event) but the agent's audio and analyser;
 *  returns how many, or -1 when the queue failed (reported, s->failed set). */
int talk_take_events(struct session *s);

/* ------------------------------------------------------------------------------------
 * The session as the main thread sees it (talk_session.c)
 * ---------------------------------------------------------------------------------- */

enum line_kind { LINE_USER, LINE_AGENT, LINE_TURN, LINE_INFO, LINE_ERROR };

struct tline {
    enum line_kind kind;
    char *text;
    int partial;
};

struct session {
    const struct options *opt;
    millis_client *client;
    int event_fd;   /* the client's event queue (millis_client_event_fd) */
    millis_analyser *user_meter, *agent_meter;
    const char *endpoint, *agent_label;
    int live;       /* the live screen is on */
    int keyboard;   /* keys are read */
    int utf8;
    char *session_id;
    char device_info[256];
    int agent_state;
    int ready, closed, close_code;
    char *close_reason;
    int failed;          /* an error that makes the exit status 1 */
    int key_refused;     /* the server refused the public key: exit status 3 */
    char *close_error;   /* the error of a server's close, reported with the close */
    int stopping;        /* stop was called */
    double stop_deadline;
    int quit_by_user;
    int input_ended, busy_since_input;
    double linger_deadline;
    int turns;
    struct tline *lines;
    size_t line_count;
    long user_partial, agent_partial; /* index of the partial line being updated, or -1 */
    int rows, cols;
    int col, esc, clipping; /* emit()'s position in the row being drawn */
    char *frame;
    size_t frame_len, frame_cap;
};

/** Updates the session with one event and prints it (a line, or the transcript). */
void talk_handle_event(struct session *s, const millis_event *e);
/** Reports an error still held back for the close that did not come. */
void talk_report_pending_error(struct session *s);
/** Stops the conversation once (millis_client_stop), noting why. */
void talk_stop(struct session *s, const char *why);
/** A line of the live screen's transcript. */
void talk_info(struct session *s, enum line_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Plain output: one line, flushed at once. */
void talk_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------------------------
 * The terminal and the live screen (talk_screen.c)
 * ---------------------------------------------------------------------------------- */

/** Alternate screen, and raw keys when `keyboard`; restored at exit and on a crash. */
void talk_enter_screen(int keyboard);
/** Leaves the alternate screen and restores the keyboard (async-signal-safe). */
void talk_restore_terminal(void);
/** The terminal's rows and columns into s (24 x 80 when unknown). */
void talk_update_size(struct session *s);
/** Draws the live screen: status, meters, the transcript's last lines. */
void talk_draw(struct session *s);

#endif
