#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import CBOR

/// A component version (`version.Version` upstream: three `uint16`s).
public struct ComponentVersion: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16
    public var patch: UInt16

    public init(major: UInt16 = 0, minor: UInt16 = 0, patch: UInt16 = 0) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    public var isZero: Bool { major == 0 && minor == 0 && patch == 0 }
    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }
}

/// A component identifier: `ronl`, or `rofl.NAME` (upstream's `component.ID` text form).
public struct ComponentID: Sendable, Hashable, CustomStringConvertible {
    public var kind: String
    public var name: String

    public static let ronl = ComponentID(kind: "ronl", name: "")

    public init(kind: String, name: String) {
        self.kind = kind
        self.name = name
    }

    /// Parses the text form as upstream's `ID.UnmarshalText` does.
    public init?(parsing text: String) {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        if parts.count == 2, parts[1].isEmpty { return nil }
        switch parts[0] {
        case "ronl":
            guard parts.count == 1 else { return nil }
            self = .ronl
        case "rofl":
            self.init(kind: "rofl", name: parts.count == 2 ? parts[1] : "")
        default:
            return nil
        }
    }

    public var isRONL: Bool { self == .ronl }
    /// `ronl` or `rofl.NAME`.
    public var text: String { name.isEmpty ? kind : "\(kind).\(name)" }
    /// Upstream's `String()`: `ronl` or `rofl (NAME)` (used in its error messages).
    public var description: String { name.isEmpty ? kind : "\(kind) (\(name))" }
}

public struct ELFMetadata: Sendable, Hashable {
    public var executable: String
}

public struct SGXMetadata: Sendable, Hashable {
    public var executable: String
    public var signature: String
}

public struct TDXMetadata: Sendable, Hashable {
    public struct GPU: Sendable, Hashable {
        public var model: String
        public var count: UInt8
    }

    public var firmware: String
    public var kernel: String
    public var initrd: String
    public var extraKernelOptions: [String]
    public var stage2Image: String
    public var stage2Format: String
    public var stage2Persist: Bool
    public var memory: UInt64
    public var cpus: UInt8
    public var gpu: GPU?
}

/// An expected enclave identity (`Identity` upstream).
public struct EnclaveIdentity: Sendable, Hashable {
    public var hypervisor: String
    public var mrEnclave: [UInt8]
    public var mrSigner: [UInt8]
}

/// One runtime component (upstream's `Component`).
public struct Component: Sendable, Hashable {
    /// `ronl` or `rofl`; anything else fails validation, as upstream.
    public var kind: String
    public var name: String
    public var version: ComponentVersion
    /// Deprecated upstream in favour of ``elf``.
    public var executable: String
    public var elf: ELFMetadata?
    public var sgx: SGXMetadata?
    public var tdx: TDXMetadata?
    public var identities: [EnclaveIdentity]
    public var disabled: Bool

    public var id: ComponentID { ComponentID(kind: kind, name: name) }

    /// The ELF program sandboxd runs: `elf.executable`, else `executable`; nil for SGX/TDX-only components.
    public var elfExecutable: String? {
        if let elf { return elf.executable.isEmpty ? nil : elf.executable }
        return executable.isEmpty ? nil : executable
    }

    /// Upstream's `IsNetworkAllowed`: off-chain logic (ROFL) gets the network, nothing else does.
    public var isNetworkAllowed: Bool { kind == "rofl" }

    /// `none`, `sgx` or `tdx` (upstream's `TEEKind`).
    public var teeKind: String { tdx != nil ? "tdx" : sgx != nil ? "sgx" : "none" }

    static let nameCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-".utf8)

    /// Upstream's `Component.Validate`, with its messages.
    func validate() throws(BundleError) {
        func fail(_ message: String) -> BundleError { BundleError(.validationFailed, message) }
        if sgx != nil, tdx != nil { throw fail("each component can only include metadata for a single TEE") }
        if let elf, elf.executable.isEmpty { throw fail("elf: executable must be set") }
        if let sgx, sgx.executable.isEmpty { throw fail("sgx: executable must be set") }
        if let tdx {
            if tdx.firmware.isEmpty { throw fail("tdx: firmware must be set") }
            if tdx.kernel.isEmpty, !tdx.stage2Image.isEmpty { throw fail("tdx: kernel must be set if stage 2 image is set") }
            if tdx.kernel.isEmpty, !tdx.initrd.isEmpty { throw fail("tdx: kernel must be set if initrd image is set") }
            if tdx.memory < 16 { throw fail("tdx: memory limit must be at least 16M") }
            if tdx.cpus < 1 { throw fail("tdx: vCPU count must be at least 1") }
            if let gpu = tdx.gpu, gpu.count < 1 { throw fail("tdx: GPU count must be at least 1") }
        }
        switch kind {
        case "ronl":
            if !name.isEmpty { throw fail("RONL component must have an empty name") }
            if executable.isEmpty, elf == nil { throw fail("RONL component must define an executable") }
            if disabled { throw fail("RONL component cannot be disabled") }
        case "rofl":
            let length = name.utf8.count
            if length < 3 { throw fail("ROFL component name must be at least 3 characters long") }
            if length > 128 { throw fail("ROFL component name must be at most 128 characters long") }
            if !name.utf8.allSatisfy(Self.nameCharacters.contains) {
                throw fail("ROFL component name is invalid (must satisfy: ^[a-zA-Z0-9_-]+$)")
            }
        default:
            throw fail("unknown component kind: '\(kind)'")
        }
    }
}

/// A bundle manifest (`META-INF/MANIFEST.MF`), as upstream's `Manifest` reads it.
public struct BundleManifest: Sendable, Hashable {
    public var name: String
    /// The runtime id (32 bytes).
    public var id: [UInt8]
    /// Legacy top-level version; when non-zero it is copied into the first RONL component on reading.
    public var version: ComponentVersion
    /// Legacy top-level RONL executable.
    public var executable: String
    /// Legacy top-level RONL SGX metadata.
    public var sgx: SGXMetadata?
    public var components: [Component]
    /// File name → SHA-512/256; nil when the JSON has no `digests` (encoded as CBOR null).
    public var digests: [String: [UInt8]]?

    public var idHex: String { Hex.encode(id) }

    /// Upstream's `IsLegacy`: the RONL component is defined at the top level.
    public var isLegacy: Bool { !executable.isEmpty || sgx != nil }

    /// The legacy top-level RONL as upstream synthesizes it (`GetComponentByID`).
    var legacyComponent: Component {
        Component(
            kind: "ronl", name: "", version: version, executable: "", elf: ELFMetadata(executable: executable),
            sgx: sgx, tdx: nil, identities: [], disabled: false
        )
    }

    /// The top-level (legacy) RONL, when the manifest is legacy.
    public var legacyRONL: Component? { isLegacy ? legacyComponent : nil }

    /// Upstream's `GetComponentByID`: the first component with the id, or the legacy RONL.
    public func component(_ id: ComponentID) -> Component? {
        if let found = components.first(where: { $0.id == id }) { return found }
        if id.isRONL, isLegacy { return legacyComponent }
        return nil
    }

    /// Every component a node could run: the legacy top-level RONL first, then the listed ones.
    public var availableComponents: [Component] {
        var all: [Component] = []
        if isLegacy, !components.contains(where: { $0.id.isRONL }) { all.append(legacyComponent) }
        var seen = Set<ComponentID>()
        for component in components where seen.insert(component.id).inserted { all.append(component) }
        return all
    }

    /// Upstream's `Manifest.Validate`.
    public func validate() throws(BundleError) {
        var seen = Set<ComponentID>()
        for (index, component) in components.enumerated() {
            guard seen.insert(component.id).inserted else {
                throw BundleError(
                    .validationFailed, "component \(index): another component with id '\(component.id)' already exists"
                )
            }
            do {
                try component.validate()
            } catch {
                throw BundleError(.validationFailed, "component \(index): \(error.message)")
            }
        }
        if seen.contains(.ronl), isLegacy {
            throw BundleError(.validationFailed, "manifest defines both legacy and componentized RONL component")
        }
        if let sgx, sgx.executable.isEmpty { throw BundleError(.validationFailed, "sgx: executable must be set") }
    }

    // MARK: - Hash

    /// Upstream's `Manifest.Hash()`: SHA-512/256 of the canonical CBOR of the Go structs, leaving the RONL
    /// component's version out when the legacy top-level version is set.
    public var hash: [UInt8] { SHA512_256.hash(canonicalCBOR) }

    /// The canonical CBOR that ``hash`` hashes.
    public var canonicalCBOR: [UInt8] {
        var wire = WireManifest(self)
        if !version.isZero, let index = components.firstIndex(where: { $0.id.isRONL }) {
            wire.components[index].version = WireVersion()
        }
        do {
            return try CBOREncoder().encode(wire)
        } catch {
            preconditionFailure("the manifest always encodes: \(error)")
        }
    }

    // MARK: - JSON

    /// Parses the manifest JSON as Go's `encoding/json` does into upstream's structs (unknown keys ignored,
    /// `null` leaves the zero value, ids/digests hex), then applies the legacy-version rule.
    public static func parse(json bytes: [UInt8]) throws(BundleError) -> BundleManifest {
        let decoded: JSONManifest
        do {
            decoded = try JSONDecoder().decode(JSONManifest.self, from: Data(bytes))
        } catch {
            throw BundleError(.invalidManifest, "failed to parse manifest: \(Self.describe(error))")
        }
        var manifest = decoded.manifest
        if !manifest.version.isZero, let index = manifest.components.firstIndex(where: { $0.id.isRONL }) {
            manifest.components[index].version = manifest.version
        }
        return manifest
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case let error as BundleError: error.message
        case DecodingError.dataCorrupted(let context): "invalid JSON (\(context.debugDescription))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "\(context.codingPath.map(\.stringValue).joined(separator: ".")): \(context.debugDescription)"
        default: "\(error)"
        }
    }
}
