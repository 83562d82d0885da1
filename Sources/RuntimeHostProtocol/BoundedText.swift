/// Caps text a peer supplied before it reaches status, events or logs.
///
/// A runtime is untrusted: its `Error` message can be as long as a frame (64 MiB). Everything the
/// host keeps or prints of it goes through ``bounded(_:limit:)`` first, which keeps at most `limit`
/// UTF-8 bytes (cut on a character boundary) and says how much was cut.
public enum BoundedText {
    /// The bound for every runtime-supplied string: 4 KiB.
    public static let runtimeLimit = 4096

    /// `text` if its UTF-8 form fits in `limit` bytes; otherwise its longest prefix that does (on a
    /// scalar boundary), followed by `… [N bytes cut]`. The result never exceeds `limit` + 32 bytes.
    public static func bounded(_ text: String, limit: Int = runtimeLimit) -> String {
        let utf8 = text.utf8
        guard utf8.count > limit else { return text }
        var end = utf8.index(utf8.startIndex, offsetBy: limit)
        // Back off to the start of a scalar (never more than 3 continuation bytes).
        while end > utf8.startIndex, UTF8.isContinuation(utf8[end]) { end = utf8.index(before: end) }
        let kept = utf8.distance(from: utf8.startIndex, to: end)
        return String(decoding: utf8[..<end], as: UTF8.self) + "… [\(utf8.count - kept) bytes cut]"
    }
}
