import Bundle

/// What a bundle spec's `bundle`, `component` and `manifest_hash` resolve to.
struct ResolvedBundle {
    var source: RuntimeSpecification.BundleSource
    /// The manifest's runtime id (nil when the bundle was not read: restoring state).
    var runtimeID: String?
    /// The chosen component (nil when the bundle was not read).
    var selected: SelectedComponent?
    /// The component's ELF in the exploded bundle, when ``SpecValidator/bundleStore`` exploded it.
    var executable: String?
}

extension SpecValidator {
    /// Validates the bundle fields; with ``checkFilesystem`` the bundle is opened, validated as upstream
    /// does, checked against `manifest_hash`, and the component chosen (its ELF must exist).
    func validateBundle(_ object: [String: JSONValue]) throws(DaemonError) -> ResolvedBundle? {
        func string(_ key: String) throws(DaemonError) -> String? {
            switch object[key] {
            case nil, .null?: return nil
            case .string(let text)?: return text
            case let value?: throw .invalid(key, "must be a string, got \(value.typeName)")
            }
        }
        guard let path = try string("bundle") else {
            for key in ["component", "manifest_hash"] where try string(key) != nil {
                throw .invalid(key, "is only valid with \"bundle\"")
            }
            return nil
        }
        if try string("executable") != nil {
            throw .invalid("executable", "give either \"executable\" or \"bundle\", not both")
        }
        guard path.hasPrefix("/"), !path.utf8.contains(0), path.utf8.count < 4096 else {
            throw .invalid("bundle", "must be an absolute path, got \"\(path)\"")
        }
        let component = try string("component") ?? "ronl"
        guard ComponentID(parsing: component) != nil else {
            throw .invalid("component", "must be \"ronl\" or \"rofl.NAME\", got \"\(component)\"")
        }
        var pinned: [UInt8]?
        if let text = try string("manifest_hash") {
            guard let bytes = Hex.decode(text, count: 32) else {
                throw .invalid("manifest_hash", "must be 64 hexadecimal characters")
            }
            pinned = bytes
        }
        var source = RuntimeSpecification.BundleSource(
            path: path, component: component, manifestHash: pinned.map(Hex.encode)
        )
        guard checkFilesystem else { return ResolvedBundle(source: source) }

        do {
            if let bundleStore {
                let exploded = try bundleStore.prepare(bundle: path, pinnedManifestHash: pinned)
                let selected = try exploded.manifest.select(component: component)
                source.manifestHash = exploded.manifestHashHex
                return ResolvedBundle(
                    source: source, runtimeID: exploded.manifest.idHex, selected: selected,
                    executable: exploded.path(of: selected.executable)
                )
            }
            let bundle = try RuntimeBundle.open(path: path, limits: bundleLimits, pinnedManifestHash: pinned)
            try bundle.validate()
            let selected = try bundle.manifest.select(component: component)
            source.manifestHash = bundle.manifestHashHex
            return ResolvedBundle(source: source, runtimeID: bundle.manifest.idHex, selected: selected)
        } catch {
            throw DaemonError(bundleError: error)
        }
    }
}

extension DaemonError {
    /// A bundle refusal as an API error: 400 naming the field at fault.
    init(bundleError error: BundleError) {
        switch error.code {
        case .unsupportedComponent:
            self.init(.unsupportedComponent, error.message, field: "component")
        case .unknownComponent:
            self.init(.invalidSpec, error.message, field: "component")
        case .manifestHashMismatch:
            self.init(.invalidSpec, error.message, field: "manifest_hash")
        case .explodeFailed:
            self.init(.runtimeFailure, "\(error.code.rawValue): \(error.message)", field: "bundle")
        default:
            self.init(.invalidSpec, "bundle refused (\(error.code.rawValue)): \(error.message)", field: "bundle")
        }
    }
}
