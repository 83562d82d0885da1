import SandboxDaemon

/// The config loader on hostile YAML: parses or fails with a `DaemonError`, never crashes.
enum ConfigHarness {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        let text = String(decoding: bytes, as: UTF8.self)
        _ = try? ConfigLoader.parse(yaml: text, checkFilesystem: false)
    }
}
