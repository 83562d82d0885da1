import RuntimeHostProtocol
import Sandbox

/// Why a start attempt failed, structured: the typed error's stable code and message plus, for a sandbox
/// that could not be built, the shim's setup stage, errno and failing mount-plan entry.
///
/// ``RuntimeStatus/lastError`` keeps the flattened text for compatibility; this is the same failure
/// without losing its parts. Fields are nil when unknown (a handshake timeout has no stage or errno).
public struct RuntimeFailure: Sendable, Hashable {
    /// The typed error's stable code: ``SandboxError/Code`` for spawn failures (`setup-failed`, …),
    /// ``ProvisionerError/Code`` otherwise (`version_mismatch`, `connect_timeout`, …).
    public var code: String
    public var message: String
    /// The failing setup stage's stable name (`"bind"`, `"uid-map"`, `"exec"`, …).
    public var stage: String?
    public var errno: Int32?
    /// The failing mount-plan entry (`"bind (ro) /x → /y"`).
    public var op: String?

    public init(code: String, message: String, stage: String? = nil, errno: Int32? = nil, op: String? = nil) {
        self.code = code
        self.message = message
        self.stage = stage
        self.errno = errno
        self.op = op
    }

    /// The errno's symbolic name (`ENOENT`), when it is a common one.
    public var errnoName: String? { errno.flatMap { Self.errnoNames[$0] } }

    /// The structured view of any start failure; messages are bounded (they may carry a runtime's words).
    public init(_ error: any Error) {
        switch error {
        case let error as ProvisionerError:
            if let sandbox = error.sandbox {
                self.init(sandbox)
            } else {
                self.init(code: error.code.rawValue, message: Self.bounded(error.message), errno: error.errno?.rawValue)
            }
        case let error as SandboxError:
            self.init(error)
        case let error as RHPError:
            self.init(code: error.code.rawValue, message: Self.bounded(error.description), errno: error.errno?.rawValue)
        case is CancellationError:
            self.init(code: "cancelled", message: "the start was cancelled")
        default:
            self.init(code: "internal", message: Self.bounded(String(describing: error)))
        }
    }

    init(_ error: SandboxError) {
        self.init(code: error.code.rawValue, message: Self.bounded(error.message), stage: error.stage,
                  errno: error.errno?.rawValue, op: error.op.map { Self.bounded($0) })
    }

    private static func bounded(_ text: String) -> String {
        BoundedText.bounded(text, limit: BoundedText.runtimeLimit + 512)
    }

    /// Linux errno values (asm-generic, shared by x86_64 and aarch64) a spawn can plausibly fail with.
    static let errnoNames: [Int32: String] = [
        1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
        9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
        16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
        23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
        30: "EROFS", 31: "EMLINK", 32: "EPIPE", 34: "ERANGE", 36: "ENAMETOOLONG", 38: "ENOSYS",
        39: "ENOTEMPTY", 40: "ELOOP", 61: "ENODATA", 75: "EOVERFLOW", 95: "EOPNOTSUPP", 110: "ETIMEDOUT",
        111: "ECONNREFUSED", 122: "EDQUOT",
    ]
}
