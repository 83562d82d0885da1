#if canImport(Glibc)
import Glibc
#endif
public import Bundle
import RuntimeHostProtocol
import SystemPackage
public import Sandbox

/// Turns an untrusted JSON document into a ``RuntimeSpecification`` or a ``DaemonError`` naming the field.
///
/// Used for API requests, declared runtimes in the config file and persisted state, so all three accept
/// exactly the same language. Unknown keys are an error (`unknown_field`) at every level.
public struct SpecValidator: Sendable {
    /// The backend used when a spec names none (the config's `default_backend`).
    public var defaultBackend: SandboxBackendKind
    /// Check that the executable and bind sources exist. Off when restoring persisted state: a spec that was
    /// valid when accepted stays recorded even if its executable vanished (its start then fails visibly).
    public var checkFilesystem: Bool
    /// Archive-safety bounds for reading bundles (the config's `bundles` section).
    public var bundleLimits = BundleLimits()
    /// When set (the daemon's API), a bundle spec is exploded and verified here, outside the registry, and
    /// the spec carries the executable's path; otherwise the backend explodes it when creating the runtime.
    public var bundleStore: BundleStore?

    /// What the host can enforce: a spec asking for more is refused with `limit_unavailable`. `nil` (config
    /// files, persisted state) skips the check; the backend checks again when it makes the runtime.
    public var limitSupport: LimitSupport?

    public init(defaultBackend: SandboxBackendKind, checkFilesystem: Bool = true, limitSupport: LimitSupport? = nil) {
        self.defaultBackend = defaultBackend
        self.checkFilesystem = checkFilesystem
        self.limitSupport = limitSupport
    }

    /// Longest accepted path (executable, bind source and target, data target), in characters.
    public static let maximumPathLength = 1023

    static let topLevelKeys: Set<String> = [
        "name", "id", "executable", "args", "env", "binds", "data", "network", "mount_proc", "local_config",
        "expected_version", "sandbox", "autostart", "limits", "bundle", "component", "manifest_hash",
    ]

    /// `[a-z0-9][a-z0-9._-]{0,62}`
    public static func isValidName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard (1...63).contains(bytes.count) else { return false }
        func allowed(_ byte: UInt8, first: Bool) -> Bool {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"): true
            case UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): !first
            default: false
            }
        }
        return bytes.enumerated().allSatisfy { allowed($1, first: $0 == 0) }
    }

    /// Validates a whole spec document with the daemon's own view of the filesystem (config file, tests).
    public func validate(_ value: JSONValue) throws(DaemonError) -> RuntimeSpecification {
        let spec = try parse(value)
        if checkFilesystem { try Self.checkFiles(of: spec).get() }
        return spec
    }

    /// Validates a client's spec document; the filesystem checks see only what `peer` could see.
    ///
    /// For a non-root peer, the executable and bind sources are checked with the peer's fsuid, fsgid and
    /// groups (``ClientFilesystemView``), so the answers are no existence oracle for files the client
    /// cannot reach: a bind source under `/root` is "not accessible" to a group member whether or not it
    /// exists. Root (and the daemon's own uid) is checked as before.
    public func validate(_ value: JSONValue, as peer: PeerCredentials?) async throws(DaemonError) -> RuntimeSpecification {
        try await checkBundleAccess(value, as: peer)
        let spec = try parse(value)
        try await checkFiles(of: spec, as: peer)
        return spec
    }

    /// A bundle named by a client's spec must be readable by that client (as ``validate(_:as:)`` checks
    /// executables), before the daemon reads it: otherwise its answers would tell whether the file exists.
    func checkBundleAccess(_ value: JSONValue, as peer: PeerCredentials?) async throws(DaemonError) {
        guard checkFilesystem, case .object(let object) = value, case .string(let path)? = object["bundle"] else { return }
        try await ClientFilesystemView(peer: peer).run { () -> Result<Void, DaemonError> in
            let found = ClientFilesystemView.status(path)
            guard found.info != nil else {
                return .failure(.invalid("bundle", found.errno == ENOENT || found.errno == ENOTDIR
                    ? "\(path) does not exist" : "\(path) is not accessible (\(String(cString: strerror(found.errno))))"))
            }
            guard ClientFilesystemView.accessible(path, R_OK) else {
                return .failure(.invalid("bundle", "\(path) is not readable"))
            }
            return .success(())
        }.get()
    }

    /// The filesystem checks of a parsed spec as `peer` sees the filesystem (see ``validate(_:as:)``).
    func checkFiles(of spec: RuntimeSpecification, as peer: PeerCredentials?) async throws(DaemonError) {
        guard checkFilesystem else { return }
        try await ClientFilesystemView(peer: peer).run { Self.checkFiles(of: spec) }.get()
    }

    /// The filesystem checks of a parsed spec, with the calling thread's identity: the executable is an
    /// executable regular file, every bind source can be reached.
    static func checkFiles(of spec: RuntimeSpecification) -> Result<Void, DaemonError> {
        if spec.bundle == nil, case .failure(let error) = checkExecutable(spec.executable) { return .failure(error) }
        for (index, bind) in spec.binds.enumerated() {
            let source = bind.source.string
            let reached = ClientFilesystemView.status(source)
            if reached.info == nil {
                return .failure(.invalid("binds[\(index)].source", reached.errno == ENOENT || reached.errno == ENOTDIR
                    ? "\(source) does not exist" : "\(source) is not accessible (\(String(cString: strerror(reached.errno))))"))
            }
        }
        return .success(())
    }

    private static func checkExecutable(_ executable: String) -> Result<Void, DaemonError> {
        let found = ClientFilesystemView.status(executable)
        guard let info = found.info else {
            return .failure(.invalid("executable", found.errno == ENOENT || found.errno == ENOTDIR
                ? "\(executable) does not exist" : "\(executable) is not accessible (\(String(cString: strerror(found.errno))))"))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG, ClientFilesystemView.accessible(executable, X_OK) else {
            return .failure(.invalid("executable", "\(executable) is not an executable regular file"))
        }
        return .success(())
    }

    /// Parses and checks everything but the filesystem.
    func parse(_ value: JSONValue) throws(DaemonError) -> RuntimeSpecification {
        guard case .object(let object) = value else {
            throw DaemonError(.invalidSpec, "the spec must be a JSON object, got \(value.typeName)")
        }
        try Self.rejectUnknownKeys(object, allowed: Self.topLevelKeys, prefix: "")

        let name = try requiredString(object, "name")
        guard Self.isValidName(name) else {
            throw .invalid("name", "must match [a-z0-9][a-z0-9._-]{0,62}, got \"\(name)\"")
        }

        // A bundle spec names a `.orc` file instead of an executable; its manifest supplies the id.
        let bundle = try validateBundle(object)

        let id: String
        if bundle != nil, present(object, "id") == nil, let manifestID = bundle?.runtimeID {
            id = manifestID
        } else {
            id = try requiredString(object, "id").lowercased()
        }
        guard id.utf8.count == 64, id.utf8.allSatisfy(\.isASCIIHexDigit) else {
            throw .invalid("id", "must be 64 hexadecimal characters (the runtime's 32-byte namespace)")
        }
        guard (try? Namespace(hex: id)) != nil else {
            throw .invalid("id", "reserved flag bits set: of the first 8 bytes only 0x80 and 0x40 of byte 0 may be set")
        }
        if let manifestID = bundle?.runtimeID, manifestID != id {
            throw .invalid("id", "is \(id) but the bundle's manifest says \(manifestID)")
        }

        // A bundle's executable lies in the exploded tree the daemon made (checked by the bundle store).
        let executable = bundle == nil ? try requiredString(object, "executable") : bundle?.executable ?? ""
        if bundle == nil { try checkAbsolutePath(executable, field: "executable") }

        var arguments: [String] = []
        if let value = present(object, "args") {
            guard case .array(let items) = value else { throw .invalid("args", "must be an array of strings") }
            for (index, item) in items.enumerated() {
                guard case .string(let argument) = item, !argument.utf8.contains(0) else {
                    throw .invalid("args[\(index)]", "must be a string without NUL bytes")
                }
                arguments.append(argument)
            }
        }

        var environment: [String: String] = [:]
        if let value = present(object, "env") {
            guard case .object(let entries) = value else { throw .invalid("env", "must be an object of strings") }
            for (key, item) in entries {
                guard !key.isEmpty, !key.utf8.contains(UInt8(ascii: "=")), !key.utf8.contains(0) else {
                    throw .invalid("env.\(key)", "variable names must be non-empty without '=' or NUL")
                }
                guard case .string(let text) = item, !text.utf8.contains(0) else {
                    throw .invalid("env.\(key)", "must be a string without NUL bytes")
                }
                environment[key] = text
            }
        }

        let binds = try validateBinds(present(object, "binds"))
        let dataFiles = try validateData(present(object, "data"))
        var network = try optionalBool(object, "network") ?? false
        if let allowed = bundle?.selected?.networkAllowed {
            // Upstream decides by component kind (IsNetworkAllowed): ROFL gets the network, RONL never.
            if let asked = try optionalBool(object, "network"), asked != allowed {
                throw .invalid(
                    "network", "is decided by the bundle component: \(bundle!.source.component) \(allowed ? "always gets" : "never gets") the network"
                )
            }
            network = allowed
        }
        let mountProc = try optionalBool(object, "mount_proc") ?? false
        let autostart = try optionalBool(object, "autostart") ?? true

        var localConfig: [String: JSONValue]?
        if let value = present(object, "local_config") {
            guard case .object(let entries) = value else { throw .invalid("local_config", "must be an object") }
            localConfig = entries
        }

        var expectedVersion: Version?
        if let value = present(object, "expected_version") {
            guard case .string(let text) = value, let version = Version(exactly: text) else {
                throw .invalid("expected_version", "must be a version string \"x.y.z\"")
            }
            expectedVersion = version
        }
        if let selected = bundle?.selected, selected.id.isRONL {
            // The RONL runtime must report the manifest's version.
            let manifestVersion = Version(
                major: selected.version.major, minor: selected.version.minor, patch: selected.version.patch
            )
            if let expectedVersion, expectedVersion != manifestVersion {
                throw .invalid("expected_version", "is \(expectedVersion) but the bundle's RONL component is version \(manifestVersion)")
            }
            expectedVersion = manifestVersion
        }

        var sandbox = defaultBackend
        if let value = present(object, "sandbox") {
            guard case .string(let text) = value, let kind = SandboxBackendKind(rawValue: text) else {
                throw .invalid("sandbox", "must be one of namespaces, bubblewrap, none")
            }
            sandbox = kind
        }

        let limits = try LimitsSpec.parse(present(object, "limits"), prefix: "limits.")
        try limitSupport?.check(limits, backend: sandbox)

        return RuntimeSpecification(
            name: name, id: id, executable: executable, arguments: arguments, environment: environment,
            binds: binds, dataFiles: dataFiles, network: network, mountProc: mountProc, localConfig: localConfig,
            expectedVersion: expectedVersion, sandbox: sandbox, autostart: autostart, limits: limits,
            bundle: bundle?.source
        )
    }

    // MARK: - Parts

    private func validateBinds(_ value: JSONValue?) throws(DaemonError) -> [BindMount] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw .invalid("binds", "must be an array of objects") }
        var binds: [BindMount] = []
        for (index, item) in items.enumerated() {
            let prefix = "binds[\(index)]"
            guard case .object(let object) = item else { throw .invalid(prefix, "must be an object") }
            try Self.rejectUnknownKeys(object, allowed: ["source", "target", "mode"], prefix: prefix + ".")
            let source = try requiredString(object, "source", prefix: prefix + ".")
            try checkAbsolutePath(source, field: prefix + ".source")
            let target = try requiredString(object, "target", prefix: prefix + ".")
            try checkSandboxTarget(target, field: prefix + ".target")
            var mode = BindMount.Mode.readOnly
            if let modeValue = present(object, "mode") {
                guard case .string(let text) = modeValue, let parsed = BindMount.Mode(rawValue: text) else {
                    throw .invalid(prefix + ".mode", "must be one of ro, rw, dev")
                }
                mode = parsed
            }
            binds.append(BindMount(source: FilePath(source), target: FilePath(target), mode: mode))
        }
        return binds
    }

    private func validateData(_ value: JSONValue?) throws(DaemonError) -> [DataFile] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw .invalid("data", "must be an array of objects") }
        var files: [DataFile] = []
        for (index, item) in items.enumerated() {
            let prefix = "data[\(index)]"
            guard case .object(let object) = item else { throw .invalid(prefix, "must be an object") }
            try Self.rejectUnknownKeys(object, allowed: ["target", "content_base64"], prefix: prefix + ".")
            let target = try requiredString(object, "target", prefix: prefix + ".")
            try checkSandboxTarget(target, field: prefix + ".target")
            let encoded = try requiredString(object, "content_base64", prefix: prefix + ".")
            guard let contents = Base64.decode(encoded) else {
                throw .invalid(prefix + ".content_base64", "is not valid base64")
            }
            files.append(DataFile(target: FilePath(target), contents: contents))
        }
        return files
    }

    // MARK: - Helpers

    // Thin wrappers over the JSON object reader the config loader shares (the spec's dialect).

    static func rejectUnknownKeys(
        _ object: [String: JSONValue], allowed: Set<String>, prefix: String
    ) throws(DaemonError) {
        _ = try JSONObjectReader(.object(object), path: String(prefix.dropLast()), allowed: allowed, dialect: .spec)
    }

    /// The value for `key`, treating an explicit JSON `null` like an absent key.
    private func present(_ object: [String: JSONValue], _ key: String) -> JSONValue? {
        JSONObjectReader(object, path: "", dialect: .spec).value(key)
    }

    private func requiredString(
        _ object: [String: JSONValue], _ key: String, prefix: String = ""
    ) throws(DaemonError) -> String {
        try JSONObjectReader(object, path: String(prefix.dropLast()), dialect: .spec).requiredString(key)
    }

    private func optionalBool(_ object: [String: JSONValue], _ key: String) throws(DaemonError) -> Bool? {
        try JSONObjectReader(object, path: "", dialect: .spec).bool(key)
    }

    private func checkAbsolutePath(_ path: String, field: String) throws(DaemonError) {
        // Bytes, not Characters: "/" followed by a combining mark is one grapheme, and must still count.
        guard path.utf8.first == UInt8(ascii: "/") else { throw .invalid(field, "must be an absolute path, got \"\(path)\"") }
        guard !path.utf8.contains(0) else { throw .invalid(field, "must not contain NUL bytes") }
        // Characters (Unicode scalars), as the document's maxLength counts them; 1023 of them stay within
        // PATH_MAX (4096 bytes with the NUL) in any UTF-8.
        guard path.unicodeScalars.count <= Self.maximumPathLength else {
            throw .invalid(field, "is longer than \(Self.maximumPathLength) characters")
        }
    }

    private func checkSandboxTarget(_ path: String, field: String) throws(DaemonError) {
        try checkAbsolutePath(path, field: field)
        // Split the UTF-8 bytes as the kernel does: a Character-wise split would hide a "/" that a
        // following combining mark joins into one grapheme (and with it a ".." component).
        let components = Array(path.utf8).split(separator: UInt8(ascii: "/"))
        guard !components.isEmpty else { throw .invalid(field, "must not be the sandbox root") }
        let dot = UInt8(ascii: ".")
        guard !components.contains(where: { $0.elementsEqual([dot]) || $0.elementsEqual([dot, dot]) }) else {
            throw .invalid(field, "must not contain '.' or '..' components")
        }
    }
}
