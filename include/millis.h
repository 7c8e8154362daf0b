/*
 * millis.h — the C interface of libmillis, a native client for Millis AI voice agents.
 *
 * A client holds one live spoken conversation with an agent at a time. It speaks the
 * Millis protocol over a WebSocket (ws:// or wss://) and reports what happens through
 * one C callback per event, mirroring the web SDK (@millisai/web-sdk) event by event.
 *
 * Conventions that hold for every function below unless its own text says otherwise:
 *
 *  - Names start with millis_ / MILLIS_. Every handle is opaque.
 *  - Functions that can fail return a millis_status. MILLIS_OK is 0; the other codes are
 *    never renumbered. millis_status_string() names a code; millis_client_last_error()
 *    gives the detailed message of the calling thread's last failing call on a client.
 *  - NULL for a handle or a required pointer is never a crash: the function returns
 *    MILLIS_ERR_INVALID_ARGUMENT (or the documented neutral value for getters).
 *  - Strings are UTF-8 and NUL-terminated. Strings and buffers passed *into* the library
 *    are copied when the library keeps them; the caller may free them on return.
 *  - Strings and buffers passed *to a callback* are borrowed: valid only until the
 *    callback returns. Copy what you keep.
 *  - Strings *returned* by a function are either static (documented as such) or owned by
 *    the caller and released with millis_free().
 *
 * Threading model
 *  - One network thread, started on first use, serves every client in the process.
 *    All callbacks run on that thread. Callbacks of one client never run concurrently
 *    with each other, and never run on the caller's thread inside a millis_* call.
 *  - Every function may be called from any thread, and from inside any callback
 *    (including millis_client_stop() and millis_client_destroy(): see their remarks).
 *  - A callback blocks the network thread, and so every client of the process, while it
 *    runs: return quickly and hand heavy work to your own thread.
 *
 * Processes and fork
 *  - A client belongs to the process that created it. A child made by fork() may use
 *    the library as if it had never been used: its first millis_client_create() starts
 *    a network thread of the child's own (fork keeps only the calling thread), and its
 *    clients connect, converse and close as anywhere else, whatever the parent was
 *    doing at the fork and at any depth (a child of a child). Python's multiprocessing
 *    forks by default on Linux; the Python binding resets its own locks in the child.
 *  - The clients a child inherits are its parent's: their connections, network thread
 *    and locks stay the parent's, and the child never touches them (the epoll instance
 *    and the sockets are shared with the parent across fork). In the child, every call
 *    on such a client that would act (start, stop, mute, unmute, send, recording, the
 *    callback setters) returns MILLIS_ERR_INVALID_STATE, and millis_client_last_error()
 *    says that the client belongs to another process; getters return their neutral
 *    value (MILLIS_CONNECTION_IDLE, MILLIS_AGENT_IDLE, 0, NULL for the session id, the
 *    stats and the analysers; millis_client_audio_mode() still tells the mode), and an
 *    analyser of such a client obtained before the fork behaves as NULL. None of its
 *    callbacks runs in the child. millis_client_destroy() forgets it (its memory stays
 *    allocated in the child) without closing or sending anything: the parent's
 *    conversation goes on. None of these calls waits on a lock, whatever the parent's
 *    threads held at the fork. Configs and standalone analysers are plain data: a
 *    child may use its copies.
 *  - The child keeps copies of the descriptors of the parent's connections until it
 *    exits or calls exec (which ones were open cannot be told safely after the fork):
 *    a connection the parent closes meanwhile sends its WebSocket close as usual, but
 *    its TCP close (FIN) waits for the child's copy to be closed too.
 *  - fork() from inside a callback makes a child whose only thread is a copy of the
 *    network thread: it must call exec or _exit before the callback returns. If the
 *    callback returns in the child, the library ends that child with _exit(127) rather
 *    than let it serve the parent's connections.
 */
#ifndef MILLIS_H
#define MILLIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------
 * Threads and callbacks
 *
 * Every function below ends its comment with a "Thread safety" and a "Callback safety"
 * line; this section holds what they share.
 *
 * The network thread. One thread ("millis-net") serves every client of the process. It
 * starts with the first call that gives it work (millis_client_start(), _stop(),
 * _mute(), ...) and is never stopped. Every callback of every client runs on it, so no
 * two callbacks of the process ever run at the same time. A callback runs while holding
 * its client's dispatch lock, a recursive mutex that the callback setters
 * (millis_client_on_*) and millis_client_destroy() take too.
 *
 * Handles and threads:
 *  - No handle (version, status and state strings, millis_free,
 *    millis_audio_devices_json, millis_analyser_create): any thread, any time.
 *  - millis_config: not thread-safe. Calls that take the same config (its setters,
 *    millis_config_last_error, millis_client_create, millis_config_destroy) must not
 *    overlap: use a config from one thread at a time. Distinct configs are independent.
 *  - millis_client: thread-safe. Any thread may call its functions, concurrently with
 *    other calls on the same client, except millis_client_destroy(): no other call on
 *    that client may overlap it or follow it (it frees the handle, as free() does).
 *  - millis_analyser: thread-safe in the same way. Its life ends with
 *    millis_analyser_destroy() (a standalone one) or millis_client_destroy() (a
 *    client's).
 *
 * Calls that wait. Client functions take short internal locks and hand their work to the
 * network thread without waiting for it, except:
 *  - the callback setters and millis_client_destroy(), which wait while a callback of
 *    the same client is running on the network thread. Calling one from another thread
 *    while holding a lock that the client's callbacks take is a deadlock.
 *  - millis_client_destroy() of a client that writes files, which also waits for the
 *    network thread to complete them (usually milliseconds; it stops waiting after 10 s).
 * And some work on the calling thread, which can take a while: millis_client_create()
 * with MILLIS_AUDIO_MODE_DEFAULT probes the ALSA devices; millis_client_start() opens
 * the devices and audio files of device audio mode and creates the recording's files;
 * millis_client_start_recording() during a conversation creates its files;
 * millis_client_stop_recording() waits for the encoder to complete the files;
 * millis_audio_devices_json() asks ALSA for its devices.
 *
 * Inside a callback. Every function may be called from inside any callback, on the
 * client whose callback it is or on another one. From a callback of a client, its
 * setters and millis_client_destroy() re-enter the dispatch lock instead of waiting.
 * millis_client_destroy() from inside a callback of the same client is deferred, not
 * refused: the running callback finishes normally (it must not use the handle again),
 * no further callback of that client runs, and the client's files are completed after
 * the callback returns (by the network thread). A callback holds up every client of the
 * process while it runs, including the slow calls listed above if it makes them: return
 * quickly.
 *
 * Error messages. millis_config_last_error(), millis_client_last_error() and
 * millis_analyser_last_error() return the message of the calling thread's last failed
 * call on that handle, as errno does: each thread has its own. It is owned by the
 * handle and stays valid until the same thread's next failing call on the handle (a
 * call that succeeds leaves it), so another thread's failures (an application that
 * pushes audio from its own thread before onopen has millis_client_send_audio() fail
 * 50 times a second) never free a message under its reader. Read it on the thread
 * whose call failed; "" when none of that thread's calls on the handle failed.
 * ---------------------------------------------------------------------------------- */

/* ------------------------------------------------------------------------------------
 * Version
 * ---------------------------------------------------------------------------------- */

/* The version is written here and nowhere else: the library, the Makefile and the
 * package files take it from these three lines. */
#define MILLIS_VERSION_MAJOR 0
#define MILLIS_VERSION_MINOR 1
#define MILLIS_VERSION_PATCH 0
/** MAJOR * 1000000 + MINOR * 1000 + PATCH: compare with millis_version_number(). */
#define MILLIS_VERSION_NUMBER \
    (MILLIS_VERSION_MAJOR * 1000000 + MILLIS_VERSION_MINOR * 1000 + MILLIS_VERSION_PATCH)
/** "MAJOR.MINOR.PATCH", as millis_version() returns it. */
#define MILLIS_VERSION_STRING \
    MILLIS_VERSION_TEXT_(MILLIS_VERSION_MAJOR) "." MILLIS_VERSION_TEXT_(MILLIS_VERSION_MINOR) \
    "." MILLIS_VERSION_TEXT_(MILLIS_VERSION_PATCH)
#define MILLIS_VERSION_TEXT_(n) MILLIS_VERSION_TEXT__(n)
#define MILLIS_VERSION_TEXT__(n) #n

/**
 * The version of the library actually loaded, as MILLIS_VERSION_NUMBER computes it.
 * Compare with MILLIS_VERSION_NUMBER to detect a header/library mismatch.
 * Parameters: none.
 * Returns: MAJOR * 1000000 + MINOR * 1000 + PATCH of the loaded library.
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
int millis_version_number(void);

/**
 * The version of the library actually loaded, e.g. "0.1.0".
 * Parameters: none.
 * Returns: a static string, never NULL; do not free.
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
const char *millis_version(void);

/* ------------------------------------------------------------------------------------
 * Status codes
 * ---------------------------------------------------------------------------------- */

/** Result of a call, or the kind of an asynchronous error passed to the error callback. */
typedef enum millis_status {
    MILLIS_OK = 0,
    /** A NULL handle or pointer, or a value out of its documented range. */
    MILLIS_ERR_INVALID_ARGUMENT = 1,
    /** A JSON string that does not parse, or does not have the required shape. */
    MILLIS_ERR_INVALID_JSON = 2,
    /** The call does not fit the client's state (start twice, send before start, ...). */
    MILLIS_ERR_INVALID_STATE = 3,
    /** No open WebSocket yet (or the connection is being resumed): audio handed in
     *  before onopen is dropped, not queued. */
    MILLIS_ERR_NOT_READY = 4,
    /** Memory could not be allocated. */
    MILLIS_ERR_NO_MEMORY = 5,
    /** DNS, TCP or proxy failure while connecting to the endpoint. */
    MILLIS_ERR_CONNECT = 6,
    /** TLS failure, including a certificate that could not be verified. */
    MILLIS_ERR_TLS = 7,
    /** The WebSocket upgrade failed (HTTP status other than 101, bad accept key, an
     *  extension or subprotocol selected that libmillis did not offer). */
    MILLIS_ERR_HANDSHAKE = 8,
    /** The server broke the WebSocket protocol (bad frame, invalid UTF-8, ...). */
    MILLIS_ERR_PROTOCOL = 9,
    /** A message exceeded the configured maximum size. */
    MILLIS_ERR_MESSAGE_TOO_BIG = 10,
    /** The server sent a message libmillis could not interpret (malformed JSON, a
     *  field of the wrong type, an audio frame of odd length). Not fatal: the session
     *  goes on; the message names the method and the field. */
    MILLIS_ERR_BAD_MESSAGE = 11,
    /** The connection was lost without a close handshake. */
    MILLIS_ERR_CONNECTION_LOST = 12,
    /** The server did not answer in time (upgrade, onready, close handshake). */
    MILLIS_ERR_TIMEOUT = 13,
    /** The server closed the session with an error code (4xxx, 1011, ...). */
    MILLIS_ERR_SERVER_CLOSED = 14,
    /** The feature is not available in this build or configuration. */
    MILLIS_ERR_UNSUPPORTED = 15,
    /** An internal failure; the message says what. Please report it. */
    MILLIS_ERR_INTERNAL = 16,
    /** An ALSA device could not be opened or configured, or failed while running
     *  (the message names the device and the reason). */
    MILLIS_ERR_AUDIO_DEVICE = 17,
    /** A file could not be opened, read, decoded, created or written (the message
     *  names the file and the reason). */
    MILLIS_ERR_FILE = 18
} millis_status;

/**
 * A short, static English description of a status code ("invalid argument", ...).
 * Parameters: status: any value.
 * Returns: a static string, never NULL; do not free. Unknown codes give
 * "unknown status".
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
const char *millis_status_string(millis_status status);

/* ------------------------------------------------------------------------------------
 * Enumerations
 * ---------------------------------------------------------------------------------- */

/** How audio reaches the library and leaves it. */
typedef enum millis_audio_mode {
    /** Device audio when the configured capture and playback devices can be opened
     *  when the client is created (a quiet probe: open and close), application audio
     *  otherwise. millis_client_audio_mode() tells which was chosen. An application
     *  that pushes its own audio must ask for MILLIS_AUDIO_MODE_APPLICATION: on a
     *  machine with a sound card the default is device audio, and
     *  millis_client_send_audio() then returns MILLIS_ERR_INVALID_STATE. */
    MILLIS_AUDIO_MODE_DEFAULT = 0,
    /** The application pushes microphone audio with millis_client_send_audio() and
     *  receives the agent's audio in the audio callback (telephony bridges, files), in
     *  the format set by millis_config_set_application_audio_format(). */
    MILLIS_AUDIO_MODE_APPLICATION = 1,
    /** The library records the microphone and plays the agent through ALSA devices
     *  (millis_config_set_audio_devices), with echo cancellation, noise suppression and
     *  gain control (millis_config_set_audio_processing). The devices are opened by
     *  millis_client_start() and closed when the conversation ends. The audio callback
     *  still receives the agent's audio (16 kHz PCM16), for recording or display.
     *  libmillis does not link ALSA: it loads the machine's libasound.so.2 on first
     *  device use. Where it cannot, millis_client_start() of this mode (unless both
     *  ends are files) returns MILLIS_ERR_AUDIO_DEVICE saying so, and the default mode
     *  chooses application audio. ALSA's own error lines never reach stderr: a
     *  failure's cause is quoted in its error message, and what ALSA reports while a
     *  conversation's devices open goes to the log at debug level. The handler that
     *  does this is process-wide (snd_lib_error_set_handler, set when libmillis loads
     *  ALSA): a program that uses ALSA itself and wants its own errors printed sets
     *  its handler after that, and then sees ALSA's lines for libmillis' devices too. */
    MILLIS_AUDIO_MODE_DEVICE = 2
} millis_audio_mode;

/** The application audio formats (application audio mode). */
typedef enum millis_audio_encoding {
    /** Signed 16-bit little-endian PCM, mono: at 8000, 16000, 24000 or 48000 Hz. */
    MILLIS_AUDIO_PCM16 = 0,
    /** G.711 µ-law, 8000 Hz, one byte per sample (telephony). */
    MILLIS_AUDIO_MULAW = 1,
    /** G.711 A-law, 8000 Hz, one byte per sample (telephony). */
    MILLIS_AUDIO_ALAW = 2
} millis_audio_encoding;

/** The agent's state, as the web SDK reports it in onagentstate. */
typedef enum millis_agent_state {
    MILLIS_AGENT_IDLE = 0,
    MILLIS_AGENT_PREPARE_ANSWER = 1,
    MILLIS_AGENT_ANSWER = 2,
    MILLIS_AGENT_PAUSE = 3
} millis_agent_state;

/**
 * The web SDK's name of an agent state.
 * Parameters: state: any value.
 * Returns: "idle", "prepare_answer", "answer" or "pause"; "unknown" for a value outside
 * the enumeration. Static, never NULL; do not free.
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
const char *millis_agent_state_string(millis_agent_state state);

/** The connection's life cycle. */
typedef enum millis_connection_state {
    /** Never started, or fully closed (the close callback has run). */
    MILLIS_CONNECTION_IDLE = 0,
    /** Resolving, connecting, TLS, WebSocket upgrade. */
    MILLIS_CONNECTION_CONNECTING = 1,
    /** The WebSocket is open and `initiate` was sent; waiting for onready. Microphone
     *  audio is already sent (as the web client streams it from the socket's opening). */
    MILLIS_CONNECTION_OPEN = 2,
    /** The server sent onready. */
    MILLIS_CONNECTION_READY = 3,
    /** Closing handshake under way. */
    MILLIS_CONNECTION_CLOSING = 4,
    /** The connection dropped; waiting to reconnect, or reconnecting (see
     *  millis_config_set_reconnect). Audio handed in before the new socket is open is
     *  dropped; once it is open (initiate with session_continuation sent, before the
     *  server's onready) audio is sent again, as at the first connection. */
    MILLIS_CONNECTION_RECONNECTING = 5
} millis_connection_state;

/**
 * The name of a connection state.
 * Parameters: state: any value.
 * Returns: "idle", "connecting", "open", "ready", "closing" or "reconnecting";
 * "unknown" for a value outside the enumeration. Static, never NULL; do not free.
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
const char *millis_connection_state_string(millis_connection_state state);

/** Log levels, from quietest to most verbose. */
typedef enum millis_log_level {
    MILLIS_LOG_NONE = 0,
    MILLIS_LOG_ERROR = 1,
    MILLIS_LOG_WARN = 2,
    MILLIS_LOG_INFO = 3,
    MILLIS_LOG_DEBUG = 4
} millis_log_level;

/* ------------------------------------------------------------------------------------
 * Memory
 * ---------------------------------------------------------------------------------- */

/**
 * Releases a string returned by the library (session id, stats, device list).
 * Parameters: ptr: nullable (NULL is a no-op); only what a function documents as owned
 * by the caller, never a static string, a last-error message or a callback's argument.
 * Returns: nothing.
 * Thread safety: any thread (it is the C library's free()).
 * Callback safety: may be called from any callback.
 */
void millis_free(void *ptr);

/* ------------------------------------------------------------------------------------
 * Configuration
 *
 * A millis_config gathers the settings of a client before it is created. The client
 * copies them: the config may be changed or destroyed afterwards without affecting it.
 * A config is not thread-safe: use one from one thread at a time (millis_client_create
 * included, see Threads and callbacks); distinct configs are independent.
 *
 * Shared by every setter below: cfg is required (NULL gives MILLIS_ERR_INVALID_ARGUMENT,
 * and no message); strings are copied, so the caller may free them on return. A setter
 * that fails leaves the config as it was, returns MILLIS_ERR_INVALID_ARGUMENT and
 * records why for millis_config_last_error(). Setters only store: nothing is opened,
 * read or resolved before millis_client_create() or millis_client_start(). Config
 * functions touch no client: every one may be called from inside any callback.
 * ---------------------------------------------------------------------------------- */

typedef struct millis_config millis_config;
/** A client: one conversation at a time with an agent (see Clients). */
typedef struct millis_client millis_client;

/** The endpoint used when none is set. */
#define MILLIS_DEFAULT_ENDPOINT "wss://api-west.millis.ai:8080/millis"

/**
 * Creates a configuration holding the defaults: no public key (it must be set),
 * endpoint MILLIS_DEFAULT_ENDPOINT, log level MILLIS_LOG_WARN, audio mode
 * MILLIS_AUDIO_MODE_DEFAULT, 20 ms audio frames, 1 MiB maximum message size,
 * 15 000 ms ready timeout, reconnection on (5 attempts, 250 ms to 8 s), 512 KiB send
 * queue, TLS verified against the system's CA store; device audio on the "default"
 * capture and playback devices with echo cancellation, noise suppression and gain
 * control on, a 10 ms period and a 60 ms playout prebuffer; application audio in
 * PCM16 at 16 kHz.
 * Parameters: none.
 * Returns: a new config owned by the caller (millis_config_destroy). It is never NULL:
 * when memory is exhausted the Swift runtime aborts the process instead.
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
millis_config *millis_config_create(void);

/**
 * Destroys a configuration. Clients created from it are not affected.
 * Parameters: cfg: nullable (NULL is a no-op).
 * Returns: nothing.
 * Thread safety: no other call on cfg may overlap it or follow it.
 * Callback safety: may be called from any callback.
 */
void millis_config_destroy(millis_config *cfg);

/**
 * The message of the calling thread's last failing call that took this config (a
 * setter, or millis_client_create).
 * Parameters: cfg: nullable.
 * Returns: owned by the config, valid until a later call of this thread that takes cfg
 * fails, or millis_config_destroy(cfg); "" when none failed; NULL only when cfg is
 * NULL. A call that succeeds does not clear it.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
const char *millis_config_last_error(const millis_config *cfg);

/**
 * Sets the public key from the Millis playground (required). It is sent only inside the
 * `initiate` message and never written to logs.
 * Parameters: cfg: required. public_key: required, UTF-8, copied.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when cfg or key is NULL, or key is
 * empty or not UTF-8.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_public_key(millis_config *cfg, const char *public_key);

/**
 * Sets the WebSocket endpoint: "ws://host[:port][/path]" or "wss://host[:port][/path]".
 * Parameters: cfg: required. endpoint: nullable (NULL restores
 * MILLIS_DEFAULT_ENDPOINT), UTF-8, copied.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, or a URL that is not
 * UTF-8, not ws:// or wss://, has no host, a bad port, or spaces/control characters;
 * the config keeps its previous value.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_endpoint(millis_config *cfg, const char *endpoint);

/**
 * Sets how much the library reports through the log callback. MILLIS_LOG_DEBUG logs
 * every control message (with secrets redacted) and connection step.
 * Parameters: cfg: required. level: a millis_log_level.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or a level outside the
 * enumeration.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_log_level(millis_config *cfg, millis_log_level level);

/**
 * Sets the audio mode.
 * Parameters: cfg: required. mode: a millis_audio_mode.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or a value outside the
 * enumeration.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_audio_mode(millis_config *cfg, millis_audio_mode mode);

/**
 * Sets the duration of the audio frames sent to the server, in milliseconds (5 to 200;
 * default 20, i.e. 640 bytes of PCM16 at 16 kHz). Audio handed to
 * millis_client_send_audio() in chunks of any size is cut into frames of this duration.
 * Parameters: cfg: required. frame_ms: 5 to 200.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or outside 5..200.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_frame_ms(millis_config *cfg, unsigned int frame_ms);

/**
 * Sets the largest WebSocket message accepted from the server, in bytes (1 KiB to
 * 64 MiB; default 1 MiB). A larger message closes the connection with code 1009 and
 * reports MILLIS_ERR_MESSAGE_TOO_BIG.
 * Parameters: cfg: required. max_bytes: 1024 to 67108864.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or outside the range.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_max_message_bytes(millis_config *cfg, size_t max_bytes);

/**
 * Sets how long start may take, from the call to the server's onready, in milliseconds
 * (100 to 600 000; default 15 000). Past it the client reports MILLIS_ERR_TIMEOUT and
 * closes.
 * Parameters: cfg: required. timeout_ms: 100 to 600 000.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or outside the range.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_ready_timeout_ms(millis_config *cfg, unsigned int timeout_ms);

/**
 * Sets how a dropped conversation is resumed. When the connection of a ready session
 * drops unexpectedly (no close frame, or a close with 1001, 1011, 1012, 1013 or 1014),
 * the client reconnects and sends `initiate` again with
 * "session_continuation": {"session_id": <the session's id>}, so the agent keeps its
 * context. It does not reconnect after onsessionended, after millis_client_stop, or
 * when the server closes with a final code (1000, 4xxx, ...).
 *
 * Attempt n waits min(max_delay_ms, initial_delay_ms * 2^(n-1)) scaled by a random
 * factor in [0.5, 1.0] (jitter, so that many clients do not return at once).
 * Parameters: cfg: required. max_attempts: 0 disables reconnection (0 to 100;
 * default 5); initial_delay_ms 10 to 60 000 (default 250); max_delay_ms
 * initial_delay_ms to 600 000 (default 8 000).
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or outside the ranges
 * (nothing is changed then).
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_reconnect(millis_config *cfg, unsigned int max_attempts,
                                          unsigned int initial_delay_ms,
                                          unsigned int max_delay_ms);

/**
 * Sets the most bytes that may wait to be written to the socket (64 KiB to 64 MiB;
 * default 512 KiB, 16 s of audio). When a server stops reading, audio frames that would
 * exceed it are dropped and counted ("audio_frames_dropped_backpressure" in the stats);
 * control messages are always kept. The kernel's own send buffer for the connection is
 * capped at 32 KiB (Linux counts it double), so that a stall shows up here, where it is
 * bounded and counted, instead of as seconds of stale audio inside the kernel.
 * Parameters: cfg: required. max_bytes: 65536 to 67108864.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or outside the range.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_send_queue_bytes(millis_config *cfg, size_t max_bytes);

/**
 * Sets a file of PEM CA certificates to verify wss:// servers with, instead of the
 * system's store (for a private CA or a self-signed development server). The file is
 * read when connecting; a missing or unreadable file makes start fail with
 * MILLIS_ERR_TLS (through the error callback).
 * Parameters: cfg: required. path: nullable (NULL restores the system's store), UTF-8,
 * copied.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, or a path that is
 * empty or not UTF-8.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_ca_file(millis_config *cfg, const char *path);

/**
 * DANGEROUS: turns off verification of the server's TLS certificate and host name when
 * insecure is non-zero, so that anyone on the network path can read and alter the
 * conversation, public key included. For local experiments only; prefer
 * millis_config_set_ca_file. Every connection made this way logs a warning.
 * Parameters: cfg: required. insecure: non-zero turns verification off, 0 back on.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL cfg).
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_tls_verification_disabled_insecure(millis_config *cfg,
                                                                   int insecure);

/**
 * Adds a header to the WebSocket upgrade request, after the ones libmillis writes
 * itself: Origin (a key limited to a site), an Authorization or routing header for a
 * proxy or gateway, or a User-Agent (which then replaces libmillis' "libmillis/x.y.z").
 * Headers are sent in the order added; the same name may be added more than once.
 *
 * Parameters: cfg: required. name: required, an HTTP field name (RFC 9110 token
 * characters, 1 to 256 bytes), copied. value: required, UTF-8 text up to 8192 bytes
 * with no control characters other than tab (no CR, LF or NUL, which would let a value
 * start a header of its own); leading and trailing spaces are dropped; copied.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, a NULL or invalid
 * name or value, a name the handshake itself needs (Host, Upgrade, Connection,
 * Content-Length, Transfer-Encoding, or any Sec-WebSocket-*), or past 64 headers.
 * Thread safety: not for concurrent calls on the same config; distinct configs are
 * independent.
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_add_header(millis_config *cfg, const char *name, const char *value);

/**
 * Removes every header added with millis_config_add_header.
 * Parameters: cfg: required.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL cfg).
 * Thread safety: as millis_config_add_header.
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_clear_headers(millis_config *cfg);

/**
 * Sets the ALSA devices of device audio mode, by PCM name ("default", "hw:1,0",
 * "plughw:CARD=Headset", "pulse", ...; millis_audio_devices_json() lists them). The
 * devices are opened at whatever rate, channel count and sample format they offer
 * (S16_LE, FLOAT_LE, S32_LE, S24_LE, S24_3LE; 16 kHz mono when they have it) and
 * converted to and from the wire's 16 kHz mono by libmillis' resampler (speexdsp),
 * never by ALSA's plug layer.
 * Parameters: cfg: required. capture, playback: nullable (NULL means "default"),
 * UTF-8, copied.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL cfg, a name that is empty, not
 * UTF-8 or holds a line break).
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_audio_devices(millis_config *cfg, const char *capture,
                                              const char *playback);

/**
 * Switches the microphone processing of device audio mode, each non-zero for on (all
 * three are on by default, like the browser's getUserMedia): echo cancellation (an
 * adaptive filter fed with exactly what the speaker played, aligned for the devices'
 * latency, plus suppression of the residual echo), noise suppression and automatic
 * gain control. Which module does them: millis_config_set_echo_canceller.
 * Parameters: cfg: required. echo_cancellation, noise_suppression, auto_gain_control:
 * non-zero for on.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL cfg).
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_audio_processing(millis_config *cfg, int echo_cancellation,
                                                 int noise_suppression, int auto_gain_control);

/** The module that processes the microphone in device audio mode. */
typedef enum millis_echo_canceller {
    /** The WebRTC audio processing module (the one PulseAudio's module-echo-cancel
     *  uses): its echo canceller (extended filter, delay-agnostic), noise suppressor and
     *  adaptive digital gain control. The default: 25 dB and more of echo removed
     *  within the first second of agent speech on a room, where speexdsp removes 6 to
     *  12 dB (BENCHMARKS.md, "Echo cancellation"). While the agent speaks it lowers the
     *  user's voice by 6 to 10 dB (still heard: barge-in works). */
    MILLIS_ECHO_CANCELLER_WEBRTC = 0,
    /** speexdsp's MDF echo canceller and preprocessor (noise suppression, gain control
     *  at most +20 dB, residual echo suppression): keeps the user's voice nearly whole
     *  while the agent speaks, and leaves much more echo. */
    MILLIS_ECHO_CANCELLER_SPEEX = 1
} millis_echo_canceller;

/**
 * Chooses the module that processes the microphone of device audio mode (the switches
 * of millis_config_set_audio_processing apply to it). Default:
 * MILLIS_ECHO_CANCELLER_WEBRTC.
 * Parameters: cfg: required. canceller: a millis_echo_canceller value.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or another value.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_echo_canceller(millis_config *cfg, millis_echo_canceller canceller);

/**
 * Sets the ALSA period of device audio mode: 5, 10 (default) or 20 ms. The speaker's
 * thread wakes once per period; a barge-in (`clear`) silences the speaker within one.
 * The microphone's period is the duration of one audio message (millis_config_set_frame_ms,
 * 20 ms by default), kept between this period and 20 ms: a message is sent only once
 * it is whole, so a shorter one would deliver nothing sooner.
 * Parameters: cfg: required. period_ms: 5, 10 or 20.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or other values.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_audio_period_ms(millis_config *cfg, unsigned int period_ms);

/**
 * Sets how much agent audio is queued before the speaker starts (and restarts after
 * the queue ran dry mid-answer), to absorb network jitter: 0 to 2000 ms, default 60.
 * Playback also starts when that much time has passed since the first audio, so a
 * short answer is never held back.
 * Parameters: cfg: required. ms: 0 to 2000.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg or outside the range.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_playout_prebuffer_ms(millis_config *cfg, unsigned int ms);

/**
 * Sets the format of application audio mode, both ways: what
 * millis_client_send_audio() takes and what the audio callback gives. Default:
 * MILLIS_AUDIO_PCM16 at 16000 Hz (the wire format, no conversion). PCM16 at 8000,
 * 24000 or 48000 Hz and G.711 µ-law / A-law at 8000 Hz are converted by the library
 * (speexdsp resampler, G.711 per ITU-T).
 * Parameters: cfg: required. encoding: a millis_audio_encoding. sample_rate: in Hz, one
 * the encoding offers.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, an unknown encoding
 * or a rate it does not offer.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_application_audio_format(millis_config *cfg,
                                                         millis_audio_encoding encoding,
                                                         unsigned int sample_rate);

/* ------------------------------------------------------------------------------------
 * Audio files as devices
 *
 * A WAV or Ogg Opus file can stand in for the microphone, and a file for the speaker:
 * test bots, IVR testing, batch evaluation. A client with an audio file is in device
 * audio mode (millis_client_audio_mode() says MILLIS_AUDIO_MODE_DEVICE); a side
 * without a file uses its ALSA device (millis_config_set_audio_devices). Files get no
 * echo cancellation, noise suppression or gain control: they hold no room.
 * ---------------------------------------------------------------------------------- */

/** How an input file is streamed. */
typedef enum millis_file_pacing {
    /** In real time, 20 ms of audio every 20 ms, as a microphone would. */
    MILLIS_FILE_REALTIME = 0,
    /** As fast as the connection takes it (never dropped for backpressure: the file
     *  waits for the socket). Only for endpoints that accept audio faster than real
     *  time; the devserver does. */
    MILLIS_FILE_FAST = 1
} millis_file_pacing;

/**
 * The user's microphone is this file: WAV (PCM 8/16/24/32-bit or 32-bit float, any
 * rate, any channel count) or Ogg Opus (.opus, .ogg; decoded with libopusfile). It
 * is mixed to mono and resampled to 16 kHz, and streamed from onopen on. When it
 * ends, silence follows in real time (the agent needs silence to notice the end of a
 * turn) and the input-ended callback fires once. The file is opened by
 * millis_client_start(): a missing or undecodable file is start's error
 * (MILLIS_ERR_FILE).
 * Parameters: cfg: required. path: nullable (NULL removes the file: the capture device
 * is used again), copied; UTF-8.
 * pacing: a millis_file_pacing.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, an empty path, a path
 * that is not UTF-8 (refused rather than repaired into another file's name), an
 * unknown extension or an unknown pacing.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_audio_input_file(millis_config *cfg, const char *path,
                                                 millis_file_pacing pacing);

/**
 * The agent's audio goes to this file instead of the speaker: 16 kHz mono, WAV when
 * the path ends in ".wav", Ogg Opus for ".opus" or ".ogg". It is written as a speaker
 * would play it: the agent's audio, and silence in real time between answers, so the
 * file keeps the conversation's timing. The file is created by millis_client_start()
 * (MILLIS_ERR_FILE when it cannot be) and complete when onclose has been delivered.
 * Parameters: cfg: required. path: nullable (NULL removes it: the playback device is
 * used again), copied; UTF-8.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, an empty path, a path
 * that is not UTF-8 or an unknown extension.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_audio_output_file(millis_config *cfg, const char *path);

/* ------------------------------------------------------------------------------------
 * Recording
 *
 * A recording keeps a conversation: the audio of both sides in one file, and a
 * timeline beside it.
 *   - Audio: 16 kHz, stereo with the user's processed microphone audio (as sent) on
 *     the left and the agent's audio (as played; in application mode as received)
 *     on the right, or both mixed to mono (MILLIS_RECORD_MONO). Ogg Opus (libopus,
 *     muxed by libopusenc) for ".opus" and ".ogg", WAV (PCM16) for ".wav".
 *   - Timeline: the same path with the extension replaced by ".jsonl" (JSON Lines):
 *     a header line, every event and every control message sent and received with
 *     its time "t" in seconds on the audio's clock (t = sample / 16000), the local
 *     voice activity of the user, and per agent turn a "turn" line with the latency
 *     breakdown (see millis_turn_cb). `millis replay FILE.jsonl` prints it.
 * Encoding and file writing run on a thread of their own: recording never blocks the
 * audio threads or the network loop (if the writer falls seconds behind, audio is
 * dropped and counted in the timeline's last line, never waited for).
 * Each side is a contiguous stream: a chunk up to 0.5 s late follows the previous one,
 * a longer gap is silence. An input file read with MILLIS_FILE_FAST is therefore
 * recorded ahead of the agent's side by as much as it was read ahead.
 * ---------------------------------------------------------------------------------- */

/** Recording options (a bit set). */
typedef enum millis_record_flags {
    /** Stereo: user left, agent right (the default). */
    MILLIS_RECORD_STEREO = 0,
    /** Both sides mixed to one channel. */
    MILLIS_RECORD_MONO = 1
} millis_record_flags;

/**
 * Records every conversation of clients created from this config, from
 * millis_client_start() to onclose, into `path` (each conversation replaces the
 * previous one's files: use millis_client_start_recording() for a path per
 * conversation). The files are created by millis_client_start() (MILLIS_ERR_FILE when
 * they cannot be).
 * Parameters: cfg: required. path: nullable (NULL turns recording off), copied; UTF-8.
 * flags: millis_record_flags.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT for a NULL cfg, an empty path, a path
 * that is not UTF-8, an extension other than .opus, .ogg or .wav, or unknown flags.
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback.
 */
millis_status millis_config_set_recording(millis_config *cfg, const char *path,
                                          unsigned int flags);

/**
 * Starts recording now, during a conversation or before one (the recording is then
 * armed: it begins with the next millis_client_start(), which creates the files and
 * reports MILLIS_ERR_FILE if it cannot). It ends with the conversation (after onclose
 * the files are complete) or with millis_client_stop_recording().
 * Parameters: c: required. path: required, UTF-8, copied. flags: millis_record_flags.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL c or path, a path that is not
 * UTF-8, or as for millis_config_set_recording()); MILLIS_ERR_INVALID_STATE when a
 * recording is already under way or armed; during a conversation, MILLIS_ERR_FILE when
 * a file cannot be created (the message says which and why), MILLIS_ERR_INTERNAL when
 * the writer thread cannot be started.
 * Thread safety: any thread. But the check for a recording under way and the start are
 * not one atomic step: two calls on the same client that overlap may both succeed, and
 * the later recording then ends the earlier one at once. Start a client's recordings
 * from one thread at a time.
 * Callback safety: may be called from any callback; during a conversation it creates
 * the files and starts the writer thread on the calling thread.
 */
millis_status millis_client_start_recording(millis_client *c, const char *path,
                                            unsigned int flags);

/**
 * Ends the recording under way (or disarms one armed for the next start) and returns
 * when both files are complete (the encoder drained, headers written). Without a
 * recording it does nothing and returns MILLIS_OK, so it may be called after onclose
 * to wait for the files. millis_client_destroy() also ends a recording, but completes
 * the files in the background: call this first to know when they are done.
 * Parameters: c: required.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL c); MILLIS_ERR_FILE when
 * writing failed (disk full, ...); the message says which file and why.
 * Thread safety: any thread. It blocks the caller until the recording's writer thread
 * has completed the files (usually a few milliseconds); it does not wait for the
 * network thread.
 * Callback safety: may be called from any callback; the network thread, and so every
 * client, waits for the files meanwhile.
 */
millis_status millis_client_stop_recording(millis_client *c);

/* ------------------------------------------------------------------------------------
 * Audio devices
 * ---------------------------------------------------------------------------------- */

/**
 * The PCMs ALSA knows, for a device picker, as a JSON object:
 * {"capture": [{"name": "...", "description": "..."}], "playback": [...]}
 * (ALSA's device name hints, as `arecord -L` / `aplay -L` print them; descriptions may
 * hold '\n').
 * Parameters: none.
 * Returns: owned by the caller (millis_free), NULL when ALSA cannot list its devices
 * or cannot be loaded at all (millis_audio_devices_last_error() says which, and why).
 * Thread safety: any thread; ALSA is asked on the calling thread.
 * Callback safety: may be called from any callback; the network thread waits for ALSA
 * meanwhile.
 */
char *millis_audio_devices_json(void);

/**
 * Checks the devices of cfg (millis_config_set_audio_devices, default "default") without
 * a server: plays a probe (speech-shaped noise, -20 dBFS) through the speaker and
 * records the microphone, twice: with the microphone's processing off, then as cfg sets
 * it (millis_config_set_audio_processing, millis_config_set_echo_canceller). Blocks for
 * about twice duration_ms plus 3 s; the devices must not be in use by a conversation.
 * The report is a JSON object: "capture" and "playback", the devices as opened
 * ("device", "rate", "channels", "format", "period_frames", "buffer_frames");
 * "echo_canceller" ("webrtc", "speex", or null with echo cancellation
 * off); "echo_heard" (the probe was found in the recording); "echo_delay_ms" (from the
 * probe's first sample written to the speaker device to its echo read from the
 * microphone, within a period; null when not heard); "echo_level_db" (the echo
 * against the probe: the speaker-to-microphone coupling); "noise_floor_dbfs" (the
 * microphone before the probe); "microphone_peak_dbfs"; "clipped_samples" (microphone
 * samples at full scale); "erle_db" and "erle_recent_db" (the echo removed by the
 * processing: over the whole probe, convergence included, and over its last 2 s; null
 * when no echo was heard or with echo cancellation off); "playback_underruns",
 * "playback_xruns", "capture_overruns"; "advice" (an array of sentences for what looks
 * wrong: no echo heard, clipping, little echo removed).
 * Parameters: cfg: required. duration_ms: the probe's length, 1000 to 30000 ms (0: 3000).
 * report: required; receives the report (free it with millis_free), NULL on failure.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL cfg or report, duration out of
 * range); MILLIS_ERR_INVALID_STATE (cfg names an audio file instead of a device);
 * MILLIS_ERR_AUDIO_DEVICE (a device does not open or fails: the message names it, and
 * why). The message is millis_config_last_error(cfg).
 * Thread safety: one thread at a time per config (see Configuration).
 * Callback safety: may be called from any callback, but blocks the network thread, and
 * so every client of the process, for the whole test: call it from a thread of yours.
 */
millis_status millis_audio_test(millis_config *cfg, unsigned duration_ms, char **report);

/**
 * Why the calling thread's last millis_audio_devices_json() returned NULL (e.g.
 * "device audio needs ALSA (libasound.so.2), which could not be loaded: ...").
 * Parameters: none.
 * Returns: owned by the library, valid until the same thread's next failing
 * millis_audio_devices_json(); "" when none of that thread's calls failed. Never NULL.
 * Thread safety: any thread; each thread has its own message, as with errno.
 * Callback safety: may be called from any callback.
 */
const char *millis_audio_devices_last_error(void);

/* ------------------------------------------------------------------------------------
 * Analysers
 *
 * A millis_analyser computes what a Web Audio AnalyserNode does, by the Web Audio
 * specification's definitions: the last fftSize samples (time domain), and their
 * spectrum through a Blackman window, smoothed over time and mapped to decibels.
 * Every client has two, at 16 kHz: the agent's audio as played (in application mode:
 * as received) and the user's processed microphone audio (in application mode: as
 * sent).
 * They are created on first request (in device audio mode, by millis_client_start()
 * at the latest) and fed from then on; they belong to the client and stay valid until
 * millis_client_destroy().
 *
 * Threads: every function but millis_analyser_destroy() is thread-safe: read an
 * analyser from a UI thread while audio flows. Writing never waits for a reader: the
 * audio threads write without a lock, and readers copy the samples and compute the FFT
 * on their copy, under a lock of their own that no writer takes. Writers do not wait
 * for each other either: a write that overlaps another write to the same analyser is
 * dropped (see millis_analyser_write_pcm16). Every analyser function may be called from
 * inside any callback.
 * ---------------------------------------------------------------------------------- */

typedef struct millis_analyser millis_analyser;

/**
 * The analyser of the agent's audio.
 * Parameters: c: required.
 * Returns: owned by the client (never destroy it), the same pointer on every call,
 * valid until millis_client_destroy(c); NULL only when c is NULL.
 * Thread safety: any thread.
 * Callback safety: may be called from any callback.
 */
millis_analyser *millis_client_agent_analyser(millis_client *c);

/**
 * The analyser of the user's audio.
 * Parameters: c: required.
 * Returns: owned by the client (never destroy it), the same pointer on every call,
 * valid until millis_client_destroy(c); NULL only when c is NULL.
 * Thread safety: any thread.
 * Callback safety: may be called from any callback.
 */
millis_analyser *millis_client_user_analyser(millis_client *c);

/**
 * A standalone analyser, fed by the application (millis_analyser_write_pcm16), for
 * any audio of its own.
 * Parameters: sample_rate: in Hz, positive and finite.
 * Returns: owned by the caller (millis_analyser_destroy), NULL for a rate that is not
 * positive and finite.
 * Thread safety: any thread, any time.
 * Callback safety: may be called from any callback.
 */
millis_analyser *millis_analyser_create(double sample_rate);

/**
 * Destroys an analyser from millis_analyser_create().
 * Parameters: a: nullable (NULL is a no-op). Passing a client's analyser is undefined
 * behaviour (it belongs to the client).
 * Returns: nothing.
 * Thread safety: no other call on a may overlap it or follow it.
 * Callback safety: may be called from any callback.
 */
void millis_analyser_destroy(millis_analyser *a);

/**
 * Appends mono PCM16 samples.
 * Parameters: a: required. pcm: in, `count` samples (not bytes), copied; may be NULL
 * when count is 0.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL a, NULL pcm with count > 0),
 * with no message recorded.
 * Thread safety: any thread, one at a time per analyser: a write that overlaps another
 * write to the same analyser is dropped, because writers never wait (for readers or for
 * each other). Meant for standalone analysers: the library itself writes a client's.
 * Callback safety: may be called from any callback.
 */
millis_status millis_analyser_write_pcm16(millis_analyser *a, const int16_t *pcm, size_t count);

/**
 * The message of the calling thread's last failing setter on a (millis_analyser_set_*).
 * Parameters: a: nullable.
 * Returns: owned by the analyser, valid until this thread's next failing setter on a,
 * or a's destroy; "" when none failed; NULL when a is NULL.
 * Thread safety: any thread; each thread reads its own message (see "Error messages"
 * in Threads and callbacks).
 * Callback safety: may be called from any callback.
 */
const char *millis_analyser_last_error(const millis_analyser *a);

/**
 * Sets fftSize: a power of two from 32 to 32768 (default 2048). Changing it resets the
 * smoothing.
 * Parameters: a: required. fft_size: a power of two, 32 to 32768.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL a, or another value).
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
millis_status millis_analyser_set_fft_size(millis_analyser *a, unsigned int fft_size);

/**
 * fftSize.
 * Parameters: a: nullable.
 * Returns: fftSize; 0 when a is NULL.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
unsigned int millis_analyser_fft_size(const millis_analyser *a);

/**
 * frequencyBinCount: fftSize / 2.
 * Parameters: a: nullable.
 * Returns: fftSize / 2; 0 when a is NULL.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
unsigned int millis_analyser_frequency_bin_count(const millis_analyser *a);

/**
 * Sets minDecibels and maxDecibels (defaults -100 and -30), the byte mapping's range.
 * Parameters: a: required. min_decibels, max_decibels: finite, min < max.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL a, or unless both are finite and
 * min < max).
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
millis_status millis_analyser_set_decibel_range(millis_analyser *a, double min_decibels,
                                                double max_decibels);

/**
 * minDecibels.
 * Parameters: a: nullable.
 * Returns: minDecibels; 0 when a is NULL.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
double millis_analyser_min_decibels(const millis_analyser *a);

/**
 * maxDecibels.
 * Parameters: a: nullable.
 * Returns: maxDecibels; 0 when a is NULL.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
double millis_analyser_max_decibels(const millis_analyser *a);

/**
 * Sets smoothingTimeConstant, in [0, 1] (default 0.8).
 * Parameters: a: required. value: 0 to 1.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL a, or outside [0, 1]).
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
millis_status millis_analyser_set_smoothing_time_constant(millis_analyser *a, double value);

/**
 * smoothingTimeConstant.
 * Parameters: a: nullable.
 * Returns: smoothingTimeConstant; 0 when a is NULL.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
double millis_analyser_smoothing_time_constant(const millis_analyser *a);

/**
 * getByteFrequencyData: computes the current spectrum (each call advances the
 * smoothing once, as a browser does once per render quantum) and writes
 * min(count, frequencyBinCount) bytes, scaled from [minDecibels, maxDecibels] to
 * [0, 255].
 * Parameters: a: required. out: out, room for count bytes. count: in bytes.
 * Returns: the number written; 0 when a or out is NULL or count is 0.
 * Thread safety: any thread; holds the analyser's lock for one FFT (see Analysers).
 * Callback safety: may be called from any callback.
 */
size_t millis_analyser_get_byte_frequency_data(millis_analyser *a, uint8_t *out, size_t count);

/**
 * getFloatFrequencyData: as millis_analyser_get_byte_frequency_data(), but writes
 * min(count, frequencyBinCount) floats in dB (-Infinity for a silent bin).
 * Parameters: a: required. out: out, room for count floats. count: in floats.
 * Returns: the number written; 0 when a or out is NULL or count is 0.
 * Thread safety: any thread; holds the analyser's lock for one FFT (see Analysers).
 * Callback safety: may be called from any callback.
 */
size_t millis_analyser_get_float_frequency_data(millis_analyser *a, float *out, size_t count);

/**
 * getByteTimeDomainData: the most recent fftSize samples, oldest first, as bytes
 * 128 * (1 + x); as in the specification, a shorter out gets the first count of them
 * (the newest are left out).
 * Parameters: a: required. out: out, room for count bytes. count: in bytes.
 * Returns: the number written, min(count, fftSize); 0 when a or out is NULL or count
 * is 0.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
size_t millis_analyser_get_byte_time_domain_data(millis_analyser *a, uint8_t *out, size_t count);

/**
 * getFloatTimeDomainData: the most recent fftSize samples, oldest first, as floats in
 * [-1, 1]; as in the specification, a shorter out gets the first count of them (the
 * newest are left out).
 * Parameters: a: required. out: out, room for count floats. count: in floats.
 * Returns: the number written, min(count, fftSize); 0 when a or out is NULL or count
 * is 0.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
size_t millis_analyser_get_float_time_domain_data(millis_analyser *a, float *out, size_t count);

/**
 * The RMS level of the last fftSize samples in dBFS (a full-scale sine: -3.01).
 * Parameters: a: nullable.
 * Returns: the level; -120 for silence or a NULL a.
 * Thread safety: any thread (see Analysers).
 * Callback safety: may be called from any callback.
 */
double millis_analyser_rms_dbfs(const millis_analyser *a);

/* ------------------------------------------------------------------------------------
 * Client
 *
 * Every client function may be called from any thread, concurrently with other calls on
 * the same client, except millis_client_destroy() (see Threads and callbacks). The
 * client calls that can fail on a valid handle record why for millis_client_last_error():
 * start, start_agent, send_audio, send_json, start_recording and stop_recording. A NULL
 * c gives the neutral value or MILLIS_ERR_INVALID_ARGUMENT, and no message.
 * ---------------------------------------------------------------------------------- */

/**
 * Creates a client from a configuration (copied; cfg may be destroyed afterwards).
 * With MILLIS_AUDIO_MODE_DEFAULT and no audio file, it probes the capture and playback
 * devices (open and close) to choose the mode.
 *
 * Parameters:
 *  - cfg: in, required; must hold a public key.
 *  - err: out, nullable; receives MILLIS_OK or the reason for a NULL return.
 * Returns: a new client owned by the caller (millis_client_destroy), or NULL with
 * *err set: MILLIS_ERR_INVALID_ARGUMENT when cfg is NULL or has no public key (the
 * detail is in millis_config_last_error(cfg)), MILLIS_ERR_INVALID_STATE when the config
 * asks for application audio mode and also sets an audio input or output file (files
 * are devices). When memory is exhausted the Swift runtime aborts the process rather
 * than return MILLIS_ERR_NO_MEMORY.
 * Thread safety: any thread, under the config's rule: no other call on cfg may overlap
 * it (it reads cfg, and records a failure there). Two more process-wide effects:
 * the first client of the process initialises libcurl (curl_global_init), which is
 * thread-safe only in a libcurl 7.84 or later built with thread-safe init
 * (CURL_VERSION_THREADSAFE), so do not create it while another thread initialises
 * libcurl; and the device probe replaces ALSA's process-wide error handler
 * (snd_lib_error_set_handler) for its duration, so two probing creates at once, or one
 * while the application sets that handler, can leave ALSA's error messages silenced or
 * the application's handler replaced.
 * Callback safety: may be called from any callback; the device probe then runs on the
 * network thread.
 */
millis_client *millis_client_create(const millis_config *cfg, millis_status *err);

/**
 * Destroys a client. An open connection is closed (close code 1000) without waiting for
 * the server, and no callback of this client runs after this function returns; the
 * close callback is not called. A client that writes files (an audio output file, a
 * recording under way) completes them before this returns (usually a few milliseconds;
 * it stops waiting after 10 s), so a process may exit right after; called from inside
 * any callback (of any client), it cannot wait, and they are completed right after the
 * callback returns.
 *
 * Parameters: c: nullable (NULL is a no-op). The handle, and the analysers it owns, are
 * invalid once this returns.
 * Returns: nothing.
 * Thread safety: any thread, but no other call on c may overlap it or follow it. If a
 * callback of this client is running on the network thread at the time, the call waits
 * for it to return; do not call it from another thread while holding a lock that this
 * client's callbacks take.
 * Callback safety: may be called from inside any callback, including this client's
 * own: the destruction is deferred, not refused. The running callback finishes
 * normally, the handle must not be used after the call, and no further callback of
 * this client runs.
 */
void millis_client_destroy(millis_client *c);

/**
 * The message of the calling thread's last failing call on this client, e.g.
 * "options JSON: expected ':' after object key at byte 12".
 * Parameters: c: nullable.
 * Returns: owned by the client, valid until this thread's next failing call on c or
 * millis_client_destroy(c); "" when none of this thread's calls failed; NULL only
 * when c is NULL. A call that succeeds does not clear it.
 * Thread safety: any thread; each thread reads its own message, which other threads'
 * failures never touch (see "Error messages" in Threads and callbacks).
 * Callback safety: may be called from any callback.
 */
const char *millis_client_last_error(const millis_client *c);

/**
 * Starts a conversation: connects to the endpoint, opens the WebSocket and sends
 * `initiate`. Returns at once; progress arrives through callbacks (onopen, onready,
 * or onerror + onclose), always on the network thread, never inside this call. In
 * device audio mode the devices and audio files are opened, and a recording's files
 * created, by this call on the calling thread, so that their failures are its own.
 *
 * Parameters:
 *  - c: required.
 *  - options_json: in, required, UTF-8, copied. The web SDK's start argument, as a JSON
 *    object:
 *    {"agent": {"agent_id": "...", "agent_config": {...}}, "metadata": {...},
 *     "include_metadata_in_prompt": true, "session_continuation": {"session_id": "..."}}
 *    "agent" is required and must hold "agent_id" (a non-empty string), "agent_config"
 *    (an object), or both. Every member is passed into `initiate` untouched, with the
 *    configured public key added; the options must not hold "public_key" themselves.
 * Returns: MILLIS_OK (started); MILLIS_ERR_INVALID_ARGUMENT (NULL, not UTF-8),
 * MILLIS_ERR_INVALID_JSON (does not parse, not an object, no usable "agent",
 * "public_key" present), MILLIS_ERR_INVALID_STATE (a conversation is already under
 * way: stop it and wait for onclose first), MILLIS_ERR_AUDIO_DEVICE (device audio
 * mode: a device could not be opened or configured; the message names it),
 * MILLIS_ERR_FILE (an audio input file that cannot be read or decoded, an output or
 * recording file that cannot be created), MILLIS_ERR_INTERNAL (a thread or eventfd
 * could not be created). When it fails, nothing was started.
 * Thread safety: any thread; of two starts on one client that overlap, one returns
 * MILLIS_ERR_INVALID_STATE. A millis_client_stop() made on another thread while this
 * call has not returned yet may be lost (the conversation then starts anyway): stop
 * after start has returned.
 * Callback safety: may be called from any callback (e.g. to start the next
 * conversation from onclose, where it is accepted); in device audio mode the devices
 * are then opened on the network thread.
 */
millis_status millis_client_start(millis_client *c, const char *options_json);

/**
 * Starts a conversation with a stored agent: millis_client_start() with
 * {"agent": {"agent_id": agent_id}}.
 * Parameters: c: required. agent_id: required, non-empty, UTF-8, copied.
 * Returns: as millis_client_start(); MILLIS_ERR_INVALID_ARGUMENT for a NULL or empty id.
 * Thread safety: as millis_client_start().
 * Callback safety: as millis_client_start().
 */
millis_status millis_client_start_agent(millis_client *c, const char *agent_id);

/**
 * Ends the conversation: sends a WebSocket close (1000) and, once the server answers
 * (or after 2 s), calls onclose. Harmless when nothing is under way (returns MILLIS_OK
 * and calls nothing).
 * Parameters: c: required.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL).
 * Thread safety: any thread; but see millis_client_start() for a stop that overlaps a
 * start.
 * Callback safety: may be called from any callback; onclose then follows after the
 * callback has returned.
 */
millis_status millis_client_stop(millis_client *c);

/**
 * Mutes the microphone. While muted, frames of silence keep being sent so the server's
 * timing stays intact (as the web client does). Muting persists across conversations of
 * the same client.
 * Parameters: c: required.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL).
 * Thread safety: any thread. A mute and an unmute of one client that overlap (two
 * threads) leave the microphone as whichever reached the network thread last, and
 * millis_client_is_muted() may then report the other: mute and unmute from one thread.
 * Callback safety: may be called from any callback.
 */
millis_status millis_client_mute(millis_client *c);

/**
 * Unmutes the microphone (see millis_client_mute()).
 * Parameters: c: required.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT (NULL).
 * Thread safety: as millis_client_mute().
 * Callback safety: may be called from any callback.
 */
millis_status millis_client_unmute(millis_client *c);

/**
 * Whether the microphone is muted: what the last mute or unmute recorded.
 * Parameters: c: nullable.
 * Returns: 1 when muted, 0 when not or when c is NULL.
 * Thread safety: any thread (see millis_client_mute() for overlapping mutes).
 * Callback safety: may be called from any callback.
 */
int millis_client_is_muted(const millis_client *c);

/**
 * Hands microphone audio to the client (application audio mode): by default PCM16,
 * little-endian, 16 000 Hz, mono, in chunks of any even size; otherwise in the format
 * set by millis_config_set_application_audio_format(). Audio is cut into frames of the
 * configured duration and sent from the moment `initiate` is sent (onopen), before the
 * server's onready, as the web client streams its microphone from the socket's
 * opening: the user's first words while the agent gets ready are heard. Every 8 s of
 * audio sent (256 000 bytes at 16 kHz) a keep-alive `ping` follows, as the web
 * client's.
 *
 * Parameters: c: required. pcm: in, `bytes` bytes, copied (converted first when the
 * format is not the wire's); may be NULL when bytes is 0.
 * Returns: MILLIS_OK (queued for the network thread); MILLIS_ERR_INVALID_ARGUMENT (NULL
 * c, NULL pcm with bytes > 0, odd byte count for PCM16), MILLIS_ERR_NOT_READY (no open
 * WebSocket: before onopen, or while a dropped connection is resumed; the audio is
 * dropped, not queued into a burst, and counted in the stats),
 * MILLIS_ERR_INVALID_STATE (not in application audio mode).
 * Thread safety: any thread. Each call's audio is queued whole before the call returns,
 * so calls made one after the other are sent in that order; calls that overlap (from
 * several threads) are sent in either order, and with a format that needs conversion
 * (not PCM16 at 16 kHz) the converter's output may then be queued in another order than
 * it was produced. Feed one stream from one thread.
 * Callback safety: may be called from any callback (the copy and conversion then run on
 * the network thread).
 */
millis_status millis_client_send_audio(millis_client *c, const void *pcm, size_t bytes);

/**
 * Sends a raw JSON control message as a text frame, for methods this version does not
 * know. The text must be a JSON object; it is sent as given.
 * Parameters: c: required. json: required, UTF-8, copied.
 * Returns: MILLIS_OK (queued for the network thread); MILLIS_ERR_INVALID_ARGUMENT (NULL,
 * not UTF-8), MILLIS_ERR_INVALID_JSON, MILLIS_ERR_NOT_READY (no open WebSocket).
 * Thread safety: any thread; messages are queued in the order the calls queue them.
 * Callback safety: may be called from any callback.
 */
millis_status millis_client_send_json(millis_client *c, const char *json);

/**
 * The session id from the server's onready. A string id is given as is; any other JSON
 * value is given as its JSON text (12345 -> "12345"), and a reconnection sends the
 * value back as it came (the number 12345).
 * Parameters: c: nullable.
 * Returns: a copy owned by the caller (release with millis_free()), or NULL when there
 * is none (yet), when the server gave none, or when c is NULL.
 * Thread safety: any thread; the state the network thread last published.
 * Callback safety: may be called from any callback.
 */
char *millis_client_session_id(const millis_client *c);

/**
 * The connection state, as the network thread last published it: inside a callback,
 * the state the event belongs to; on another thread it may change as soon as this
 * returns.
 * Parameters: c: nullable.
 * Returns: the state; MILLIS_CONNECTION_IDLE when c is NULL.
 * Thread safety: any thread.
 * Callback safety: may be called from any callback.
 */
millis_connection_state millis_client_connection_state(const millis_client *c);

/**
 * The audio mode in force: MILLIS_AUDIO_MODE_APPLICATION or MILLIS_AUDIO_MODE_DEVICE
 * (a default is resolved when the client is created, and never changes).
 * Parameters: c: nullable.
 * Returns: the mode; MILLIS_AUDIO_MODE_DEFAULT only when c is NULL.
 * Thread safety: any thread.
 * Callback safety: may be called from any callback.
 */
millis_audio_mode millis_client_audio_mode(const millis_client *c);

/**
 * The agent state, as the network thread last published it.
 * Parameters: c: nullable.
 * Returns: the state; MILLIS_AGENT_IDLE when c is NULL.
 * Thread safety: any thread.
 * Callback safety: may be called from any callback.
 */
millis_agent_state millis_client_agent_state(const millis_client *c);

/**
 * A snapshot of the client's counters as a JSON object:
 * {"frames_sent", "bytes_sent", "frames_received", "bytes_received",
 *  "audio_frames_dropped", "audio_bytes_dropped" (handed in before onopen or during a
 *  reconnection), "audio_frames_dropped_backpressure" (the send queue was full),
 *  "send_queue_bytes" (now), "messages_sent", "messages_received", "reconnects"
 *  (successful), "pongs_ignored" (`pong` messages that answered no ping of ours),
 *  "ws_pings_received" (WebSocket pings from the server), "ws_pongs_coalesced" (pings
 *  answered only by the pong of a later one, RFC 6455 §5.5.3: a ping flood costs at
 *  most two pongs of memory), "last_ping_rtt_ms" (wall clock, whole milliseconds, as
 *  the web client's; null before the first answered ping), "last_latency_ms"
 *  (null before the first answer), "audio_mode" ("application" or "device"), and the
 *  device audio counters: "capture_periods", "capture_overruns" (ALSA overruns,
 *  recovered), "capture_frames_dropped" (10 ms frames the network thread did not take
 *  in time), "playback_periods", "playback_underruns" (the playout queue ran dry in the
 *  middle of an answer: a gap was heard), "playback_xruns" (ALSA underruns, recovered),
 *  "playout_samples_dropped" (queue full), "playout_queue_ms" (now), "clears",
 *  "last_clear_ms" (from the clear to a silent device; null before any),
 *  "capture_to_wire_ms" (mean time from a microphone frame's last sample being
 *  captured to the frame being written to the socket; null before any),
 *  "echo_realignments" (times the echo canceller's reference was moved to where the
 *  echo was found), "echo_erle_db" (echo return loss enhancement of the current or
 *  last conversation, convergence included), "echo_erle_recent_db" (the same over
 *  the last 2 s of speaker activity; both null before the speaker played)}. Counters are cumulative over the client's life.
 * Parameters: c: nullable.
 * Returns: owned by the caller (millis_free), NULL when c is NULL.
 * Thread safety: any thread. The session's counters are one consistent snapshot; the
 * device audio counters are read one by one while the audio threads run.
 * Callback safety: may be called from any callback.
 */
char *millis_client_stats_json(const millis_client *c);

/* ------------------------------------------------------------------------------------
 * Callbacks
 *
 * One setter per event. Each takes the function (NULL to remove it) and a user_data
 * pointer passed back unchanged. Setters may be called at any time from any thread; a
 * change applies to events dispatched after the setter returns: once it has returned,
 * the function it replaced is not called again (unless it is the callback that called
 * the setter, which runs to its end), so its user_data may be released. They return
 * MILLIS_ERR_INVALID_ARGUMENT when c is NULL, MILLIS_OK otherwise.
 * Threads: a setter takes the client's dispatch lock. Called from another thread while
 * a callback of the client runs, it waits for that callback to return (do not call one
 * while holding a lock that the client's callbacks take); called from inside a callback
 * of the client, it does not wait.
 * ---------------------------------------------------------------------------------- */

/** The WebSocket is open (the web SDK's onopen). */
typedef void (*millis_open_cb)(millis_client *c, void *user_data);
/** The server's onready: the session is ready. session_id: "" when the server gave
 *  none (a warning is logged: a reconnection then starts a new conversation); a
 *  non-string id as its JSON text (see millis_client_session_id).
 *  payload_json: the onready payload as JSON ("null" when absent). */
typedef void (*millis_ready_cb)(millis_client *c, const char *session_id,
                                const char *payload_json, void *user_data);
/** The server ended the session; a close follows. */
typedef void (*millis_session_ended_cb)(millis_client *c, void *user_data);
/** Agent audio: PCM16 little-endian 16 kHz mono, `bytes` long (always even); in
 *  application audio mode with millis_config_set_application_audio_format(), in that
 *  format instead (G.711: one byte per sample). */
typedef void (*millis_audio_cb)(millis_client *c, const uint8_t *pcm, size_t bytes,
                                void *user_data);
/** The agent's reply text (partial while is_final is 0). is_final follows the web
 *  client's JavaScript truthiness: true, a non-zero number, a non-empty string (even
 *  "false"), an object or an array are final; false, 0, "", null or no is_final are
 *  partial. A message whose `data` is not a string is not delivered here: the error
 *  callback gets MILLIS_ERR_BAD_MESSAGE naming the method, and the message callback the
 *  raw JSON. */
typedef void (*millis_response_text_cb)(millis_client *c, const char *text, int is_final,
                                        void *user_data);
/** The user's speech as recognised by the server (partial while is_final is 0). is_final
 *  and a `data` that is not a string as for millis_response_text_cb. */
typedef void (*millis_transcript_cb)(millis_client *c, const char *text, int is_final,
                                     void *user_data);
/** The agent called a tool: name, and its parameters as a JSON value ("null" if none).
 *  text: the message's `data` ("" when absent or null). A `data` that is neither, or a
 *  `payload.name` that is not a string, gives MILLIS_ERR_BAD_MESSAGE and the message
 *  callback instead. */
typedef void (*millis_function_cb)(millis_client *c, const char *text, const char *name,
                                   const char *params_json, void *user_data);
/** Milliseconds from start_answering to the first agent audio frame of the answer. */
typedef void (*millis_latency_cb)(millis_client *c, double latency_ms, void *user_data);
/** The agent state changed. */
typedef void (*millis_agent_state_cb)(millis_client *c, millis_agent_state state,
                                      void *user_data);
/** The conversation is over: the WebSocket close code (1006 when the connection was
 *  lost or never opened) and reason. Called once per started conversation, last. */
typedef void (*millis_close_cb)(millis_client *c, int code, const char *reason,
                                void *user_data);
/** An error. Fatal ones (connect, TLS, handshake, protocol, timeout, lost connection)
 *  are followed by the close callback; MILLIS_ERR_BAD_MESSAGE is not fatal, nor is
 *  MILLIS_ERR_AUDIO_DEVICE during a conversation (a device that failed while running:
 *  that side stays silent until the conversation ends). A dropped
 *  connection that is being resumed is not an error (see millis_reconnecting_cb); when
 *  the attempts run out, MILLIS_ERR_CONNECTION_LOST is reported, then the close. */
typedef void (*millis_error_cb)(millis_client *c, millis_status status, const char *message,
                                void *user_data);
/** A server message this version does not know, or a known one whose fields had the
 *  wrong type (reported through the error callback first), so nothing the server says
 *  is lost: its method and the whole message as JSON text. */
typedef void (*millis_message_cb)(millis_client *c, const char *method, const char *json,
                                  void *user_data);
/** The connection dropped and the client will try again in delay_ms (attempt counts
 *  from 1). Agent audio playback state is reset; the agent state goes idle. */
typedef void (*millis_reconnecting_cb)(millis_client *c, unsigned int attempt,
                                       unsigned int delay_ms, void *user_data);
/** The client is back in the conversation: the server's onready for the continued
 *  session arrived (onopen and onready are not repeated). */
typedef void (*millis_reconnected_cb)(millis_client *c, const char *session_id,
                                      void *user_data);
/** The agent's analyser is ready (the web SDK's `analyzer` event), right after onopen.
 *  The analyser belongs to the client (see Analysers); the pointer may be kept. */
typedef void (*millis_analyzer_cb)(millis_client *c, millis_analyser *agent, void *user_data);
/** The microphone stream is ready (the web SDK's `useraudioready`), right after the
 *  analyzer event: the user's analyser, and the stream as JSON. Device audio:
 *  {"source": "device", "device", "rate", "channels", "format", "period_frames",
 *  "buffer_frames" (the capture device as opened), "echo_cancellation",
 *  "echo_canceller" ("webrtc" or "speex"), "noise_suppression", "auto_gain_control", "playback": {the playback device}};
 *  an audio input file (millis_config_set_audio_input_file) appears as the device
 *  "file" with its "file" path and no processing; application audio: {"source":
 *  "application", "encoding", "rate", "channels": 1}. */
typedef void (*millis_user_audio_ready_cb)(millis_client *c, millis_analyser *user,
                                           const char *stream_json, void *user_data);
/** The audio input file ended (millis_config_set_audio_input_file); silence follows. */
typedef void (*millis_input_ended_cb)(millis_client *c, void *user_data);
/**
 * An agent turn's latency breakdown, as JSON, once its first sample has been played
 * (or the turn was cut short: then the missing times are null):
 * {"turn": 1, "user_speech_end": s, "start_answering": s, "first_audio": s,
 *  "first_played": s, "latency_ms": {"end_of_speech_to_start_answering": ms,
 *  "start_answering_to_first_audio": ms, "first_audio_to_played": ms, "total": ms}}.
 * Times are seconds since millis_client_start(). "user_speech_end" is where the
 * library's own voice activity detector heard the user stop (on the audio as sent),
 * "first_played" when the first agent sample was written to the speaker (handed to
 * the audio callback in application mode); "total" runs from the end of speech. With
 * an input file read MILLIS_FILE_FAST, several turns' audio is on the wire before the
 * first answer, so "user_speech_end" (and "total") stay null for those turns.
 */
typedef void (*millis_turn_cb)(millis_client *c, const char *turn_json, void *user_data);
/** A log line at or below the configured level. Secrets are never included. */
typedef void (*millis_log_cb)(millis_client *c, millis_log_level level, const char *message,
                              void *user_data);

/**
 * Sets the open callback (millis_open_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_open(millis_client *c, millis_open_cb cb, void *user_data);

/**
 * Sets the ready callback (millis_ready_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_ready(millis_client *c, millis_ready_cb cb, void *user_data);

/**
 * Sets the session-ended callback (millis_session_ended_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_session_ended(millis_client *c, millis_session_ended_cb cb,
                                             void *user_data);

/**
 * Sets the agent audio callback (millis_audio_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_audio(millis_client *c, millis_audio_cb cb, void *user_data);

/**
 * Sets the response text callback (millis_response_text_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_response_text(millis_client *c, millis_response_text_cb cb,
                                             void *user_data);

/**
 * Sets the transcript callback (millis_transcript_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_transcript(millis_client *c, millis_transcript_cb cb,
                                          void *user_data);

/**
 * Sets the function call callback (millis_function_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_function(millis_client *c, millis_function_cb cb,
                                        void *user_data);

/**
 * Sets the latency callback (millis_latency_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_latency(millis_client *c, millis_latency_cb cb, void *user_data);

/**
 * Sets the agent state callback (millis_agent_state_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_agent_state(millis_client *c, millis_agent_state_cb cb,
                                           void *user_data);

/**
 * Sets the close callback (millis_close_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_close(millis_client *c, millis_close_cb cb, void *user_data);

/**
 * Sets the error callback (millis_error_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_error(millis_client *c, millis_error_cb cb, void *user_data);

/**
 * Sets the unknown message callback (millis_message_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_message(millis_client *c, millis_message_cb cb, void *user_data);

/**
 * Sets the log callback (millis_log_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_log(millis_client *c, millis_log_cb cb, void *user_data);

/**
 * Sets the reconnecting callback (millis_reconnecting_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_reconnecting(millis_client *c, millis_reconnecting_cb cb,
                                            void *user_data);

/**
 * Sets the reconnected callback (millis_reconnected_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_reconnected(millis_client *c, millis_reconnected_cb cb,
                                           void *user_data);

/**
 * Sets the analyzer callback (millis_analyzer_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_analyzer(millis_client *c, millis_analyzer_cb cb, void *user_data);

/**
 * Sets the user-audio-ready callback (millis_user_audio_ready_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_user_audio_ready(millis_client *c, millis_user_audio_ready_cb cb,
                                                void *user_data);

/**
 * Sets the input-ended callback (millis_input_ended_cb).
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_input_ended(millis_client *c, millis_input_ended_cb cb,
                                          void *user_data);

/**
 * Sets the turn latency callback (millis_turn_cb).
 * A function also turns on the voice activity analysis of the user's audio that the
 * reports need; NULL turns it off, unless a recording needs it.
 * Parameters: c: required. cb: nullable (NULL removes it). user_data: passed back as
 * is, never dereferenced by the library.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when c is NULL.
 * Thread safety: any thread; waits while a callback of c runs (see Callbacks).
 * Callback safety: may be called from any callback, c's own included.
 */
millis_status millis_client_on_turn(millis_client *c, millis_turn_cb cb, void *user_data);

/* ------------------------------------------------------------------------------------
 * Event queue
 *
 * Beside the callbacks, a client can keep its events for the program to take itself,
 * from its own thread or from its own poll/epoll/select/asyncio loop: the events are
 * queued from millis_client_create(), so none is lost before the program first asks.
 * Enable it on the configuration (millis_config_set_event_queue), then take events
 * with millis_client_next_event(), waiting on millis_client_event_fd() or in the call
 * itself. Callbacks still run for the events they are set for; each event goes to both.
 *
 *     millis_event ev = MILLIS_EVENT_INIT;
 *     struct pollfd p = { millis_client_event_fd(c), POLLIN, 0 };
 *     while (poll(&p, 1, -1) > 0)
 *         while (millis_client_next_event(c, &ev, 0) == MILLIS_OK && ev.type != MILLIS_EVENT_NONE)
 *             handle(&ev);   // ev's strings and audio: valid until the next call
 * ---------------------------------------------------------------------------------- */

/** The event an millis_event holds: one per callback of the Callbacks section. */
typedef enum millis_event_type {
    /** No event came within the timeout. */
    MILLIS_EVENT_NONE = 0,
    MILLIS_EVENT_OPEN = 1,              /**< as millis_open_cb */
    MILLIS_EVENT_READY = 2,             /**< session_id, json (the payload) */
    MILLIS_EVENT_SESSION_ENDED = 3,
    MILLIS_EVENT_AUDIO = 4,             /**< audio, audio_bytes */
    MILLIS_EVENT_RESPONSE_TEXT = 5,     /**< text, is_final */
    MILLIS_EVENT_TRANSCRIPT = 6,        /**< text, is_final */
    MILLIS_EVENT_FUNCTION = 7,          /**< text, name, json (the parameters) */
    MILLIS_EVENT_LATENCY = 8,           /**< latency_ms */
    MILLIS_EVENT_AGENT_STATE = 9,       /**< agent_state */
    MILLIS_EVENT_CLOSE = 10,            /**< code, message (the reason) */
    MILLIS_EVENT_ERROR = 11,            /**< status, message */
    MILLIS_EVENT_MESSAGE = 12,          /**< name (the method), json */
    MILLIS_EVENT_LOG = 13,              /**< level, message */
    MILLIS_EVENT_RECONNECTING = 14,     /**< attempt, delay_ms */
    MILLIS_EVENT_RECONNECTED = 15,      /**< session_id */
    MILLIS_EVENT_ANALYZER = 16,         /**< analyser (the agent's) */
    MILLIS_EVENT_USER_AUDIO_READY = 17, /**< analyser (the user's), json (the stream) */
    MILLIS_EVENT_INPUT_ENDED = 18,
    MILLIS_EVENT_TURN = 19              /**< json (the turn) */
} millis_event_type;

/**
 * One event, filled by millis_client_next_event(). The fields an event does not use
 * are NULL or 0; each carries what the callback of the same name gets, with the same
 * meaning (see Callbacks). Strings are NUL-terminated UTF-8. Every pointer is
 * borrowed: valid until the next millis_client_next_event() on the same client, or
 * its destroy; copy what you keep. `size` comes first so that the struct may grow:
 * set it to sizeof(millis_event) (MILLIS_EVENT_INIT does), and a later library fills
 * only what your build knows.
 */
typedef struct millis_event {
    size_t size;                    /**< set by the caller: sizeof(millis_event) */
    millis_event_type type;
    const char *text;               /**< response text, transcript, function text */
    const char *session_id;         /**< ready, reconnected */
    const char *json;               /**< ready payload, function parameters, message, stream, turn */
    const char *name;               /**< function name, message method */
    const char *message;            /**< close reason, error message, log line */
    const uint8_t *audio;           /**< agent audio (as millis_audio_cb) */
    size_t audio_bytes;
    int is_final;                   /**< response text, transcript */
    int code;                       /**< close code */
    millis_status status;           /**< error */
    millis_log_level level;         /**< log */
    millis_agent_state agent_state; /**< agent state */
    unsigned int attempt;           /**< reconnecting */
    unsigned int delay_ms;          /**< reconnecting */
    double latency_ms;              /**< latency */
    millis_analyser *analyser;      /**< analyzer (agent), user audio ready (user); owned by the client */
} millis_event;

/** An millis_event ready for millis_client_next_event(): its size set, the rest zero. */
#define MILLIS_EVENT_INIT { sizeof(millis_event), MILLIS_EVENT_NONE, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, MILLIS_OK, MILLIS_LOG_NONE, MILLIS_AGENT_IDLE, 0, 0, 0.0, NULL }

/**
 * Keeps the events of the clients created from this configuration in a queue, for
 * millis_client_next_event(), up to max_bytes of payload (audio, text, JSON; each
 * event counts 64 bytes more). 0 (the default) keeps none.
 *
 * Parameters: cfg (not NULL); max_bytes: 0, or 65536 to 1073741824. 8 MiB holds
 *   about four minutes of agent audio.
 * Returns: MILLIS_OK; MILLIS_ERR_INVALID_ARGUMENT when cfg is NULL or max_bytes is
 *   out of range (the message says the range).
 * Thread safety: like every config setter: one thread at a time per config.
 * Callback safety: may be called from a callback (it touches no client).
 * Remarks: when an event would take the queue past max_bytes it is dropped, and the
 *   program is told where: one MILLIS_EVENT_ERROR (MILLIS_ERR_NO_MEMORY) stands in the
 *   queue where the dropped run began, saying how many events and bytes were lost. A
 *   close event is never dropped, so a program waiting for the end always sees it; nor
 *   is an event that finds the queue empty, however large (a message up to
 *   millis_config_set_max_message_bytes, or its audio converted to the application
 *   format), so memory stays within max_bytes plus one message.
 */
millis_status millis_config_set_event_queue(millis_config *cfg, size_t max_bytes);

/**
 * Takes the next queued event, waiting up to timeout_ms for one.
 *
 * Parameters: c (not NULL); event (not NULL; its size field set, see millis_event);
 *   timeout_ms: 0 returns at once, a negative value waits without limit.
 * Returns: MILLIS_OK with an event, or with event->type MILLIS_EVENT_NONE when none
 *   came in time; MILLIS_ERR_INVALID_ARGUMENT when c or event is NULL or event->size is
 *   smaller than the fields every event has; MILLIS_ERR_INVALID_STATE when the client
 *   keeps no queue (millis_config_set_event_queue) or when called from inside one of
 *   its callbacks (the network thread must not wait: take events from your own thread).
 *   The message is in millis_client_last_error().
 * Thread safety: one thread at a time per client (the event's payload belongs to the
 *   last call); different clients from different threads freely. Do not destroy the
 *   client while another thread waits here.
 * Callback safety: refused inside the callbacks of any client (see Returns).
 */
millis_status millis_client_next_event(millis_client *c, millis_event *event, int timeout_ms);

/**
 * A file descriptor that is readable while an event is queued, for poll(), epoll,
 * select() or asyncio's loop.add_reader(). Reading it is not needed (and takes
 * nothing): millis_client_next_event() empties it when it takes the last event.
 *
 * Parameters: c (not NULL).
 * Returns: the descriptor, owned by the client (do not close it; it is closed by
 *   millis_client_destroy()); -1 when c is NULL or the client keeps no queue.
 * Thread safety: safe from any thread.
 * Callback safety: may be called from a callback.
 */
int millis_client_event_fd(const millis_client *c);

#ifdef __cplusplus
}
#endif

#endif /* MILLIS_H */
