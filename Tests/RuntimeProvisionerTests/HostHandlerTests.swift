import CBOR
import Foundation
import Logging
import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import Synchronization
import Testing
import TestSupport

/// The host side of a runtime in the library: `RuntimeSpec.handler` and `Runtime.attachHost(_:)`.
@Suite(.enabled(if: canRunRuntimes, whyNotRunnable), .serialized, .timeLimit(.minutes(2)))
struct HostHandlerTests {
    /// Answers `HostFetchGenesisHeightRequest` with `height`, counting the requests it saw (whole payloads).
    final class HeightHost: Handler {
        let height: UInt64
        let seen = Mutex(0)
        init(height: UInt64) { self.height = height }

        func handle(_ request: Body) async throws -> Body {
            guard case .raw(.hostFetchGenesisHeightRequest, let payload) = request else { throw ErrorPayload.methodNotSupported }
            #expect(payload.bytes == [0xa0])  // kept, not discarded: the handler reads bodies
            seen.withLock { $0 += 1 }
            return .raw(.hostFetchGenesisHeightResponse, try CBORRawItem(encoding: CBORValue.map(["height": .unsigned(height)])))
        }
    }

    static func query(_ runtime: Runtime, _ method: String) async throws -> Body {
        try await runtime.call(.raw(.runtimeQueryRequest, try CBORRawItem(encoding: CBORValue.map(["method": .text(method)]))), timeout: .seconds(10))
    }

    /// The runtime's `host_height` answer (or the error's message), polled until it is `expected`.
    static func hostHeight(_ runtime: Runtime, until expected: String) async -> String {
        await polled(within: .seconds(10)) { () async -> String in
            do {
                let body = try await query(runtime, "host_height")
                if case .raw(_, let payload) = body, let fields = try? payload.decode(as: [String: CBORValue].self),
                   case .bytes(let data)? = fields["data"] {
                    return String(decoding: data, as: UTF8.self)
                }
                return ""
            } catch let error as RHPError {
                return error.remote?.message ?? error.message
            } catch {
                return "\(error)"
            }
        } until: { $0 == expected }
    }

    @Test("a handler in the spec answers the runtime's own requests with their payloads")
    func specHandler() async throws {
        let fixture = try ProvisionerFixture(backend: .none)
        defer { fixture.remove() }
        let host = HeightHost(height: 7)
        let runtime = fixture.provisioner.newRuntime(RuntimeSpec(
            id: ProvisionerFixture.runtimeID, name: "handled", executable: .init(ProductBinaries.exampleRuntime!),
            arguments: ["--host-call-interval", "0.1"], handler: host))
        try await supervising(runtime) {
            runtime.start()
            // The polling window starts once it runs: a start delayed by a busy machine is not the subject.
            try await eventually("the runtime running", within: .seconds(30)) { runtime.status.state == .running }
            #expect(await Self.hostHeight(runtime, until: "7") == "7")
            #expect(host.seen.withLock { $0 } > 0)
            // Not attachable: attaching is refused.
            #expect(throws: ProvisionerError.self) { _ = try runtime.attachHost(host) }
            await runtime.stop()
        }
    }

    @Test("attachHost takes over the runtime's requests until detached; one host at a time")
    func attachAndDetach() async throws {
        let fixture = try ProvisionerFixture(backend: .none)
        defer { fixture.remove() }
        let runtime = fixture.provisioner.newRuntime(RuntimeSpec(
            id: ProvisionerFixture.runtimeID, name: "attachable", executable: .init(ProductBinaries.exampleRuntime!),
            arguments: ["--host-call-interval", "0.1"], attachable: true))
        try await supervising(runtime) {
            runtime.start()
            #expect(await Self.hostHeight(runtime, until: "method not supported") == "method not supported")
            let attachment = try runtime.attachHost(HeightHost(height: 9))
            #expect(runtime.hostAttached)
            do {
                _ = try runtime.attachHost(HeightHost(height: 1))
                Issue.record("a second host was attached")
            } catch let error as ProvisionerError {
                #expect(error.code == .alreadyAttached)
            }
            #expect(await Self.hostHeight(runtime, until: "9") == "9")
            attachment.detach()
            attachment.detach()  // idempotent
            #expect(!runtime.hostAttached)
            #expect(await Self.hostHeight(runtime, until: "method not supported") == "method not supported")
            await runtime.stop()
            // A stopped runtime refuses calls at once.
            do {
                _ = try await Self.query(runtime, "echo")
                Issue.record("a stopped runtime took a call")
            } catch let error as ProvisionerError {
                #expect(error.code == .stopped)
            }
        }
    }
}
