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
        // ALSA (devices) and speexdsp (resampler, echo canceller, preprocessor).
        .target(
            name: "CAudio",
            linkerSettings: [.linkedLibrary("asound"), .linkedLibrary("speexdsp")]
        ),
        // The session engine: WebSocket, Millis protocol, network loop. No C callers here.
        .target(
            name: "MillisCore",
            dependencies: ["CCurl", "CSystem", "CAudio"]
        ),
        // The @_cdecl exports declared in include/millis.h.
        .target(
            name: "CMillis",
            dependencies: ["MillisCore"],
            exclude: ["millis.map"]
        ),
        .testTarget(
            name: "MillisCoreTests",
            dependencies: ["MillisCore"]
        ),
    ]
)
