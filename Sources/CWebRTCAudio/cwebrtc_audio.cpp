#include "cwebrtc_audio.h"

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <dlfcn.h>

#include <cstring>
#include <new>

// Exported by the module (aec_core.h is not installed): what the echo canceller really
// runs with, checked after the options are set.
extern "C" int WebRtcAec_extended_filter_enabled(AecCore *self);
extern "C" int WebRtcAec_delay_agnostic_enabled(AecCore *self);

namespace {
constexpr int kRate = 16000;
constexpr size_t kFrame = 160;

// The module's own key for an option, or nullptr. webrtc::Config keys its options by the
// address of a static inside an inline template (Config::identifier<T>). libmillis.so
// exports only millis_*, so its copy of that static stays private, and the module would
// look our options up under another key and silently keep its defaults (the extended
// filter off, delay-agnostic mode off, the experimental AGC on). So the keys are taken
// from the loaded module itself, whichever file it was loaded from (the wheel renames it).
void *moduleKey(const char *symbol) {
    Dl_info info;
    auto create = static_cast<webrtc::AudioProcessing *(*)(const webrtc::Config &)>(&webrtc::AudioProcessing::Create);
    if (!dladdr(reinterpret_cast<void *>(create), &info) || !info.dli_fname) return nullptr;
    void *module = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD);
    if (!module) return nullptr;
    void *key = dlsym(module, symbol);
    dlclose(module);
    return key;
}

template <typename T>
void *optionKey(const char *symbol) {
    static void *const key = moduleKey(symbol);
    return key;
}
}  // namespace

// A key the module does not have falls back to a private one: the option is then ignored,
// which cwebrtc_apm_create detects and refuses.
template <>
void *webrtc::Config::identifier<webrtc::ExtendedFilter>() {
    static char fallback;
    void *key = optionKey<webrtc::ExtendedFilter>("_ZZN6webrtc6Config10identifierINS_14ExtendedFilterEEEPvvE14id_placeholder");
    return key ? key : &fallback;
}

template <>
void *webrtc::Config::identifier<webrtc::DelayAgnostic>() {
    static char fallback;
    void *key = optionKey<webrtc::DelayAgnostic>("_ZZN6webrtc6Config10identifierINS_13DelayAgnosticEEEPvvE14id_placeholder");
    return key ? key : &fallback;
}

template <>
void *webrtc::Config::identifier<webrtc::ExperimentalAgc>() {
    static char fallback;
    void *key = optionKey<webrtc::ExperimentalAgc>("_ZZN6webrtc6Config10identifierINS_15ExperimentalAgcEEEPvvE14id_placeholder");
    return key ? key : &fallback;
}

struct cwebrtc_apm {
    webrtc::AudioProcessing *module = nullptr;
    webrtc::AudioFrame near, far;
    bool echo = false;
};

extern "C" cwebrtc_apm *cwebrtc_apm_create(int echo_cancellation, int noise_suppression, int auto_gain_control) {
    cwebrtc_apm *apm = new (std::nothrow) cwebrtc_apm;
    if (!apm) return nullptr;
    webrtc::Config config;
    // The normal filter, not the extended one: after EchoReference's alignment it covers
    // the room's tail, converges faster and costs a third less (bench/echo, webrtc-short
    // there). Delay-agnostic mode finds what is left of the delay and follows drift.
    config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(false));
    config.Set<webrtc::DelayAgnostic>(new webrtc::DelayAgnostic(true));
    // The experimental AGC steers the microphone's analog volume, which is not ours.
    config.Set<webrtc::ExperimentalAgc>(new webrtc::ExperimentalAgc(false));
    apm->module = webrtc::AudioProcessing::Create(config);
    if (!apm->module) {
        delete apm;
        return nullptr;
    }
    bool failed = false;
    if (echo_cancellation) {
        auto *aec = apm->module->echo_cancellation();
        failed |= aec->enable_drift_compensation(false) != 0;
        failed |= aec->set_suppression_level(webrtc::EchoCancellation::kHighSuppression) != 0;
        failed |= aec->Enable(true) != 0;
        // The options reached the module (see moduleKey), or the canceller is not the
        // one measured.
        AecCore *core = aec->aec_core();
        failed |= !core || WebRtcAec_delay_agnostic_enabled(core) != 1 || WebRtcAec_extended_filter_enabled(core) != 0;
        apm->echo = true;
    }
    if (noise_suppression) {
        failed |= apm->module->noise_suppression()->set_level(webrtc::NoiseSuppression::kHigh) != 0;
        failed |= apm->module->noise_suppression()->Enable(true) != 0;
    }
    if (auto_gain_control) {
        failed |= apm->module->gain_control()->set_mode(webrtc::GainControl::kAdaptiveDigital) != 0;
        failed |= apm->module->gain_control()->Enable(true) != 0;
    }
    if (failed) {
        cwebrtc_apm_destroy(apm);
        return nullptr;
    }
    for (webrtc::AudioFrame *frame : {&apm->near, &apm->far}) {
        frame->sample_rate_hz_ = kRate;
        frame->num_channels_ = 1;
        frame->samples_per_channel_ = kFrame;
    }
    return apm;
}

extern "C" void cwebrtc_apm_destroy(cwebrtc_apm *apm) {
    if (!apm) return;
    delete apm->module;
    delete apm;
}

extern "C" int cwebrtc_apm_process(cwebrtc_apm *apm, int16_t *frame, const int16_t *reference) {
    if (apm->echo && reference) {
        std::memcpy(apm->far.data_, reference, kFrame * sizeof(int16_t));
        if (int rc = apm->module->ProcessReverseStream(&apm->far)) return rc;
        // The reference comes aligned with the echo: no device delay left to report.
        apm->module->set_stream_delay_ms(0);
    }
    std::memcpy(apm->near.data_, frame, kFrame * sizeof(int16_t));
    if (int rc = apm->module->ProcessStream(&apm->near)) return rc;
    std::memcpy(frame, apm->near.data_, kFrame * sizeof(int16_t));
    return 0;
}
