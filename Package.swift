// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "libmillis",
    products: [
        // libmillis.so: the C ABI (CMillis) over the engine (MillisCore).
        .library(name: "millis", type: .dynamic, targets: ["CMillis"]),
    ],
    targets: [
        // Typed wrappers over libcurl's variadic setters, which Swift cannot call.
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        // Linux calls Swift's Glibc module lacks: epoll, eventfd, getrandom.
        .target(name: "CSystem"),
        // ALSA (devices) and speexdsp (resampler, echo canceller, preprocessor). ALSA is
        // not linked but loaded with dlopen on first device use (caudio.h says why).
        .target(
            name: "CAudio",
            linkerSettings: [.linkedLibrary("dl"), .linkedLibrary("speexdsp")]
        ),
        // The WebRTC audio processing module (echo canceller, noise suppressor, gain
        // control), C++ behind C functions. Linked as a shared library (Debian's
        // static archive is not position-independent); PulseAudio depends on it, and
        // the wheel carries it.
        .target(
            name: "CWebRTCAudio",
            cxxSettings: [.unsafeFlags(["-I/usr/include/webrtc_audio_processing",
                                        "-DWEBRTC_AUDIO_PROCESSING_ONLY_BUILD", "-DWEBRTC_POSIX"])],
            linkerSettings: [.linkedLibrary("webrtc_audio_processing"), .linkedLibrary("stdc++")]
        ),
        // Ogg Opus: libopusenc (recordings, output files) and libopusfile (input files).
        .target(
            name: "COpus",
            cSettings: [.unsafeFlags(["-I/usr/include/opus"])],
            linkerSettings: [.linkedLibrary("opusenc"), .linkedLibrary("opusfile"), .linkedLibrary("opus")]
        ),
        // The session engine: WebSocket, Millis protocol, network loop. No C callers here
        // (it reads only the version from millis.h).
        .target(
            name: "MillisCore",
            dependencies: ["CCurl", "CSystem", "CAudio", "CWebRTCAudio", "COpus", "CMillisHeader"],
            // libopusenc's and libopusfile's headers include <opus.h> from /usr/include/opus.
            // Release builds skip the run-time exclusivity checks on class properties:
            // a fifth of the network loop's instructions per frame at scale (callgrind,
            // BENCHMARKS.md). Debug builds, which the unit tests use, keep them.
            swiftSettings: [.unsafeFlags(["-Xcc", "-I/usr/include/opus"]),
                            .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        // include/millis.h itself, for the structs C callers pass by layout.
        .target(name: "CMillisHeader"),
        // The @_cdecl exports declared in include/millis.h.
        .target(
            name: "CMillis",
            dependencies: ["MillisCore", "CMillisHeader"],
            exclude: ["millis.map"],
            swiftSettings: [.unsafeFlags(["-Xcc", "-I/usr/include/opus"]),
                            .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
        ),
        .testTarget(
            name: "MillisCoreTests",
            dependencies: ["MillisCore"],
            swiftSettings: [.unsafeFlags(["-Xcc", "-I/usr/include/opus"])]
        ),
    ]
)
