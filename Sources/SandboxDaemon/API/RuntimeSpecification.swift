public import RuntimeHostProtocol
public import Sandbox
public import SystemPackage

/// A validated runtime spec: what the API's `POST /v1/runtimes` body and a config's declared runtime mean.
///
/// Only ``SpecValidator`` makes these, so every instance satisfies the contract (name pattern, 64-hex id,
/// absolute paths, …). ``document`` is the canonical API form; it is what the state store persists and what
/// "changed on reload" compares.
public struct RuntimeSpecification: Sendable, Hashable {
    /// Where a bundle spec's program comes from (`bundle`, `component`, `manifest_hash` in the API).
    public struct BundleSource: Sendable, Hashable {
        /// Absolute path of the `.orc` file.
        public var path: String
        /// `ronl` or `rofl.NAME`.
        public var component: String
        /// The manifest hash (64 lowercase hex) the spec is pinned to; set once the bundle was read.
        public var manifestHash: String?
    }

    public var name: String
    /// The runtime's namespace: 64 lowercase hex characters.
    public var id: String
    public var executable: String
    public var arguments: [String]
    public var environment: [String: String]
    /// The sandbox's own model (paths as `FilePath`, so separators are normalized).
    public var binds: [BindMount]
    public var dataFiles: [DataFile]
    public var network: Bool
    /// Mount a fresh `/proc` for the sandbox's pid namespace (Swift runtimes need it; off by default).
    public var mountProc: Bool
    public var localConfig: [String: JSONValue]?
    public var expectedVersion: Version?
    public var sandbox: SandboxBackendKind
    public var autostart: Bool
    /// The spec's own limits (unset fields get the config's defaults when the runtime is made).
    public var limits: ResourceLimits = ResourceLimits()
    /// Set for a bundle spec: the program is the component's ELF in the exploded bundle. ``executable`` is
    /// its path when the API's validator exploded the bundle, else empty (the backend resolves it); it is
    /// never persisted (the document has `bundle`/`component`/`manifest_hash` instead).
    public var bundle: BundleSource? = nil

    /// The canonical API form (every field present, defaults filled in).
    public var document: JSONValue {
        var fields: [String: JSONValue] = [
            "name": .string(name),
            "id": .string(id),
            "executable": .string(executable),
            "args": .array(arguments.map(JSONValue.string)),
            "env": .object(environment.mapValues(JSONValue.string)),
            "binds": .array(binds.map {
                .object(["source": .string($0.source.string), "target": .string($0.target.string), "mode": .string($0.mode.rawValue)])
            }),
            "data": .array(dataFiles.map {
                .object(["target": .string($0.target.string), "content_base64": .string(Base64.encode($0.contents))])
            }),
            "network": .bool(network),
            "mount_proc": .bool(mountProc),
            "local_config": localConfig.map(JSONValue.object) ?? .null,
            "expected_version": expectedVersion.map { .string($0.description) } ?? .null,
            "sandbox": .string(sandbox.rawValue),
            "autostart": .bool(autostart),
            "limits": LimitsSpec.document(limits),
        ]
        if let bundle {
            fields["executable"] = nil
            fields["bundle"] = .string(bundle.path)
            fields["component"] = .string(bundle.component)
            fields["manifest_hash"] = bundle.manifestHash.map(JSONValue.string) ?? .null
        }
        return .object(fields)
    }
}

extension Version {
    /// Parses exactly "x.y.z" (three decimal components, each ≤ 65535): the API's and the config's
    /// stricter form (``Version/init(_:)`` also takes "x" and "x.y").
    public init?(exactly text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              parts.allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
              let major = UInt16(parts[0]), let minor = UInt16(parts[1]), let patch = UInt16(parts[2])
        else { return nil }
        self.init(major: major, minor: minor, patch: patch)
    }
}
