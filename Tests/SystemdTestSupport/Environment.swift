#if canImport(Glibc)
import Glibc
#endif
public import Foundation

/// What the machine offers; tests that need more are disabled with the reason.
public enum Host {
    public static var isRoot: Bool { getuid() == 0 }

    public static func executable(_ path: String) -> Bool { FileManager.default.isExecutableFile(atPath: path) }

    public static let journald = "/lib/systemd/systemd-journald"
    public static let journalctl = "/usr/bin/journalctl"
    public static let unshare = "/usr/bin/unshare"
    public static let nsenter = "/usr/bin/nsenter"
    public static let socketActivate = "/usr/bin/systemd-socket-activate"
    public static let systemd = "/lib/systemd/systemd"

    /// Root, util-linux's unshare/nsenter and the journald binary: enough for ``PrivateJournald``.
    public static var canRunPrivateJournald: Bool {
        isRoot && executable(journald) && executable(journalctl) && executable(unshare) && executable(nsenter)
            && executable("/usr/bin/timeout")
    }

    /// The build products directory (the parent of the test bundle).
    public static var products: URL {
        var directory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        while directory.path != "/", directory.pathExtension == "xctest" || directory.lastPathComponent == "Contents"
            || directory.lastPathComponent == "MacOS" {
            directory.deleteLastPathComponent()
        }
        return directory
    }

    /// The `systemd-probe` helper built next to the test bundle.
    public static var probe: String? {
        let path = products.appendingPathComponent("systemd-probe").path
        return executable(path) ? path : nil
    }

    /// The package's root directory (for `systemd/`).
    public static var packageRoot: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    /// A fresh private directory under /tmp; the caller removes it.
    public static func temporaryDirectory(_ label: String) throws -> URL {
        let url = URL(fileURLWithPath: "/tmp").appendingPathComponent("sandboxd-\(label)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
