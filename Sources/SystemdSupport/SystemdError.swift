public import SystemPackage

/// A libsystemd call or a systemd-facing check that failed.
///
/// libsystemd returns `-errno`; every negative return becomes one of these, with a stable ``Code`` that
/// callers and tests can match on, the operation, a message for people and the `Errno`.
public struct SystemdError: Error, Equatable, Sendable, CustomStringConvertible {
    /// Stable identifiers; the raw values never change once released.
    public enum Code: String, Sendable, Equatable {
        /// `sd_notify` failed (the socket in `NOTIFY_SOCKET` is gone, or the datagram was refused).
        case notifyFailed = "systemd.notify_failed"
        /// `sd_journal_sendv` failed (journald is not running, or the entry was rejected).
        case journalSendFailed = "systemd.journal_send_failed"
        /// A journal field name or value cannot be sent.
        case invalidJournalField = "systemd.invalid_journal_field"
        /// `sd_listen_fds_with_names` failed (malformed `LISTEN_*` variables).
        case listenFDsFailed = "systemd.listen_fds_failed"
        /// A passed file descriptor is not what the unit promised (not a listening UNIX stream socket).
        case unexpectedSocket = "systemd.unexpected_socket"
        /// `sd_watchdog_enabled` failed (malformed `WATCHDOG_USEC`/`WATCHDOG_PID`).
        case watchdogConfigurationInvalid = "systemd.watchdog_configuration_invalid"
    }

    public var code: Code
    /// The operation, e.g. `"sd_notify(READY=1)"`.
    public var operation: String
    public var message: String
    public var errno: Errno

    public init(_ code: Code, operation: String, message: String, errno: Errno) {
        self.code = code
        self.operation = operation
        self.message = message
        self.errno = errno
    }

    /// Wraps a libsystemd `-errno` return value.
    init(_ code: Code, operation: String, returned value: Int32) {
        let errno = Errno(rawValue: -value)
        self.init(code, operation: operation, message: "\(operation) failed: \(errno)", errno: errno)
    }

    public var description: String { "\(code.rawValue): \(message) (errno \(errno.rawValue))" }
}
