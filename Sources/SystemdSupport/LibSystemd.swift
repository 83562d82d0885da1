import CSystemd
#if canImport(Glibc)
import Glibc
#endif

/// Thin typed wrappers over the four libsystemd entry points sandboxd uses.
///
/// None of them unset the environment: the daemon keeps `NOTIFY_SOCKET` & co. for itself and never lets
/// a runtime inherit them (see ``SystemdEnvironment``).
enum LibSystemd {
    /// Sends `state` (newline-separated `KEY=VALUE` assignments) to `$NOTIFY_SOCKET`.
    /// Returns false when `NOTIFY_SOCKET` is unset (nothing was sent).
    @discardableResult
    static func notify(_ state: String) throws(SystemdError) -> Bool {
        let result = sd_notify(0, state)
        if result < 0 {
            let summary = state.split(separator: "\n").first.map(String.init) ?? ""
            throw SystemdError(.notifyFailed, operation: "sd_notify(\(summary))", returned: result)
        }
        return result > 0
    }

    /// The watchdog timeout systemd expects pings within, or nil when the watchdog is off for this process.
    static func watchdogTimeout() throws(SystemdError) -> Duration? {
        var usec: UInt64 = 0
        let result = sd_watchdog_enabled(0, &usec)
        if result < 0 {
            throw SystemdError(.watchdogConfigurationInvalid, operation: "sd_watchdog_enabled", returned: result)
        }
        return result > 0 && usec > 0 ? .microseconds(Int64(clamping: usec)) : nil
    }

    /// The descriptors passed by socket activation, with their `FileDescriptorName=`s.
    static func listenFDs() throws(SystemdError) -> [(fd: Int32, name: String)] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(0, &names)
        if count < 0 {
            throw SystemdError(.listenFDsFailed, operation: "sd_listen_fds_with_names", returned: count)
        }
        defer {
            if let names {
                for index in 0..<Int(count) { free(names[index]) }
                free(names)
            }
        }
        return (0..<count).map { index in
            let name = names?[Int(index)].map { String(cString: $0) } ?? "unknown"
            return (fd: SD_LISTEN_FDS_START + index, name: name)
        }
    }

    /// Sends one native journal entry; each element of `assignments` is `NAME=value` (value may be binary).
    static func journalSend(_ assignments: [[UInt8]]) throws(SystemdError) {
        let result: Int32 = withIOVectors(assignments) { vectors in
            sd_journal_sendv(vectors.baseAddress, Int32(vectors.count))
        }
        if result < 0 {
            throw SystemdError(.journalSendFailed, operation: "sd_journal_sendv", returned: result)
        }
    }

    /// Lays the buffers out in one allocation and hands `body` an iovec per buffer.
    private static func withIOVectors<R>(_ buffers: [[UInt8]], _ body: (UnsafeBufferPointer<iovec>) -> R) -> R {
        let storage = Array(buffers.joined())
        return storage.withUnsafeBytes { bytes in
            var vectors: [iovec] = []
            vectors.reserveCapacity(buffers.count)
            var offset = 0
            for buffer in buffers {
                let base = bytes.baseAddress.map { UnsafeMutableRawPointer(mutating: $0 + offset) }
                vectors.append(iovec(iov_base: base, iov_len: buffer.count))
                offset += buffer.count
            }
            return vectors.withUnsafeBufferPointer(body)
        }
    }
}
