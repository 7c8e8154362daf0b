// Runs one echo canceller configuration over a recorded pair (what the speaker played,
// what the microphone heard), 10 ms frames at 16 kHz, and writes the processed
// microphone signal. Measures the thread's CPU time for the processing alone and the
// heap the canceller's state takes. Driven by bench/echo/echo_bench.py (bench/README.md,
// "Echo cancellation").
//
//   echo_cancellers MODE REFERENCE MIC OUT [--ns 0|1] [--agc 0|1]
//
// REFERENCE, MIC and OUT are raw PCM16 mono 16 kHz files; REFERENCE is aligned to the
// echo as the library's EchoReference aligns it (the devices' bulk delay removed).
// Prints one JSON line: {"mode", "seconds", "cpu_ms_per_s", "state_bytes"}.
//
// Modes:
//   speex         speexdsp's MDF filter (120 ms tail) and its preprocessor with the echo
//                 state (residual echo suppression): what VoiceProcessor.swift ships.
//   speex-300     the same with a 300 ms tail.
//   webrtc        the WebRTC audio processing module's AEC (delay-agnostic mode, high
//                 suppression), its noise suppressor (high) and adaptive digital AGC:
//                 what VoiceProcessor.swift ships.
//   webrtc-extended  the same with the extended filter (what PulseAudio's
//                 module-echo-cancel runs): slower to converge here, and dearer.
//   webrtc-moderate, webrtc-low  the same with moderate or low suppression: less
//                 taken from the user's voice in double-talk, more echo left.
//   webrtc-aecm   the module's mobile echo canceller (AECM, speakerphone), its noise
//                 suppressor and AGC: the cheap one.
//   webrtc+speex  the module's AEC and suppressors, then speexdsp's preprocessor
//                 without an echo state (its noise suppressor on what is left).
#include <malloc.h>
#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>
#include <time.h>
#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

constexpr int kRate = 16000;
constexpr int kFrame = 160;

std::vector<int16_t> readRaw(const char *path) {
    std::vector<int16_t> samples;
    FILE *f = std::fopen(path, "rb");
    if (!f) {
        std::fprintf(stderr, "echo_cancellers: cannot open %s\n", path);
        std::exit(2);
    }
    int16_t buffer[4096];
    size_t n;
    while ((n = std::fread(buffer, 2, 4096, f)) > 0) samples.insert(samples.end(), buffer, buffer + n);
    std::fclose(f);
    return samples;
}

double threadCPUSeconds() {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

size_t heapInUse() { return mallinfo2().uordblks; }

// One configuration: a frame of microphone audio in place, given the frame the speaker
// played at the same moment.
struct Canceller {
    virtual ~Canceller() = default;
    virtual void process(int16_t *mic, const int16_t *reference) = 0;
};

struct Speex : Canceller {
    SpeexEchoState *echo = nullptr;
    SpeexPreprocessState *pre = nullptr;
    int16_t out[kFrame];

    Speex(int tailMilliseconds, bool ns, bool agc) {
        int rate = kRate;
        echo = speex_echo_state_init(kFrame, tailMilliseconds * kRate / 1000);
        speex_echo_ctl(echo, SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
        pre = speex_preprocess_state_init(kFrame, kRate);
        // As VoiceProcessor: the denoiser carries the residual echo suppression, so it
        // is on; with noise suppression off its noise floor is left alone.
        int on = 1, off = 0;
        speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
        if (!ns) speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_NOISE_SUPPRESS, &off);
        int agcOn = agc ? 1 : 0;
        speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_AGC, &agcOn);
        if (agc) {
            int maxGain = 20;
            speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_AGC_MAX_GAIN, &maxGain);
        }
        speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_ECHO_STATE, echo);
    }
    ~Speex() override {
        speex_preprocess_state_destroy(pre);
        speex_echo_state_destroy(echo);
    }
    void process(int16_t *mic, const int16_t *reference) override {
        speex_echo_cancellation(echo, mic, reference, out);
        speex_preprocess_run(pre, out);
        std::memcpy(mic, out, sizeof out);
    }
};

struct WebRTC : Canceller {
    webrtc::AudioProcessing *apm = nullptr;
    webrtc::AudioFrame near, far;
    SpeexPreprocessState *pre = nullptr;

    WebRTC(bool mobile, bool ns, bool agc, bool speexAfter,
           webrtc::EchoCancellation::SuppressionLevel level = webrtc::EchoCancellation::kHighSuppression,
           bool extended = false) {
        webrtc::Config config;
        config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(extended));
        config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(true));
        // The analog AGC would steer a microphone volume we do not own.
        config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
        apm = webrtc::AudioProcessing::Create(config);
        if (mobile) {
            apm->echo_control_mobile()->set_routing_mode(webrtc::EchoControlMobile::kSpeakerphone);
            apm->echo_control_mobile()->Enable(true);
        } else {
            apm->echo_cancellation()->enable_drift_compensation(false);
            apm->echo_cancellation()->set_suppression_level(level);
            apm->echo_cancellation()->Enable(true);
        }
        if (ns) {
            apm->noise_suppression()->set_level(webrtc::NoiseSuppression::kHigh);
            apm->noise_suppression()->Enable(true);
        }
        if (agc) {
            apm->gain_control()->set_mode(webrtc::GainControl::kAdaptiveDigital);
            apm->gain_control()->Enable(true);
        }
        for (webrtc::AudioFrame *frame : {&near, &far}) {
            frame->sample_rate_hz_ = kRate;
            frame->num_channels_ = 1;
            frame->samples_per_channel_ = kFrame;
        }
        if (speexAfter) {
            pre = speex_preprocess_state_init(kFrame, kRate);
            int on = 1;
            speex_preprocess_ctl(pre, SPEEX_PREPROCESS_SET_DENOISE, &on);
        }
    }
    ~WebRTC() override {
        delete apm;
        if (pre) speex_preprocess_state_destroy(pre);
    }
    void process(int16_t *mic, const int16_t *reference) override {
        std::memcpy(far.data_, reference, kFrame * 2);
        apm->ProcessReverseStream(&far);
        // The reference is already aligned with the echo: no system delay to report.
        apm->set_stream_delay_ms(0);
        std::memcpy(near.data_, mic, kFrame * 2);
        apm->ProcessStream(&near);
        std::memcpy(mic, near.data_, kFrame * 2);
        if (pre) speex_preprocess_run(pre, mic);
    }
};

}  // namespace

int main(int argc, char **argv) {
    if (argc < 5) {
        std::fprintf(stderr, "usage: echo_cancellers MODE REFERENCE MIC OUT [--ns 0|1] [--agc 0|1]\n");
        return 2;
    }
    std::string mode = argv[1];
    bool ns = true, agc = false;
    for (int i = 5; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--ns")) ns = std::atoi(argv[i + 1]) != 0;
        else if (!std::strcmp(argv[i], "--agc")) agc = std::atoi(argv[i + 1]) != 0;
        else {
            std::fprintf(stderr, "echo_cancellers: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    std::vector<int16_t> reference = readRaw(argv[2]), mic = readRaw(argv[3]);
    size_t frames = std::min(reference.size(), mic.size()) / kFrame;

    size_t heapBefore = heapInUse();
    Canceller *canceller = nullptr;
    if (mode == "speex") canceller = new Speex(120, ns, agc);
    else if (mode == "speex-300") canceller = new Speex(300, ns, agc);
    else if (mode == "webrtc") canceller = new WebRTC(false, ns, agc, false);
    else if (mode == "webrtc-moderate")
        canceller = new WebRTC(false, ns, agc, false, webrtc::EchoCancellation::kModerateSuppression);
    else if (mode == "webrtc-low") canceller = new WebRTC(false, ns, agc, false, webrtc::EchoCancellation::kLowSuppression);
    else if (mode == "webrtc-extended")
        canceller = new WebRTC(false, ns, agc, false, webrtc::EchoCancellation::kHighSuppression, true);
    else if (mode == "webrtc-aecm") canceller = new WebRTC(true, ns, agc, false);
    else if (mode == "webrtc+speex") canceller = new WebRTC(false, ns, agc, true);
    else {
        std::fprintf(stderr, "echo_cancellers: unknown mode %s\n", mode.c_str());
        return 2;
    }
    size_t stateBytes = heapInUse() - heapBefore;

    double start = threadCPUSeconds();
    for (size_t f = 0; f < frames; f++) canceller->process(&mic[f * kFrame], &reference[f * kFrame]);
    double cpu = threadCPUSeconds() - start;
    delete canceller;

    FILE *out = std::fopen(argv[4], "wb");
    if (!out || std::fwrite(mic.data(), 2, frames * kFrame, out) != frames * kFrame) {
        std::fprintf(stderr, "echo_cancellers: cannot write %s\n", argv[4]);
        return 2;
    }
    std::fclose(out);
    double seconds = double(frames * kFrame) / kRate;
    std::printf("{\"mode\": \"%s\", \"seconds\": %.2f, \"cpu_ms_per_s\": %.3f, \"state_bytes\": %zu}\n",
                mode.c_str(), seconds, cpu * 1000 / seconds, stateBytes);
    return 0;
}
