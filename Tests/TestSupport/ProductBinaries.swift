public import Foundation

/// Locates executables built by this package next to the running test bundle.
public enum ProductBinaries {
    /// The build products directory (`.build/<triple>/<config>`), found from the test process itself.
    public static var directory: URL {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = executable.deletingLastPathComponent()
        // The test binary sits inside `<products>/sandboxdPackageTests.xctest` on Linux.
        if directory.pathExtension == "xctest" { directory.deleteLastPathComponent() }
        return directory
    }

    /// Path of a built product, or nil when it has not been built.
    public static func path(of product: String) -> String? {
        let candidate = directory.appendingPathComponent(product).path
        return FileManager.default.isExecutableFile(atPath: candidate) ? candidate : nil
    }

    /// The example runtime; tests that need it are disabled (with a reason) when it is missing.
    public static var exampleRuntime: String? { path(of: "example-runtime") }
}

/// `bench/hostile-runtime.c`, the misbehaving runtime of issue #11, compiled once per test process
/// (static, so it runs in any sandbox) into the products directory.
public enum HostileRuntime {
    public static let built: Result<String, HostileRuntimeUnavailable> = {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("bench/hostile-runtime.c").path
        guard FileManager.default.fileExists(atPath: source) else {
            return .failure(HostileRuntimeUnavailable(reason: "no \(source)"))
        }
        let output = ProductBinaries.directory.appendingPathComponent("hostile-runtime-test").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/cc")
        process.arguments = ["-O2", "-static", "-pthread", "-o", output, source]
        do {
            try process.run()
            process.waitUntilExit()
        } catch {
            return .failure(HostileRuntimeUnavailable(reason: "cannot run cc: \(error)"))
        }
        guard process.terminationStatus == 0 else {
            return .failure(HostileRuntimeUnavailable(reason: "cc failed on \(source) (static glibc: apt-get install libc6-dev)"))
        }
        return .success(output)
    }()

    public static var available: Bool { (try? built.get()) != nil }

    public static var unavailableReason: String {
        switch built {
        case .success: ""
        case .failure(let error): "SKIPPED: hostile runtime unavailable: \(error.reason)"
        }
    }
}

public struct HostileRuntimeUnavailable: Error, Sendable {
    public let reason: String
}

/// Facts about the test environment that decide whether a test can run.
public enum TestEnvironment {
    public static var isRoot: Bool { getuid() == 0 }

    public static var hasBubblewrap: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/bwrap") }

    /// A fresh private directory under /tmp, removed by the caller.
    public static func temporaryDirectory(_ label: String) throws -> URL {
        let url = URL(fileURLWithPath: NSTemporaryDirectory())
            .appendingPathComponent("sandboxd-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}
