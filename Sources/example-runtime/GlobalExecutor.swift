import CSandboxShim
import NIOCore
import NIOPosix

/// The Concurrency runtime's global-enqueue hook: the job, and the default enqueue it replaces.
private typealias EnqueueGlobalHook = @convention(thin) (UnownedJob, @convention(thin) (UnownedJob) -> Void) -> Void

extension ExampleRuntime {
    /// Runs every Swift task on NIO's singleton event loops instead of libdispatch's pool, whose thread
    /// monitor reads `/proc`.
    ///
    /// What NIO's `unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()` does, through
    /// the C shim: this executable links the Swift runtime statically, where NIO's `dlsym` cannot find the
    /// hook. Call once, from `main`, before any other task exists. False when a hook is already installed
    /// or the runtime has none.
    static func takeOverGlobalExecutor() -> Bool {
        let hook: EnqueueGlobalHook = { job, _ in
            // Sticky: a job enqueued from one of the group's loops stays on that loop.
            MultiThreadedEventLoopGroup.singleton.any().enqueue(ExecutorJob(job))
        }
        return sbx_install_enqueue_global_hook(unsafeBitCast(hook, to: UnsafeRawPointer.self)) == 0
    }
}
