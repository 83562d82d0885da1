/// The name of every body variant in RHP 5.1 (RHP.md §12), spelled exactly as on the wire.
public enum BodyKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case empty = "Empty"
        case error = "Error"
        case runtimeInfoRequest = "RuntimeInfoRequest"
        case runtimeInfoResponse = "RuntimeInfoResponse"
        case runtimePingRequest = "RuntimePingRequest"
        case runtimeShutdownRequest = "RuntimeShutdownRequest"
        case runtimeAbortRequest = "RuntimeAbortRequest"
        case runtimeAbortResponse = "RuntimeAbortResponse"
        case runtimeCapabilityTEERakInitRequest = "RuntimeCapabilityTEERakInitRequest"
        case runtimeCapabilityTEERakInitResponse = "RuntimeCapabilityTEERakInitResponse"
        case runtimeCapabilityTEERakReportRequest = "RuntimeCapabilityTEERakReportRequest"
        case runtimeCapabilityTEERakReportResponse = "RuntimeCapabilityTEERakReportResponse"
        case runtimeCapabilityTEERakAvrRequest = "RuntimeCapabilityTEERakAvrRequest"
        case runtimeCapabilityTEERakAvrResponse = "RuntimeCapabilityTEERakAvrResponse"
        case runtimeCapabilityTEERakQuoteRequest = "RuntimeCapabilityTEERakQuoteRequest"
        case runtimeCapabilityTEERakQuoteResponse = "RuntimeCapabilityTEERakQuoteResponse"
        case runtimeCapabilityTEEUpdateEndorsementRequest = "RuntimeCapabilityTEEUpdateEndorsementRequest"
        case runtimeCapabilityTEEUpdateEndorsementResponse = "RuntimeCapabilityTEEUpdateEndorsementResponse"
        case runtimeRPCCallRequest = "RuntimeRPCCallRequest"
        case runtimeRPCCallResponse = "RuntimeRPCCallResponse"
        case runtimeLocalRPCCallRequest = "RuntimeLocalRPCCallRequest"
        case runtimeLocalRPCCallResponse = "RuntimeLocalRPCCallResponse"
        case runtimeCheckTxBatchRequest = "RuntimeCheckTxBatchRequest"
        case runtimeCheckTxBatchResponse = "RuntimeCheckTxBatchResponse"
        case runtimeExecuteTxBatchRequest = "RuntimeExecuteTxBatchRequest"
        case runtimeExecuteTxBatchResponse = "RuntimeExecuteTxBatchResponse"
        case runtimeKeyManagerStatusUpdateRequest = "RuntimeKeyManagerStatusUpdateRequest"
        case runtimeKeyManagerStatusUpdateResponse = "RuntimeKeyManagerStatusUpdateResponse"
        case runtimeKeyManagerQuotePolicyUpdateRequest = "RuntimeKeyManagerQuotePolicyUpdateRequest"
        case runtimeKeyManagerQuotePolicyUpdateResponse = "RuntimeKeyManagerQuotePolicyUpdateResponse"
        case runtimeQueryRequest = "RuntimeQueryRequest"
        case runtimeQueryResponse = "RuntimeQueryResponse"
        case runtimeConsensusSyncRequest = "RuntimeConsensusSyncRequest"
        case runtimeConsensusSyncResponse = "RuntimeConsensusSyncResponse"
        case runtimeNotifyRequest = "RuntimeNotifyRequest"
        case runtimeNotifyResponse = "RuntimeNotifyResponse"
        case hostRPCCallRequest = "HostRPCCallRequest"
        case hostRPCCallResponse = "HostRPCCallResponse"
        case hostSubmitPeerFeedbackRequest = "HostSubmitPeerFeedbackRequest"
        case hostSubmitPeerFeedbackResponse = "HostSubmitPeerFeedbackResponse"
        case hostStorageSyncRequest = "HostStorageSyncRequest"
        case hostStorageSyncResponse = "HostStorageSyncResponse"
        case hostLocalStorageGetRequest = "HostLocalStorageGetRequest"
        case hostLocalStorageGetResponse = "HostLocalStorageGetResponse"
        case hostLocalStorageSetRequest = "HostLocalStorageSetRequest"
        case hostLocalStorageSetResponse = "HostLocalStorageSetResponse"
        case hostFetchConsensusBlockRequest = "HostFetchConsensusBlockRequest"
        case hostFetchConsensusBlockResponse = "HostFetchConsensusBlockResponse"
        case hostFetchConsensusValidatorsRequest = "HostFetchConsensusValidatorsRequest"
        case hostFetchConsensusValidatorsResponse = "HostFetchConsensusValidatorsResponse"
        case hostFetchConsensusEventsRequest = "HostFetchConsensusEventsRequest"
        case hostFetchConsensusEventsResponse = "HostFetchConsensusEventsResponse"
        case hostFetchTxBatchRequest = "HostFetchTxBatchRequest"
        case hostFetchTxBatchResponse = "HostFetchTxBatchResponse"
        case hostFetchGenesisHeightRequest = "HostFetchGenesisHeightRequest"
        case hostFetchGenesisHeightResponse = "HostFetchGenesisHeightResponse"
        case hostFetchBlockMetadataTxRequest = "HostFetchBlockMetadataTxRequest"
        case hostFetchBlockMetadataTxResponse = "HostFetchBlockMetadataTxResponse"
        case hostProveFreshnessRequest = "HostProveFreshnessRequest"
        case hostProveFreshnessResponse = "HostProveFreshnessResponse"
        case hostIdentityRequest = "HostIdentityRequest"
        case hostIdentityResponse = "HostIdentityResponse"
        case hostSubmitTxRequest = "HostSubmitTxRequest"
        case hostSubmitTxResponse = "HostSubmitTxResponse"
        case hostRegisterNotifyRequest = "HostRegisterNotifyRequest"
        case hostRegisterNotifyResponse = "HostRegisterNotifyResponse"
    public var description: String { rawValue }

    /// True for the `…Request` variants.
    public var isRequest: Bool { rawValue.hasSuffix("Request") }

    /// True for variants that ``Body`` models with a typed payload; the others travel as raw CBOR.
    public var isTyped: Bool {
        switch self {
        case .empty, .error, .runtimeInfoRequest, .runtimeInfoResponse, .runtimePingRequest,
            .runtimeShutdownRequest, .runtimeAbortRequest, .runtimeAbortResponse:
            true
        default:
            false
        }
    }
}

/// A set of body kinds, as a bit set (no allocation, cheap to test on every frame).
struct BodyKindSet: Sendable, Hashable {
    private var bits: (UInt64, UInt64) = (0, 0)

    static let none = BodyKindSet()

    init() {}

    init(_ kinds: some Sequence<BodyKind>) {
        for kind in kinds { insert(kind) }
    }

    private static let index: [BodyKind: Int] = Dictionary(
        uniqueKeysWithValues: BodyKind.allCases.enumerated().map { ($1, $0) })

    mutating func insert(_ kind: BodyKind) {
        let position = Self.index[kind]!
        if position < 64 { bits.0 |= 1 << UInt64(position) } else { bits.1 |= 1 << UInt64(position - 64) }
    }

    func contains(_ kind: BodyKind) -> Bool {
        if bits == (0, 0) { return false }
        let position = Self.index[kind]!
        return position < 64 ? bits.0 & (1 << UInt64(position)) != 0 : bits.1 & (1 << UInt64(position - 64)) != 0
    }

    static func == (lhs: BodyKindSet, rhs: BodyKindSet) -> Bool { lhs.bits == rhs.bits }
    func hash(into hasher: inout Hasher) { hasher.combine(bits.0); hasher.combine(bits.1) }

    /// What a host never reads from its runtime: every body except the ones its own calls expect
    /// back (`Empty`, `Error`, `RuntimeInfoResponse`, `RuntimeAbortResponse`) and the unit requests
    /// (whose payload must be `{}` anyway). A runtime's requests are answered without their payload.
    static let unusedByHost = BodyKindSet(BodyKind.allCases.filter {
        ![.empty, .error, .runtimeInfoResponse, .runtimeAbortResponse,
          .runtimePingRequest, .runtimeShutdownRequest, .runtimeAbortRequest].contains($0)
    })
}
