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
 *    gives the detailed message of the last failing call on a client.
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
 */
#ifndef MILLIS_H
#define MILLIS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------------------
 * Version
 * ---------------------------------------------------------------------------------- */

#define MILLIS_VERSION_MAJOR 0
#define MILLIS_VERSION_MINOR 1
#define MILLIS_VERSION_PATCH 0
/** MAJOR * 1000000 + MINOR * 1000 + PATCH: compare with millis_version_number(). */
#define MILLIS_VERSION_NUMBER 1000
#define MILLIS_VERSION_STRING "0.1.0"

/**
 * The version of the library actually loaded, as MILLIS_VERSION_NUMBER computes it.
 * Compare with MILLIS_VERSION_NUMBER to detect a header/library mismatch.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
int millis_version_number(void);

/**
 * The version of the library actually loaded, e.g. "0.1.0".
 * Return value: a static string; do not free.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
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
 * Unknown codes give "unknown status". Never NULL; do not free.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
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
     *  still receives the agent's audio (16 kHz PCM16), for recording or display. */
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

/** "idle", "prepare_answer", "answer", "pause" (the web SDK's names); static, never NULL. */
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

/** "idle", "connecting", "open", "ready", "closing", "reconnecting"; static, never NULL. */
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
 * Releases a string returned by the library (session id, stats). NULL is a no-op.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
void millis_free(void *ptr);

/* ------------------------------------------------------------------------------------
 * Configuration
 *
 * A millis_config gathers the settings of a client before it is created. The client
 * copies them: the config may be changed or destroyed afterwards without affecting it.
 * A config is not thread-safe: use one from one thread at a time.
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
 * Return value: a new config owned by the caller (millis_config_destroy), or NULL when
 * memory is exhausted.
 */
millis_config *millis_config_create(void);

/** Destroys a configuration. NULL is a no-op. */
void millis_config_destroy(millis_config *cfg);

/**
 * The message of the last failing call that took this config (a setter, or
 * millis_client_create). Return value: owned by the config, valid until the next call
 * that takes it; "" when nothing failed; NULL only when cfg is NULL.
 */
const char *millis_config_last_error(const millis_config *cfg);

/**
 * Sets the public key from the Millis playground (required). It is sent only inside the
 * `initiate` message and never written to logs.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT when cfg or key is NULL or key is empty.
 */
millis_status millis_config_set_public_key(millis_config *cfg, const char *public_key);

/**
 * Sets the WebSocket endpoint: "ws://host[:port][/path]" or "wss://host[:port][/path]".
 * NULL restores MILLIS_DEFAULT_ENDPOINT.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for a URL that is not ws:// or wss://, has no
 * host, a bad port, or spaces/control characters; the config keeps its previous value.
 */
millis_status millis_config_set_endpoint(millis_config *cfg, const char *endpoint);

/**
 * Sets how much the library reports through the log callback. MILLIS_LOG_DEBUG logs
 * every control message (with secrets redacted) and connection step.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for a level outside the enumeration.
 */
millis_status millis_config_set_log_level(millis_config *cfg, millis_log_level level);

/**
 * Sets the audio mode. Errors: MILLIS_ERR_INVALID_ARGUMENT for a value outside the
 * enumeration.
 */
millis_status millis_config_set_audio_mode(millis_config *cfg, millis_audio_mode mode);

/**
 * Sets the duration of the audio frames sent to the server, in milliseconds (5 to 200;
 * default 20, i.e. 640 bytes of PCM16 at 16 kHz). Audio handed to
 * millis_client_send_audio() in chunks of any size is cut into frames of this duration.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT outside 5..200.
 */
millis_status millis_config_set_frame_ms(millis_config *cfg, unsigned int frame_ms);

/**
 * Sets the largest WebSocket message accepted from the server, in bytes (1 KiB to
 * 64 MiB; default 1 MiB). A larger message closes the connection with code 1009 and
 * reports MILLIS_ERR_MESSAGE_TOO_BIG.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT outside the range.
 */
millis_status millis_config_set_max_message_bytes(millis_config *cfg, size_t max_bytes);

/**
 * Sets how long start may take, from the call to the server's onready, in milliseconds
 * (100 to 600 000; default 15 000). Past it the client reports MILLIS_ERR_TIMEOUT and
 * closes.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT outside the range.
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
 * Parameters: max_attempts 0 disables reconnection (0 to 100; default 5);
 * initial_delay_ms 10 to 60 000 (default 250); max_delay_ms initial_delay_ms to
 * 600 000 (default 8 000).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT outside the ranges.
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
 * Errors: MILLIS_ERR_INVALID_ARGUMENT outside the range.
 */
millis_status millis_config_set_send_queue_bytes(millis_config *cfg, size_t max_bytes);

/**
 * Sets a file of PEM CA certificates to verify wss:// servers with, instead of the
 * system's store (for a private CA or a self-signed development server). NULL restores
 * the system's store. The file is read when connecting; a missing or unreadable file
 * makes start fail with MILLIS_ERR_TLS.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for an empty path.
 */
millis_status millis_config_set_ca_file(millis_config *cfg, const char *path);

/**
 * DANGEROUS: turns off verification of the server's TLS certificate and host name when
 * insecure is non-zero, so that anyone on the network path can read and alter the
 * conversation, public key included. For local experiments only; prefer
 * millis_config_set_ca_file. Every connection made this way logs a warning.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL cfg).
 */
millis_status millis_config_set_tls_verification_disabled_insecure(millis_config *cfg,
                                                                   int insecure);

/**
 * Adds a header to the WebSocket upgrade request, after the ones libmillis writes
 * itself: Origin (a key limited to a site), an Authorization or routing header for a
 * proxy or gateway, or a User-Agent (which then replaces libmillis' "libmillis/x.y.z").
 * Headers are sent in the order added; the same name may be added more than once.
 * The strings are copied.
 *
 * Parameters: name: an HTTP field name (RFC 9110 token characters, 1 to 256 bytes);
 * value: UTF-8 text up to 8192 bytes with no control characters other than tab
 * (no CR, LF or NUL, which would let a value start a header of its own); leading and
 * trailing spaces are dropped.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for a NULL or invalid name or value, for a name
 * the handshake itself needs (Host, Upgrade, Connection, Content-Length,
 * Transfer-Encoding, or any Sec-WebSocket-*), or past 64 headers.
 * Thread safety: not for concurrent calls on the same config; distinct configs are
 * independent. Callback safety: may be called from inside a callback (on a config).
 */
millis_status millis_config_add_header(millis_config *cfg, const char *name, const char *value);

/**
 * Removes every header added with millis_config_add_header.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL cfg).
 * Thread safety: as millis_config_add_header.
 */
millis_status millis_config_clear_headers(millis_config *cfg);

/**
 * Sets the ALSA devices of device audio mode, by PCM name ("default", "hw:1,0",
 * "plughw:CARD=Headset", "pulse", ...; millis_audio_devices_json() lists them). NULL
 * means "default". The devices are opened at whatever rate, channel count and sample
 * format they offer (S16_LE, FLOAT_LE, S32_LE, S24_LE, S24_3LE; 16 kHz mono when they
 * have it) and converted to and from the wire's 16 kHz mono by libmillis' resampler
 * (speexdsp), never by ALSA's plug layer.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL cfg, an empty name or one with a line break).
 */
millis_status millis_config_set_audio_devices(millis_config *cfg, const char *capture,
                                              const char *playback);

/**
 * Switches the microphone processing of device audio mode, each non-zero for on (all
 * three are on by default, like the browser's getUserMedia): echo cancellation
 * (speexdsp's adaptive filter, fed with exactly what the speaker played, aligned for
 * the devices' latency, plus suppression of the residual echo), noise suppression and
 * automatic gain control (speexdsp's preprocessor, at most +20 dB).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL cfg).
 */
millis_status millis_config_set_audio_processing(millis_config *cfg, int echo_cancellation,
                                                 int noise_suppression, int auto_gain_control);

/**
 * Sets the ALSA period of device audio mode: 5, 10 (default) or 20 ms. The audio
 * threads wake once per period; a barge-in (`clear`) silences the speaker within one.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for other values.
 */
millis_status millis_config_set_audio_period_ms(millis_config *cfg, unsigned int period_ms);

/**
 * Sets how much agent audio is queued before the speaker starts (and restarts after
 * the queue ran dry mid-answer), to absorb network jitter: 0 to 2000 ms, default 60.
 * Playback also starts when that much time has passed since the first audio, so a
 * short answer is never held back.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT outside the range.
 */
millis_status millis_config_set_playout_prebuffer_ms(millis_config *cfg, unsigned int ms);

/**
 * Sets the format of application audio mode, both ways: what
 * millis_client_send_audio() takes and what the audio callback gives. Default:
 * MILLIS_AUDIO_PCM16 at 16000 Hz (the wire format, no conversion). PCM16 at 8000,
 * 24000 or 48000 Hz and G.711 µ-law / A-law at 8000 Hz are converted by the library
 * (speexdsp resampler, G.711 per ITU-T).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for an unknown encoding or a rate it does not
 * offer.
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
 * turn) and the input-ended callback fires once. NULL removes the file (the capture
 * device is used again). The file is opened by millis_client_start(): a missing or
 * undecodable file is start's error (MILLIS_ERR_FILE).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for an empty path, an unknown extension or an
 * unknown pacing.
 */
millis_status millis_config_set_audio_input_file(millis_config *cfg, const char *path,
                                                 millis_file_pacing pacing);

/**
 * The agent's audio goes to this file instead of the speaker: 16 kHz mono, WAV when
 * the path ends in ".wav", Ogg Opus for ".opus" or ".ogg". It is written as a speaker
 * would play it: the agent's audio, and silence in real time between answers, so the
 * file keeps the conversation's timing. The file is created by millis_client_start()
 * (MILLIS_ERR_FILE when it cannot be) and complete when onclose has been delivered.
 * NULL removes it (the playback device is used again).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for an empty path or an unknown extension.
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
 * conversation). NULL turns it off. The files are created by millis_client_start()
 * (MILLIS_ERR_FILE when they cannot be).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT for an empty path, an extension other than
 * .opus, .ogg or .wav, or unknown flags.
 */
millis_status millis_config_set_recording(millis_config *cfg, const char *path,
                                          unsigned int flags);

/**
 * Starts recording now, during a conversation or before one (the recording then
 * begins with the next millis_client_start(), which creates the files and reports
 * MILLIS_ERR_FILE if it cannot). It ends with the conversation (after onclose the files
 * are complete) or with millis_client_stop_recording().
 * Errors: MILLIS_ERR_INVALID_ARGUMENT as for millis_config_set_recording();
 * MILLIS_ERR_INVALID_STATE when a recording is already under way;
 * MILLIS_ERR_FILE when a file cannot be created (the message says which and why).
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
millis_status millis_client_start_recording(millis_client *c, const char *path,
                                            unsigned int flags);

/**
 * Ends the recording under way and returns when both files are complete (the
 * encoder drained, headers written). Without a recording it does nothing and
 * returns MILLIS_OK, so it may be called after onclose to wait for the files.
 * millis_client_destroy() also ends a recording, but completes the files in the
 * background: call this first to know when they are done.
 * Errors: MILLIS_ERR_FILE when writing failed (disk full, ...); the message says which
 * file and why.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
millis_status millis_client_stop_recording(millis_client *c);

/* ------------------------------------------------------------------------------------
 * Audio devices
 * ---------------------------------------------------------------------------------- */

/**
 * The PCMs ALSA knows, for a device picker, as a JSON object:
 * {"capture": [{"name": "...", "description": "..."}], "playback": [...]}
 * (ALSA's device name hints, as `arecord -L` / `aplay -L` print them; descriptions may
 * hold '\n'). Return value: owned by the caller (millis_free), NULL when ALSA cannot
 * list its devices.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
char *millis_audio_devices_json(void);

/* ------------------------------------------------------------------------------------
 * Analysers
 *
 * A millis_analyser computes what a Web Audio AnalyserNode does, by the Web Audio
 * specification's definitions: the last fftSize samples (time domain), and their
 * spectrum through a Blackman window, smoothed over time and mapped to decibels.
 * Every client has two, at 16 kHz: the agent's audio as played (in application mode:
 * as received) and the user's processed microphone audio (in application mode: as
 * sent).
 * They are created on first request and fed from then on; they belong to the client
 * and stay valid until millis_client_destroy(). All functions are thread-safe: read
 * them from a UI thread while audio flows. Writing never waits for a reader (the audio
 * threads write without a lock); readers copy the samples and compute on their copy.
 * ---------------------------------------------------------------------------------- */

typedef struct millis_analyser millis_analyser;

/** The analyser of the agent's audio. NULL only when c is NULL. Owned by the client. */
millis_analyser *millis_client_agent_analyser(millis_client *c);
/** The analyser of the user's audio. NULL only when c is NULL. Owned by the client. */
millis_analyser *millis_client_user_analyser(millis_client *c);

/**
 * A standalone analyser, fed by the application (millis_analyser_write_pcm16), for
 * any audio of its own, at sample_rate Hz. Return value: owned by the caller
 * (millis_analyser_destroy), NULL for a rate that is not positive and finite.
 */
millis_analyser *millis_analyser_create(double sample_rate);
/** Destroys an analyser from millis_analyser_create(). NULL: no-op. Passing a client's
 *  analyser is undefined behaviour (it belongs to the client). */
void millis_analyser_destroy(millis_analyser *a);
/** Appends mono PCM16 samples (count samples, not bytes).
 *  Thread safety: any thread, one at a time per analyser: a write that overlaps another
 *  write to the same analyser is dropped, because writers never wait (for readers or for
 *  each other). Meant for standalone analysers: the library itself writes a client's.
 *  Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL a, NULL pcm with count > 0). */
millis_status millis_analyser_write_pcm16(millis_analyser *a, const int16_t *pcm, size_t count);

/** The message of the last failing setter on a; "" when none; NULL when a is NULL. */
const char *millis_analyser_last_error(const millis_analyser *a);

/** fftSize: a power of two from 32 to 32768 (default 2048). Changing it resets the
 *  smoothing. Errors: MILLIS_ERR_INVALID_ARGUMENT otherwise. */
millis_status millis_analyser_set_fft_size(millis_analyser *a, unsigned int fft_size);
/** Getters of a NULL analyser return 0 (rms: -120). */
unsigned int millis_analyser_fft_size(const millis_analyser *a);
/** fftSize / 2. 0 when a is NULL. */
unsigned int millis_analyser_frequency_bin_count(const millis_analyser *a);
/** minDecibels and maxDecibels (defaults -100 and -30), the byte mapping's range.
 *  Errors: MILLIS_ERR_INVALID_ARGUMENT unless both are finite and min < max. */
millis_status millis_analyser_set_decibel_range(millis_analyser *a, double min_decibels,
                                                double max_decibels);
double millis_analyser_min_decibels(const millis_analyser *a);
double millis_analyser_max_decibels(const millis_analyser *a);
/** smoothingTimeConstant in [0, 1] (default 0.8).
 *  Errors: MILLIS_ERR_INVALID_ARGUMENT outside it. */
millis_status millis_analyser_set_smoothing_time_constant(millis_analyser *a, double value);
double millis_analyser_smoothing_time_constant(const millis_analyser *a);

/**
 * getByteFrequencyData / getFloatFrequencyData: computes the current spectrum (each
 * call advances the smoothing once, as a browser does once per render quantum) and
 * writes min(count, frequencyBinCount) values: floats in dB (-Infinity for a silent
 * bin), bytes scaled from [minDecibels, maxDecibels] to [0, 255]. Returns the number
 * written; 0 when a or out is NULL.
 */
size_t millis_analyser_get_byte_frequency_data(millis_analyser *a, uint8_t *out, size_t count);
size_t millis_analyser_get_float_frequency_data(millis_analyser *a, float *out, size_t count);
/**
 * getByteTimeDomainData / getFloatTimeDomainData: the most recent min(count, fftSize)
 * samples, oldest first: floats in [-1, 1], bytes as 128 * (1 + x). Returns the number
 * written; 0 when a or out is NULL.
 */
size_t millis_analyser_get_byte_time_domain_data(millis_analyser *a, uint8_t *out, size_t count);
size_t millis_analyser_get_float_time_domain_data(millis_analyser *a, float *out, size_t count);
/** The RMS level of the last fftSize samples in dBFS (a full-scale sine: -3.01);
 *  -120 for silence or a NULL a. */
double millis_analyser_rms_dbfs(const millis_analyser *a);

/* ------------------------------------------------------------------------------------
 * Client
 * ---------------------------------------------------------------------------------- */

/**
 * Creates a client from a configuration (copied; cfg may be destroyed afterwards).
 *
 * Parameters:
 *  - cfg: in, required; must hold a public key.
 *  - err: out, nullable; receives MILLIS_OK or the reason for a NULL return.
 * Return value: a new client owned by the caller (millis_client_destroy), or NULL with
 * *err set: MILLIS_ERR_INVALID_ARGUMENT when cfg is NULL or has no public key (the
 * detail is in millis_config_last_error(cfg)), MILLIS_ERR_INVALID_STATE when the config
 * asks for application audio mode and also sets an audio input or output file (files
 * are devices), MILLIS_ERR_NO_MEMORY.
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
millis_client *millis_client_create(const millis_config *cfg, millis_status *err);

/**
 * Destroys a client. NULL is a no-op. An open connection is closed (close code 1000)
 * without waiting for the server, and no callback of this client runs after this
 * function returns; the close callback is not called. A client that writes files (an
 * audio output file, a recording under way) completes them before this returns (a few
 * milliseconds), so a process may exit right after; called from inside a callback,
 * it cannot wait, and they are completed right after the callback returns.
 *
 * Thread safety: any thread. If a callback of this client is running on the network
 * thread at the time, the call waits for it to return; do not call it from another
 * thread while holding a lock that this client's callbacks take.
 * Callback safety: may be called from inside any callback, including this client's
 * own: the running callback finishes normally, the handle must not be used after the
 * call, and no further callback of this client runs.
 */
void millis_client_destroy(millis_client *c);

/**
 * The message of the last failing call on this client, e.g. "options JSON: expected
 * ':' after object key at byte 12". Return value: owned by the client, valid until the
 * next call on it; "" when nothing failed; NULL only when c is NULL. When several
 * threads share a client, the message may belong to another thread's call.
 */
const char *millis_client_last_error(const millis_client *c);

/**
 * Starts a conversation: connects to the endpoint, opens the WebSocket and sends
 * `initiate`. Returns at once; progress arrives through callbacks (onopen, onready,
 * or onerror + onclose), always on the network thread, never inside this call.
 *
 * Parameters:
 *  - options_json: in, required. The web SDK's start argument, as a JSON object:
 *    {"agent": {"agent_id": "...", "agent_config": {...}}, "metadata": {...},
 *     "include_metadata_in_prompt": true, "session_continuation": {"session_id": "..."}}
 *    "agent" is required and must hold "agent_id" (a non-empty string), "agent_config"
 *    (an object), or both. Every member is passed into `initiate` untouched, with the
 *    configured public key added; the options must not hold "public_key" themselves.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL), MILLIS_ERR_INVALID_JSON (does not parse,
 * not an object, no usable "agent", "public_key" present), MILLIS_ERR_INVALID_STATE
 * (a conversation is already under way: stop it and wait for onclose first),
 * MILLIS_ERR_AUDIO_DEVICE (device audio mode: a device could not be opened or
 * configured; the message names it; nothing was started).
 * Thread safety: any thread. Callback safety: may be called from callbacks (e.g. to
 * start the next conversation from onclose).
 */
millis_status millis_client_start(millis_client *c, const char *options_json);

/**
 * Starts a conversation with a stored agent: millis_client_start() with
 * {"agent": {"agent_id": agent_id}}.
 * Errors: as millis_client_start(); MILLIS_ERR_INVALID_ARGUMENT for an empty id.
 */
millis_status millis_client_start_agent(millis_client *c, const char *agent_id);

/**
 * Ends the conversation: sends a WebSocket close (1000) and, once the server answers
 * (or after 2 s), calls onclose. Harmless when nothing is under way (returns MILLIS_OK
 * and calls nothing).
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL).
 * Thread safety: any thread. Callback safety: may be called from callbacks.
 */
millis_status millis_client_stop(millis_client *c);

/**
 * Mutes / unmutes the microphone. While muted, frames of silence keep being sent so
 * the server's timing stays intact (as the web client does). Muting persists across
 * conversations of the same client.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL).
 */
millis_status millis_client_mute(millis_client *c);
millis_status millis_client_unmute(millis_client *c);

/** 1 when muted, 0 when not or when c is NULL. */
int millis_client_is_muted(const millis_client *c);

/**
 * Hands microphone audio to the client (application audio mode): by default PCM16,
 * little-endian, 16 000 Hz, mono, in chunks of any even size; otherwise in the format
 * set by millis_config_set_application_audio_format(). The data is copied. Audio is cut into
 * frames of the configured duration and sent from the moment `initiate` is sent
 * (onopen), before the server's onready, as the web client streams its microphone from
 * the socket's opening: the user's first words while the agent gets ready are heard.
 * Every 8 s of audio sent (256 000 bytes at 16 kHz) a keep-alive `ping` follows, as
 * the web client's.
 *
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL c, NULL pcm with bytes > 0, odd byte
 * count for PCM16), MILLIS_ERR_NOT_READY (no open WebSocket: before onopen, or while a
 * dropped connection is resumed; the audio is dropped, not queued into a burst, and
 * counted in the stats), MILLIS_ERR_INVALID_STATE (not in application audio mode).
 * Thread safety: any thread; audio from several threads interleaves in call order.
 */
millis_status millis_client_send_audio(millis_client *c, const void *pcm, size_t bytes);

/**
 * Sends a raw JSON control message as a text frame, for methods this version does not
 * know. The text must be a JSON object; it is sent as given.
 * Errors: MILLIS_ERR_INVALID_ARGUMENT (NULL), MILLIS_ERR_INVALID_JSON,
 * MILLIS_ERR_NOT_READY (no open WebSocket).
 */
millis_status millis_client_send_json(millis_client *c, const char *json);

/**
 * The session id from the server's onready, or NULL when there is none (yet). A
 * string id is given as is; any other JSON value is given as its JSON text (12345 ->
 * "12345"), and a reconnection sends the value back as it came (the number 12345).
 * Return value: owned by the caller, release with millis_free().
 */
char *millis_client_session_id(const millis_client *c);

/** The connection state; MILLIS_CONNECTION_IDLE when c is NULL. */
millis_connection_state millis_client_connection_state(const millis_client *c);

/** The audio mode in force: MILLIS_AUDIO_MODE_APPLICATION or MILLIS_AUDIO_MODE_DEVICE
 *  (a default is resolved when the client is created); MILLIS_AUDIO_MODE_DEFAULT only
 *  when c is NULL. */
millis_audio_mode millis_client_audio_mode(const millis_client *c);

/** The agent state; MILLIS_AGENT_IDLE when c is NULL. */
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
 * Return value: owned by the caller (millis_free), NULL when c is NULL.
 */
char *millis_client_stats_json(const millis_client *c);

/* ------------------------------------------------------------------------------------
 * Callbacks
 *
 * One setter per event. Each takes the function (NULL to remove it) and a user_data
 * pointer passed back unchanged. Setters may be called at any time from any thread; a
 * change applies to events dispatched after the setter returns. They return
 * MILLIS_ERR_INVALID_ARGUMENT when c is NULL, MILLIS_OK otherwise.
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
 *  "noise_suppression", "auto_gain_control", "playback": {the playback device}};
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

millis_status millis_client_on_open(millis_client *c, millis_open_cb cb, void *user_data);
millis_status millis_client_on_ready(millis_client *c, millis_ready_cb cb, void *user_data);
millis_status millis_client_on_session_ended(millis_client *c, millis_session_ended_cb cb,
                                             void *user_data);
millis_status millis_client_on_audio(millis_client *c, millis_audio_cb cb, void *user_data);
millis_status millis_client_on_response_text(millis_client *c, millis_response_text_cb cb,
                                             void *user_data);
millis_status millis_client_on_transcript(millis_client *c, millis_transcript_cb cb,
                                          void *user_data);
millis_status millis_client_on_function(millis_client *c, millis_function_cb cb,
                                        void *user_data);
millis_status millis_client_on_latency(millis_client *c, millis_latency_cb cb, void *user_data);
millis_status millis_client_on_agent_state(millis_client *c, millis_agent_state_cb cb,
                                           void *user_data);
millis_status millis_client_on_close(millis_client *c, millis_close_cb cb, void *user_data);
millis_status millis_client_on_error(millis_client *c, millis_error_cb cb, void *user_data);
millis_status millis_client_on_message(millis_client *c, millis_message_cb cb, void *user_data);
millis_status millis_client_on_log(millis_client *c, millis_log_cb cb, void *user_data);
millis_status millis_client_on_reconnecting(millis_client *c, millis_reconnecting_cb cb,
                                            void *user_data);
millis_status millis_client_on_reconnected(millis_client *c, millis_reconnected_cb cb,
                                           void *user_data);
millis_status millis_client_on_analyzer(millis_client *c, millis_analyzer_cb cb, void *user_data);
millis_status millis_client_on_user_audio_ready(millis_client *c, millis_user_audio_ready_cb cb,
                                                void *user_data);
millis_status millis_client_on_input_ended(millis_client *c, millis_input_ended_cb cb,
                                          void *user_data);
millis_status millis_client_on_turn(millis_client *c, millis_turn_cb cb, void *user_data);

#ifdef __cplusplus
}
#endif

#endif /* MILLIS_H */
