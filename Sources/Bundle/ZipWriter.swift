import CZlib

/// Writes ZIP archives the way Go's `archive/zip` writes bundles (for tests, tooling and benchmarks), with
/// knobs to write the malformed or hostile archives the reader must refuse.
public struct ZipWriter: Sendable {
    /// One member. Defaults are Go's `zip.Writer.Create`: deflate, no mode bits, made by "unix" v2.0.
    public struct Member: Sendable {
        public var name: String
        public var contents: [UInt8]
        public var deflate: Bool = true
        /// Unix mode written into the external attributes (e.g. `0o120777` for a symlink); nil writes none.
        public var unixMode: UInt32?
        /// Overrides the uncompressed size written in the headers (a lying archive).
        public var claimedSize: UInt32?

        public init(name: String, contents: [UInt8], deflate: Bool = true, unixMode: UInt32? = nil, claimedSize: UInt32? = nil) {
            self.name = name
            self.contents = contents
            self.deflate = deflate
            self.unixMode = unixMode
            self.claimedSize = claimedSize
        }
    }

    public var members: [Member] = []

    public init(members: [Member] = []) {
        self.members = members
    }

    public mutating func add(_ name: String, _ contents: [UInt8]) {
        members.append(Member(name: name, contents: contents))
    }

    /// The archive's bytes.
    public func archive() -> [UInt8] {
        var out: [UInt8] = []
        var directory: [UInt8] = []
        for member in members {
            let name = Array(member.name.utf8)
            let data = member.deflate ? Self.deflate(member.contents) : member.contents
            let crc = UInt32(truncatingIfNeeded: member.contents.withUnsafeBufferPointer {
                crc32(0, $0.baseAddress, uInt($0.count))
            })
            let size = member.claimedSize ?? UInt32(member.contents.count)
            let method: UInt16 = member.deflate ? 8 : 0
            let offset = UInt32(out.count)
            // Local file header.
            Self.put32(&out, 0x0403_4b50); Self.put16(&out, 20); Self.put16(&out, 0x800); Self.put16(&out, method)
            Self.put16(&out, 0); Self.put16(&out, 0x21)
            Self.put32(&out, crc); Self.put32(&out, UInt32(data.count)); Self.put32(&out, size)
            Self.put16(&out, UInt16(name.count)); Self.put16(&out, 0)
            out += name
            out += data
            // Central directory record.
            Self.put32(&directory, 0x0201_4b50); Self.put16(&directory, 3 << 8 | 20); Self.put16(&directory, 20)
            Self.put16(&directory, 0x800); Self.put16(&directory, method); Self.put16(&directory, 0); Self.put16(&directory, 0x21)
            Self.put32(&directory, crc); Self.put32(&directory, UInt32(data.count)); Self.put32(&directory, size)
            Self.put16(&directory, UInt16(name.count)); Self.put16(&directory, 0); Self.put16(&directory, 0)
            Self.put16(&directory, 0); Self.put16(&directory, 0)
            Self.put32(&directory, (member.unixMode ?? 0) << 16)
            Self.put32(&directory, offset)
            directory += name
        }
        let directoryOffset = UInt32(out.count)
        out += directory
        Self.put32(&out, 0x0605_4b50); Self.put16(&out, 0); Self.put16(&out, 0)
        Self.put16(&out, UInt16(members.count)); Self.put16(&out, UInt16(members.count))
        Self.put32(&out, UInt32(directory.count)); Self.put32(&out, directoryOffset); Self.put16(&out, 0)
        return out
    }

    /// Raw deflate (no zlib header), as ZIP stores it.
    public static func deflate(_ input: [UInt8]) -> [UInt8] {
        var stream = z_stream()
        guard deflateInit2_(&stream, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY,
                            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else { fatalError("deflateInit2") }
        defer { deflateEnd(&stream) }
        let bound = Int(deflateBound(&stream, uLong(input.count)))
        var output = [UInt8](repeating: 0, count: bound)
        var input = input
        let produced = input.withUnsafeMutableBufferPointer { inBuffer in
            output.withUnsafeMutableBufferPointer { outBuffer in
                stream.next_in = inBuffer.baseAddress
                stream.avail_in = uInt(inBuffer.count)
                stream.next_out = outBuffer.baseAddress
                stream.avail_out = uInt(outBuffer.count)
                let status = CZlib.deflate(&stream, Z_FINISH)
                precondition(status == Z_STREAM_END, "deflate: \(status)")
                return outBuffer.count - Int(stream.avail_out)
            }
        }
        return Array(output[0..<produced])
    }

    private static func put16(_ out: inout [UInt8], _ value: UInt16) {
        out.append(UInt8(value & 0xff)); out.append(UInt8(value >> 8))
    }

    private static func put32(_ out: inout [UInt8], _ value: UInt32) {
        for shift in stride(from: 0, to: 32, by: 8) { out.append(UInt8((value >> UInt32(shift)) & 0xff)) }
    }
}
