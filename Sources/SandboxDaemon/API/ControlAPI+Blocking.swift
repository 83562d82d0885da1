import NIOPosix

extension ControlAPI {
    /// Runs blocking file work (reading, hashing and exploding a bundle) on NIO's blocking-I/O thread pool
    /// instead of a cooperative-pool thread, keeping the typed error.
    static func blocking<T: Sendable>(
        _ body: @escaping @Sendable () throws(DaemonError) -> T
    ) async throws(DaemonError) -> T {
        let result: Result<T, DaemonError>
        do {
            result = try await NIOThreadPool.singleton.runIfActive {
                do throws(DaemonError) {
                    return .success(try body())
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            throw DaemonError(.internalError, "the blocking-work pool is not running: \(error)")
        }
        return try result.get()
    }
}
