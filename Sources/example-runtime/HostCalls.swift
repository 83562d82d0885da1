import CBOR
import NIOCore
import RuntimeHostProtocol
import Synchronization

/// The runtime's own calls to its host: `HostFetchGenesisHeightRequest` on an event-loop timer.
///
/// Each outcome is printed (`host call: …`) and kept, so `RuntimeQueryRequest {method: "host_height"}`
/// can report what the host answered last. Timers run on the event loop (no `Task.sleep`: see README,
/// "Writing a runtime in Swift").
final class HostCalls: Sendable {
    /// The last outcome: the height the host answered, or why the call failed.
    let last = Mutex<Result<UInt64, ErrorPayload>?>(nil)

    func start(every interval: Double, on loop: any EventLoop, connection: Connection) {
        let amount = TimeAmount.nanoseconds(Int64(interval * 1e9))
        loop.scheduleRepeatedTask(initialDelay: amount, delay: amount) { _ in
            Task { await self.fetchGenesisHeight(connection) }
        }
    }

    private func fetchGenesisHeight(_ connection: Connection) async {
        let outcome: Result<UInt64, ErrorPayload>
        do {
            let answer = try await connection.call(.raw(.hostFetchGenesisHeightRequest, Self.emptyMap), timeout: .seconds(5))
            guard case .raw(.hostFetchGenesisHeightResponse, let payload) = answer,
                  let fields = try? payload.decode(as: [String: CBORValue].self),
                  case .unsigned(let height)? = fields["height"]
            else {
                outcome = .failure(ErrorPayload(module: "example", code: 2, message: "unexpected answer \(answer.kind)"))
                record(outcome)
                return
            }
            outcome = .success(height)
        } catch {
            outcome = .failure(error.remote ?? ErrorPayload(module: "rhp", code: 1, message: error.message))
        }
        record(outcome)
    }

    private func record(_ outcome: Result<UInt64, ErrorPayload>) {
        last.withLock { $0 = outcome }
        switch outcome {
        case .success(let height): StdoutLog.line("host call: genesis height \(height)", level: "INFO")
        case .failure(let error): StdoutLog.line("host call: failed: \(error.message)", level: "INFO")
        }
    }

    static let emptyMap = CBORRawItem(bytes: [0xa0])
}
