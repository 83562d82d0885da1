import CBOR
import Foundation

// Minimal RHP structures for the vectors (the real ones live in RuntimeHostProtocol). They are
// strict where the vectors recommend rejection: unknown keys, unknown or missing body variants,
// message types other than 1 and 2, malformed namespaces.

struct ModelError: Error, CustomStringConvertible {
    let description: String
}

/// Decodes `T` after checking that the map holds only the keys `T` knows.
struct Strict<T: Codable & Equatable & KnownKeys>: Codable, Equatable {
    var value: T

    init(_ value: T) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CBORCodingKey.self)
        for key in container.allKeys where !T.knownKeys.contains(key.stringValue) {
            throw ModelError(description: "unknown key \(key.stringValue)")
        }
        value = try T(from: decoder)
    }

    func encode(to encoder: any Encoder) throws {
        try value.encode(to: encoder)
    }
}

protocol KnownKeys {
    static var knownKeys: Set<String> { get }
}

struct Envelope: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["id", "body", "message_type"]

    var id: UInt64
    var body: Body
    var messageType: UInt8

    enum CodingKeys: String, CodingKey {
        case messageType = "message_type"
        case body
        case id
    }

    init(id: UInt64, body: Body, messageType: UInt8) {
        self.id = id
        self.body = body
        self.messageType = messageType
    }

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(UInt64.self, forKey: .id)
        body = try container.decode(Body.self, forKey: .body)
        messageType = try container.decode(UInt8.self, forKey: .messageType)
        guard messageType == 1 || messageType == 2 else {
            throw ModelError(description: "message_type \(messageType) is neither request nor response")
        }
    }
}

/// The body: a map with exactly one key naming the variant.
enum Body: Codable, Equatable {
    case unit(String)
    case error(Strict<ErrorPayload>)
    case runtimeInfoRequest(Strict<RuntimeInfoRequest>)
    case runtimeInfoResponse(Strict<RuntimeInfoResponse>)
    case localRPCRequest(Strict<LocalRPCRequest>)
    case localRPCResponse(Strict<LocalRPCResponse>)
    case storageSetRequest(Strict<StorageSetRequest>)
    case storageGetResponse(Strict<StorageGetResponse>)
    case genesisHeightResponse(Strict<HeightPayload>)
    case consensusSyncRequest(Strict<HeightPayload>)
    case queryResponse(Strict<QueryResponse>)

    static let unitVariants: Set<String> = [
        "Empty", "RuntimePingRequest", "RuntimeAbortRequest", "RuntimeAbortResponse", "RuntimeShutdownRequest",
        "HostLocalStorageSetResponse", "HostIdentityRequest",
    ]

    init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CBORCodingKey.self)
        let keys = container.allKeys
        guard keys.count == 1, let key = keys.first else {
            throw ModelError(description: "body has \(keys.count) variants")
        }
        switch key.stringValue {
        case let name where Self.unitVariants.contains(name):
            _ = try container.decode(Strict<Unit>.self, forKey: key)
            self = .unit(name)
        case "Error": self = .error(try container.decode(Strict<ErrorPayload>.self, forKey: key))
        case "RuntimeInfoRequest": self = .runtimeInfoRequest(try container.decode(Strict<RuntimeInfoRequest>.self, forKey: key))
        case "RuntimeInfoResponse": self = .runtimeInfoResponse(try container.decode(Strict<RuntimeInfoResponse>.self, forKey: key))
        case "RuntimeLocalRPCCallRequest": self = .localRPCRequest(try container.decode(Strict<LocalRPCRequest>.self, forKey: key))
        case "RuntimeLocalRPCCallResponse": self = .localRPCResponse(try container.decode(Strict<LocalRPCResponse>.self, forKey: key))
        case "HostLocalStorageSetRequest": self = .storageSetRequest(try container.decode(Strict<StorageSetRequest>.self, forKey: key))
        case "HostLocalStorageGetResponse": self = .storageGetResponse(try container.decode(Strict<StorageGetResponse>.self, forKey: key))
        case "HostFetchGenesisHeightResponse": self = .genesisHeightResponse(try container.decode(Strict<HeightPayload>.self, forKey: key))
        case "RuntimeConsensusSyncRequest": self = .consensusSyncRequest(try container.decode(Strict<HeightPayload>.self, forKey: key))
        case "RuntimeQueryResponse": self = .queryResponse(try container.decode(Strict<QueryResponse>.self, forKey: key))
        default: throw ModelError(description: "unknown body variant \(key.stringValue)")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CBORCodingKey.self)
        switch self {
        case .unit(let name): try container.encode(Unit(), forKey: CBORCodingKey(name))
        case .error(let payload): try container.encode(payload, forKey: CBORCodingKey("Error"))
        case .runtimeInfoRequest(let payload): try container.encode(payload, forKey: CBORCodingKey("RuntimeInfoRequest"))
        case .runtimeInfoResponse(let payload): try container.encode(payload, forKey: CBORCodingKey("RuntimeInfoResponse"))
        case .localRPCRequest(let payload): try container.encode(payload, forKey: CBORCodingKey("RuntimeLocalRPCCallRequest"))
        case .localRPCResponse(let payload): try container.encode(payload, forKey: CBORCodingKey("RuntimeLocalRPCCallResponse"))
        case .storageSetRequest(let payload): try container.encode(payload, forKey: CBORCodingKey("HostLocalStorageSetRequest"))
        case .storageGetResponse(let payload): try container.encode(payload, forKey: CBORCodingKey("HostLocalStorageGetResponse"))
        case .genesisHeightResponse(let payload): try container.encode(payload, forKey: CBORCodingKey("HostFetchGenesisHeightResponse"))
        case .consensusSyncRequest(let payload): try container.encode(payload, forKey: CBORCodingKey("RuntimeConsensusSyncRequest"))
        case .queryResponse(let payload): try container.encode(payload, forKey: CBORCodingKey("RuntimeQueryResponse"))
        }
    }
}

/// A payload without fields: `{}`.
struct Unit: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = []
}

struct ErrorPayload: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["module", "code", "message"]

    @OmitEmpty var module: String = ""
    @OmitEmpty var code: UInt32 = 0
    @OmitEmpty var message: String = ""
}

struct Version: Codable, Equatable, Hashable, EmptyRepresentable {
    static var emptyValue: Version { Version() }

    @OmitEmpty var major: UInt16 = 0
    @OmitEmpty var minor: UInt16 = 0
    @OmitEmpty var patch: UInt16 = 0
}

/// A 32-byte runtime id whose flag word only uses the test and key-manager bits.
struct Namespace: Codable, Equatable {
    var bytes: Data

    init(bytes: Data) { self.bytes = bytes }

    init(from decoder: any Decoder) throws {
        bytes = try decoder.singleValueContainer().decode(Data.self)
        guard bytes.count == 32, bytes[0] & 0x3f == 0, bytes[1..<8].allSatisfy({ $0 == 0 }) else {
            throw ModelError(description: "malformed namespace")
        }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(bytes)
    }
}

struct RuntimeInfoRequest: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = [
        "runtime_id", "local_config", "consensus_backend", "consensus_chain_context", "consensus_protocol_version",
    ]

    var runtimeID: Namespace
    @OmitEmpty var localConfig: [String: CBORValue] = [:]
    var consensusBackend: String
    var consensusChainContext: String
    var consensusProtocolVersion: Version

    enum CodingKeys: String, CodingKey {
        case consensusProtocolVersion = "consensus_protocol_version"
        case consensusChainContext = "consensus_chain_context"
        case consensusBackend = "consensus_backend"
        case localConfig = "local_config"
        case runtimeID = "runtime_id"
    }
}

struct RuntimeInfoResponse: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["features", "runtime_version", "protocol_version"]

    @OmitEmpty var features: Strict<Features> = Strict(Features())
    var runtimeVersion: Version
    var protocolVersion: Version

    init(features: Features = Features(), runtimeVersion: Version, protocolVersion: Version) {
        self.features = Strict(features)
        self.runtimeVersion = runtimeVersion
        self.protocolVersion = protocolVersion
    }

    enum CodingKeys: String, CodingKey {
        case protocolVersion = "protocol_version"
        case runtimeVersion = "runtime_version"
        case features
    }
}

extension Strict: EmptyRepresentable where T: EmptyRepresentable {
    static var emptyValue: Strict { Strict(T.emptyValue) }
    var isEmptyValue: Bool { value.isEmptyValue }
}

struct Features: Codable, Equatable, KnownKeys, EmptyRepresentable {
    static let knownKeys: Set<String> = [
        "schedule_control", "endorsed_capability_tee", "key_manager_status_updates", "key_manager_quote_policy_updates",
    ]
    static var emptyValue: Features { Features() }

    @OmitEmpty var scheduleControl: ScheduleControl? = nil
    @OmitEmpty var endorsedCapabilityTEE: Bool = false
    @OmitEmpty var keyManagerStatusUpdates: Bool = false
    @OmitEmpty var keyManagerQuotePolicyUpdates: Bool = false

    enum CodingKeys: String, CodingKey {
        case scheduleControl = "schedule_control"
        case endorsedCapabilityTEE = "endorsed_capability_tee"
        case keyManagerStatusUpdates = "key_manager_status_updates"
        case keyManagerQuotePolicyUpdates = "key_manager_quote_policy_updates"
    }
}

struct ScheduleControl: Codable, Equatable {
    var initialBatchSize: UInt32

    enum CodingKeys: String, CodingKey {
        case initialBatchSize = "initial_batch_size"
    }
}

/// Go `[]byte` without omitempty: nil is written as null.
struct NullableBytes: Codable, Equatable {
    var value: Data?

    init(_ value: Data?) { self.value = value }

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        value = container.decodeNil() ? nil : try container.decode(Data.self)
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let value { try container.encode(value) } else { try container.encodeNil() }
    }
}

struct LocalRPCRequest: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["request"]
    var request: NullableBytes
}

struct LocalRPCResponse: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["response"]
    var response: NullableBytes
}

struct StorageSetRequest: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["key", "value"]
    var key: NullableBytes
    var value: NullableBytes
}

struct StorageGetResponse: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["value"]
    var value: NullableBytes
}

struct HeightPayload: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["height"]
    var height: UInt64
}

struct QueryResponse: Codable, Equatable, KnownKeys {
    static let knownKeys: Set<String> = ["data"]
    @OmitEmpty var data: Data = Data()
}

typealias StrictEnvelope = Strict<Envelope>
