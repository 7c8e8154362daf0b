/*
 * millis.hpp — the C++17 interface of libmillis, header-only, over millis.h.
 *
 *   c++ -std=c++17 app.cpp $(pkg-config --cflags --libs millis)
 *
 * Everything lives in namespace millis:
 *   Config   a client's settings (RAII over millis_config; move-only).
 *   Client   one conversation at a time (RAII over millis_client; move-only): start,
 *            stop, send_audio, one handler setter per event (on_transcript, on_close,
 *            ...), the calls that run the handlers (poll, run, run_for, dispatch), and
 *            the event queue itself (next_event, events, event_fd).
 *   Event    one event taken from the queue: a typed view of millis_event.
 *   Analyser a client's analyser (not owned: it lives as long as its client).
 *   Error    the exception every failing call throws: the status and the library's
 *            message.
 * millis.h documents every C function; each method here names the one it calls, and its
 * rules (threads, ranges) apply unchanged. docs/cpp.md is the guide.
 *
 * Errors are exceptions (millis::Error, a std::runtime_error carrying the Status), not
 * returned statuses: constructors cannot return a status, a failed setter or start means
 * the program cannot go on as written, and an exception cannot be ignored by mistake.
 * The one failure that is routine is audio handed in while no WebSocket is open (before
 * onopen, during a reconnection): send_audio and send_json return false for it instead.
 *
 * Handlers and lifetimes. No thread of the library ever runs the program's code: a
 * Client keeps its events in the C event queue (from its creation, so none is lost) and
 * registers no C callback. Its handlers run on the thread that calls client.poll(),
 * client.run() or client.dispatch(event), and nowhere else. So a handler that uses
 * `this` or a reference cannot run while the object it uses is being destroyed, whatever
 * order the members are declared in, as long as the program keeps the one rule: do not
 * destroy (or close) a client while another of its threads is inside poll(), run(),
 * next_event() or events() of that client. docs/cpp.md "Lifetimes" shows it.
 */
#ifndef MILLIS_HPP
#define MILLIS_HPP

#include "millis.h"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <atomic>
#include <functional>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace millis {

// ------------------------------------------------------------------------------------
// Enumerations: the C enumerations, value for value.
// ------------------------------------------------------------------------------------

/** millis_status. */
enum class Status : int {
    ok = MILLIS_OK,
    invalid_argument = MILLIS_ERR_INVALID_ARGUMENT,
    invalid_json = MILLIS_ERR_INVALID_JSON,
    invalid_state = MILLIS_ERR_INVALID_STATE,
    not_ready = MILLIS_ERR_NOT_READY,
    no_memory = MILLIS_ERR_NO_MEMORY,
    connect = MILLIS_ERR_CONNECT,
    tls = MILLIS_ERR_TLS,
    handshake = MILLIS_ERR_HANDSHAKE,
    protocol = MILLIS_ERR_PROTOCOL,
    message_too_big = MILLIS_ERR_MESSAGE_TOO_BIG,
    bad_message = MILLIS_ERR_BAD_MESSAGE,
    connection_lost = MILLIS_ERR_CONNECTION_LOST,
    timeout = MILLIS_ERR_TIMEOUT,
    server_closed = MILLIS_ERR_SERVER_CLOSED,
    unsupported = MILLIS_ERR_UNSUPPORTED,
    internal = MILLIS_ERR_INTERNAL,
    audio_device = MILLIS_ERR_AUDIO_DEVICE,
    file = MILLIS_ERR_FILE
};

/** millis_audio_mode; `automatic` is MILLIS_AUDIO_MODE_DEFAULT (device audio when the
 *  devices open, application audio otherwise). */
enum class AudioMode : int {
    automatic = MILLIS_AUDIO_MODE_DEFAULT,
    application = MILLIS_AUDIO_MODE_APPLICATION,
    device = MILLIS_AUDIO_MODE_DEVICE
};

/** millis_echo_canceller. */
enum class EchoCanceller : int { webrtc = MILLIS_ECHO_CANCELLER_WEBRTC, speex = MILLIS_ECHO_CANCELLER_SPEEX };

/** millis_audio_encoding. */
enum class AudioEncoding : int { pcm16 = MILLIS_AUDIO_PCM16, mulaw = MILLIS_AUDIO_MULAW, alaw = MILLIS_AUDIO_ALAW };

/** millis_agent_state. */
enum class AgentState : int {
    idle = MILLIS_AGENT_IDLE,
    prepare_answer = MILLIS_AGENT_PREPARE_ANSWER,
    answer = MILLIS_AGENT_ANSWER,
    pause = MILLIS_AGENT_PAUSE
};

/** millis_connection_state. */
enum class ConnectionState : int {
    idle = MILLIS_CONNECTION_IDLE,
    connecting = MILLIS_CONNECTION_CONNECTING,
    open = MILLIS_CONNECTION_OPEN,
    ready = MILLIS_CONNECTION_READY,
    closing = MILLIS_CONNECTION_CLOSING,
    reconnecting = MILLIS_CONNECTION_RECONNECTING
};

/** millis_log_level. */
enum class LogLevel : int {
    none = MILLIS_LOG_NONE,
    error = MILLIS_LOG_ERROR,
    warn = MILLIS_LOG_WARN,
    info = MILLIS_LOG_INFO,
    debug = MILLIS_LOG_DEBUG
};

/** millis_file_pacing. */
enum class FilePacing : int { realtime = MILLIS_FILE_REALTIME, fast = MILLIS_FILE_FAST };

/** millis_record_flags. */
enum class RecordFlags : unsigned { stereo = MILLIS_RECORD_STEREO, mono = MILLIS_RECORD_MONO };

/** millis_event_type, without MILLIS_EVENT_NONE (next_event returns no event instead).
 *  A later library may report a kind this header does not name: keep a default case. */
enum class EventKind : int {
    open = MILLIS_EVENT_OPEN,
    ready = MILLIS_EVENT_READY,
    session_ended = MILLIS_EVENT_SESSION_ENDED,
    audio = MILLIS_EVENT_AUDIO,
    response_text = MILLIS_EVENT_RESPONSE_TEXT,
    transcript = MILLIS_EVENT_TRANSCRIPT,
    function = MILLIS_EVENT_FUNCTION,
    latency = MILLIS_EVENT_LATENCY,
    agent_state = MILLIS_EVENT_AGENT_STATE,
    close = MILLIS_EVENT_CLOSE,
    error = MILLIS_EVENT_ERROR,
    message = MILLIS_EVENT_MESSAGE,
    log = MILLIS_EVENT_LOG,
    reconnecting = MILLIS_EVENT_RECONNECTING,
    reconnected = MILLIS_EVENT_RECONNECTED,
    analyzer = MILLIS_EVENT_ANALYZER,
    user_audio_ready = MILLIS_EVENT_USER_AUDIO_READY,
    input_ended = MILLIS_EVENT_INPUT_ENDED,
    turn = MILLIS_EVENT_TURN
};

/** millis_status_string: "invalid argument", ...; static. */
inline std::string_view to_string(Status s) noexcept { return millis_status_string(static_cast<millis_status>(s)); }
/** millis_agent_state_string: the web SDK's name ("idle", "answer", ...). */
inline std::string_view to_string(AgentState s) noexcept
{
    return millis_agent_state_string(static_cast<millis_agent_state>(s));
}
/** millis_connection_state_string: "idle", "connecting", ... */
inline std::string_view to_string(ConnectionState s) noexcept
{
    return millis_connection_state_string(static_cast<millis_connection_state>(s));
}

/** millis_version(): the loaded library's version, e.g. "0.1.0". */
inline std::string_view version() noexcept { return millis_version(); }
/** millis_version_number(): compare with MILLIS_VERSION_NUMBER (this header's). */
inline int version_number() noexcept { return millis_version_number(); }

// ------------------------------------------------------------------------------------
// Errors
// ------------------------------------------------------------------------------------

/** What every failing call throws. what() is "<status>: <the library's message>", e.g.
 *  "invalid argument: endpoint: expected ws:// or wss://, got \"http://x\"". */
class Error : public std::runtime_error {
public:
    Error(Status status, const std::string &message)
        : std::runtime_error(std::string(to_string(status)) + (message.empty() ? "" : ": " + message)),
          status_(status)
    {
    }
    /** The status of the call that failed. */
    Status status() const noexcept { return status_; }

private:
    Status status_;
};

namespace detail {

inline std::string text_of(const char *s) { return s != nullptr ? std::string(s) : std::string(); }

inline std::string_view view_of(const char *s) noexcept { return s != nullptr ? std::string_view(s) : std::string_view(); }

// C strings end at the first NUL: a string_view that holds one would reach the library
// cut short, so it is refused rather than silently shortened.
inline std::string c_string(std::string_view s, const char *what)
{
    std::size_t nul = s.find('\0');
    if (nul != std::string_view::npos)
        throw Error(Status::invalid_argument, std::string(what) + ": holds a NUL byte at offset " + std::to_string(nul)
                                                  + " (a C string would end there)");
    return std::string(s);
}

// A nullable C string argument: std::nullopt is NULL (the C setter's "restore the default").
struct OptionalCString {
    OptionalCString(const std::optional<std::string_view> &s, const char *what)
        : present(s.has_value()), text(present ? c_string(*s, what) : std::string())
    {
    }
    const char *get() const noexcept { return present ? text.c_str() : nullptr; }
    bool present;
    std::string text;
};

}  // namespace detail

// ------------------------------------------------------------------------------------
// Views
// ------------------------------------------------------------------------------------

/** Bytes lent by the library (agent audio): valid for the handler's call, or, for an
 *  Event, until the client's next event is taken. A span of const std::uint8_t; copy what you keep
 *  (std::vector<std::uint8_t>(v.begin(), v.end())). */
class ByteView {
public:
    constexpr ByteView() noexcept = default;
    constexpr ByteView(const std::uint8_t *data, std::size_t size) noexcept : data_(data), size_(size) {}
    constexpr const std::uint8_t *data() const noexcept { return data_; }
    constexpr std::size_t size() const noexcept { return size_; }
    constexpr bool empty() const noexcept { return size_ == 0; }
    constexpr const std::uint8_t *begin() const noexcept { return data_; }
    constexpr const std::uint8_t *end() const noexcept { return data_ + size_; }
    constexpr std::uint8_t operator[](std::size_t i) const noexcept { return data_[i]; }

private:
    const std::uint8_t *data_ = nullptr;
    std::size_t size_ = 0;
};

/** A client's analyser (millis.h "Analysers"): not owned, valid until its client is
 *  closed or destroyed. Every method may be called from any thread and any handler. */
class Analyser {
public:
    Analyser() noexcept = default;
    explicit Analyser(millis_analyser *a) noexcept : a_(a) {}
    millis_analyser *native_handle() const noexcept { return a_; }
    explicit operator bool() const noexcept { return a_ != nullptr; }

    /** millis_analyser_fft_size. */
    unsigned fft_size() const noexcept { return millis_analyser_fft_size(a_); }
    /** millis_analyser_set_fft_size: a power of two, 32 to 32768; throws Error. */
    void set_fft_size(unsigned fft_size)
    {
        millis_status st = millis_analyser_set_fft_size(a_, fft_size);
        if (st != MILLIS_OK)
            throw Error(static_cast<Status>(st), a_ != nullptr ? detail::text_of(millis_analyser_last_error(a_))
                                                               : "no analyser");
    }
    /** millis_analyser_frequency_bin_count: fft_size() / 2. */
    unsigned frequency_bin_count() const noexcept { return millis_analyser_frequency_bin_count(a_); }
    /** millis_analyser_rms_dbfs: the level of the last fft_size() samples; -120 for silence. */
    double rms_dbfs() const noexcept { return millis_analyser_rms_dbfs(a_); }
    /** getByteFrequencyData (millis_analyser_get_byte_frequency_data). */
    std::vector<std::uint8_t> byte_frequency_data() const
    {
        std::vector<std::uint8_t> out(frequency_bin_count());
        out.resize(millis_analyser_get_byte_frequency_data(a_, out.data(), out.size()));
        return out;
    }
    /** getFloatFrequencyData (millis_analyser_get_float_frequency_data), in dB. */
    std::vector<float> float_frequency_data() const
    {
        std::vector<float> out(frequency_bin_count());
        out.resize(millis_analyser_get_float_frequency_data(a_, out.data(), out.size()));
        return out;
    }
    /** getByteTimeDomainData (millis_analyser_get_byte_time_domain_data). */
    std::vector<std::uint8_t> byte_time_domain_data() const
    {
        std::vector<std::uint8_t> out(fft_size());
        out.resize(millis_analyser_get_byte_time_domain_data(a_, out.data(), out.size()));
        return out;
    }
    /** getFloatTimeDomainData (millis_analyser_get_float_time_domain_data), in [-1, 1]. */
    std::vector<float> float_time_domain_data() const
    {
        std::vector<float> out(fft_size());
        out.resize(millis_analyser_get_float_time_domain_data(a_, out.data(), out.size()));
        return out;
    }

private:
    millis_analyser *a_ = nullptr;
};

/** One event from the queue (millis_event), as a typed view. Its strings and audio are
 *  lent: valid until the same client's next event is taken (next_event(), a step of
 *  events(), poll(), run()) or the client's end. A field the event does not carry
 *  reads "" or 0 (see millis.h's millis_event_type for which event carries what). */
class Event {
public:
    explicit Event(const millis_event &raw) noexcept : raw_(raw) {}
    EventKind kind() const noexcept { return static_cast<EventKind>(raw_.type); }
    /** response_text, transcript, function. */
    std::string_view text() const noexcept { return detail::view_of(raw_.text); }
    /** ready, reconnected. */
    std::string_view session_id() const noexcept { return detail::view_of(raw_.session_id); }
    /** ready (payload), function (parameters), message, user_audio_ready (stream), turn. */
    std::string_view json() const noexcept { return detail::view_of(raw_.json); }
    /** function (its name), message (the method). */
    std::string_view name() const noexcept { return detail::view_of(raw_.name); }
    /** close (the reason), error, log. */
    std::string_view message() const noexcept { return detail::view_of(raw_.message); }
    /** audio: the agent's audio, as the on_audio handler gets it. */
    ByteView audio() const noexcept { return ByteView(raw_.audio, raw_.audio_bytes); }
    /** response_text, transcript. */
    bool is_final() const noexcept { return raw_.is_final != 0; }
    /** close: the WebSocket close code. */
    int code() const noexcept { return raw_.code; }
    /** error. */
    Status status() const noexcept { return static_cast<Status>(raw_.status); }
    /** log. */
    LogLevel level() const noexcept { return static_cast<LogLevel>(raw_.level); }
    /** agent_state. */
    AgentState agent_state() const noexcept { return static_cast<AgentState>(raw_.agent_state); }
    /** reconnecting. */
    unsigned attempt() const noexcept { return raw_.attempt; }
    /** reconnecting. */
    unsigned delay_ms() const noexcept { return raw_.delay_ms; }
    /** latency. */
    double latency_ms() const noexcept { return raw_.latency_ms; }
    /** analyzer (the agent's), user_audio_ready (the user's). */
    Analyser analyser() const noexcept { return Analyser(raw_.analyser); }
    /** The C struct, as millis_client_next_event filled it. */
    const millis_event &native() const noexcept { return raw_; }

private:
    millis_event raw_;
};

// ------------------------------------------------------------------------------------
// Config
// ------------------------------------------------------------------------------------

/** A client's settings (millis_config). Setters check their argument and throw Error
 *  (Status::invalid_argument and the library's reason) when it is refused, leaving the
 *  config as it was; they return *this, so they chain. A Config is used by one thread at
 *  a time; a Client copies it, so it may change or go once the client is made. */
class Config {
public:
    /** millis_config_create: the defaults (see millis.h), and an event queue of
     *  default_event_queue_bytes, from which a Client runs its handlers. */
    Config() : cfg_(millis_config_create())
    {
        if (cfg_ == nullptr) throw Error(Status::no_memory, "millis_config_create: out of memory");
        check(millis_config_set_event_queue(cfg_, default_event_queue_bytes));
    }
    ~Config() { millis_config_destroy(cfg_); }
    Config(Config &&other) noexcept : cfg_(std::exchange(other.cfg_, nullptr)) {}
    Config &operator=(Config &&other) noexcept
    {
        if (this != &other) {
            millis_config_destroy(cfg_);
            cfg_ = std::exchange(other.cfg_, nullptr);
        }
        return *this;
    }
    Config(const Config &) = delete;
    Config &operator=(const Config &) = delete;

    /** The C handle, still owned by this Config (nullptr once moved from). */
    millis_config *native_handle() const noexcept { return cfg_; }

    /** millis_config_set_public_key (required). */
    Config &set_public_key(std::string_view key)
    {
        return check(millis_config_set_public_key(handle(), detail::c_string(key, "public key").c_str()));
    }
    /** millis_config_set_endpoint: ws:// or wss://; std::nullopt restores MILLIS_DEFAULT_ENDPOINT. */
    Config &set_endpoint(const std::optional<std::string_view> &url)
    {
        detail::OptionalCString s(url, "endpoint");
        return check(millis_config_set_endpoint(handle(), s.get()));
    }
    /** millis_config_set_log_level. */
    Config &set_log_level(LogLevel level)
    {
        return check(millis_config_set_log_level(handle(), static_cast<millis_log_level>(level)));
    }
    /** millis_config_set_audio_mode. An application that pushes its own audio asks for
     *  AudioMode::application (the default picks device audio on a machine with a sound card). */
    Config &set_audio_mode(AudioMode mode)
    {
        return check(millis_config_set_audio_mode(handle(), static_cast<millis_audio_mode>(mode)));
    }
    /** millis_config_set_frame_ms: 5 to 200. */
    Config &set_frame_ms(unsigned frame_ms) { return check(millis_config_set_frame_ms(handle(), frame_ms)); }
    /** millis_config_set_max_message_bytes: 1 KiB to 64 MiB. */
    Config &set_max_message_bytes(std::size_t max_bytes)
    {
        return check(millis_config_set_max_message_bytes(handle(), max_bytes));
    }
    /** millis_config_set_ready_timeout_ms: 100 to 600 000. */
    Config &set_ready_timeout_ms(unsigned timeout_ms)
    {
        return check(millis_config_set_ready_timeout_ms(handle(), timeout_ms));
    }
    /** millis_config_set_reconnect: max_attempts 0 turns reconnection off. */
    Config &set_reconnect(unsigned max_attempts, unsigned initial_delay_ms, unsigned max_delay_ms)
    {
        return check(millis_config_set_reconnect(handle(), max_attempts, initial_delay_ms, max_delay_ms));
    }
    /** millis_config_set_send_queue_bytes: 64 KiB to 64 MiB. */
    Config &set_send_queue_bytes(std::size_t max_bytes)
    {
        return check(millis_config_set_send_queue_bytes(handle(), max_bytes));
    }
    /** millis_config_set_ca_file: PEM CA certificates; std::nullopt restores the system's store. */
    Config &set_ca_file(const std::optional<std::string_view> &path)
    {
        detail::OptionalCString s(path, "CA file");
        return check(millis_config_set_ca_file(handle(), s.get()));
    }
    /** millis_config_set_tls_verification_disabled_insecure: DANGEROUS, local experiments only. */
    Config &set_tls_verification_disabled_insecure(bool insecure)
    {
        return check(millis_config_set_tls_verification_disabled_insecure(handle(), insecure ? 1 : 0));
    }
    /** millis_config_add_header: a header for the WebSocket upgrade request. */
    Config &add_header(std::string_view name, std::string_view value)
    {
        return check(millis_config_add_header(handle(), detail::c_string(name, "header name").c_str(),
                                              detail::c_string(value, "header value").c_str()));
    }
    /** millis_config_clear_headers. */
    Config &clear_headers() { return check(millis_config_clear_headers(handle())); }
    /** millis_config_set_audio_devices: ALSA PCM names; std::nullopt is "default". */
    Config &set_audio_devices(const std::optional<std::string_view> &capture,
                              const std::optional<std::string_view> &playback)
    {
        detail::OptionalCString c(capture, "capture device"), p(playback, "playback device");
        return check(millis_config_set_audio_devices(handle(), c.get(), p.get()));
    }
    /** millis_config_set_audio_processing: echo cancellation, noise suppression, gain control. */
    Config &set_audio_processing(bool echo_cancellation, bool noise_suppression, bool auto_gain_control)
    {
        return check(millis_config_set_audio_processing(handle(), echo_cancellation ? 1 : 0,
                                                        noise_suppression ? 1 : 0, auto_gain_control ? 1 : 0));
    }
    /** millis_config_set_echo_canceller: the module that processes the microphone. */
    Config &set_echo_canceller(EchoCanceller canceller)
    {
        return check(millis_config_set_echo_canceller(handle(), static_cast<millis_echo_canceller>(canceller)));
    }
    /** millis_audio_test on this configuration's devices: the report (JSON). Blocks for
     *  about twice duration_ms plus 3 s (0: a 3 s probe); call it from a thread of yours. */
    std::string audio_test(unsigned duration_ms = 0)
    {
        char *report = nullptr;
        check(millis_audio_test(handle(), duration_ms, &report));
        std::string out(report != nullptr ? report : "");
        millis_free(report);
        return out;
    }
    /** millis_config_set_audio_period_ms: 5, 10 or 20. */
    Config &set_audio_period_ms(unsigned period_ms)
    {
        return check(millis_config_set_audio_period_ms(handle(), period_ms));
    }
    /** millis_config_set_playout_prebuffer_ms: 0 to 2000. */
    Config &set_playout_prebuffer_ms(unsigned ms) { return check(millis_config_set_playout_prebuffer_ms(handle(), ms)); }
    /** millis_config_set_application_audio_format. */
    Config &set_application_audio_format(AudioEncoding encoding, unsigned sample_rate)
    {
        return check(millis_config_set_application_audio_format(
            handle(), static_cast<millis_audio_encoding>(encoding), sample_rate));
    }
    /** millis_config_set_audio_input_file: a WAV or Ogg Opus file as the microphone;
     *  std::nullopt goes back to the capture device. */
    Config &set_audio_input_file(const std::optional<std::string_view> &path, FilePacing pacing = FilePacing::realtime)
    {
        detail::OptionalCString s(path, "audio input file");
        return check(millis_config_set_audio_input_file(handle(), s.get(), static_cast<millis_file_pacing>(pacing)));
    }
    /** millis_config_set_audio_output_file: the agent's audio to a .wav/.opus/.ogg file;
     *  std::nullopt goes back to the playback device. */
    Config &set_audio_output_file(const std::optional<std::string_view> &path)
    {
        detail::OptionalCString s(path, "audio output file");
        return check(millis_config_set_audio_output_file(handle(), s.get()));
    }
    /** millis_config_set_recording: every conversation into path; std::nullopt turns it off. */
    Config &set_recording(const std::optional<std::string_view> &path, RecordFlags flags = RecordFlags::stereo)
    {
        detail::OptionalCString s(path, "recording path");
        return check(millis_config_set_recording(handle(), s.get(), static_cast<unsigned>(flags)));
    }
    /** The event queue's size when set_event_queue is not called: about four minutes of
     *  the agent's audio waiting for the program. */
    static constexpr std::size_t default_event_queue_bytes = std::size_t(8) << 20;
    /** millis_config_set_event_queue: the most payload the client keeps queued for
     *  poll()/run()/next_event(), 64 KiB to 1 GiB. A Client always keeps a queue (its
     *  handlers run from it), so 0 is refused here. */
    Config &set_event_queue(std::size_t max_bytes)
    {
        if (max_bytes == 0)
            throw Error(Status::invalid_argument, "event queue: 0 would keep no queue, and a millis::Client runs its "
                                                  "handlers from it: give 65536 to 1073741824 bytes (default "
                                                  + std::to_string(default_event_queue_bytes) + ")");
        return check(millis_config_set_event_queue(handle(), max_bytes));
    }

private:
    millis_config *handle() const
    {
        if (cfg_ == nullptr) throw Error(Status::invalid_state, "millis::Config: used after it was moved from");
        return cfg_;
    }
    Config &check(millis_status st)
    {
        if (st != MILLIS_OK) throw Error(static_cast<Status>(st), detail::text_of(millis_config_last_error(cfg_)));
        return *this;
    }

    millis_config *cfg_;
};

// ------------------------------------------------------------------------------------
// Client
// ------------------------------------------------------------------------------------

class Client;

/** client.events(timeout): the queued events, in a range-for. Each step waits up to the
 *  timeout for the next event (a negative timeout waits without limit). The range ends
 *  after the close event (the conversation is over), or when no event came within the
 *  timeout. Iterating it throws Error as next_event() does. */
class EventRange {
public:
    class iterator {
    public:
        using iterator_category = std::input_iterator_tag;
        using value_type = Event;
        using difference_type = std::ptrdiff_t;
        using pointer = const Event *;
        using reference = const Event &;

        iterator() noexcept = default;
        const Event &operator*() const noexcept { return *current_; }
        const Event *operator->() const noexcept { return &*current_; }
        iterator &operator++();
        void operator++(int) { ++*this; }
        friend bool operator==(const iterator &a, const iterator &b) noexcept { return a.done() == b.done(); }
        friend bool operator!=(const iterator &a, const iterator &b) noexcept { return !(a == b); }

    private:
        friend class EventRange;
        iterator(Client *client, int timeout_ms) : client_(client), timeout_ms_(timeout_ms) { ++*this; }
        bool done() const noexcept { return client_ == nullptr; }

        Client *client_ = nullptr;
        int timeout_ms_ = 0;
        std::optional<Event> current_;
    };

    /** Takes the first event (waiting as each step does). */
    iterator begin() { return iterator(client_, timeout_ms_); }
    iterator end() noexcept { return iterator(); }

private:
    friend class Client;
    EventRange(Client *client, int timeout_ms) noexcept : client_(client), timeout_ms_(timeout_ms) {}
    Client *client_;
    int timeout_ms_;
};

/**
 * One conversation at a time with an agent (millis_client). Move-only. Calls on a closed
 * (or moved-from) client throw Error (Status::invalid_state); its getters return the C
 * neutral values (idle, 0, nullopt).
 *
 * Handlers: one setter per event, each taking a std::function (an empty one removes the
 * handler). They run on the program's own thread, inside poll(), run(), run_for() or
 * dispatch(), never on a thread of the library: the client keeps its events in its
 * queue (Config::set_event_queue) and registers no C callback. So a handler may use
 * anything its thread may, may call any method of this client (close() included: the
 * handler runs to its end, then nothing more is dispatched), and may throw: the
 * exception leaves the poll(), run() or dispatch() that called it, and the events after
 * it stay queued. A setter may be called from any thread; once it has returned, the
 * handler it replaced is not called again.
 *
 * Threads: poll(), run(), run_for(), next_event() and events() take from the queue: one
 * thread at a time per client. The one rule of lifetimes: do not close or destroy a
 * client while another thread of the program is inside one of them for that client
 * (stop() the conversation and join that thread first). Then destruction is safe in
 * any declaration order: no handler ever runs outside those calls.
 */
class Client {
public:
    /** Handler types, one per event (arguments as the C callbacks have them, minus the
     *  client and user_data; strings and audio are lent for the call: copy what you keep). */
    using OpenHandler = std::function<void()>;
    using ReadyHandler = std::function<void(std::string_view session_id, std::string_view payload_json)>;
    using SessionEndedHandler = std::function<void()>;
    using AudioHandler = std::function<void(ByteView audio)>;
    using TextHandler = std::function<void(std::string_view text, bool is_final)>;
    using FunctionHandler =
        std::function<void(std::string_view text, std::string_view name, std::string_view params_json)>;
    using LatencyHandler = std::function<void(double latency_ms)>;
    using AgentStateHandler = std::function<void(AgentState state)>;
    using CloseHandler = std::function<void(int code, std::string_view reason)>;
    using ErrorHandler = std::function<void(Status status, std::string_view message)>;
    using MessageHandler = std::function<void(std::string_view method, std::string_view json)>;
    using LogHandler = std::function<void(LogLevel level, std::string_view message)>;
    using ReconnectingHandler = std::function<void(unsigned attempt, unsigned delay_ms)>;
    using ReconnectedHandler = std::function<void(std::string_view session_id)>;
    using AnalyzerHandler = std::function<void(Analyser agent)>;
    using UserAudioReadyHandler = std::function<void(Analyser user, std::string_view stream_json)>;
    using InputEndedHandler = std::function<void()>;
    using TurnHandler = std::function<void(std::string_view turn_json)>;

    /** millis_client_create: throws Error (e.g. invalid_argument when the config has no
     *  public key; the message says what is missing). Events are queued from here on, so
     *  none is lost before the first poll(). */
    explicit Client(const Config &config) : state_(std::make_shared<State>())
    {
        millis_status st = MILLIS_OK;
        if (config.native_handle() == nullptr)
            throw Error(Status::invalid_argument, "millis::Client: the Config was moved from");
        state_->c = millis_client_create(config.native_handle(), &st);
        if (state_->c == nullptr)
            throw Error(static_cast<Status>(st != MILLIS_OK ? st : MILLIS_ERR_INTERNAL),
                        detail::text_of(millis_config_last_error(config.native_handle())));
        // Config keeps a queue unless its C handle was told otherwise: without one no
        // handler could ever run.
        if (millis_client_event_fd(state_->c) < 0) {
            millis_client_destroy(std::exchange(state_->c, nullptr));
            throw Error(Status::invalid_argument,
                        "millis::Client: its config keeps no event queue (millis_config_set_event_queue(..., 0) "
                        "through native_handle()); the handlers run from the queue: give it a size");
        }
    }
    ~Client() { close(); }
    Client(Client &&other) noexcept : state_(std::move(other.state_)) {}
    Client &operator=(Client &&other) noexcept
    {
        if (this != &other) {
            close();
            state_ = std::move(other.state_);
        }
        return *this;
    }
    Client(const Client &) = delete;
    Client &operator=(const Client &) = delete;

    /**
     * Ends the client now: millis_client_destroy (an open connection is closed with 1000
     * without waiting; no close handler runs), then the handlers are destroyed.
     * Idempotent. From inside one of this client's handlers (or when the handler destroys
     * the Client) the end waits for the handler to return, and nothing more is
     * dispatched; the handler's arguments stay valid until it returns. Must not overlap
     * a call on this client from another thread (a poll() or run() that waits included).
     */
    void close() noexcept
    {
        std::shared_ptr<State> s = std::move(state_);
        if (!s) return;
        if (s->dispatching > 0 && s->dispatcher == std::this_thread::get_id())
            s->close_pending = true;  // the dispatch that runs the handler ends the client
        else
            s->end();
    }
    /** False once closed or moved from. */
    bool is_open() const noexcept { return state_ != nullptr && state_->c != nullptr; }
    /** The C handle, still owned by this Client (nullptr once closed or moved from). Use it
     *  for what this header does not wrap; never destroy it, never set its callbacks. */
    millis_client *native_handle() const noexcept { return c(); }

    // --- the conversation -------------------------------------------------------------

    /** millis_client_start: the web SDK's start argument as JSON, e.g.
     *  {"agent": {"agent_id": "..."}, "metadata": {...}}. Returns at once; the events follow. */
    void start(std::string_view options_json)
    {
        std::string json = detail::c_string(options_json, "start options");
        started([&](millis_client *h) { return millis_client_start(h, json.c_str()); });
    }
    /** millis_client_start_agent: start with {"agent": {"agent_id": agent_id}}. */
    void start_agent(std::string_view agent_id)
    {
        std::string id = detail::c_string(agent_id, "agent id");
        started([&](millis_client *h) { return millis_client_start_agent(h, id.c_str()); });
    }
    /** millis_client_stop: ends the conversation; the close event follows (harmless when
     *  none is under way). */
    void stop() { check(millis_client_stop(handle())); }
    /** millis_client_mute. */
    void mute() { check(millis_client_mute(handle())); }
    /** millis_client_unmute. */
    void unmute() { check(millis_client_unmute(handle())); }
    /** millis_client_is_muted. */
    bool is_muted() const noexcept { return millis_client_is_muted(c()) != 0; }

    /**
     * millis_client_send_audio (application audio mode): `bytes` bytes of audio in the
     * configured format (PCM16 little-endian 16 kHz mono by default). Returns true when
     * queued, false when no WebSocket is open (before onopen, during a reconnection: the
     * audio is dropped and counted, which is routine). Throws Error for the rest: an odd
     * byte count for PCM16 (invalid_argument), device audio mode (invalid_state).
     */
    bool send_audio(const void *data, std::size_t bytes)
    {
        millis_status st = millis_client_send_audio(handle(), data, bytes);
        if (st == MILLIS_ERR_NOT_READY) return false;
        check(st);
        return true;
    }
    /** send_audio over a contiguous container of samples (std::vector<std::int16_t>,
     *  std::array<std::uint8_t, N> for G.711, ...): its size in bytes is computed here. */
    template <class Container,
              class Value = std::remove_cv_t<std::remove_pointer_t<decltype(std::data(std::declval<const Container &>()))>>,
              class = std::enable_if_t<std::is_same_v<Value, std::int16_t> || std::is_same_v<Value, std::uint8_t>
                                       || std::is_same_v<Value, char> || std::is_same_v<Value, std::byte>>>
    bool send_audio(const Container &samples)
    {
        return send_audio(static_cast<const void *>(std::data(samples)), std::size(samples) * sizeof(Value));
    }
    /** millis_client_send_json: a raw JSON object as a control message. Returns false when
     *  no WebSocket is open (nothing sent); throws Error for text that is not a JSON object. */
    bool send_json(std::string_view json)
    {
        millis_status st = millis_client_send_json(handle(), detail::c_string(json, "JSON message").c_str());
        if (st == MILLIS_ERR_NOT_READY) return false;
        check(st);
        return true;
    }

    /** millis_client_start_recording: both sides into path (.opus, .ogg, .wav) and a timeline. */
    void start_recording(std::string_view path, RecordFlags flags = RecordFlags::stereo)
    {
        check(millis_client_start_recording(handle(), detail::c_string(path, "recording path").c_str(),
                                            static_cast<unsigned>(flags)));
    }
    /** millis_client_stop_recording: returns when the files are complete. */
    void stop_recording() { check(millis_client_stop_recording(handle())); }

    // --- what the client knows ----------------------------------------------------------

    /** millis_client_session_id: std::nullopt before onready, or when the server gave none. */
    std::optional<std::string> session_id() const { return owned(millis_client_session_id(c())); }
    /** millis_client_connection_state. */
    ConnectionState connection_state() const noexcept
    {
        return static_cast<ConnectionState>(millis_client_connection_state(c()));
    }
    /** millis_client_agent_state. */
    AgentState agent_state() const noexcept { return static_cast<AgentState>(millis_client_agent_state(c())); }
    /** millis_client_audio_mode: application or device (automatic only once closed). */
    AudioMode audio_mode() const noexcept { return static_cast<AudioMode>(millis_client_audio_mode(c())); }
    /** millis_client_stats_json: the counters as a JSON object ("" once closed). */
    std::string stats_json() const { return owned(millis_client_stats_json(c())).value_or(std::string()); }
    /** millis_client_agent_analyser. */
    Analyser agent_analyser() const noexcept { return Analyser(millis_client_agent_analyser(c())); }
    /** millis_client_user_analyser. */
    Analyser user_analyser() const noexcept { return Analyser(millis_client_user_analyser(c())); }

    // --- running the handlers -----------------------------------------------------------

    /** Dispatches every queued event to its handler, on this thread, waiting up to
     *  timeout for the first (negative: without limit); returns how many were dispatched
     *  (0 when none came in time). Stops early when a handler closes the client. Throws
     *  Error (invalid_state) on a closed or moved-from client, and what a handler throws. */
    std::size_t poll(std::chrono::milliseconds timeout = std::chrono::milliseconds(0))
    {
        std::shared_ptr<State> s = live_state();  // a handler may close or destroy *this
        int wait = ms_of(timeout);
        std::size_t n = 0;
        while (s->c != nullptr) {
            std::optional<Event> ev = take(*s, wait);
            if (!ev) break;
            State::dispatch(s, ev->native());
            n++;
            wait = 0;
        }
        return n;
    }
    /** Dispatches events as they come until the close event of the conversation has been
     *  dispatched; returns its code (1000 when a handler closed the client instead).
     *  Throws Error (invalid_state) when no conversation was started (it would wait
     *  forever), on a closed or moved-from client, and what a handler throws. */
    int run() { return *run_until(nullptr); }
    /** run() for at most `limit`: the close code, or std::nullopt when the conversation
     *  was still going when the time was up. */
    template <class Rep, class Period>
    std::optional<int> run_for(std::chrono::duration<Rep, Period> limit)
    {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit);
        return run_until(&deadline);
    }
    /** Runs the handler of an event the program took itself with next_event() or
     *  events() (which by themselves run no handler), on this thread. The event must come
     *  from this client and be the last one taken. */
    void dispatch(const Event &event)
    {
        std::shared_ptr<State> s = live_state();
        State::dispatch(s, event.native());
    }

    // --- the event queue ----------------------------------------------------------------

    /** millis_client_next_event: the next event, waiting up to timeout (negative: without
     *  limit); std::nullopt when none came in time. No handler runs: pass the event to
     *  dispatch() for that. The Event's strings and audio are lent until the next call.
     *  Throws Error (invalid_state) on a closed client. One thread at a time per client. */
    std::optional<Event> next_event(std::chrono::milliseconds timeout) { return take(*live_state(), ms_of(timeout)); }
    /** next_event, waiting without limit. */
    std::optional<Event> next_event() { return take(*live_state(), -1); }
    /** The events in a range-for, until the close event or until none comes within
     *  timeout (see EventRange): for (const millis::Event &ev : client.events(1s)) ...
     *  No handler runs (dispatch(ev) runs one). */
    EventRange events(std::chrono::milliseconds timeout)
    {
        live_state();
        return EventRange(this, ms_of(timeout));
    }
    /** events, each step waiting without limit: ends with the close event. */
    EventRange events() { return events(std::chrono::milliseconds(-1)); }
    /** millis_client_event_fd: readable while an event is queued (for poll/epoll/select);
     *  owned by the client. -1 once closed. */
    int event_fd() const noexcept { return millis_client_event_fd(c()); }

    // --- handlers -------------------------------------------------------------------------

    /** The WebSocket is open (onopen). */
    Client &on_open(OpenHandler h) { return set(&State::open, std::move(h)); }
    /** The server's onready: the session id ("" when none) and the payload JSON. */
    Client &on_ready(ReadyHandler h) { return set(&State::ready, std::move(h)); }
    /** The server ended the session; the close follows (onsessionended). */
    Client &on_session_ended(SessionEndedHandler h) { return set(&State::session_ended, std::move(h)); }
    /** The agent's audio (in the application format in application audio mode). */
    Client &on_audio(AudioHandler h) { return set(&State::audio, std::move(h)); }
    /** The agent's reply text, partial until is_final (onresponsetext). */
    Client &on_response_text(TextHandler h) { return set(&State::response_text, std::move(h)); }
    /** The user's speech as recognised, partial until is_final (ontranscript). */
    Client &on_transcript(TextHandler h) { return set(&State::transcript, std::move(h)); }
    /** The agent called a tool: text, name, parameters as JSON (onfunction). */
    Client &on_function(FunctionHandler h) { return set(&State::function, std::move(h)); }
    /** Milliseconds from start_answering to the answer's first audio (onlatency). */
    Client &on_latency(LatencyHandler h) { return set(&State::latency, std::move(h)); }
    /** The agent state changed (onagentstate). */
    Client &on_agent_state(AgentStateHandler h) { return set(&State::agent_state, std::move(h)); }
    /** The conversation is over: close code and reason, once per started conversation, last. */
    Client &on_close(CloseHandler h) { return set(&State::close, std::move(h)); }
    /** An error (fatal ones are followed by the close). */
    Client &on_error(ErrorHandler h) { return set(&State::error, std::move(h)); }
    /** A server message this version does not know, or whose fields had the wrong type. */
    Client &on_message(MessageHandler h) { return set(&State::message, std::move(h)); }
    /** A log line at or below the configured level. */
    Client &on_log(LogHandler h) { return set(&State::log, std::move(h)); }
    /** The connection dropped; attempt n comes in delay_ms. */
    Client &on_reconnecting(ReconnectingHandler h) { return set(&State::reconnecting, std::move(h)); }
    /** Back in the conversation after a drop. */
    Client &on_reconnected(ReconnectedHandler h) { return set(&State::reconnected, std::move(h)); }
    /** The agent's analyser is ready (the web SDK's `analyzer`). */
    Client &on_analyzer(AnalyzerHandler h) { return set(&State::analyzer, std::move(h)); }
    /** The microphone stream is ready (`useraudioready`): the user's analyser and the stream JSON. */
    Client &on_user_audio_ready(UserAudioReadyHandler h) { return set(&State::user_audio_ready, std::move(h)); }
    /** The audio input file ended; silence follows. */
    Client &on_input_ended(InputEndedHandler h) { return set(&State::input_ended, std::move(h)); }
    /** An agent turn's latency breakdown as JSON (the queue has the voice activity
     *  analysis these reports need on for the client's life). */
    Client &on_turn(TurnHandler h) { return set(&State::turn, std::move(h)); }

private:
    template <class Sig>
    using Slot = std::shared_ptr<const std::function<Sig>>;

    // Shared by the Client and each dispatch in progress, so that a handler may close,
    // move or destroy the Client: the dispatch ends the client once the handler returns.
    struct State {
        millis_client *c = nullptr;
        // Started conversations whose close event has not been taken yet: run() refuses
        // to wait for a close that cannot come.
        std::atomic<int> conversations{0};
        // Dispatch depth and thread: only the dispatching thread writes them, and close()
        // reads them on that thread (or, by the one rule, when no dispatch is under way).
        int dispatching = 0;
        std::thread::id dispatcher;
        bool close_pending = false;

        // Guards the slots only (setters may come from any thread); never held while a
        // handler or the library runs.
        std::mutex mutex;
        Slot<void()> open, session_ended, input_ended;
        Slot<void(std::string_view, std::string_view)> ready, message;
        Slot<void(ByteView)> audio;
        Slot<void(std::string_view, bool)> response_text, transcript;
        Slot<void(std::string_view, std::string_view, std::string_view)> function;
        Slot<void(double)> latency;
        Slot<void(AgentState)> agent_state;
        Slot<void(int, std::string_view)> close;
        Slot<void(Status, std::string_view)> error;
        Slot<void(LogLevel, std::string_view)> log;
        Slot<void(unsigned, unsigned)> reconnecting;
        Slot<void(std::string_view)> reconnected, turn;
        Slot<void(Analyser)> analyzer;
        Slot<void(Analyser, std::string_view)> user_audio_ready;

        // The native client first (no event is taken after it), then the handlers and
        // what they captured, outside the lock.
        void end() noexcept
        {
            if (c != nullptr) millis_client_destroy(std::exchange(c, nullptr));
            State gone;
            {
                std::lock_guard<std::mutex> lock(mutex);
                gone.swap_slots(*this);
            }
        }
        void swap_slots(State &o) noexcept
        {
            using std::swap;
            swap(open, o.open), swap(session_ended, o.session_ended), swap(input_ended, o.input_ended);
            swap(ready, o.ready), swap(message, o.message), swap(audio, o.audio);
            swap(response_text, o.response_text), swap(transcript, o.transcript), swap(function, o.function);
            swap(latency, o.latency), swap(agent_state, o.agent_state), swap(close, o.close);
            swap(error, o.error), swap(log, o.log), swap(reconnecting, o.reconnecting);
            swap(reconnected, o.reconnected), swap(turn, o.turn), swap(analyzer, o.analyzer);
            swap(user_audio_ready, o.user_audio_ready);
        }

        template <class Sig, class... Args>
        void call(Slot<Sig> State::*slot, Args... args)
        {
            Slot<Sig> handler;  // the call's own reference: the handler may replace itself
            {
                std::lock_guard<std::mutex> lock(mutex);
                handler = this->*slot;
            }
            if (handler && *handler) (*handler)(args...);
        }

        // Runs e's handler on this thread. `s` is the caller's own reference: the handler
        // may drop the Client's.
        static void dispatch(const std::shared_ptr<State> &s, const millis_event &e)
        {
            State &st = *s;
            if (st.c == nullptr) return;
            struct Depth {
                State &st;
                std::thread::id outer;
                explicit Depth(State &state) : st(state), outer(state.dispatcher)
                {
                    st.dispatcher = std::this_thread::get_id();
                    st.dispatching++;
                }
                ~Depth()
                {
                    st.dispatcher = outer;
                    if (--st.dispatching == 0 && st.close_pending) st.end();
                }
                Depth(const Depth &) = delete;
                Depth &operator=(const Depth &) = delete;
            } depth(st);
            using detail::view_of;
            switch (e.type) {
            case MILLIS_EVENT_OPEN: st.call(&State::open); break;
            case MILLIS_EVENT_READY: st.call(&State::ready, view_of(e.session_id), view_of(e.json)); break;
            case MILLIS_EVENT_SESSION_ENDED: st.call(&State::session_ended); break;
            case MILLIS_EVENT_AUDIO: st.call(&State::audio, ByteView(e.audio, e.audio_bytes)); break;
            case MILLIS_EVENT_RESPONSE_TEXT:
                st.call(&State::response_text, view_of(e.text), e.is_final != 0);
                break;
            case MILLIS_EVENT_TRANSCRIPT: st.call(&State::transcript, view_of(e.text), e.is_final != 0); break;
            case MILLIS_EVENT_FUNCTION:
                st.call(&State::function, view_of(e.text), view_of(e.name), view_of(e.json));
                break;
            case MILLIS_EVENT_LATENCY: st.call(&State::latency, e.latency_ms); break;
            case MILLIS_EVENT_AGENT_STATE: st.call(&State::agent_state, static_cast<AgentState>(e.agent_state)); break;
            case MILLIS_EVENT_CLOSE: st.call(&State::close, e.code, view_of(e.message)); break;
            case MILLIS_EVENT_ERROR: st.call(&State::error, static_cast<Status>(e.status), view_of(e.message)); break;
            case MILLIS_EVENT_MESSAGE: st.call(&State::message, view_of(e.name), view_of(e.json)); break;
            case MILLIS_EVENT_LOG: st.call(&State::log, static_cast<LogLevel>(e.level), view_of(e.message)); break;
            case MILLIS_EVENT_RECONNECTING: st.call(&State::reconnecting, e.attempt, e.delay_ms); break;
            case MILLIS_EVENT_RECONNECTED: st.call(&State::reconnected, view_of(e.session_id)); break;
            case MILLIS_EVENT_ANALYZER: st.call(&State::analyzer, Analyser(e.analyser)); break;
            case MILLIS_EVENT_USER_AUDIO_READY:
                st.call(&State::user_audio_ready, Analyser(e.analyser), view_of(e.json));
                break;
            case MILLIS_EVENT_INPUT_ENDED: st.call(&State::input_ended); break;
            case MILLIS_EVENT_TURN: st.call(&State::turn, view_of(e.json)); break;
            default: break;  // a kind this header does not know, or NONE
            }
        }
    };

    template <class Sig>
    Client &set(Slot<Sig> State::*slot, std::function<Sig> handler)
    {
        State &s = *live_state();
        Slot<Sig> fresh = handler ? std::make_shared<const std::function<Sig>>(std::move(handler)) : nullptr;
        Slot<Sig> old;
        {
            std::lock_guard<std::mutex> lock(s.mutex);
            old = std::exchange(s.*slot, std::move(fresh));
        }
        return *this;  // `old` goes here, outside the lock (unless a dispatch still holds it)
    }

    template <class Start>
    void started(Start call)
    {
        State &s = *live_state();
        // Counted before the call: the close may be taken on another thread before it returns.
        s.conversations++;
        millis_status st = call(s.c);
        if (st != MILLIS_OK) {
            s.conversations--;
            check(st);
        }
    }

    std::optional<int> run_until(const std::chrono::steady_clock::time_point *deadline)
    {
        std::shared_ptr<State> s = live_state();
        if (s->conversations.load() <= 0)
            throw Error(Status::invalid_state, "millis::Client::run: no conversation is under way (its close was "
                                               "already taken, or none was started): call start() first");
        for (;;) {
            if (s->c == nullptr) return 1000;  // a handler closed the client (with 1000)
            int wait = -1;
            if (deadline != nullptr) {
                auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - std::chrono::steady_clock::now());
                if (left.count() <= 0) return std::nullopt;
                wait = clamp_ms(left.count());
            }
            std::optional<Event> ev = take(*s, wait);
            if (!ev) continue;
            State::dispatch(s, ev->native());
            if (ev->kind() == EventKind::close) return ev->code();
        }
    }

    millis_client *c() const noexcept { return state_ != nullptr ? state_->c : nullptr; }
    const std::shared_ptr<State> &live_state() const
    {
        if (state_ == nullptr || state_->c == nullptr)
            throw Error(Status::invalid_state, "millis::Client: used after close() (or after it was moved from)");
        return state_;
    }
    millis_client *handle() const { return live_state()->c; }
    void check(millis_status st) const
    {
        if (st != MILLIS_OK) throw Error(static_cast<Status>(st), detail::text_of(millis_client_last_error(c())));
    }
    static std::optional<std::string> owned(char *s)
    {
        if (s == nullptr) return std::nullopt;
        std::unique_ptr<char, void (*)(void *)> hold(s, millis_free);
        return std::string(s);
    }
    static int clamp_ms(long long ms) noexcept { return ms > 0x7fffffff ? 0x7fffffff : static_cast<int>(ms); }
    static int ms_of(std::chrono::milliseconds t) noexcept { return t.count() < 0 ? -1 : clamp_ms(t.count()); }
    static std::optional<Event> take(State &s, int timeout_ms)
    {
        millis_event raw = MILLIS_EVENT_INIT;
        millis_status st = millis_client_next_event(s.c, &raw, timeout_ms);
        if (st != MILLIS_OK) throw Error(static_cast<Status>(st), detail::text_of(millis_client_last_error(s.c)));
        if (raw.type == MILLIS_EVENT_NONE) return std::nullopt;
        if (raw.type == MILLIS_EVENT_CLOSE) s.conversations--;
        return Event(raw);
    }

    friend class EventRange::iterator;

    std::shared_ptr<State> state_;
};

inline EventRange::iterator &EventRange::iterator::operator++()
{
    // The close event ends the range: the conversation it belongs to is over. So does a
    // client closed meanwhile (by dispatch(ev) running a handler that closed it).
    if (client_ == nullptr || (current_ && current_->kind() == EventKind::close) || !client_->is_open()) {
        client_ = nullptr;
        current_.reset();
        return *this;
    }
    current_ = Client::take(*client_->live_state(), timeout_ms_);
    if (!current_) client_ = nullptr;
    return *this;
}

}  // namespace millis

#endif /* MILLIS_HPP */
