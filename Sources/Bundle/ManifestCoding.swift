#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CBOR

// MARK: - JSON (what upstream's encoding/json reads)

/// Go-like JSON reading: a missing key and `null` both leave the zero value; unknown keys are ignored.
private struct GoKeys: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension KeyedDecodingContainer where Key == GoKeys {
    fileprivate func value<T: Decodable>(_ key: String, _ type: T.Type = T.self) throws -> T? {
        try decodeIfPresent(T.self, forKey: GoKeys(key))
    }
}

/// A 32-byte hash or namespace as `UnmarshalText` reads it: hex, else (hashes only) base64.
private func bytes32(_ text: String, base64Fallback: Bool, what: String) throws -> [UInt8] {
    if let bytes = Hex.decode(text, count: 32) { return bytes }
    if base64Fallback, let data = Data(base64Encoded: text), data.count == 32 { return Array(data) }
    throw BundleError(.invalidManifest, "\(what): \"\(text.prefix(80))\" is not a 32-byte hex value")
}

struct JSONManifest: Decodable {
    var manifest: BundleManifest

    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: GoKeys.self)
        var digests: [String: [UInt8]]?
        if let raw = try c.value("digests", [String: String].self) {
            digests = try raw.reduce(into: [:]) { result, pair in
                result[pair.key] = try bytes32(pair.value, base64Fallback: true, what: "digests.\(pair.key)")
            }
        }
        let components = try c.value("components", [JSONComponent?].self) ?? []
        manifest = BundleManifest(
            name: try c.value("name") ?? "",
            id: try c.value("id", String.self).map { try bytes32($0, base64Fallback: false, what: "id") }
                ?? [UInt8](repeating: 0, count: 32),
            version: try c.value("version", JSONVersion.self)?.version ?? ComponentVersion(),
            executable: try c.value("executable") ?? "",
            sgx: try c.value("sgx", JSONSGX.self)?.sgx,
            components: try components.enumerated().map { index, item in
                guard let item else { throw BundleError(.invalidManifest, "components[\(index)] is null") }
                return item.component
            },
            digests: digests
        )
    }
}

struct JSONVersion: Decodable {
    var version: ComponentVersion
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: GoKeys.self)
        version = ComponentVersion(major: try c.value("major") ?? 0, minor: try c.value("minor") ?? 0, patch: try c.value("patch") ?? 0)
    }
}

struct JSONSGX: Decodable {
    var sgx: SGXMetadata
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: GoKeys.self)
        sgx = SGXMetadata(executable: try c.value("executable") ?? "", signature: try c.value("signature") ?? "")
    }
}

struct JSONComponent: Decodable {
    var component: Component
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: GoKeys.self)
        var elf: ELFMetadata?
        if c.contains(GoKeys("elf")), try !c.decodeNil(forKey: GoKeys("elf")) {
            let e = try c.nestedContainer(keyedBy: GoKeys.self, forKey: GoKeys("elf"))
            elf = ELFMetadata(executable: try e.value("executable") ?? "")
        }
        component = Component(
            kind: try c.value("kind") ?? "",
            name: try c.value("name") ?? "",
            version: try c.value("version", JSONVersion.self)?.version ?? ComponentVersion(),
            executable: try c.value("executable") ?? "",
            elf: elf,
            sgx: try c.value("sgx", JSONSGX.self)?.sgx,
            tdx: try c.value("tdx", JSONTDX.self)?.tdx,
            identities: try (c.value("identity", [JSONIdentity].self) ?? []).map(\.identity),
            disabled: try c.value("disabled") ?? false
        )
    }
}

struct JSONTDX: Decodable {
    var tdx: TDXMetadata
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: GoKeys.self)
        var memory: UInt64 = 0, cpus: UInt8 = 0
        var gpu: TDXMetadata.GPU?
        if c.contains(GoKeys("resources")), try !c.decodeNil(forKey: GoKeys("resources")) {
            let r = try c.nestedContainer(keyedBy: GoKeys.self, forKey: GoKeys("resources"))
            memory = try r.value("memory") ?? 0
            cpus = try r.value("cpus") ?? 0
            if r.contains(GoKeys("gpu")), try !r.decodeNil(forKey: GoKeys("gpu")) {
                let g = try r.nestedContainer(keyedBy: GoKeys.self, forKey: GoKeys("gpu"))
                gpu = TDXMetadata.GPU(model: try g.value("model") ?? "", count: try g.value("count") ?? 0)
            }
        }
        tdx = TDXMetadata(
            firmware: try c.value("firmware") ?? "", kernel: try c.value("kernel") ?? "",
            initrd: try c.value("initrd") ?? "", extraKernelOptions: try c.value("extra_kernel_options") ?? [],
            stage2Image: try c.value("stage2_image") ?? "", stage2Format: try c.value("stage2_format") ?? "",
            stage2Persist: try c.value("stage2_persist") ?? false, memory: memory, cpus: cpus, gpu: gpu
        )
    }
}

struct JSONIdentity: Decodable {
    var identity: EnclaveIdentity
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: GoKeys.self)
        var mrEnclave = [UInt8](repeating: 0, count: 32), mrSigner = mrEnclave
        if let text = try c.value("enclave", String.self) {
            // EnclaveIdentity.UnmarshalText: base64 of MRENCLAVE ‖ MRSIGNER.
            guard let data = Data(base64Encoded: text), data.count == 64 else {
                throw BundleError(.invalidManifest, "identity.enclave is not base64 of 64 bytes")
            }
            mrEnclave = Array(data.prefix(32))
            mrSigner = Array(data.suffix(32))
        }
        identity = EnclaveIdentity(hypervisor: try c.value("hypervisor") ?? "", mrEnclave: mrEnclave, mrSigner: mrSigner)
    }
}

// MARK: - CBOR (upstream's Go structs, field by field, as fxamacker/cbor encodes them for hash.NewFrom)

struct WireVersion: Codable, EmptyRepresentable, Hashable {
    @OmitEmpty var major: UInt16 = 0
    @OmitEmpty var minor: UInt16 = 0
    @OmitEmpty var patch: UInt16 = 0

    static var emptyValue: WireVersion { WireVersion() }

    init() {}
    init(_ version: ComponentVersion) {
        major = version.major
        minor = version.minor
        patch = version.patch
    }
}

struct WireELF: Codable, Hashable {
    var executable: String
}

struct WireSGX: Codable, Hashable {
    var executable: String
    var signature: String
    init(_ sgx: SGXMetadata) {
        executable = sgx.executable
        signature = sgx.signature
    }
}

struct WireGPU: Codable, Hashable {
    @OmitEmpty var model: String = ""
    var count: UInt8
}

struct WireResources: Codable, Hashable {
    var memory: UInt64
    var cpus: UInt8
    @OmitEmpty var gpu: WireGPU? = nil
}

struct WireTDX: Codable, Hashable {
    var firmware: String
    @OmitEmpty var kernel: String = ""
    @OmitEmpty var initrd: String = ""
    @OmitEmpty var extraKernelOptions: [String] = []
    @OmitEmpty var stage2Image: String = ""
    @OmitEmpty var stage2Format: String = ""
    @OmitEmpty var stage2Persist: Bool = false
    var resources: WireResources

    enum CodingKeys: String, CodingKey {
        case firmware, kernel, initrd, extraKernelOptions = "extra_kernel_options", stage2Image = "stage2_image"
        case stage2Format = "stage2_format", stage2Persist = "stage2_persist", resources
    }

    init(_ tdx: TDXMetadata) {
        firmware = tdx.firmware
        kernel = tdx.kernel
        initrd = tdx.initrd
        extraKernelOptions = tdx.extraKernelOptions
        stage2Image = tdx.stage2Image
        stage2Format = tdx.stage2Format
        stage2Persist = tdx.stage2Persist
        resources = WireResources(memory: tdx.memory, cpus: tdx.cpus, gpu: tdx.gpu.map { WireGPU(model: $0.model, count: $0.count) })
    }
}

struct WireEnclave: Codable, Hashable {
    var mrEnclave: Data
    var mrSigner: Data
    enum CodingKeys: String, CodingKey { case mrEnclave = "mr_enclave", mrSigner = "mr_signer" }
}

struct WireIdentity: Codable, Hashable {
    @OmitEmpty var hypervisor: String = ""
    var enclave: WireEnclave
}

struct WireComponent: Codable, Hashable {
    var kind: String
    @OmitEmpty var name: String = ""
    @OmitEmpty var version: WireVersion = WireVersion()
    @OmitEmpty var executable: String = ""
    @OmitEmpty var elf: WireELF? = nil
    @OmitEmpty var sgx: WireSGX? = nil
    @OmitEmpty var tdx: WireTDX? = nil
    @OmitEmpty var identity: [WireIdentity] = []
    @OmitEmpty var disabled: Bool = false

    init(_ component: Component) {
        kind = component.kind
        name = component.name
        version = WireVersion(component.version)
        executable = component.executable
        elf = component.elf.map { WireELF(executable: $0.executable) }
        sgx = component.sgx.map(WireSGX.init)
        tdx = component.tdx.map(WireTDX.init)
        identity = component.identities.map {
            WireIdentity(hypervisor: $0.hypervisor, enclave: WireEnclave(mrEnclave: Data($0.mrEnclave), mrSigner: Data($0.mrSigner)))
        }
        disabled = component.disabled
    }
}

/// Go's non-omitempty map: a nil map encodes as CBOR null.
struct WireDigests: Codable, Hashable {
    var digests: [String: Data]?
    init(digests: [String: Data]?) { self.digests = digests }
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        digests = container.decodeNil() ? nil : try container.decode([String: Data].self)
    }
    func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        if let digests { try container.encode(digests) } else { try container.encodeNil() }
    }
}

struct WireManifest: Codable, Hashable {
    @OmitEmpty var name: String = ""
    var id: Data
    @OmitEmpty var version: WireVersion = WireVersion()
    @OmitEmpty var executable: String = ""
    @OmitEmpty var sgx: WireSGX? = nil
    @OmitEmpty var components: [WireComponent] = []
    var digests: WireDigests

    init(_ manifest: BundleManifest) {
        name = manifest.name
        id = Data(manifest.id)
        version = WireVersion(manifest.version)
        executable = manifest.executable
        sgx = manifest.sgx.map(WireSGX.init)
        components = manifest.components.map(WireComponent.init)
        digests = WireDigests(digests: manifest.digests.map { $0.mapValues { Data($0) } })
    }
}
