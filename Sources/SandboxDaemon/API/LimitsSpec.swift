public import Sandbox

/// The `limits` object of a spec and of the config's `limits.defaults`: parsing, ranges, canonical form.
///
/// `{"memory_bytes", "pids", "cpu_percent", "cpu_weight", "tmpfs_bytes", "open_files"}`, each an
/// optional integer within its range (`null` = unset). Ranges bound what a client can ask for; what the
/// host can enforce is ``LimitSupport``'s business.
public enum LimitsSpec {
    struct Field: Sendable {
        let key: String
        let range: ClosedRange<Int64>
        let get: @Sendable (ResourceLimits) -> UInt64?
        let set: @Sendable (inout ResourceLimits, UInt64?) -> Void
    }

    static let fields: [Field] = [
        Field(key: "memory_bytes", range: (16 << 20)...(1 << 42), get: { $0.memoryBytes }, set: { $0.memoryBytes = $1 }),
        Field(key: "pids", range: 8...4_194_304, get: { $0.pids }, set: { $0.pids = $1 }),
        Field(key: "cpu_percent", range: 1...102_400, get: { $0.cpuPercent }, set: { $0.cpuPercent = $1 }),
        Field(key: "cpu_weight", range: 1...10_000, get: { $0.cpuWeight }, set: { $0.cpuWeight = $1 }),
        Field(key: "tmpfs_bytes", range: 4096...(1 << 42), get: { $0.tmpfsBytes }, set: { $0.tmpfsBytes = $1 }),
        Field(key: "open_files", range: 16...1_048_576, get: { $0.openFiles }, set: { $0.openFiles = $1 }),
    ]

    /// The keys of a `limits` object.
    public static var keys: Set<String> { Set(fields.map(\.key)) }

    /// Parses a `limits` value; errors name `<prefix><key>` (e.g. `limits.pids`) with `code`.
    public static func parse(
        _ value: JSONValue?, prefix: String, code: DaemonError.Code = .invalidSpec
    ) throws(DaemonError) -> ResourceLimits {
        var limits = ResourceLimits()
        guard let value, value != .null else { return limits }
        let field = String(prefix.dropLast())
        guard case .object(let object) = value else {
            throw DaemonError(code, "\(field): must be an object, got \(value.typeName)", field: field)
        }
        if let unknown = object.keys.filter({ !keys.contains($0) }).sorted().first {
            throw DaemonError(code == .invalidSpec ? .unknownField : code, "unknown field \"\(prefix)\(unknown)\"",
                              field: prefix + unknown)
        }
        for spec in fields {
            switch object[spec.key] {
            case nil, .null?:
                continue
            case .integer(let number)? where spec.range.contains(number):
                spec.set(&limits, UInt64(number))
            case let other?:
                let what = if case .integer = other { "out of range" } else { "a \(other.typeName)" }
                throw DaemonError(
                    code, "\(prefix)\(spec.key): must be an integer in \(spec.range.lowerBound)...\(spec.range.upperBound), got \(what)",
                    field: prefix + spec.key)
            }
        }
        return limits
    }

    /// Canonical form: every key present, `null` when unset.
    public static func document(_ limits: ResourceLimits) -> JSONValue {
        .object(Dictionary(uniqueKeysWithValues: fields.map { field in
            (field.key, field.get(limits).map { JSONValue.integer(Int64($0)) } ?? .null)
        }))
    }
}

/// What this host can enforce, and the configured defaults: answers `limit_unavailable` and fills defaults.
public struct LimitSupport: Sendable, Hashable {
    /// `v1`, `v2`, or nil when no cgroup controller works.
    public var cgroupVersion: String?
    public var available: Set<CgroupController>
    /// Why a controller is missing.
    public var reasons: [CgroupController: String]
    /// The config's `limits.defaults` (applied only where enforceable).
    public var defaults: ResourceLimits

    public init(cgroupVersion: String?, available: Set<CgroupController>, reasons: [CgroupController: String], defaults: ResourceLimits) {
        self.cgroupVersion = cgroupVersion
        self.available = available
        self.reasons = reasons
        self.defaults = defaults
    }

    /// For backends without cgroups (tests' fakes): everything is accepted, no defaults.
    public static let unrestricted = LimitSupport(
        cgroupVersion: nil, available: Set(CgroupController.allCases), reasons: [:], defaults: ResourceLimits())

    /// Refuses limits the host (or the backend) cannot enforce: 400 `limit_unavailable` naming the field.
    public func check(_ limits: ResourceLimits, backend: SandboxBackendKind) throws(DaemonError) {
        let needs: [(String, CgroupController, Bool)] = [
            ("memory_bytes", .memory, limits.memoryBytes != nil), ("pids", .pids, limits.pids != nil),
            ("cpu_percent", .cpu, limits.cpuPercent != nil), ("cpu_weight", .cpu, limits.cpuWeight != nil),
        ]
        for (key, controller, asked) in needs where asked && !available.contains(controller) {
            throw DaemonError(
                .limitUnavailable,
                "limits.\(key): this host cannot enforce it (\(reasons[controller] ?? "no \(controller.rawValue) controller"))",
                field: "limits.\(key)")
        }
        if limits.tmpfsBytes != nil, backend == .none {
            throw DaemonError(.limitUnavailable, "limits.tmpfs_bytes: the none backend has no tmpfs of its own",
                              field: "limits.tmpfs_bytes")
        }
    }

    /// The limits a runtime runs with: its own, then the defaults that this host and backend can enforce.
    public func effective(_ limits: ResourceLimits, backend: SandboxBackendKind) -> ResourceLimits {
        var defaults = self.defaults
        if !available.contains(.memory) { defaults.memoryBytes = nil }
        if !available.contains(.pids) { defaults.pids = nil }
        if !available.contains(.cpu) {
            defaults.cpuPercent = nil
            defaults.cpuWeight = nil
        }
        if backend == .none { defaults.tmpfsBytes = nil }
        return limits.filling(from: defaults)
    }
}
