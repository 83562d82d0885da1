#if canImport(Glibc)
import Glibc
#endif
import Sandbox

/// Hands SIGINT and SIGTERM sent to sandbox-exec on to the sandbox.
///
/// ``blockForwardedSignals()`` must run first thing, before any thread exists, so every thread
/// inherits the mask and the signals stay pending until ``start(forwardingTo:)``'s thread takes them
/// with `sigwait`. The sandbox does not inherit the mask (every backend resets it before `execve`).
enum SignalForwarder {
    static let signals: [CInt] = [SIGINT, SIGTERM]

    static func blockForwardedSignals() {
        var set = signalSet()
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Starts a thread that forwards each signal to `process` until the process exits.
    static func start(forwardingTo process: SandboxProcess) {
        final class Box: Sendable {
            let process: SandboxProcess
            init(_ process: SandboxProcess) { self.process = process }
        }
        var thread = pthread_t()
        let context = Unmanaged.passRetained(Box(process)).toOpaque()
        let rc = pthread_create(&thread, nil, { context in
            let process = Unmanaged<Box>.fromOpaque(context!).takeRetainedValue().process
            var set = SignalForwarder.signalSet()
            while true {
                var signal: CInt = 0
                guard sigwait(&set, &signal) == 0 else { continue }
                try? process.signal(signal)
            }
        }, context)
        if rc == 0 { pthread_detach(thread) } else { Unmanaged<Box>.fromOpaque(context).release() }
    }

    static func signalSet() -> sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        for signal in signals { sigaddset(&set, signal) }
        return set
    }
}
