/// The output of one `encode` call, written front to back in a single buffer.
///
/// Each value that opens a container gets a frame. Keyed and unkeyed containers reserve one header
/// byte, write their entries in place, and are finished when the value's `encode(to:)` returns: the
/// header gets its final count and map entries are reordered into length-first canonical key order.
/// Nested containers are finished as soon as their parent is written to again.
final class EncoderSink {
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
        let key: (any CodingKey)?
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

    /// Writes `value` as exactly one item.
    func encodeValue<T: Encodable>(_ value: T, key: (any CodingKey)?) throws {
        if let direct = value as? any DirectEncodable {
            try direct.encodeDirectly(into: self)
        } else {
            try encodeComposite(value, key: key)
        }
    }

    /// Writes a value through its own `encode(to:)`, in a new frame.
    func encodeComposite<T: Encodable>(_ value: T, key: (any CodingKey)?) throws {
        let depth = openFrame(.pending, key: key)
        try value.encode(to: EncoderImpl(sink: self, depth: depth, id: frames[depth].id))
        try close(downTo: depth)
    }

    /// Pushes a frame; keyed and unkeyed frames get their header placeholder.
    func openFrame(_ kind: Kind, key: (any CodingKey)?) -> Int {
        frames.append(Frame(id: nextFrameID, kind: kind, start: writer.count, count: 0, keyBase: keyStarts.count, key: key))
        nextFrameID += 1
        if kind == .keyed || kind == .unkeyed {
            writer.bytes.append(0)
        }
        return frames.count - 1
    }

    /// Makes frame `depth` the innermost one by finishing any nested frames above it.
    ///
    /// Returns false (and records misuse) when the frame was already finished.
    func activate(depth: Int, id: Int) throws -> Bool {
        guard depth < frames.count, frames[depth].id == id else {
            recordMisuse("a container was used after the value that owns it was finished")
            return false
        }
        if frames.count > depth + 1 {
            try close(downTo: depth + 1)
        }
        return true
    }

    /// Sets the kind of a pending frame; asking again for the same kind is fine.
    func claim(depth: Int, id: Int, as kind: Kind) throws -> Bool {
        guard try activate(depth: depth, id: id) else { return false }
        let current = frames[depth].kind
        if current == kind && kind != .single { return true }
        guard current == .pending else {
            recordMisuse("\(describe(kind)) requested after \(describe(current)) for the same value")
            return false
        }
        frames[depth].kind = kind
        if kind == .keyed || kind == .unkeyed {
            writer.bytes.append(0)
        }
        return true
    }

    /// Writes the key of a new map entry in frame `depth`.
    func beginEntry(depth: Int, id: Int, key: some CodingKey) throws -> Bool {
        guard try activate(depth: depth, id: id) else { return false }
        keyStarts.append(writer.count)
        writer.writeText(key.stringValue)
        frames[depth].count += 1
        return true
    }

    /// Counts a new element of the array in frame `depth`.
    func beginElement(depth: Int, id: Int) throws -> Bool {
        guard try activate(depth: depth, id: id) else { return false }
        frames[depth].count += 1
        return true
    }

    func close(downTo depth: Int) throws {
        while frames.count > depth {
            try finish(frames.removeLast())
        }
    }

    private func finish(_ frame: Frame) throws {
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
    private func sortEntries(of frame: Frame) throws {
        let count = frame.count
        guard count > 1 else { return }
        let base = frame.keyBase
        let end = writer.count
        let keys = (0..<count).map { index in
            let start = keyStarts[base + index]
            return start..<start + encodedTextLength(at: start)
        }
        var ordered = true
        for index in 1..<count where compareKeys(keys[index - 1], keys[index]) >= 0 {
            ordered = false
            break
        }
        if ordered { return }
        let order = (0..<count).sorted { compareKeys(keys[$0], keys[$1]) < 0 }
        for index in 1..<count where compareKeys(keys[order[index - 1]], keys[order[index]]) == 0 {
            let key = writer.bytes.withUnsafeBufferPointer {
                describeEncodedKey(UnsafeBufferPointer(rebasing: $0[keys[order[index]]]))
            }
            throw EncodingError.invalidValue(
                key, EncodingError.Context(codingPath: codingPath(upTo: frames.count - 1), debugDescription: "map key \(key) encoded twice"))
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

    /// Length of the encoded text item (head and bytes) at `offset`.
    private func encodedTextLength(at offset: Int) -> Int {
        let info = writer.bytes[offset] & 0x1f
        if info < 24 { return 1 + Int(info) }
        let size = 1 << Int(info - 24)
        var length = 0
        for index in 1...size {
            length = length << 8 | Int(writer.bytes[offset + index])
        }
        return 1 + size + length
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

    func codingPath(upTo depth: Int) -> [any CodingKey] {
        guard depth >= 0 else { return [] }
        return frames.prefix(min(depth + 1, frames.count)).compactMap(\.key)
    }

    func recordMisuse(_ message: String) {
        guard misuse == nil else { return }
        misuse = EncodingError.invalidValue(
            message, EncodingError.Context(codingPath: codingPath(upTo: frames.count - 1), debugDescription: message))
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
