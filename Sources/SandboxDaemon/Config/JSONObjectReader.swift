/// Strict reading of one JSON object: the config file's mappings (``ConfigLoader``) and the runtime spec
/// and request bodies (``SpecValidator``) share it.
///
/// An explicit `null` reads like an absent key; every typed accessor names the field (`path.key`) in its
/// error. The ``Dialect`` keeps each caller's stable error code and wording (`invalid_config` vs
/// `invalid_spec`/`unknown_field`).
struct JSONObjectReader {
    /// Whose errors these are.
    enum Dialect {
        /// The config file: `invalid_config`, the field in `DaemonError.field`.
        case config
        /// A spec or request body: `invalid_spec` ("field: problem"), `unknown_field` for unknown keys.
        case spec
    }

    let object: [String: JSONValue]
    /// The dotted path of this object ("" at the top), prefixed to field names.
    let path: String
    let dialect: Dialect

    /// Reads `value` as an object whose keys must all be in `allowed`.
    init(_ value: JSONValue, path: String, allowed: Set<String>, dialect: Dialect) throws(DaemonError) {
        guard case .object(let object) = value else {
            switch dialect {
            case .config: throw DaemonError(.invalidConfig, "must be a mapping", field: path.isEmpty ? nil : path)
            case .spec: throw .invalid(path, "must be an object")
            }
        }
        self.init(object, path: path, dialect: dialect)
        if let unknown = object.keys.filter({ !allowed.contains($0) }).sorted().first {
            let field = field(unknown)
            switch dialect {
            case .config: throw DaemonError(.invalidConfig, "unknown key \(field)", field: field)
            case .spec: throw DaemonError(.unknownField, "unknown field \"\(field)\"", field: field)
            }
        }
    }

    /// Reads `object` without checking its keys.
    init(_ object: [String: JSONValue], path: String, dialect: Dialect) {
        self.object = object
        self.path = path
        self.dialect = dialect
    }

    /// `path.key`, or `key` at the top.
    func field(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The error for `key`'s value, in this reader's dialect.
    func invalid(_ key: String, _ problem: String) -> DaemonError {
        switch dialect {
        case .config: DaemonError(.invalidConfig, problem, field: field(key))
        case .spec: .invalid(field(key), problem)
        }
    }

    /// The value for `key`; nil when absent or `null`.
    func value(_ key: String) -> JSONValue? {
        if case .null? = object[key] { return nil }
        return object[key]
    }

    func isNull(_ key: String) -> Bool { object[key] == .null }

    func object(_ key: String, allowed: Set<String>) throws(DaemonError) -> JSONObjectReader? {
        guard let value = value(key) else { return nil }
        return try JSONObjectReader(value, path: field(key), allowed: allowed, dialect: dialect)
    }

    func string(_ key: String) throws(DaemonError) -> String? {
        guard let value = value(key) else { return nil }
        guard case .string(let text) = value else { throw invalid(key, "must be a string, got \(value.typeName)") }
        return text
    }

    func requiredString(_ key: String) throws(DaemonError) -> String {
        guard let text = try string(key) else { throw invalid(key, "is required") }
        return text
    }

    func bool(_ key: String) throws(DaemonError) -> Bool? {
        guard let value = value(key) else { return nil }
        guard case .bool(let flag) = value else {
            switch dialect {
            case .config: throw invalid(key, "must be true or false")
            case .spec: throw invalid(key, "must be a boolean, got \(value.typeName)")
            }
        }
        return flag
    }

    func integer(_ key: String, in range: ClosedRange<Int64>) throws(DaemonError) -> Int64? {
        guard let value = value(key) else { return nil }
        guard case .integer(let number) = value, range.contains(number) else {
            throw invalid(key, "must be an integer in \(range)")
        }
        return number
    }

    /// A duration like `500ms`, `5s`, `15m` or `24h` (a bare integer counts as seconds).
    func duration(_ key: String) throws(DaemonError) -> Duration? {
        guard let value = value(key) else { return nil }
        let text: String
        switch value {
        case .string(let string): text = string
        case .integer(let number): text = String(number)
        default: text = ""
        }
        guard let duration = ConfigLoader.parseDuration(text) else {
            throw invalid(key, "must be a duration like 500ms, 5s, 15m or 24h")
        }
        return duration
    }
}
