#include "cwebrtc_audio.h"

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

#include <cstring>
#include <new>

namespace {
constexpr int kRate = 16000;
constexpr size_t kFrame = 160;
}  // namespace

struct cwebrtc_apm {
    webrtc::AudioProcessing *module = nullptr;
    webrtc::AudioFrame near, far;
    bool echo = false;
};

extern "C" cwebrtc_apm *cwebrtc_apm_create(int echo_cancellation, int noise_suppression, int auto_gain_control) {
    cwebrtc_apm *apm = new (std::nothrow) cwebrtc_apm;
    if (!apm) return nullptr;
    webrtc::Config config;
    // The extended filter covers a room's reverberation; delay-agnostic mode finds what
    // is left of the delay after EchoReference's alignment, and follows drift.
    config.Set<webrtc::ExtendedFilter>(new webrtc::ExtendedFilter(true));
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
