// swift-tools-version:6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "sandboxd",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "CBOR", targets: ["CBOR"]),
        .library(name: "RuntimeHostProtocol", targets: ["RuntimeHostProtocol"]),
        .library(name: "Sandbox", targets: ["Sandbox"]),
        .library(name: "RuntimeProvisioner", targets: ["RuntimeProvisioner"]),
        .library(name: "SystemdSupport", targets: ["SystemdSupport"]),
        .library(name: "RuntimeJournal", targets: ["RuntimeJournal"]),
        .library(name: "RuntimeArguments", targets: ["RuntimeArguments"]),
        .library(name: "Bundle", targets: ["Bundle"]),
        .executable(name: "example-runtime", targets: ["example-runtime"]),
        .executable(name: "bench-rhp", targets: ["bench-rhp"]),
        .executable(name: "sandbox-exec", targets: ["sandbox-exec"]),
        .executable(name: "sandboxd-spawner", targets: ["sandboxd-spawner"]),
        .library(name: "SandboxDaemon", targets: ["SandboxDaemon"]),
        .executable(name: "sandboxd", targets: ["sandboxd"]),
        .executable(name: "sandboxctl", targets: ["sandboxctl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // The only C target: everything between clone() and execve(), plus raw syscalls glibc hides.
        .target(
            name: "CSandboxShim",
            cSettings: [.define("_GNU_SOURCE"), .unsafeFlags(["-Wall", "-Wextra", "-Werror"])],
            linkerSettings: [.linkedLibrary("seccomp")]
        ),
        // The daemon's spawner helper: clones every namespace sandbox, so a sandbox's PID 1 is a copy of this
        // small static process (never of the daemon). Static C only: `-static-executable` also linked the Swift
        // runtime, whose initializers ran and whose data pages every PID 1 mapped (PID 1 RSS ≈ 850 kB, binary
        // 9.6 MB); `-nostartfiles` drops swiftrt.o, the only thing that referenced it, and `-static` links
        // libc alone (the runtime libraries `-static-stdlib` names are archives nothing pulls from):
        // PID 1 ≈ 420 kB, binary < 1 MB. It shares the wire header and the child hygiene header with
        // CSandboxShim by search path (no libseccomp needed).
        .executableTarget(
            name: "sandboxd-spawner",
            cSettings: [
                .define("_GNU_SOURCE"),
                .headerSearchPath("../CSandboxShim/include"),
                .headerSearchPath("../CSandboxShim/common"),
                .unsafeFlags(["-Wall", "-Wextra", "-Werror"]),
            ],
            linkerSettings: [.unsafeFlags(["-static-stdlib", "-nostartfiles", "-Xclang-linker", "-static"])]
        ),
        .target(
            name: "SystemCalls",
            dependencies: [.product(name: "SystemPackage", package: "swift-system")],
            swiftSettings: strict
        ),
        // Optimized in debug builds too: it validates every byte a runtime sends, and at -Onone a 60 MB frame of
        // 10M strings costs seconds of CPU, enough for a loaded test machine's watchdog to kill the runtime.
        .target(name: "CBOR", swiftSettings: strict + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // libcrypto (OpenSSL): EVP_sha512_256, which swift-crypto does not expose.
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // zlib's raw inflate/deflate: the bundle reader streams entries through it with its own bounds.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // Oasis runtime bundles (.orc): open, validate, manifest hash, bounded explode.
        .target(
            name: "Bundle",
            dependencies: [
                "CBOR",
                "COpenSSL",
                "CZlib",
                "SystemCalls",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // `make bench-bundle`: explode time of a 50 MB bundle.
        .executableTarget(
            name: "bench-bundle",
            dependencies: ["Bundle", .product(name: "Logging", package: "swift-log")],
            path: "Benchmarks/bench-bundle",
            swiftSettings: strict
        ),
        .testTarget(
            name: "BundleTests",
            dependencies: ["Bundle", "CBOR", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strict
        ),
        // libsystemd: sd_notify, sd_listen_fds_with_names, sd_watchdog_enabled, sd_journal_sendv.
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .target(
            name: "SystemdSupport",
            dependencies: [
                "CSystemd",
                "SystemCalls",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Glue: the journal of a provisioner (its runtime notices and output through
        // SystemdSupport's lifecycle entries and rate-limited forwarders), so SystemdSupport stays a leaf.
        .target(
            name: "RuntimeJournal",
            dependencies: [
                "SystemdSupport",
                "RuntimeProvisioner",
                "Sandbox",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "RuntimeHostProtocol",
            dependencies: [
                "CBOR",
                "SystemCalls",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                // RHP call metrics (oasis_rhp_*); swift-metrics' no-op backend unless a factory is given.
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "CSandboxShim",
                "SystemCalls",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "RuntimeProvisioner",
            dependencies: [
                "CBOR",
                "RuntimeHostProtocol",
                "Sandbox",
                "SystemCalls",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "bench-provision",
            dependencies: [
                "RuntimeProvisioner", "RuntimeHostProtocol", "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/bench-provision",
            swiftSettings: strict
        ),
        .target(name: "TestSupport", path: "Tests/TestSupport", swiftSettings: strict),
        // argv for Swift programs without /proc: an ELF constructor (`@used @section(".init_array")`).
        .target(name: "RuntimeArguments", swiftSettings: strict),
        .executableTarget(
            name: "example-runtime",
            dependencies: [
                "CBOR",
                "CSandboxShim",
                "RuntimeArguments",
                "RuntimeHostProtocol",
                "SystemCalls",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            // The Swift runtime and libraries linked in: each start skips loading and relocating sixteen
            // shared objects (two thirds of its CPU time), and a sandbox binds only glibc's few.
            // FoundationEssentials' own dependencies are not found by the driver's static link; NIO's
            // executor takeover cannot find the enqueue hook then (see ExampleRuntime.takeOverGlobalExecutor).
            linkerSettings: [
                .unsafeFlags(["-static-stdlib"]),
                .linkedLibrary("_FoundationCollections"),
                .linkedLibrary("_FoundationCShims"),
            ]
        ),
        .executableTarget(
            name: "bench-rhp",
            dependencies: [
                "CBOR",
                "RuntimeHostProtocol",
                .product(name: "Prometheus", package: "swift-prometheus"),
                "SystemCalls",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Benchmarks/bench-rhp",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sandbox-exec",
            dependencies: [
                "Sandbox",
                "SystemCalls",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        // The daemon product layer: control API, registry, durable state, config.
        .target(
            name: "SandboxDaemon",
            dependencies: [
                "CSandboxShim",
                "Bundle",
                "Sandbox",
                "RuntimeProvisioner",
                "RuntimeHostProtocol",
                "CBOR",
                "SystemCalls",
                "SystemdSupport",
                "RuntimeJournal",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sandboxd",
            dependencies: [
                "SandboxDaemon",
                "SystemdSupport",
                "RuntimeJournal",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "sandboxctl",
            dependencies: [
                "Bundle",
                "SystemCalls",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strict
        ),
        // sandboxctl's own logic (argument hoisting, journalctl arguments, exit codes), through @testable import.
        .testTarget(name: "SandboxctlTests", dependencies: ["sandboxctl"], swiftSettings: strict),
        // `make bench-daemon`: the daemon's figures over its API (a client only; runs sandboxd as a process).
        .executableTarget(
            name: "bench-daemon",
            dependencies: [.product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/bench-daemon",
            swiftSettings: strict
        ),
        .testTarget(
            name: "SandboxDaemonTests",
            dependencies: [
                "Bundle",
                "TestSupport",
                "CBOR",
                "RuntimeHostProtocol",
                "RuntimeProvisioner",
                .product(name: "Prometheus", package: "swift-prometheus"),
                "SandboxDaemon",
                "Sandbox",
                "SystemCalls",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Yams", package: "Yams"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "bench-spawn",
            dependencies: [
                "Sandbox",
                "SystemCalls",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Benchmarks/bench-spawn",
            swiftSettings: strict
        ),
        // Test helper: runs SystemdSupport inside the namespaces and environments the tests set up.
        .executableTarget(
            name: "systemd-probe",
            dependencies: ["SystemdSupport", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Helpers/systemd-probe",
            swiftSettings: strict
        ),
        // libFuzzer harnesses (`make fuzz`): the bodies live here so `FuzzRegressionTests` replays every
        // kept crasher through them; `fuzz-sandboxd` is the libFuzzer entry (built with -DFUZZING and
        // -sanitize=fuzzer,address into .build-fuzz), or a replayer of input files without it.
        .target(
            name: "FuzzHarnesses",
            dependencies: [
                "CBOR", "RuntimeHostProtocol", "RuntimeProvisioner", "Sandbox", "SandboxDaemon",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(name: "fuzz-sandboxd", dependencies: ["FuzzHarnesses", "CSandboxShim"], swiftSettings: strict),
        .testTarget(name: "FuzzRegressionTests", dependencies: ["FuzzHarnesses"], swiftSettings: strict),
        .testTarget(name: "CBORTests", dependencies: ["CBOR"], swiftSettings: strict),
        .testTarget(name: "RuntimeArgumentsTests", dependencies: ["RuntimeArguments"], swiftSettings: strict),
        .testTarget(
            name: "RuntimeHostProtocolTests",
            dependencies: [
                "RuntimeHostProtocol",
                "TestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                "CBOR",
                "SystemCalls",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "RuntimeProvisionerTests",
            dependencies: [
                "CBOR", "RuntimeProvisioner", "RuntimeHostProtocol", "Sandbox", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "SandboxTests", dependencies: ["Sandbox", "SystemCalls", "TestSupport"], swiftSettings: strict),
        // What the systemd tests share: the machine's abilities, subprocesses, a notify socket, a private journald.
        .target(name: "SystemdTestSupport", dependencies: ["SystemCalls", "TestSupport"], path: "Tests/SystemdTestSupport", swiftSettings: strict),
        .testTarget(
            name: "SystemdSupportTests",
            dependencies: [
                "SystemdSupport", "RuntimeJournal", "SystemCalls", "RuntimeProvisioner", "RuntimeHostProtocol", "Sandbox",
                "TestSupport", "SystemdTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Suites that boot the whole daemon (a `sandboxd` process, under a private systemd or journald).
        .testTarget(
            name: "SandboxdEndToEndTests",
            dependencies: ["SystemdSupport", "SystemdTestSupport", "TestSupport"],
            swiftSettings: strict
        ),
    ]
)
