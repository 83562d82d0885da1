/// Finds values by text key in one map of the validated input.
///
/// Keys are in strictly ascending length-first order (the validator enforces it), so a lookup scans
/// from the first entry and stops as soon as it passes the wanted key; maps with more than
/// ``indexThreshold`` (and at most ``indexLimit``) pairs get a table of entries once and are
/// searched by bisection.
struct MapReader {
    struct Entry {
        let keyStart: Int
        let keyLength: Int
    }

    static let indexThreshold = 16
    /// Larger maps are scanned, not indexed: a hostile map of millions of unknown keys must not
    /// cost an index many times the size of the frame (a struct looks up only its few fields).
    static let indexLimit = 1 << 16

    let input: DecoderState
    let offset: Int
    let count: Int
    let firstEntry: Int
    let index: ContiguousArray<Entry>?

    init(input: DecoderState, offset: Int) throws(CBORDecodingError) {
        let head = input.head(at: offset)
        guard head.major == Major.map else {
            throw input.mismatch(expected: "a map", at: offset)
        }
        self.input = input
        self.offset = offset
        self.count = Int(head.argument)
        self.firstEntry = head.next
        let indexed = count > Self.indexThreshold && count <= Self.indexLimit
        if input.hasNonTextKeys || indexed {
            var entries = ContiguousArray<Entry>()
            if indexed { entries.reserveCapacity(count) }
            var position = head.next
            for _ in 0..<count {
                let key = try input.mapKey(at: position)
                if indexed { entries.append(Entry(keyStart: key.lowerBound, keyLength: key.count)) }
                position = input.skip(key.upperBound)
            }
            index = indexed ? entries : nil
        } else {
            index = nil
        }
    }

    /// Offset of the value stored under `name`, if present.
    func find(_ name: String) -> Int? {
        var name = name
        return name.withUTF8 { name in
            if let index {
                var low = 0
                var high = index.count
                while low < high {
                    let middle = (low + high) / 2
                    let entry = index[middle]
                    let order = compare(keyStart: entry.keyStart, keyLength: entry.keyLength, name)
                    if order == 0 { return entry.keyStart + entry.keyLength }
                    if order < 0 { low = middle + 1 } else { high = middle }
                }
                return nil
            }
            var position = firstEntry
            for _ in 0..<count {
                let key = input.head(at: position)
                let keyLength = Int(key.argument)
                let order = compare(keyStart: key.next, keyLength: keyLength, name)
                if order == 0 { return key.next + keyLength }
                if order > 0 { return nil }
                position = input.skip(key.next + keyLength)
            }
            return nil
        }
    }

    /// Every key, in wire (canonical) order.
    func keys() -> [String] {
        var keys: [String] = []
        keys.reserveCapacity(min(count, 4096))
        var position = firstEntry
        for _ in 0..<count {
            let key = input.head(at: position)
            let end = key.next + Int(key.argument)
            keys.append(String(decoding: UnsafeBufferPointer(rebasing: input.buffer[key.next..<end]), as: UTF8.self))
            position = input.skip(end)
        }
        return keys
    }

    /// Length-first canonical order of a key in the input against `name`.
    @inline(__always)
    private func compare(keyStart: Int, keyLength: Int, _ name: UnsafeBufferPointer<UInt8>) -> Int {
        if keyLength != name.count {
            return keyLength < name.count ? -1 : 1
        }
        var index = 0
        while index < keyLength {
            let a = input.buffer[keyStart + index]
            let b = name[index]
            if a != b { return a < b ? -1 : 1 }
            index += 1
        }
        return 0
    }

    func missing(_ name: String) -> CBORDecodingError {
        CBORDecodingError(code: .missingKey, message: "map has no key \"\(name)\"", offset: offset)
    }

    /// Reads the value under `name` with `read`; a missing key is an error.
    @inline(__always)
    func required<T>(_ name: String, _ read: (Int) throws -> T) throws -> T {
        guard let value = find(name) else { throw missing(name) }
        do {
            return try read(value)
        } catch let error as CBORDecodingError {
            throw error.prefixed(by: name)
        }
    }

    /// Reads the value under `name` with `read`, or nil when the key is missing or the value is null.
    @inline(__always)
    func optional<T>(_ name: String, _ read: (Int) throws -> T) throws -> T? {
        guard let value = find(name), !input.isNil(at: value) else { return nil }
        do {
            return try read(value)
        } catch let error as CBORDecodingError {
            throw error.prefixed(by: name)
        }
    }
}
