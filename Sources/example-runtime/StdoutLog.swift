import NIOCore
import NIOPosix
import Synchronization
import SystemCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Oasis-style JSON log lines on stdout: `{"msg":…,"level":"INFO","module":"example","ts":RFC 3339}`.
enum StdoutLog {
    static func line(_ message: String, level: String = "INFO") {
        write("{\"msg\":\"\(escaped(message))\",\"level\":\"\(level)\",\"module\":\"example\",\"ts\":\"\(timestamp())\"}\n")
    }

    /// One line per second, forever.
    static func startTicking(on eventLoop: any EventLoop) {
        let counter = TickCounter()
        eventLoop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { _ in
            line("tick \(counter.value.wrappingAdd(1, ordering: .relaxed).newValue)")
        }
    }

    /// As fast as stdout takes them, on a thread of its own.
    static func startFlooding() {
        MultiThreadedEventLoopGroup(numberOfThreads: 1).next().execute {
            var count: UInt64 = 0
            while true {
                count &+= 1
                line("flood \(count)")
            }
        }
    }

    /// Writes `text` to stderr, unbuffered.
    static func writeStandardError(_ text: String) {
        write(text, to: 2)
    }

    private static func write(_ text: String, to fd: CInt = 1) {
        var text = text
        text.withUTF8 { bytes in
            guard let base = bytes.baseAddress else { return }
            var offset = 0
            while offset < bytes.count {
                let written = try? retryingInterrupts("write(\(fd))") {
                    Glibc.write(fd, base + offset, bytes.count - offset)
                }
                guard let written, written > 0 else { return }
                offset += written
            }
        }
    }

    private static func escaped(_ text: String) -> String {
        var result = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case _ where scalar.value < 0x20: result += "\\u00" + padded(String(scalar.value, radix: 16), 2)
            default: result.unicodeScalars.append(scalar)
            }
        }
        return result
    }

    /// Now, in UTC, as RFC 3339 with milliseconds: `2026-11-29T16:52:18.123Z`.
    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var fields = tm()
        gmtime_r(&seconds, &fields)
        func two(_ value: Int32) -> String { padded(String(value), 2) }
        let millis = padded(String(now.tv_nsec / 1_000_000), 3)
        return "\(fields.tm_year + 1900)-\(two(fields.tm_mon + 1))-\(two(fields.tm_mday))T"
            + "\(two(fields.tm_hour)):\(two(fields.tm_min)):\(two(fields.tm_sec)).\(millis)Z"
    }

    private static func padded(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
    }
}

private final class TickCounter: Sendable {
    let value = Atomic<UInt64>(0)
}
