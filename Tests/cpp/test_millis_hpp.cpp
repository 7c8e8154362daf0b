/*
 * test_millis_hpp.cpp — include/millis.hpp, the C++ wrapper, against the devserver.
 *
 * Usage: test_millis_hpp SECTION [WS_URL USER_WAV]
 *   api            no server: errors as millis::Error, closed and moved-from objects
 *                  (poll and run throw, never crash), the queue every client keeps,
 *                  send_audio's false.
 *   conversation   the devserver's two-turn conversation in application audio mode:
 *                  every handler, all on the thread that polls; nothing lost before the
 *                  first poll; a handler that replaces itself; a handler's exception out
 *                  of poll(); an unreachable server read with events() (no handler runs)
 *                  and dispatch(), then with run_for().
 *   order          destruction whatever the declaration order: objects whose Client is
 *                  declared FIRST and whose handlers use `this` (a mutex, a condition
 *                  variable and a vector declared after it), with no close() in any
 *                  destructor, destroyed while the conversation goes on (during the
 *                  connection, and while the agent's audio streams in), their handlers
 *                  run by poll() on the main thread or by run() on a thread of theirs;
 *                  close() from inside a handler; a Client destroyed from inside its own
 *                  handler. Meant for ASan and TSan too.
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
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

std::atomic<int> checks{0};

// Failures may happen on a thread of the test's own: flush and _exit, so that no
// destructor of a static races it.
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

// The time left until `when`, for poll(): at least 0.
std::chrono::milliseconds until(std::chrono::steady_clock::time_point when)
{
    auto left = std::chrono::ceil<std::chrono::milliseconds>(when - std::chrono::steady_clock::now());
    return std::max(left, 0ms);
}

enum class Polling { here, elsewhere };

// Streams the user's voice in real time (20 ms chunks on an absolute clock), then
// silence, while keep_going() says so; returns the bytes accepted. Between chunks it
// runs the client's handlers (client.poll), unless another thread does.
template <class KeepGoing>
std::size_t stream_audio(millis::Client &client, const std::vector<std::uint8_t> &pcm, KeepGoing keep_going,
                         Polling polling = Polling::here, std::chrono::seconds limit = 90s)
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
        if (polling == Polling::elsewhere) std::this_thread::sleep_until(next);
        while (polling == Polling::here && std::chrono::steady_clock::now() < next) client.poll(until(next));
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
    // The queue is what runs the handlers: none is refused, saying why.
    what = EXPECT_ERROR(cfg.set_event_queue(0), millis::Status::invalid_argument);
    CHECK_MSG(contains(what, "handlers") && contains(what, "65536"), what);
    cfg.set_endpoint(std::nullopt).set_ca_file(std::nullopt).set_audio_devices(std::nullopt, "default");
    cfg.set_echo_canceller(millis::EchoCanceller::speex).set_echo_canceller(millis::EchoCanceller::webrtc);
    EXPECT_ERROR(cfg.set_echo_canceller(static_cast<millis::EchoCanceller>(5)), millis::Status::invalid_argument);
    what = EXPECT_ERROR(cfg.audio_test(500), millis::Status::invalid_argument);
    CHECK_MSG(contains(what, "1000 to 30000"), what);

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

    // Every client keeps a queue (nothing set it): the descriptor, nothing queued yet,
    // and run() refuses to wait for the close of a conversation that was never started.
    CHECK(a.event_fd() >= 0);
    CHECK(!a.next_event(0ms));
    CHECK(a.poll(0ms) == 0);
    what = EXPECT_ERROR(a.run(), millis::Status::invalid_state);
    CHECK_MSG(contains(what, "start()"), what);
    EXPECT_ERROR(a.run_for(10ms), millis::Status::invalid_state);

    // A config whose queue was turned off through its C handle: the Client says why it
    // cannot work instead of never running a handler.
    {
        millis::Config off = app_config("ws://127.0.0.1:1/millis");
        CHECK(millis_config_set_event_queue(off.native_handle(), 0) == MILLIS_OK);
        what = EXPECT_ERROR(millis::Client{off}, millis::Status::invalid_argument);
        CHECK_MSG(contains(what, "event queue"), what);
    }

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
    // Running the handlers of a moved-from client throws instead of crashing.
    EXPECT_ERROR(a.poll(0ms), millis::Status::invalid_state);
    EXPECT_ERROR(a.run(), millis::Status::invalid_state);
    EXPECT_ERROR(a.run_for(1s), millis::Status::invalid_state);
    EXPECT_ERROR(a.next_event(0ms), millis::Status::invalid_state);
    EXPECT_ERROR(for (const millis::Event &ev : a.events(0ms)) (void)ev, millis::Status::invalid_state);
    CHECK(a.event_fd() == -1);
    CHECK(a.connection_state() == millis::ConnectionState::idle);  // getters: the neutral values
    CHECK(a.stats_json().empty());
    b.close();
    b.close();  // idempotent
    CHECK(!b.is_open());
    EXPECT_ERROR(b.start_agent("demo-agent"), millis::Status::invalid_state);
    EXPECT_ERROR(b.poll(0ms), millis::Status::invalid_state);

    // Assigning over an open client closes it first.
    millis::Client c(moved), d(moved);
    c = std::move(d);
    CHECK(c.is_open() && !d.is_open());
}

// ------------------------------------------------------------------------------------
// conversation
// ------------------------------------------------------------------------------------

// What the handlers saw. They run on this thread (inside client.poll), so no lock is
// needed; `threads` holds every thread a handler ran on.
struct Seen {
    std::vector<std::string> order;  // event names, in order
    std::vector<std::string> finals, finals_by;
    int partials = 0, response_finals = 0, latencies = 0, functions = 0, closes = 0, close_code = 0;
    std::string session_id, close_reason, function_params, errors;
    std::vector<millis::AgentState> states;
    std::size_t audio_bytes = 0, odd_audio = 0;
    millis_analyser *agent = nullptr, *user = nullptr;
    std::string stream_json;
    std::set<std::thread::id> threads;

    void add(std::string name)
    {
        threads.insert(std::this_thread::get_id());
        order.push_back(std::move(name));
    }
};

// Polls until `done` or the hang guard; returns false on the guard.
template <class Done>
bool poll_until(millis::Client &client, Done done, std::chrono::seconds guard = 60s)
{
    const auto deadline = std::chrono::steady_clock::now() + guard;
    while (!done()) {
        if (std::chrono::steady_clock::now() >= deadline) return false;
        client.poll(100ms);
    }
    return true;
}

void test_conversation(const std::string &url, const char *wav)
{
    std::printf("conversation\n");
    const std::vector<std::uint8_t> pcm = load_pcm(wav);
    Seen seen;

    millis::Client client(app_config(url));
    CHECK(client.event_fd() >= 0);

    client.on_open([&seen] {
        seen.add("open");
        throw std::runtime_error("deliberate");  // leaves the poll() that ran it
    });
    client.on_ready([&seen](std::string_view sid, std::string_view payload) {
        seen.add("ready");
        seen.session_id = std::string(sid);
        if (payload.empty()) seen.errors += "empty ready payload; ";
    });
    // The first transcript handler replaces itself at the first final transcript, then
    // goes on using its captures (the tag): they must still be alive.
    auto second = [&seen](std::string_view text, bool is_final) {
        seen.threads.insert(std::this_thread::get_id());
        if (!is_final) return void(seen.partials++);
        seen.finals.emplace_back(text);
        seen.finals_by.emplace_back("second");
    };
    std::string tag = std::string(64, 'x') + " first";  // heap-allocated: ASan sees a use after free
    client.on_transcript([&seen, &client, second, tag](std::string_view text, bool is_final) {
        seen.threads.insert(std::this_thread::get_id());
        if (!is_final) return void(seen.partials++);
        client.on_transcript(second);
        seen.finals.emplace_back(text);
        seen.finals_by.push_back(tag.substr(65));
    });
    client.on_response_text([&seen](std::string_view text, bool is_final) {
              seen.threads.insert(std::this_thread::get_id());
              if (is_final && !text.empty()) seen.response_finals++;
          })
        .on_function([&seen](std::string_view, std::string_view name, std::string_view params) {
            seen.threads.insert(std::this_thread::get_id());
            seen.functions++;
            if (name == "get_weather") seen.function_params = std::string(params);
        })
        .on_latency([&seen](double ms) {
            seen.threads.insert(std::this_thread::get_id());
            if (ms > 0) seen.latencies++;
        })
        .on_agent_state([&seen](millis::AgentState s) {
            seen.threads.insert(std::this_thread::get_id());
            seen.states.push_back(s);
        })
        .on_audio([&seen](millis::ByteView audio) {
            seen.threads.insert(std::this_thread::get_id());
            seen.audio_bytes += audio.size();
            if (audio.size() % 2 != 0 || audio.empty()) seen.odd_audio++;
        })
        .on_analyzer([&seen](millis::Analyser agent) {
            seen.threads.insert(std::this_thread::get_id());
            seen.agent = agent.native_handle();
        })
        .on_user_audio_ready([&seen](millis::Analyser user, std::string_view stream) {
            seen.threads.insert(std::this_thread::get_id());
            seen.user = user.native_handle();
            seen.stream_json = std::string(stream);
        })
        .on_session_ended([&seen] { seen.add("session_ended"); })
        .on_error([&seen](millis::Status st, std::string_view message) {
            seen.threads.insert(std::this_thread::get_id());
            seen.errors += std::string(millis::to_string(st)) + ": " + std::string(message) + "; ";
        })
        .on_close([&seen](int code, std::string_view reason) {
            seen.add("close");
            seen.closes++;
            seen.close_code = code;
            seen.close_reason = std::string(reason);
        });
    // A handler set and removed again is never called.
    client.on_turn([&seen](std::string_view) { seen.add("turn (removed handler)"); }).on_turn(nullptr);

    client.start_agent("demo-agent");
    std::string what = EXPECT_ERROR(client.start_agent("demo-agent"), millis::Status::invalid_state);
    CHECK_MSG(what.size() > std::strlen("invalid state for this call: "), what);

    // Nothing is lost before the first poll: wait (without polling) until the session is
    // ready; its open and ready events are queued, and no handler has run.
    const auto guard = std::chrono::steady_clock::now() + 30s;
    while (client.connection_state() != millis::ConnectionState::ready) {
        CHECK_MSG(std::chrono::steady_clock::now() < guard, "not ready within 30 s");
        std::this_thread::sleep_for(10ms);
    }
    CHECK(seen.order.empty());
    // The open handler throws: the exception leaves poll(), and the events after it stay queued.
    try {
        client.poll(0ms);
        CHECK_MSG(false, "the open handler's exception did not leave poll()");
    } catch (const std::runtime_error &e) {
        CHECK_MSG(std::string(e.what()) == "deliberate", e.what());
    }
    CHECK(seen.order.size() == 1 && seen.order[0] == "open");
    CHECK(client.poll(0ms) >= 1);  // ready, at least
    CHECK(seen.order.size() >= 2 && seen.order[1] == "ready");

    std::size_t accepted = stream_audio(client, pcm, [&] { return seen.closes == 0 && seen.finals.size() < 2; });
    CHECK_MSG(poll_until(client, [&] { return seen.closes > 0; }), "no close within 60 s");
    std::printf("  %zu audio bytes accepted\n", accepted);
    CHECK(accepted > pcm.size() / 2);

    CHECK_MSG(seen.errors.empty(), seen.errors);
    CHECK(seen.order.size() >= 4);
    CHECK(seen.order.front() == "open" && seen.order[1] == "ready");
    CHECK(seen.order[seen.order.size() - 2] == "session_ended" && seen.order.back() == "close");
    CHECK(seen.closes == 1 && seen.close_code == 1000);
    CHECK(!seen.session_id.empty());
    CHECK(seen.finals.size() == 2);
    for (std::size_t i = 0; i < seen.finals.size() && i < 2; i++)
        CHECK_MSG(words(seen.finals[i]) == words(expected_finals[i]), seen.finals[i]);
    CHECK(seen.finals_by.size() == 2 && seen.finals_by[0] == "first" && seen.finals_by[1] == "second");
    CHECK(seen.partials > 0);
    CHECK(seen.response_finals >= 1);
    CHECK(seen.functions >= 1);
    CHECK_MSG(contains(seen.function_params, "Paris"), seen.function_params);
    CHECK(seen.latencies >= 1);
    CHECK(std::find(seen.states.begin(), seen.states.end(), millis::AgentState::answer) != seen.states.end());
    CHECK(seen.states.back() == millis::AgentState::idle);
    CHECK(seen.audio_bytes > 0 && seen.odd_audio == 0);
    CHECK(seen.agent != nullptr && seen.agent == client.agent_analyser().native_handle());
    CHECK(seen.user != nullptr && seen.user == client.user_analyser().native_handle());
    CHECK_MSG(contains(seen.stream_json, "\"application\""), seen.stream_json);
    // Every handler ran here, on the thread that called poll().
    CHECK(seen.threads.size() == 1 && *seen.threads.begin() == std::this_thread::get_id());
    CHECK(client.session_id() && *client.session_id() == seen.session_id);
    CHECK(client.agent_analyser().fft_size() == 2048);
    CHECK(client.agent_analyser().byte_frequency_data().size() == 1024);
    CHECK(client.agent_analyser().float_time_domain_data().size() == 2048);
    // The close was dispatched: nothing is queued, and run() has no conversation to wait for.
    CHECK(client.poll(0ms) == 0);
    pollfd p{client.event_fd(), POLLIN, 0};
    CHECK(poll(&p, 1, 0) == 0);
    EXPECT_ERROR(client.run(), millis::Status::invalid_state);

    // An unreachable server, read from the queue by the program: events() runs no
    // handler by itself; dispatch(ev) runs the one of the event it is given.
    millis::Config bad = app_config("ws://127.0.0.1:1/millis");
    bad.set_event_queue(1u << 20).set_reconnect(0, 250, 8000);
    millis::Client lost(bad);
    std::vector<millis::Status> errors;
    int closes = 0;
    lost.on_error([&errors](millis::Status st, std::string_view) { errors.push_back(st); })
        .on_close([&closes](int, std::string_view) { closes++; });
    lost.start_agent("demo-agent");
    std::optional<millis::Status> status;
    int code = 0;
    for (const millis::Event &ev : lost.events(30s)) {
        if (ev.kind() == millis::EventKind::error) {
            status = ev.status();
            CHECK(errors.empty());
            lost.dispatch(ev);
        }
        if (ev.kind() == millis::EventKind::close) code = ev.code();
    }
    CHECK(status == millis::Status::connect);
    CHECK(code == 1006);
    CHECK(errors.size() == 1 && errors.front() == millis::Status::connect);
    CHECK(closes == 0);  // the close event was taken, never dispatched

    // The same through run_for(): every handler, and the close code.
    lost.start_agent("demo-agent");
    std::optional<int> ended = lost.run_for(30s);
    CHECK(ended == 1006);
    CHECK(errors.size() == 2 && errors.back() == millis::Status::connect);
    CHECK(closes == 1);
}

// ------------------------------------------------------------------------------------
// order: destruction whatever the declaration order
// ------------------------------------------------------------------------------------

// Set by the destructor of the member declared last (destroyed first), which then
// holds the rest of the object's destruction for a while: a handler that runs in that
// window runs while the members it uses are going. With handlers on a library thread
// (this header's first design) some always ran there; now none may.
std::atomic<bool> members_going{false};
std::atomic<int> late_handlers{0}, foreign_handlers{0};
// True on the threads that run a client's handlers (poll or run): a handler elsewhere
// ran on a thread of the library.
thread_local bool polling_thread = false;

void handler_ran()
{
    if (members_going) late_handlers++;
    if (!polling_thread) foreign_handlers++;
}

struct Tripwire {
    ~Tripwire()
    {
        members_going = true;
        std::this_thread::sleep_for(60ms);  // three of the agent's audio frames
    }
};

// The Client FIRST, the members its handlers use (through `this`) after it, and no
// destructor: C++ destroys the vector, the condition variable and the mutex before the
// Client. The main thread runs the handlers (client.poll).
struct PolledBot {
    millis::Client client;
    std::mutex m;
    std::condition_variable cv;
    std::vector<std::string> seen;
    std::size_t audio = 0;
    Tripwire tripwire;

    explicit PolledBot(const millis::Config &cfg) : client(cfg)
    {
        client.on_log([this](millis::LogLevel, std::string_view line) { note(line); })
            .on_open([this] { note("open"); })
            .on_ready([this](std::string_view, std::string_view) { note("ready"); })
            .on_analyzer([this](millis::Analyser) { note("analyzer"); })
            .on_transcript([this](std::string_view text, bool) { note(text); })
            .on_agent_state([this](millis::AgentState s) { note(millis::to_string(s)); })
            .on_audio([this](millis::ByteView a) {
                handler_ran();
                std::lock_guard<std::mutex> lock(m);
                audio += a.size();
                seen.emplace_back("audio");
                cv.notify_all();
            });
    }

    void note(std::string_view what)
    {
        handler_ran();
        std::lock_guard<std::mutex> lock(m);
        seen.emplace_back(what);
        cv.notify_all();
    }
    std::size_t audio_bytes()
    {
        std::lock_guard<std::mutex> lock(m);
        return audio;
    }
};

// The same with a thread of its own running client.run(), declared last. Its destructor
// stops the conversation and joins the thread (the program's own thread, the one rule);
// it does not close the client.
struct ThreadBot : PolledBot {
    int code = 0;
    std::thread runner;

    explicit ThreadBot(const millis::Config &cfg) : PolledBot(cfg) {}
    void start()
    {
        client.start_agent("demo-agent");
        runner = std::thread([this] {
            polling_thread = true;
            code = client.run();
        });
    }
    ~ThreadBot()
    {
        client.stop();
        runner.join();
    }
};

template <class Bot>
void destroy_while_running(const char *name, const std::string &url, const std::vector<std::uint8_t> &pcm,
                           int iterations)
{
    constexpr bool threaded = std::is_same_v<Bot, ThreadBot>;
    millis::Config cfg = app_config(url);
    cfg.set_log_level(millis::LogLevel::debug);  // a log line per step: events all along the connection
    auto start = [](Bot &bot) {
        if constexpr (threaded) bot.start();
        else bot.client.start_agent("demo-agent");
    };
    // During the connection: destroyed at a different moment each time (0 to 190 ms after start).
    for (int i = 0; i < iterations; i++) {
        auto bot = std::make_unique<Bot>(cfg);
        start(*bot);
        const auto when = std::chrono::steady_clock::now() + std::chrono::milliseconds((i * 37) % 200);
        if constexpr (threaded) std::this_thread::sleep_until(when);
        else while (std::chrono::steady_clock::now() < when) bot->client.poll(until(when));
        bot.reset();
        CHECK(late_handlers == 0 && foreign_handlers == 0);
        members_going = false;
    }
    // While the agent's audio streams in: 50 events a second.
    auto bot = std::make_unique<Bot>(cfg);
    start(*bot);
    stream_audio(bot->client, pcm, [&] { return bot->audio_bytes() < 16000; },
                 threaded ? Polling::elsewhere : Polling::here);
    bot.reset();
    CHECK_MSG(late_handlers == 0, std::to_string(late_handlers) + " handlers ran while the members were destroyed");
    CHECK_MSG(foreign_handlers == 0, std::to_string(foreign_handlers) + " handlers ran on a thread of the library");
    members_going = false;
    std::printf("  %s: destroyed %d times during the connection, once during the agent's audio\n", name, iterations);
}

void test_order(const std::string &url, const char *wav, int iterations)
{
    std::printf("order\n");
    const std::vector<std::uint8_t> pcm = load_pcm(wav);
    polling_thread = true;
    destroy_while_running<PolledBot>("Client first, handlers run by poll()", url, pcm, iterations);
    destroy_while_running<ThreadBot>("Client first, handlers run by run() on a thread", url, pcm, iterations);

    // close() from inside a handler: the handler completes (its arguments and captures
    // alive), nothing more is dispatched, and the client then says it is closed.
    {
        millis::Client client(app_config(url));
        std::string capture(100, 'c'), session;
        int after = 0;
        bool closed = false;
        client.on_ready([&, capture](std::string_view sid, std::string_view) {
            client.close();
            session = std::string(sid);  // lent until the handler returns
            closed = capture.size() == 100 && !client.is_open();
        });
        client.on_log([&](millis::LogLevel, std::string_view) { after += closed ? 1 : 0; })
            .on_agent_state([&](millis::AgentState) { after += closed ? 1 : 0; });
        client.start_agent("demo-agent");
        // run() comes back when a handler closes the client (with 1000).
        CHECK(client.run() == 1000);
        CHECK(closed && !session.empty() && after == 0);
        CHECK(!client.is_open() && client.event_fd() == -1);
        EXPECT_ERROR(client.poll(0ms), millis::Status::invalid_state);
        EXPECT_ERROR(client.run(), millis::Status::invalid_state);
    }

    // A Client destroyed from inside its own handler, while poll() of it runs: the poll
    // ends the client once the handler returns, without touching the Client object.
    std::optional<millis::Client> holder;
    holder.emplace(app_config(url));
    std::string capture(100, 'c');
    bool done = false;
    int after = 0;
    holder->on_ready([&, capture](std::string_view, std::string_view) {
        holder.reset();
        done = capture.size() == 100;
    });
    holder->on_log([&](millis::LogLevel, std::string_view) { after += done ? 1 : 0; });
    holder->start_agent("demo-agent");
    const auto guard = std::chrono::steady_clock::now() + 30s;
    while (holder && !done) {
        CHECK_MSG(std::chrono::steady_clock::now() < guard, "no ready within 30 s");
        holder->poll(100ms);
    }
    CHECK(done && !holder.has_value());
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
