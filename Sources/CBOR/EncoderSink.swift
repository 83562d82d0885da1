/// The output of one `encode` call: a reference the containers share around an ``EncoderCore``.
///
/// The core is a value mutated in place, one exclusive access per operation; a value's own
/// `encode(to:)` runs outside any such access, since it re-enters the sink.
final class EncoderSink {
    var core = EncoderCore()

    /// Writes `value` as exactly one item.
    func encodeValue<T: Encodable>(_ value: T) throws {
        if core.writeScalar(value) { return }
        if let direct = T.self as? any DirectEncodable.Type {
            try encodeDirectly(value, as: direct)
        } else {
            try encodeComposite(value)
        }
    }

    /// Writes a map entry, or nothing when the value is an empty ``OmitEmpty``.
    func encodeEntry<T: Encodable>(_ value: T, key: String, in frame: FrameHandle) throws {
        if EncoderCore.isScalar(T.self) {
            guard try core.beginEntry(frame, key: key) else { return }
            _ = core.writeScalar(value)
        } else if let direct = T.self as? any DirectEncodable.Type {
            guard !omitsKey(value, as: direct), try core.beginEntry(frame, key: key) else { return }
            try encodeDirectly(value, as: direct)
        } else {
            guard try core.beginEntry(frame, key: key) else { return }
            try encodeComposite(value)
        }
    }

    /// `value` viewed as the direct-encodable type it is (`D` is `T`), without boxing it.
    private func encodeDirectly<T, D: DirectEncodable>(_ value: T, as type: D.Type) throws {
        try unsafeBitCast(value, to: D.self).encodeDirectly(into: self)
    }

    private func omitsKey<T, D: DirectEncodable>(_ value: T, as type: D.Type) -> Bool {
        unsafeBitCast(value, to: D.self).omitsKey
    }

    /// Writes a value through its own `encode(to:)`, in a new frame.
    func encodeComposite<T: Encodable>(_ value: T) throws {
        let frame = core.openFrame(.pending)
        try value.encode(to: EncoderImpl(sink: self, frame: frame))
        try core.close(downTo: frame.depth)
    }
}

/// Identifies an open frame: its position in the stack and a serial number to detect stale use.
struct FrameHandle {
    let depth: Int
    let id: Int

    static let invalid = FrameHandle(depth: -1, id: -1)
}

/// The buffer and the stack of open containers.
///
/// Each value that opens a container gets a frame. Keyed and unkeyed containers reserve one header
/// byte, write their entries in place, and are finished when the value's `encode(to:)` returns: the
/// header gets its final count and map entries are reordered into length-first canonical key order.
/// Nested containers are finished as soon as their parent is written to again.
struct EncoderCore {
    enum Kind {
        case pending
        case keyed
        case unkeyed
        case single
    }

    struct Frame {
        let id: Int
        var kind: Kind
        /// Offset of the header placeholder (keyed, unkeyed) or of the value (single).
        let start: Int
        var count: Int
        /// Index into `keyStarts` of this frame's first entry.
        let keyBase: Int
    }

    var writer = ByteWriter(capacity: 256)
    private(set) var frames: [Frame] = []
    /// Offsets of the encoded keys of all open keyed frames, in writing order.
    private var keyStarts: [Int] = []
    private var nextFrameID = 0
    /// The first misuse of the container API; reported when encoding ends.
    private(set) var misuse: EncodingError?

    init() {
        frames.reserveCapacity(8)
        keyStarts.reserveCapacity(32)
    }

    @inline(__always)
    static func isScalar<T>(_ type: T.Type) -> Bool {
        T.self == String.self || T.self == UInt64.self || T.self == UInt32.self || T.self == UInt16.self
            || T.self == UInt8.self || T.self == Int.self || T.self == Int64.self || T.self == Bool.self
    }

    /// Writes the common scalar types, recognised by metatype identity; false for anything else.
    @inline(__always)
    mutating func writeScalar<T>(_ value: T) -> Bool {
        if T.self == String.self {
            writer.writeText(unsafeBitCast(value, to: String.self))
        } else if T.self == UInt64.self {
            writer.writeInteger(unsafeBitCast(value, to: UInt64.self))
        } else if T.self == UInt32.self {
            writer.writeInteger(unsafeBitCast(value, to: UInt32.self))
        } else if T.self == UInt16.self {
            writer.writeInteger(unsafeBitCast(value, to: UInt16.self))
        } else if T.self == UInt8.self {
            writer.writeInteger(unsafeBitCast(value, to: UInt8.self))
        } else if T.self == Int.self {
            writer.writeInteger(unsafeBitCast(value, to: Int.self))
        } else if T.self == Int64.self {
            writer.writeInteger(unsafeBitCast(value, to: Int64.self))
        } else if T.self == Bool.self {
            writer.writeBool(unsafeBitCast(value, to: Bool.self))
        } else {
            return false
        }
        return true
    }

    /// Pushes a frame; keyed and unkeyed frames get their header placeholder.
    mutating func openFrame(_ kind: Kind) -> FrameHandle {
        let frame = Frame(id: nextFrameID, kind: kind, start: writer.count, count: 0, keyBase: keyStarts.count)
        frames.append(frame)
        nextFrameID += 1
        if kind == .keyed || kind == .unkeyed {
            writer.bytes.append(0)
        }
        return FrameHandle(depth: frames.count - 1, id: frame.id)
    }

    /// Makes `frame` the innermost one by finishing any nested frames above it.
    ///
    /// Returns false (and records misuse) when the frame was already finished.
    mutating func activate(_ frame: FrameHandle) throws -> Bool {
        guard frame.depth >= 0, frame.depth < frames.count, frames[frame.depth].id == frame.id else {
            recordMisuse("a container was used after the value that owns it was finished")
            return false
        }
        if frames.count > frame.depth + 1 {
            try close(downTo: frame.depth + 1)
        }
        return true
    }

    /// Sets the kind of a pending frame; asking again for the same container kind is fine.
    mutating func claim(_ frame: FrameHandle, as kind: Kind) throws -> Bool {
        guard try activate(frame) else { return false }
        let current = frames[frame.depth].kind
        if current == kind && kind != .single { return true }
        guard current == .pending else {
            recordMisuse("\(describe(kind)) requested after \(describe(current)) for the same value")
            return false
        }
        frames[frame.depth].kind = kind
        if kind == .keyed || kind == .unkeyed {
            writer.bytes.append(0)
        }
        return true
    }

    /// Writes the key of a new map entry in `frame`.
    mutating func beginEntry(_ frame: FrameHandle, key: String) throws -> Bool {
        guard try activate(frame) else { return false }
        keyStarts.append(writer.count)
        writer.writeText(key)
        frames[frame.depth].count += 1
        return true
    }

    /// Counts a new element of the array in `frame`.
    mutating func beginElement(_ frame: FrameHandle) throws -> Bool {
        guard try activate(frame) else { return false }
        frames[frame.depth].count += 1
        return true
    }

    /// Number of entries written so far in `frame`.
    func count(of frame: FrameHandle) -> Int {
        frame.depth >= 0 && frame.depth < frames.count && frames[frame.depth].id == frame.id ? frames[frame.depth].count : 0
    }

    mutating func close(downTo depth: Int) throws {
        while frames.count > depth {
            try finish(frames.removeLast())
        }
    }

    private mutating func finish(_ frame: Frame) throws {
        switch frame.kind {
        case .pending:
            // A value that opened no container is an empty struct in Go: {}.
            writer.bytes.append(InitialByte.emptyMap)
        case .single:
            break
        case .unkeyed:
            writer.patchHead(at: frame.start, Major.array, UInt64(frame.count))
        case .keyed:
            try sortEntries(of: frame)
            keyStarts.removeSubrange(frame.keyBase...)
            writer.patchHead(at: frame.start, Major.map, UInt64(frame.count))
        }
    }

    /// Reorders the entries of a keyed frame into canonical key order; duplicate keys are an error.
    private mutating func sortEntries(of frame: Frame) throws {
        let count = frame.count
        guard count > 1 else { return }
        let base = frame.keyBase
        var ordered = true
        var previous = keyRange(base)
        for index in 1..<count {
            let current = keyRange(base + index)
            if compareKeys(previous, current) >= 0 {
                ordered = false
                break
            }
            previous = current
        }
        if ordered { return }

        let end = writer.count
        let keys = (0..<count).map { keyRange(base + $0) }
        let order = (0..<count).sorted { compareKeys(keys[$0], keys[$1]) < 0 }
        for index in 1..<count where compareKeys(keys[order[index - 1]], keys[order[index]]) == 0 {
            let key = writer.bytes.withUnsafeBufferPointer {
                describeEncodedKey(UnsafeBufferPointer(rebasing: $0[keys[order[index]]]))
            }
            throw EncodingError.invalidValue(
                key, EncodingError.Context(codingPath: [], debugDescription: "map key \(key) encoded twice"))
        }
        let regionStart = keys[0].lowerBound
        let region = Array(writer.bytes[regionStart..<end])
        var position = regionStart
        for index in order {
            let entryStart = keys[index].lowerBound - regionStart
            let entryEnd = (index + 1 < count ? keys[index + 1].lowerBound : end) - regionStart
            writer.bytes.replaceSubrange(position..<position + entryEnd - entryStart, with: region[entryStart..<entryEnd])
            position += entryEnd - entryStart
        }
    }

    /// Where the encoded text key number `index` of `keyStarts` lies.
    private func keyRange(_ index: Int) -> Range<Int> {
        let start = keyStarts[index]
        let info = writer.bytes[start] & 0x1f
        if info < 24 { return start..<start + 1 + Int(info) }
        let size = 1 << Int(info - 24)
        var length = 0
        for byte in 1...size {
            length = length << 8 | Int(writer.bytes[start + byte])
        }
        return start..<start + 1 + size + length
    }

    private func compareKeys(_ lhs: Range<Int>, _ rhs: Range<Int>) -> Int {
        if lhs.count != rhs.count { return lhs.count < rhs.count ? -1 : 1 }
        var left = lhs.lowerBound
        var right = rhs.lowerBound
        while left < lhs.upperBound {
            let a = writer.bytes[left]
            let b = writer.bytes[right]
            if a != b { return a < b ? -1 : 1 }
            left += 1
            right += 1
        }
        return 0
    }

    mutating func recordMisuse(_ message: String) {
        guard misuse == nil else { return }
        misuse = EncodingError.invalidValue(message, EncodingError.Context(codingPath: [], debugDescription: message))
    }

    private func describe(_ kind: Kind) -> String {
        switch kind {
        case .pending: "nothing"
        case .keyed: "a keyed container"
        case .unkeyed: "an unkeyed container"
        case .single: "a single value"
        }
    }
}
