import CBOR
import Foundation

@testable import RuntimeHostProtocol

/// The vectors' `decoded` view of a message: JSON objects, byte strings as `{"$bytes": hex}`.
enum JSONView {
    static func of(_ message: Message) throws -> [String: Any] {
        ["id": message.id, "body": [message.body.kind.rawValue: try payload(message.body)], "message_type": Int(message.messageType.rawValue)]
    }

    /// Sorted-key JSON text, for comparing views.
    static func canonical(_ object: Any) throws -> String {
        String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .fragmentsAllowed]), as: UTF8.self)
    }

    private static func payload(_ body: Body) throws -> Any {
        switch body {
        case .empty, .runtimePingRequest, .runtimeShutdownRequest, .runtimeAbortRequest, .runtimeAbortResponse:
            return [String: Any]()
        case .error(let error):
            var view: [String: Any] = [:]
            if error.code != 0 { view["code"] = Int(error.code) }
            if !error.module.isEmpty { view["module"] = error.module }
            if !error.message.isEmpty { view["message"] = error.message }
            return view
        case .runtimeInfoRequest(let request):
            var view: [String: Any] = [
                "runtime_id": ["$bytes": Hex.encode(request.runtimeID.bytes)],
                "consensus_backend": request.consensusBackend,
                "consensus_chain_context": request.consensusChainContext,
                "consensus_protocol_version": version(request.consensusProtocolVersion),
            ]
            if !request.localConfig.isEmpty { view["local_config"] = value(.map(request.localConfig)) }
            return view
        case .runtimeInfoResponse(let response):
            var view: [String: Any] = [
                "runtime_version": version(response.runtimeVersion),
                "protocol_version": version(response.protocolVersion),
            ]
            if !response.features.isEmpty {
                var features: [String: Any] = [:]
                if let control = response.features.scheduleControl {
                    features["schedule_control"] = ["initial_batch_size": Int(control.initialBatchSize)]
                }
                if response.features.endorsedCapabilityTEE { features["endorsed_capability_tee"] = true }
                if response.features.keyManagerStatusUpdates { features["key_manager_status_updates"] = true }
                if response.features.keyManagerQuotePolicyUpdates { features["key_manager_quote_policy_updates"] = true }
                view["features"] = features
            }
            return view
        case .raw(_, let raw):
            return value(try raw.decode(as: CBORValue.self))
        }
    }

    private static func version(_ version: Version) -> [String: Any] {
        var view: [String: Any] = [:]
        if version.major != 0 { view["major"] = Int(version.major) }
        if version.minor != 0 { view["minor"] = Int(version.minor) }
        if version.patch != 0 { view["patch"] = Int(version.patch) }
        return view
    }

    private static func value(_ value: CBORValue) -> Any {
        switch value {
        case .null, .undefined: NSNull()
        case .bool(let flag): flag
        case .unsigned(let number): number
        case .negative(let number): -1 - Int64(number)
        case .float(let number): number
        case .text(let text): text
        case .bytes(let bytes): ["$bytes": Hex.encode(bytes)]
        case .array(let items): items.map { Self.value($0) }
        case .map(let entries): entries.mapValues { Self.value($0) }
        }
    }
}
