/*
 * test_millis_hpp.cpp — include/millis.hpp, the C++ wrapper, against the devserver.
 *
 * Usage: test_millis_hpp SECTION [WS_URL USER_WAV]
 *   api            no server: errors as millis::Error, closed and moved-from objects,
 *                  the event queue refused without a queue, send_audio's false.
 *   conversation   the devserver's two-turn conversation in application audio mode:
 *                  every handler, a handler that replaces itself, a handler that throws,
 *                  next_event refused inside a handler, then the same conversation read
 *                  again from the event queue (client.events()); an unreachable server
 *                  as an error event and a close.
 *   order          destruction whatever the declaration order: objects whose Client is
 *                  declared FIRST and whose handlers use a mutex, a condition variable
 *                  and a vector declared after it, destroyed while handlers run (during
 *                  the connection, and while the agent's audio streams in); a Client
 *                  destroyed from inside its own handler. Meant for ASan and TSan.
 *   all            the three.
 *   WS_URL    the devserver's endpoint, e.g. ws://127.0.0.1:8765/millis
 *   USER_WAV  bindings/audio/user.wav (16 kHz mono PCM16)
 *
 *   c++ -std=c++17 -Wall -Wextra -Werror -pedantic Tests/cpp/test_millis_hpp.cpp \
 *       $(pkg-config --cflags --libs millis) -pthread -o test_millis_hpp
 *
 * Exit status 0 on success; a failed check prints file:line and the condition, exit 1.
 */
#include <millis.hpp>

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::atomic<int> checks{0};

// Failures may happen on the library's network thread: flush and _exit, so that no
// destructor of a static races that thread.
[[noreturn]] void fail_at(const char *file, int line, const std::string &what)
{
    std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, what.c_str());
    std::fflush(nullptr);
    _exit(1);
}

#define CHECK(cond) \
    do { if (!(cond)) fail_at(__FILE__, __LINE__, #cond); else checks++; } while (0)
#define CHECK_MSG(cond, msg) \
    do { if (!(cond)) fail_at(__FILE__, __LINE__, std::string(#cond) + ": " + (msg)); else checks++; } while (0)

// Runs `call`, which must throw millis::Error with `want`; returns its what().
template <class F>
std::string expect_error(const char *file, int line, const char *text, F call, millis::Status want)
{
    try {
        call();
    } catch (const millis::Error &e) {
        if (e.status() != want)
            fail_at(file, line, std::string(text) + " threw " + std::string(millis::to_string(e.status())) + " ("
                                    + e.what() + "), expected " + std::string(millis::to_string(want)));
        checks++;
        return e.what();
    }
    fail_at(file, line, std::string(text) + " did not throw");
}
#define EXPECT_ERROR(call, want) expect_error(__FILE__, __LINE__, #call, [&] { call; }, want)

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// "Hello, what is..." -> "hello what is": the devserver's transcripts, compared by words.
std::string words(std::string_view s)
{
    std::string out;
    bool space = false;
    for (char ch : s) {
        unsigned char c = static_cast<unsigned char>(ch);
        if (std::isalnum(c)) {
            if (space && !out.empty()) out += ' ';
            space = false;
            out += static_cast<char>(std::tolower(c));
        } else {
            space = true;
        }
    }
    return out;
}

const char *const expected_finals[] = {"Hello, what is the weather like today?", "Thank you, goodbye."};

// The samples of a 16 kHz mono PCM16 WAV file (its "data" chunk), as bytes.
std::vector<std::uint8_t> load_pcm(const char *path)
{
    std::ifstream f(path, std::ios::binary);
    std::vector<std::uint8_t> all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
    for (std::size_t at = 12; at + 8 <= all.size();) {
        std::size_t size = all[at + 4] | (all[at + 5] << 8) | (all[at + 6] << 16) | (std::size_t(all[at + 7]) << 24);
        if (std::memcmp(&all[at], "data", 4) == 0) {
            std::size_t end = std::min(all.size(), at + 8 + size);
            return std::vector<std::uint8_t>(all.begin() + static_cast<std::ptrdiff_t>(at + 8),
                                             all.begin() + static_cast<std::ptrdiff_t>(end - ((end - at - 8) & 1)));
        }
        at += 8 + size + (size & 1);
    }
    fail_at(__FILE__, __LINE__, std::string("no PCM data in ") + path);
}

millis::Config app_config(const std::string &url)
{
    millis::Config cfg;
    cfg.set_public_key("test-public-key").set_endpoint(url).set_audio_mode(millis::AudioMode::application);
    return cfg;
}

// Streams the user's voice in real time (20 ms chunks on an absolute clock), then
// silence, while keep_going() says so; returns the bytes accepted.
template <class KeepGoing>
std::size_t stream_audio(millis::Client &client, const std::vector<std::uint8_t> &pcm, KeepGoing keep_going,
                         std::chrono::seconds limit = 90s)
{
    auto next = std::chrono::steady_clock::now();
    const auto deadline = next + limit;
    std::size_t offset = 0, accepted = 0;
    std::vector<std::uint8_t> chunk(640);
    while (keep_going()) {
        CHECK_MSG(std::chrono::steady_clock::now() < deadline, "the conversation did not end in time");
        std::fill(chunk.begin(), chunk.end(), std::uint8_t(0));
        std::size_t n = std::min(chunk.size(), pcm.size() - offset);
        std::copy_n(pcm.begin() + static_cast<std::ptrdiff_t>(offset), n, chunk.begin());
        offset += n;
        if (client.send_audio(chunk)) accepted += chunk.size();
        next += 20ms;
        std::this_thread::sleep_until(next);
    }
    return accepted;
}

// ------------------------------------------------------------------------------------
// api: no server
// ------------------------------------------------------------------------------------

void test_api()
{
    std::printf("api\n");
    CHECK(millis::version() == MILLIS_VERSION_STRING);
    CHECK(millis::version_number() == MILLIS_VERSION_NUMBER);
    CHECK(millis::to_string(millis::Status::invalid_json) == millis_status_string(MILLIS_ERR_INVALID_JSON));
    CHECK(millis::to_string(millis::AgentState::prepare_answer) == "prepare_answer");
    CHECK(millis::to_string(millis::ConnectionState::reconnecting) == "reconnecting");

    // Config setters: the library's refusal, as an exception; the config keeps its value.
    millis::Config cfg;
    std::string what = EXPECT_ERROR(cfg.set_endpoint("http://example.com/"), millis::Status::invalid_argument);
    CHECK_MSG(contains(what, "invalid argument: ") && what.size() > std::strlen("invalid argument: "), what);
    what = EXPECT_ERROR(cfg.set_frame_ms(3), millis::Status::invalid_argument);
    CHECK_MSG(contains(what, "200"), what);  // the range is named
    what = EXPECT_ERROR(cfg.set_endpoint(std::string_view("ws://a\0b", 8)), millis::Status::invalid_argument);
    CHECK_MSG(contains(what, "NUL byte at offset 6"), what);
    EXPECT_ERROR(cfg.set_event_queue(1), millis::Status::invalid_argument);
    cfg.set_endpoint(std::nullopt).set_ca_file(std::nullopt).set_audio_devices(std::nullopt, "default");

    // A client needs a public key: the constructor throws, with the config's reason.
    what = EXPECT_ERROR(millis::Client{cfg}, millis::Status::invalid_argument);
    CHECK_MSG(contains(what, "public key"), what);

    // Moved-from objects say so instead of passing NULL along.
    millis::Config moved = std::move(cfg);
    CHECK(cfg.native_handle() == nullptr);
    what = EXPECT_ERROR(cfg.set_public_key("k"), millis::Status::invalid_state);
    CHECK_MSG(contains(what, "moved from"), what);
    moved.set_public_key("test-public-key").set_audio_mode(millis::AudioMode::application);

    millis::Client a(moved);
    CHECK(a.is_open());
    CHECK(a.audio_mode() == millis::AudioMode::application);
    CHECK(a.connection_state() == millis::ConnectionState::idle);
    CHECK(!a.session_id());
    CHECK(contains(a.stats_json(), "\"frames_sent\""));

    // No queue configured: the descriptor is -1 and next_event says what to do.
    CHECK(a.event_fd() == -1);
    what = EXPECT_ERROR(a.next_event(0ms), millis::Status::invalid_state);
    CHECK_MSG(contains(what, "event_queue"), what);
    EXPECT_ERROR(for (const millis::Event &ev : a.events(0ms)) (void)ev, millis::Status::invalid_state);

    // send_audio: "not ready" is routine (false), the rest throws.
    std::vector<std::int16_t> samples(320);
    CHECK(!a.send_audio(samples));
    CHECK(!a.send_audio(samples.data(), 640));
    EXPECT_ERROR(a.send_audio(samples.data(), 3), millis::Status::invalid_argument);
    what = EXPECT_ERROR(a.start("{\"agent\": "), millis::Status::invalid_json);
    CHECK_MSG(what.size() > std::strlen("invalid JSON: "), what);
    EXPECT_ERROR(a.start("{\"metadata\": {}}"), millis::Status::invalid_json);
    EXPECT_ERROR(a.start_agent(""), millis::Status::invalid_argument);
    CHECK(!a.send_json("{\"method\": \"ping\"}"));
    EXPECT_ERROR(a.send_json("[1]"), millis::Status::invalid_json);

    // Moving carries the handle and the handlers; the moved-from client is closed.
    a.on_close([](int, std::string_view) {});
    millis::Client b = std::move(a);
    CHECK(!a.is_open() && a.native_handle() == nullptr);
    CHECK(b.is_open());
    what = EXPECT_ERROR(a.stop(), millis::Status::invalid_state);
    CHECK_MSG(contains(what, "close()"), what);
    EXPECT_ERROR(a.on_open([] {}), millis::Status::invalid_state);
    CHECK(a.connection_state() == millis::ConnectionState::idle);  // getters: the neutral values
    CHECK(a.stats_json().empty());
    b.close();
    b.close();  // idempotent
    CHECK(!b.is_open());
    EXPECT_ERROR(b.start_agent("demo-agent"), millis::Status::invalid_state);

    // Assigning over an open client closes it first.
    millis::Client c(moved), d(moved);
    c = std::move(d);
    CHECK(c.is_open() && !d.is_open());
}

// ------------------------------------------------------------------------------------
// conversation
// ------------------------------------------------------------------------------------

// What the handlers saw. Held by shared_ptr and captured by value: the handlers own it,
// so it outlives every call to them, wherever `client` is declared.
struct Seen {
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> order;  // event names, in order
    std::vector<std::string> finals, finals_by;
    int partials = 0, response_finals = 0, latencies = 0, functions = 0, closes = 0, close_code = 0;
    std::string session_id, close_reason, function_params, errors;
    std::vector<millis::AgentState> states;
    std::size_t audio_bytes = 0, odd_audio = 0;
    millis_analyser *agent = nullptr, *user = nullptr;
    std::string stream_json;
    millis::Status status_inside = millis::Status::ok;
    std::string what_inside;

    void add(std::string name)
    {
        std::lock_guard<std::mutex> lock(m);
        order.push_back(std::move(name));
        cv.notify_all();
    }
};

void test_conversation(const std::string &url, const char *wav)
{
    std::printf("conversation\n");
    const std::vector<std::uint8_t> pcm = load_pcm(wav);
    auto seen = std::make_shared<Seen>();

    millis::Config cfg = app_config(url);
    cfg.set_event_queue(8u << 20);
    millis::Client client(cfg);
    CHECK(client.event_fd() >= 0);

    client.on_open([seen] {
        seen->add("open");
        throw std::runtime_error("deliberate");  // reported on stderr, dropped
    });
    client.on_ready([seen, &client](std::string_view sid, std::string_view payload) {
        std::lock_guard<std::mutex> lock(seen->m);
        seen->order.emplace_back("ready");
        seen->session_id = std::string(sid);
        if (payload.empty()) seen->errors += "empty ready payload; ";
        // The network thread must not wait: the queue refuses it, as an exception.
        try {
            (void)client.next_event(0ms);
        } catch (const millis::Error &e) {
            seen->status_inside = e.status();
            seen->what_inside = e.what();
        }
    });
    // The first transcript handler replaces itself at the first final transcript, then
    // goes on using its captures (the tag): they must still be alive.
    auto second = [seen](std::string_view text, bool is_final) {
        std::lock_guard<std::mutex> lock(seen->m);
        if (!is_final) return void(seen->partials++);
        seen->finals.emplace_back(text);
        seen->finals_by.emplace_back("second");
    };
    std::string tag = std::string(64, 'x') + " first";  // heap-allocated: ASan sees a use after free
    client.on_transcript([seen, &client, second, tag](std::string_view text, bool is_final) {
        if (!is_final) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->partials++;
            return;
        }
        client.on_transcript(second);
        std::lock_guard<std::mutex> lock(seen->m);
        seen->finals.emplace_back(text);
        seen->finals_by.push_back(tag.substr(65));
    });
    client.on_response_text([seen](std::string_view text, bool is_final) {
        std::lock_guard<std::mutex> lock(seen->m);
        if (is_final && !text.empty()) seen->response_finals++;
    })
        .on_function([seen](std::string_view, std::string_view name, std::string_view params) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->functions++;
            if (name == "get_weather") seen->function_params = std::string(params);
        })
        .on_latency([seen](double ms) {
            std::lock_guard<std::mutex> lock(seen->m);
            if (ms > 0) seen->latencies++;
        })
        .on_agent_state([seen](millis::AgentState s) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->states.push_back(s);
        })
        .on_audio([seen](millis::ByteView audio) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->audio_bytes += audio.size();
            if (audio.size() % 2 != 0 || audio.empty()) seen->odd_audio++;
        })
        .on_analyzer([seen](millis::Analyser agent) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->agent = agent.native_handle();
        })
        .on_user_audio_ready([seen](millis::Analyser user, std::string_view stream) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->user = user.native_handle();
            seen->stream_json = std::string(stream);
        })
        .on_session_ended([seen] { seen->add("session_ended"); })
        .on_error([seen](millis::Status st, std::string_view message) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->errors += std::string(millis::to_string(st)) + ": " + std::string(message) + "; ";
        })
        .on_close([seen](int code, std::string_view reason) {
            std::lock_guard<std::mutex> lock(seen->m);
            seen->order.emplace_back("close");
            seen->closes++;
            seen->close_code = code;
            seen->close_reason = std::string(reason);
            seen->cv.notify_all();
        });
    // A handler set and removed again is never called.
    client.on_turn([seen](std::string_view) { seen->add("turn (removed handler)"); }).on_turn(nullptr);

    client.start_agent("demo-agent");
    std::string what = EXPECT_ERROR(client.start_agent("demo-agent"), millis::Status::invalid_state);
    CHECK_MSG(what.size() > std::strlen("invalid state for this call: "), what);

    std::size_t accepted = stream_audio(client, pcm, [&] {
        std::lock_guard<std::mutex> lock(seen->m);
        return seen->closes == 0 && seen->finals.size() < 2;
    });
    {
        std::unique_lock<std::mutex> lock(seen->m);
        CHECK_MSG(seen->cv.wait_for(lock, 60s, [&] { return seen->closes > 0; }), "no close within 60 s");
    }
    std::printf("  %zu audio bytes accepted\n", accepted);
    CHECK(accepted > pcm.size() / 2);

    {
        std::lock_guard<std::mutex> lock(seen->m);
        CHECK_MSG(seen->errors.empty(), seen->errors);
        CHECK(seen->order.size() >= 4);
        CHECK(seen->order.front() == "open" && seen->order[1] == "ready");
        CHECK(seen->order[seen->order.size() - 2] == "session_ended" && seen->order.back() == "close");
        CHECK(seen->closes == 1 && seen->close_code == 1000);
        CHECK(!seen->session_id.empty());
        CHECK(seen->status_inside == millis::Status::invalid_state);
        CHECK_MSG(contains(seen->what_inside, "callback"), seen->what_inside);
        CHECK(seen->finals.size() == 2);
        for (std::size_t i = 0; i < seen->finals.size() && i < 2; i++)
            CHECK_MSG(words(seen->finals[i]) == words(expected_finals[i]), seen->finals[i]);
        CHECK(seen->finals_by.size() == 2 && seen->finals_by[0] == "first" && seen->finals_by[1] == "second");
        CHECK(seen->partials > 0);
        CHECK(seen->response_finals >= 1);
        CHECK(seen->functions >= 1);
        CHECK_MSG(contains(seen->function_params, "Paris"), seen->function_params);
        CHECK(seen->latencies >= 1);
        CHECK(std::find(seen->states.begin(), seen->states.end(), millis::AgentState::answer) != seen->states.end());
        CHECK(seen->states.back() == millis::AgentState::idle);
        CHECK(seen->audio_bytes > 0 && seen->odd_audio == 0);
        CHECK(seen->agent != nullptr && seen->agent == client.agent_analyser().native_handle());
        CHECK(seen->user != nullptr && seen->user == client.user_analyser().native_handle());
        CHECK_MSG(contains(seen->stream_json, "\"application\""), seen->stream_json);
    }
    CHECK(client.session_id() && *client.session_id() == seen->session_id);
    CHECK(client.agent_analyser().fft_size() == 2048);
    CHECK(client.agent_analyser().byte_frequency_data().size() == 1024);
    CHECK(client.agent_analyser().float_time_domain_data().size() == 2048);

    // The same conversation from the event queue, queued since the client was made: the
    // descriptor is readable, and the range ends with the close.
    pollfd p{client.event_fd(), POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 1 && (p.revents & POLLIN));
    std::vector<millis::EventKind> kinds;
    std::vector<std::string> finals;
    std::string session_id, params;
    std::size_t audio_bytes = 0;
    int close_code = 0;
    for (const millis::Event &ev : client.events(0ms)) {
        kinds.push_back(ev.kind());
        switch (ev.kind()) {
        case millis::EventKind::ready: session_id = std::string(ev.session_id()); break;
        case millis::EventKind::transcript:
            if (ev.is_final()) finals.emplace_back(ev.text());
            break;
        case millis::EventKind::function:
            if (ev.name() == "get_weather") params = std::string(ev.json());
            break;
        case millis::EventKind::audio: audio_bytes += ev.audio().size(); break;
        case millis::EventKind::analyzer: CHECK(ev.analyser().native_handle() == seen->agent); break;
        case millis::EventKind::error: CHECK_MSG(false, std::string(ev.message())); break;
        case millis::EventKind::close:
            close_code = ev.code();
            CHECK(ev.native().type == MILLIS_EVENT_CLOSE);
            break;
        default: break;
        }
    }
    CHECK(!kinds.empty() && kinds.front() == millis::EventKind::open && kinds.back() == millis::EventKind::close);
    CHECK(close_code == 1000);
    CHECK(session_id == seen->session_id);
    CHECK(finals == seen->finals);
    CHECK(params == seen->function_params);
    CHECK(audio_bytes == seen->audio_bytes);
    CHECK(!client.next_event(0ms));
    p.revents = 0;
    CHECK(poll(&p, 1, 0) == 0);

    // An unreachable server: an error event with a typed status, then the close; the
    // handler and the queue both get them.
    millis::Config bad = app_config("ws://127.0.0.1:1/millis");
    bad.set_event_queue(1u << 20).set_reconnect(0, 250, 8000);
    millis::Client lost(bad);
    auto errors = std::make_shared<std::vector<millis::Status>>();
    lost.on_error([errors](millis::Status st, std::string_view) { errors->push_back(st); });
    lost.start_agent("demo-agent");
    std::optional<millis::Status> status;
    int code = 0;
    for (const millis::Event &ev : lost.events(30s)) {
        if (ev.kind() == millis::EventKind::error) status = ev.status();
        if (ev.kind() == millis::EventKind::close) code = ev.code();
    }
    CHECK(status == millis::Status::connect);
    CHECK(code == 1006);
    lost.close();  // after close() the handlers are gone: *errors is ours alone
    CHECK(errors->size() == 1 && errors->front() == millis::Status::connect);
}

// ------------------------------------------------------------------------------------
// order: destruction whatever the declaration order
// ------------------------------------------------------------------------------------

// The Client FIRST, the members its handlers use (through `this`) after it: C++ destroys
// them before the Client. The destructor's close() comes before any member goes, and
// returns only once no handler runs.
struct ThisBot {
    millis::Client client;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> seen;
    std::size_t audio = 0;

    explicit ThisBot(const millis::Config &cfg) : client(cfg)
    {
        client.on_log([this](millis::LogLevel, std::string_view line) { note(line); })
            .on_open([this] { note("open"); })
            .on_ready([this](std::string_view, std::string_view) { note("ready"); })
            .on_analyzer([this](millis::Analyser) { note("analyzer"); })
            .on_transcript([this](std::string_view text, bool) { note(text); })
            .on_agent_state([this](millis::AgentState s) { note(millis::to_string(s)); })
            .on_audio([this](millis::ByteView a) {
                std::lock_guard<std::mutex> lock(m);
                audio += a.size();
                seen.emplace_back("audio");
                cv.notify_all();
            });
    }
    ~ThisBot() { client.close(); }

    void note(std::string_view what)
    {
        std::lock_guard<std::mutex> lock(m);
        seen.emplace_back(what);
        cv.notify_all();
    }
};

// The same without a destructor: the handlers capture a shared_ptr to what they use, so
// the Client (destroyed last, and destroying its handlers last) keeps it alive.
struct SharedBot {
    struct Shared {
        std::mutex m;
        std::condition_variable cv;
        std::vector<std::string> seen;
        std::size_t audio = 0;
    };
    millis::Client client;
    std::shared_ptr<Shared> shared = std::make_shared<Shared>();

    explicit SharedBot(const millis::Config &cfg) : client(cfg)
    {
        auto note = [s = shared](std::string_view what) {
            std::lock_guard<std::mutex> lock(s->m);
            s->seen.emplace_back(what);
            s->cv.notify_all();
        };
        client.on_log([note](millis::LogLevel, std::string_view line) { note(line); })
            .on_open([note] { note("open"); })
            .on_ready([note](std::string_view, std::string_view) { note("ready"); })
            .on_transcript([note](std::string_view text, bool) { note(text); })
            .on_audio([s = shared](millis::ByteView a) {
                std::lock_guard<std::mutex> lock(s->m);
                s->audio += a.size();
                s->cv.notify_all();
            });
    }
};

template <class Bot>
std::size_t audio_of(Bot &bot)
{
    if constexpr (std::is_same_v<Bot, ThisBot>) {
        std::lock_guard<std::mutex> lock(bot.m);
        return bot.audio;
    } else {
        std::lock_guard<std::mutex> lock(bot.shared->m);
        return bot.shared->audio;
    }
}

template <class Bot>
void destroy_while_running(const char *name, const std::string &url, const std::vector<std::uint8_t> &pcm,
                           int iterations)
{
    millis::Config cfg = app_config(url);
    cfg.set_log_level(millis::LogLevel::debug);  // a log line per step: handlers run all along the connection
    // During the connection: destroyed at a different moment each time (0 to 190 ms after start).
    for (int i = 0; i < iterations; i++) {
        auto bot = std::make_unique<Bot>(cfg);
        bot->client.start_agent("demo-agent");
        std::this_thread::sleep_for(std::chrono::milliseconds((i * 37) % 200));
        bot.reset();
    }
    // While the agent's audio streams in: 50 handler calls a second.
    auto bot = std::make_unique<Bot>(cfg);
    bot->client.start_agent("demo-agent");
    stream_audio(bot->client, pcm, [&] { return audio_of(*bot) < 16000; });
    bot.reset();
    std::printf("  %s: destroyed %d times during the connection, once during the agent's audio\n", name, iterations);
}

void test_order(const std::string &url, const char *wav, int iterations)
{
    std::printf("order\n");
    const std::vector<std::uint8_t> pcm = load_pcm(wav);
    destroy_while_running<ThisBot>("Client first, close() in the destructor", url, pcm, iterations);
    destroy_while_running<SharedBot>("Client first, handlers sharing their state", url, pcm, iterations);

    // A Client destroyed from inside its own handler: the library defers it, the running
    // handler completes (its captures alive), and no other handler runs.
    std::mutex m;
    std::condition_variable cv;
    bool done = false;
    int after = 0;
    std::optional<millis::Client> holder;
    holder.emplace(app_config(url));
    std::string capture(100, 'c');
    holder->on_ready([&, capture](std::string_view, std::string_view) {
        holder.reset();
        std::lock_guard<std::mutex> lock(m);
        done = capture.size() == 100;
        cv.notify_all();
    });
    holder->on_log([&](millis::LogLevel, std::string_view) {
        std::lock_guard<std::mutex> lock(m);
        if (done) after++;
    });
    holder->start_agent("demo-agent");
    {
        std::unique_lock<std::mutex> lock(m);
        CHECK_MSG(cv.wait_for(lock, 30s, [&] { return done; }), "no ready within 30 s");
    }
    std::this_thread::sleep_for(200ms);
    std::lock_guard<std::mutex> lock(m);
    CHECK(!holder.has_value());
    CHECK(after == 0);
}

int usage(const char *argv0)
{
    std::fprintf(stderr, "usage: %s api | conversation WS_URL USER_WAV | order WS_URL USER_WAV [ITERATIONS] | all WS_URL USER_WAV\n",
                 argv0);
    return 2;
}

}  // namespace

int main(int argc, char **argv)
{
    std::setvbuf(stdout, nullptr, _IOLBF, 0);
    if (argc < 2) return usage(argv[0]);
    const std::string section = argv[1];
    bool all = section == "all";
    if (section != "api" && argc < 4) return usage(argv[0]);
    try {
        if (section == "api" || all) test_api();
        if (section == "conversation" || all) test_conversation(argv[2], argv[3]);
        if (section == "order" || all) test_order(argv[2], argv[3], argc > 4 ? std::atoi(argv[4]) : 10);
        if (section != "api" && section != "conversation" && section != "order" && !all) return usage(argv[0]);
    } catch (const std::exception &e) {
        std::fprintf(stderr, "uncaught exception: %s\n", e.what());
        return 1;
    }
    std::printf("test_millis_hpp: %s: %d checks passed\n", section.c_str(), checks.load());
    return 0;
}
