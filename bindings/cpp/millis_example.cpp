/*
 * millis_example.cpp — one spoken conversation with a Millis voice agent, in C++.
 *
 * The user's voice comes from a WAV file and the agent's voice goes to another (or,
 * without --input and --output, from the microphone and to the speaker: ALSA's
 * default devices). Every event is printed as it arrives. The conversation ends when
 * the agent ends it, or on Ctrl-C.
 *
 *   c++ -std=c++17 millis_example.cpp $(pkg-config --cflags --libs millis) -o millis_example
 *   MILLIS_PUBLIC_KEY=test-public-key ./millis_example --endpoint ws://127.0.0.1:8765/millis \
 *       --agent-id demo-agent --input ../audio/user.wav --output agent.wav
 *
 * The handlers run on this program's main thread, inside client.poll(): never on a
 * thread of the library, so what they use needs no lock and may be declared in any
 * order around the client.
 */
#include <millis.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

volatile std::sig_atomic_t interrupted = 0;
void on_sigint(int) { interrupted = 1; }

int usage(const char *argv0, const char *arg)
{
    bool help = arg != nullptr && std::strcmp(arg, "--help") == 0;
    std::fprintf(help ? stdout : stderr,
                 "usage: %s [--endpoint URL] [--agent-id ID] [--input user.wav] [--output agent.wav]\n"
                 "The public key comes from $MILLIS_PUBLIC_KEY.\n",
                 argv0);
    return help ? 0 : 1;
}

const char *final_or_partial(bool is_final) { return is_final ? "final" : "partial"; }

}  // namespace

int main(int argc, char **argv)
{
    std::string endpoint = "ws://127.0.0.1:8765/millis", agent_id = "demo-agent", input, output;
    const char *key = std::getenv("MILLIS_PUBLIC_KEY");
    int i = 1;
    for (; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--endpoint") == 0) endpoint = argv[i + 1];
        else if (std::strcmp(argv[i], "--agent-id") == 0) agent_id = argv[i + 1];
        else if (std::strcmp(argv[i], "--input") == 0) input = argv[i + 1];
        else if (std::strcmp(argv[i], "--output") == 0) output = argv[i + 1];
        else return usage(argv[0], argv[i]);
    }
    if (i < argc) return usage(argv[0], argv[i]);  // --help, or an option without its value
    std::setvbuf(stdout, nullptr, _IOLBF, 0);        // each line at once, even into a pipe

    try {
        // 1. A config: each setter checks its argument and throws millis::Error when it is
        //    refused. Device audio: the library records and plays (audio files stand in
        //    for the devices).
        millis::Config config;
        config.set_public_key(key != nullptr ? key : "test-public-key")
            .set_endpoint(endpoint)
            .set_audio_mode(millis::AudioMode::device);
        if (!input.empty()) config.set_audio_input_file(input);
        if (!output.empty()) config.set_audio_output_file(output);

        // 2. The client (it copies the config) and its handlers. Events are queued from
        //    here on; the handlers run when this thread polls (step 4).
        millis::Client client(config);
        int code = -1;  // the close handler's
        client.on_open([] { std::printf("onopen\n"); })
            .on_ready([](std::string_view session_id, std::string_view payload) {
                std::printf("onready session_id=\"%.*s\" payload=%.*s\n", int(session_id.size()), session_id.data(),
                            int(payload.size()), payload.data());
            })
            .on_transcript([](std::string_view text, bool is_final) {
                std::printf("ontranscript (%s) \"%.*s\"\n", final_or_partial(is_final), int(text.size()), text.data());
            })
            .on_response_text([](std::string_view text, bool is_final) {
                std::printf("onresponsetext (%s) \"%.*s\"\n", final_or_partial(is_final), int(text.size()),
                            text.data());
            })
            .on_function([](std::string_view, std::string_view name, std::string_view params) {
                std::printf("onfunction %.*s %.*s\n", int(name.size()), name.data(), int(params.size()),
                            params.data());
            })
            .on_latency([](double ms) { std::printf("onlatency %.1f ms\n", ms); })
            .on_agent_state([](millis::AgentState state) {
                std::printf("onagentstate %s\n", std::string(millis::to_string(state)).c_str());
            })
            .on_session_ended([] { std::printf("onsessionended\n"); })
            .on_error([](millis::Status status, std::string_view message) {
                std::printf("onerror %s: %.*s\n", std::string(millis::to_string(status)).c_str(),
                            int(message.size()), message.data());
            })
            .on_close([&code](int close_code, std::string_view reason) {
                std::printf("onclose %d \"%.*s\"\n", close_code, int(reason.size()), reason.data());
                code = close_code;  // once per conversation, last
            });

        // 3. Start. It returns at once (it throws only for what it can tell at once: a
        //    device or a file that does not open); the events follow.
        std::signal(SIGINT, on_sigint);
        client.start_agent(agent_id);

        // 4. Run the handlers until the close, looking at Ctrl-C at least every 100 ms: it
        //    stops the conversation (the library closes the connection with 1000, then
        //    the close handler runs). client.run() would do without the Ctrl-C.
        bool stopped = false;
        while (code < 0) {
            client.poll(std::chrono::milliseconds(100));  // every event queued, or none in 100 ms
            if (interrupted && !stopped) {
                std::printf("Ctrl-C: stopping\n");
                client.stop();
                stopped = true;
            }
        }

        // 5. The client still answers questions.
        std::printf("session id: %s\nstats: %s\n", client.session_id().value_or("(none)").c_str(),
                    client.stats_json().c_str());

        // 6. Close (the destructor would too): the output file is complete.
        client.close();
        if (!output.empty()) std::printf("the agent's voice: %s\n", output.c_str());
        return code == 1000 ? 0 : 1;
    } catch (const millis::Error &e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
