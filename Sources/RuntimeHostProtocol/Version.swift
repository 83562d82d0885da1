/// A semantic version as RHP carries it: `{major, minor, patch}`, each a `uint16` left out when zero.
///
/// 5.1.0 encodes as `{"major": 5, "minor": 1}`; 0.0.0 as `{}` (`a0`).
public struct Version: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var major: UInt16
    public var minor: UInt16
    public var patch: UInt16

    public init(major: UInt16 = 0, minor: UInt16 = 0, patch: UInt16 = 0) {
        self.major = major
        self.minor = minor
        self.patch = patch
    }

    /// Parses `"MAJOR.MINOR.PATCH"` (missing trailing parts are zero); nil when malformed.
    public init?(_ text: String) {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...3).contains(parts.count) else { return nil }
        var numbers: [UInt16] = []
        for part in parts {
            guard let number = UInt16(part) else { return nil }
            numbers.append(number)
        }
        while numbers.count < 3 { numbers.append(0) }
        self.init(major: numbers[0], minor: numbers[1], patch: numbers[2])
    }

    /// The protocol version this implementation speaks: 5.1.0.
    public static let rhp = Version(major: 5, minor: 1)

    public var description: String { "\(major).\(minor).\(patch)" }

    public static func < (lhs: Version, rhs: Version) -> Bool {
        (lhs.major, lhs.minor, lhs.patch) < (rhs.major, rhs.minor, rhs.patch)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyCodingKey.self)
        try container.rejectUnknownKeys(["major", "minor", "patch"], in: "Version")
        major = try container.decodeField(UInt16.self, "major", default: 0)
        minor = try container.decodeField(UInt16.self, "minor", default: 0)
        patch = try container.decodeField(UInt16.self, "patch", default: 0)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyCodingKey.self)
        if major != 0 { try container.encode(major, forKey: AnyCodingKey("major")) }
        if minor != 0 { try container.encode(minor, forKey: AnyCodingKey("minor")) }
        if patch != 0 { try container.encode(patch, forKey: AnyCodingKey("patch")) }
    }
}
