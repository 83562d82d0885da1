#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import RuntimeProvisioner
import SandboxDaemon

/// A client's bytes through the control API: NIO's HTTP/1.1 parser, then every complete request through
/// the real router, handlers and spec validator (the registry's backend creates no runtimes). Every
/// answer must be a JSON document.
enum HTTPHarness {
    /// Creates nothing: provisioning gets as far as validation and the registry's checks.
    struct NoBackend: RuntimeBackend {
        func makeRuntime(
            _ spec: RuntimeSpecification, onNotice: @escaping @Sendable (RuntimeNotice) -> Void
        ) throws -> any ManagedRuntime {
            throw DaemonError(.runtimeFailure, "fuzzing: no runtimes")
        }
    }

    static let router: Router = {
        let logger = Logger(label: "fuzz-http", factory: { _ in SwiftLogNoOpLogHandler() })
        var template = Array("/tmp/sandboxd-fuzz-XXXXXX".utf8CString)
        guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else { fatalError("mkdtemp") }
        let directory = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let store = try? StateStore(stateDirectory: directory + "/state", logger: logger) else { fatalError("state store") }
        let registry = Registry(
            backend: NoBackend(), store: store, events: EventHub(), policy: .init(allowNone: false), logger: logger
        )
        return Router(api: ControlAPI(registry: registry, validator: SpecValidator(defaultBackend: .namespaces)))
    }()

    static let maxBody = 1 << 20

    static func run(_ bytes: UnsafeRawBufferPointer) {
        let channel = EmbeddedChannel()
        guard (try? channel.pipeline.syncOperations.addHandler(
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes))
        )) != nil else { fatalError("HTTP: pipeline") }
        _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
        var requests: [APIRequest] = []
        var head: HTTPRequestHead?
        var body: [UInt8] = []
        while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
            switch part {
            case .head(let next):
                head = next
                body = []
            case .body(let buffer):
                if body.count + buffer.readableBytes <= maxBody { body += buffer.readableBytesView }
            case .end:
                if let head { requests.append(APIRequest(method: head.method, uri: head.uri, headers: head.headers, body: body)) }
                head = nil
            }
        }
        _ = try? channel.finish()
        for request in requests.prefix(8) {
            let response = blocking { await router.dispatch(request) }
            guard case .json(_, let document, _) = response else { continue }
            guard (try? JSONSerialization.jsonObject(with: Data(document))) != nil else {
                fatalError("HTTP: an answer is not JSON: \(String(decoding: document, as: UTF8.self))")
            }
        }
    }
}
