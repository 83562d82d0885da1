#if canImport(Glibc)
import Glibc
#endif
import CSandboxShim
import Foundation
import Synchronization
import SystemCalls

/// Group commit of state-file writes: many concurrent ``StateStore/record(_:)`` calls share one
/// directory `fsync` and, from ``syncfsThreshold`` files on, one `syncfs` instead of an `fsync` each, on
/// one thread off the cooperative pool.
///
/// Each caller writes its temp file (page cache only) and enqueues it; the first caller with no commit in
/// flight starts a committer thread, which takes everything queued, makes the temp files durable (one
/// `syncfs`, or an `fsync` each), renames each over its final name, `fsync`s the directory once and only
/// then resumes the callers of that batch —
/// so every caller still returns only once its record is durable. Callers arriving during a commit form
/// the next batch. A failure fails exactly the callers it concerns (a file's `fsync`/`rename`: that
/// caller; the directory `fsync`: the whole batch).
final class GroupCommit: Sendable {
    enum Job: Sendable {
        /// A written (not yet synced) temp file to rename over `final`; the committer closes `fd`.
        case replace(fd: Int32, temporary: String, final: String)
        /// Only the directory sync (an unlink done by the caller).
        case directoryOnly
    }

    private struct Waiting {
        var job: Job
        var continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var queue: [Waiting] = []
        var committing = false
        var batches = 0
    }

    let directory: String
    private let state = Mutex(State())

    init(directory: String) { self.directory = directory }

    private let serial = Atomic<UInt64>(0)

    /// A number unique in this store (temp file names: two writes in one batch never share one).
    func nextSerial() -> UInt64 { serial.add(1, ordering: .relaxed).newValue }

    /// Commits since start (for tests: concurrent records share batches).
    var batches: Int { state.withLock { $0.batches } }

    /// Queues `job` and returns once it is durable (or throws what failed).
    func commit(_ job: Job) async throws(SystemCallError) {
        do {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let start = state.withLock { state -> Bool in
                    state.queue.append(Waiting(job: job, continuation: continuation))
                    guard !state.committing else { return false }
                    state.committing = true
                    return true
                }
                // A thread of its own: fsync blocks, and the cooperative pool has one thread per core.
                if start { Thread.detachNewThread { [self] in drain() } }
            }
        } catch let error as SystemCallError {
            throw error
        } catch {
            throw SystemCallError("commit", errno: .ioError)
        }
    }

    /// From this many files in a batch, one `syncfs` replaces their `fsync`s (below it a filesystem-wide
    /// flush could cost more than the few files' own).
    static let syncfsThreshold = 4

    private func drain() {
        while true {
            let batch = state.withLock { state -> [Waiting] in
                let batch = state.queue
                state.queue = []
                if batch.isEmpty { state.committing = false } else { state.batches += 1 }
                return batch
            }
            if batch.isEmpty { return }
            var failures: [Int: SystemCallError] = [:]
            // Many files: one syncfs makes them all durable with one device flush (fsync pays one per file).
            // If it fails, each file is fsynced after all, so an error reaches exactly the callers it concerns.
            let replacements = batch.compactMap { if case .replace(let fd, _, _) = $0.job { fd } else { nil } }
            let synced = replacements.count >= Self.syncfsThreshold && sbx_syncfs(replacements[0]) == 0
            for (index, waiting) in batch.enumerated() {
                guard case .replace(let fd, let temporary, let final) = waiting.job else { continue }
                do throws(SystemCallError) {
                    defer { close(fd) }
                    if !synced { try retryingInterrupts("fsync(\(temporary))") { fsync(fd) } }
                    try retryingInterrupts("rename(\(temporary), \(final))") { rename(temporary, final) }
                } catch {
                    unlink(temporary)
                    failures[index] = error
                }
            }
            var directoryFailure: SystemCallError?
            do throws(SystemCallError) {
                try StateStore.syncDirectory(directory)
            } catch {
                directoryFailure = error
            }
            for (index, waiting) in batch.enumerated() {
                if let failure = failures[index] ?? directoryFailure {
                    waiting.continuation.resume(throwing: failure)
                } else {
                    waiting.continuation.resume()
                }
            }
        }
    }
}
