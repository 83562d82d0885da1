public import CBOR

/// The host's handshake request (`RuntimeInfoRequest`), always the first request on a connection.
public struct RuntimeInfoRequest: Sendable, Hashable, Codable {
    public var runtimeID: Namespace
    /// Node-local runtime configuration; left out of the wire form when empty. Keep it to text keys
    /// and no floats if a Rust runtime must read it.
    public var localConfig: [String: CBORValue]
    /// `"tendermint"` for every current network.
    public var consensusBackend: String
    /// 64 lowercase hex characters.
    public var consensusChainContext: String
    public var consensusProtocolVersion: Version

    public init(
        runtimeID: Namespace,
        localConfig: [String: CBORValue] = [:],
        consensusBackend: String = "tendermint",
        consensusChainContext: String,
        consensusProtocolVersion: Version
    ) {
        self.runtimeID = runtimeID
        self.localConfig = localConfig
        self.consensusBackend = consensusBackend
        self.consensusChainContext = consensusChainContext
        self.consensusProtocolVersion = consensusProtocolVersion
    }

    private static let keys: Set<String> = [
        "runtime_id", "local_config", "consensus_backend", "consensus_chain_context", "consensus_protocol_version",
    ]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(Self.keys, in: "RuntimeInfoRequest")
        runtimeID = try container.decodeField(Namespace.self, "runtime_id", default: .zero)
        localConfig = try container.decodeField([String: CBORValue].self, "local_config", default: [:])
        consensusBackend = try container.decodeField(String.self, "consensus_backend", default: "")
        consensusChainContext = try container.decodeField(String.self, "consensus_chain_context", default: "")
        consensusProtocolVersion = try container.decodeField(Version.self, "consensus_protocol_version", default: Version())
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(runtimeID, forKey: AnyCodingKey("runtime_id"))
        if !localConfig.isEmpty { try container.encode(localConfig, forKey: AnyCodingKey("local_config")) }
        try container.encode(consensusBackend, forKey: AnyCodingKey("consensus_backend"))
        try container.encode(consensusChainContext, forKey: AnyCodingKey("consensus_chain_context"))
        try container.encode(consensusProtocolVersion, forKey: AnyCodingKey("consensus_protocol_version"))
    }
}

/// The runtime's handshake answer (`RuntimeInfoResponse`).
public struct RuntimeInfoResponse: Sendable, Hashable, Codable {
    /// The RHP version the runtime speaks; the host checks the major part only.
    public var protocolVersion: Version
    /// The version of the runtime binary.
    public var runtimeVersion: Version
    /// Optional capabilities; left out of the wire form when empty.
    public var features: Features

    public init(protocolVersion: Version = .rhp, runtimeVersion: Version, features: Features = Features()) {
        self.protocolVersion = protocolVersion
        self.runtimeVersion = runtimeVersion
        self.features = features
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(["features", "runtime_version", "protocol_version"], in: "RuntimeInfoResponse")
        features = try container.decodeField(Features.self, "features", default: Features())
        runtimeVersion = try container.decodeField(Version.self, "runtime_version", default: Version())
        protocolVersion = try container.decodeField(Version.self, "protocol_version", default: Version())
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        if !features.isEmpty { try container.encode(features, forKey: AnyCodingKey("features")) }
        try container.encode(runtimeVersion, forKey: AnyCodingKey("runtime_version"))
        try container.encode(protocolVersion, forKey: AnyCodingKey("protocol_version"))
    }
}

/// Optional runtime capabilities announced in the handshake; every field is left out when empty.
public struct Features: Sendable, Hashable, Codable {
    /// Present when the runtime schedules its own batches.
    public var scheduleControl: ScheduleControl?
    public var endorsedCapabilityTEE: Bool
    public var keyManagerStatusUpdates: Bool
    public var keyManagerQuotePolicyUpdates: Bool

    public init(
        scheduleControl: ScheduleControl? = nil,
        endorsedCapabilityTEE: Bool = false,
        keyManagerStatusUpdates: Bool = false,
        keyManagerQuotePolicyUpdates: Bool = false
    ) {
        self.scheduleControl = scheduleControl
        self.endorsedCapabilityTEE = endorsedCapabilityTEE
        self.keyManagerStatusUpdates = keyManagerStatusUpdates
        self.keyManagerQuotePolicyUpdates = keyManagerQuotePolicyUpdates
    }

    /// True when nothing would be written (Go's `omitempty` on the whole struct).
    public var isEmpty: Bool {
        scheduleControl == nil && !endorsedCapabilityTEE && !keyManagerStatusUpdates && !keyManagerQuotePolicyUpdates
    }

    private static let keys: Set<String> = [
        "schedule_control", "endorsed_capability_tee", "key_manager_status_updates", "key_manager_quote_policy_updates",
    ]

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(Self.keys, in: "Features")
        scheduleControl = try container.decodeField(ScheduleControl?.self, "schedule_control", default: nil)
        endorsedCapabilityTEE = try container.decodeField(Bool.self, "endorsed_capability_tee", default: false)
        keyManagerStatusUpdates = try container.decodeField(Bool.self, "key_manager_status_updates", default: false)
        keyManagerQuotePolicyUpdates = try container.decodeField(
            Bool.self, "key_manager_quote_policy_updates", default: false)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        if let scheduleControl { try container.encode(scheduleControl, forKey: AnyCodingKey("schedule_control")) }
        if endorsedCapabilityTEE { try container.encode(true, forKey: AnyCodingKey("endorsed_capability_tee")) }
        if keyManagerStatusUpdates { try container.encode(true, forKey: AnyCodingKey("key_manager_status_updates")) }
        if keyManagerQuotePolicyUpdates {
            try container.encode(true, forKey: AnyCodingKey("key_manager_quote_policy_updates"))
        }
    }
}

/// `Features.schedule_control`: the runtime schedules its own batches.
public struct ScheduleControl: Sendable, Hashable, Codable {
    public var initialBatchSize: UInt32

    public init(initialBatchSize: UInt32) { self.initialBatchSize = initialBatchSize }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(["initial_batch_size"], in: "ScheduleControl")
        initialBatchSize = try container.decodeField(UInt32.self, "initial_batch_size", default: 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        try container.encode(initialBatchSize, forKey: AnyCodingKey("initial_batch_size"))
    }
}
