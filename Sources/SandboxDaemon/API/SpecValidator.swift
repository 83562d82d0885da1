#if canImport(Glibc)
import Glibc
#endif
public import Bundle
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

    public init(defaultBackend: SandboxBackendKind, checkFilesystem: Bool = true) {
        self.defaultBackend = defaultBackend
        self.checkFilesystem = checkFilesystem
    }

    static let topLevelKeys: Set<String> = [
        "name", "id", "executable", "args", "env", "binds", "data", "network", "mount_proc", "local_config",
        "expected_version", "sandbox", "autostart", "bundle", "component", "manifest_hash",
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

    /// Validates a whole spec document (the decoded request body).
    public func validate(_ value: JSONValue) throws(DaemonError) -> RuntimeSpecification {
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
        if let manifestID = bundle?.runtimeID, manifestID != id {
            throw .invalid("id", "is \(id) but the bundle's manifest says \(manifestID)")
        }

        let executable = bundle == nil ? try requiredString(object, "executable") : bundle?.executable ?? ""
        if bundle == nil { try checkAbsolutePath(executable, field: "executable") }
        if checkFilesystem, bundle == nil {
            var info = stat()
            guard stat(executable, &info) == 0 else {
                throw .invalid("executable", "\(executable) does not exist")
            }
            guard (info.st_mode & S_IFMT) == S_IFREG, access(executable, X_OK) == 0 else {
                throw .invalid("executable", "\(executable) is not an executable regular file")
            }
        }

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

        var expectedVersion: RuntimeVersion?
        if let value = present(object, "expected_version") {
            guard case .string(let text) = value, let version = RuntimeVersion(text) else {
                throw .invalid("expected_version", "must be a version string \"x.y.z\"")
            }
            expectedVersion = version
        }
        if let selected = bundle?.selected, selected.id.isRONL {
            // The RONL runtime must report the manifest's version.
            let manifestVersion = RuntimeVersion(
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

        return RuntimeSpecification(
            name: name, id: id, executable: executable, arguments: arguments, environment: environment,
            binds: binds, dataFiles: dataFiles, network: network, mountProc: mountProc, localConfig: localConfig,
            expectedVersion: expectedVersion, sandbox: sandbox, autostart: autostart, bundle: bundle?.source
        )
    }

    // MARK: - Parts

    private func validateBinds(_ value: JSONValue?) throws(DaemonError) -> [RuntimeSpecification.Bind] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw .invalid("binds", "must be an array of objects") }
        var binds: [RuntimeSpecification.Bind] = []
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
            if checkFilesystem, access(source, F_OK) != 0 {
                throw .invalid(prefix + ".source", "\(source) does not exist")
            }
            binds.append(.init(source: source, target: target, mode: mode))
        }
        return binds
    }

    private func validateData(_ value: JSONValue?) throws(DaemonError) -> [RuntimeSpecification.DataFile] {
        guard let value else { return [] }
        guard case .array(let items) = value else { throw .invalid("data", "must be an array of objects") }
        var files: [RuntimeSpecification.DataFile] = []
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
            files.append(.init(target: target, contents: contents))
        }
        return files
    }

    // MARK: - Helpers

    static func rejectUnknownKeys(
        _ object: [String: JSONValue], allowed: Set<String>, prefix: String
    ) throws(DaemonError) {
        if let unknown = object.keys.filter({ !allowed.contains($0) }).sorted().first {
            throw DaemonError(.unknownField, "unknown field \"\(prefix)\(unknown)\"", field: prefix + unknown)
        }
    }

    /// The value for `key`, treating an explicit JSON `null` like an absent key.
    private func present(_ object: [String: JSONValue], _ key: String) -> JSONValue? {
        switch object[key] {
        case nil, .null?: nil
        case let value?: value
        }
    }

    private func requiredString(
        _ object: [String: JSONValue], _ key: String, prefix: String = ""
    ) throws(DaemonError) -> String {
        guard let value = present(object, key) else { throw .invalid(prefix + key, "is required") }
        guard case .string(let text) = value else {
            throw .invalid(prefix + key, "must be a string, got \(value.typeName)")
        }
        return text
    }

    private func optionalBool(_ object: [String: JSONValue], _ key: String) throws(DaemonError) -> Bool? {
        guard let value = present(object, key) else { return nil }
        guard case .bool(let flag) = value else { throw .invalid(key, "must be a boolean, got \(value.typeName)") }
        return flag
    }

    private func checkAbsolutePath(_ path: String, field: String) throws(DaemonError) {
        guard path.hasPrefix("/") else { throw .invalid(field, "must be an absolute path, got \"\(path)\"") }
        guard !path.utf8.contains(0) else { throw .invalid(field, "must not contain NUL bytes") }
        guard path.utf8.count < 4096 else { throw .invalid(field, "is longer than PATH_MAX") }
    }

    private func checkSandboxTarget(_ path: String, field: String) throws(DaemonError) {
        try checkAbsolutePath(path, field: field)
        let components = path.split(separator: "/")
        guard !components.isEmpty else { throw .invalid(field, "must not be the sandbox root") }
        guard !components.contains(where: { $0 == ".." || $0 == "." }) else {
            throw .invalid(field, "must not contain '.' or '..' components")
        }
    }
}
