import ArgumentParser
import SystemCalls

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Resource abuse on request, for the limits tests: real forks, real allocations, real busy loops.
///
/// `--report-limits` and `--fill-tmp` run before connecting and print their findings on stdout (one
/// `misbehaviour: …` line each); the others start after the handshake on their own threads and keep the
/// runtime answering pings meanwhile (as far as its limits allow).
struct Misbehaviour: ParsableArguments {
    @Flag(help: "Fork children that sleep, without bound (until fork fails; then keep trying).")
    var forkBomb = false

    @Option(help: "Allocate this many MiB and touch every page, 1 MiB at a time, then hold it.")
    var allocateMib: Int?

    @Flag(help: "Spin one thread on the CPU forever.")
    var busyLoop = false

    @Option(help: "Write this many bytes to /tmp/fill before connecting and report how far it got.")
    var fillTmp: Int?

    @Flag(help: "Print RLIMIT_NOFILE and RLIMIT_CORE before connecting.")
    var reportLimits = false

    static func say(_ text: String) {
        StdoutLog.line("misbehaviour: " + text)
    }

    /// The reports made before connecting.
    func reportEarly() {
        if reportLimits {
            var files = rlimit(), core = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &files)
            getrlimit(Int32(RLIMIT_CORE.rawValue), &core)
            Self.say("rlimit-nofile \(files.rlim_cur) \(files.rlim_max)")
            Self.say("rlimit-core \(core.rlim_cur) \(core.rlim_max)")
        }
        if let fillTmp { Self.fill(bytes: fillTmp) }
    }

    /// The abuse that runs alongside the RHP connection.
    func startAbuse() {
        if forkBomb { Self.thread { Self.forkForever() } }
        if let allocateMib { Self.thread { Self.allocate(mebibytes: allocateMib) } }
        if busyLoop { Self.thread { Self.spin() } }
    }

    private static func fill(bytes: Int) {
        let fd = open("/tmp/fill", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            say("fill-tmp open failed errno \(errno)")
            return
        }
        defer { close(fd) }
        let chunk = [UInt8](repeating: 0x5a, count: 64 * 1024)
        var written = 0
        while written < bytes {
            let count = retryingEINTR { chunk.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, min($0.count, bytes - written)) } }
            if count < 0 {
                say("fill-tmp wrote \(written) error \(errno == ENOSPC ? "ENOSPC" : String(errno))")
                return
            }
            written += count
        }
        say("fill-tmp wrote \(written) ok")
    }

    private static func forkForever() {
        var children = 0
        var reported = false
        while true {
            let pid = fork()
            if pid == 0 {
                while true { pause() }
            }
            if pid > 0 {
                children += 1
                continue
            }
            if !reported {
                say("fork-bomb stopped at \(children) children: errno \(errno)")
                reported = true
            }
            usleep(1000)
        }
    }

    private static func allocate(mebibytes: Int) {
        let step = 1 << 20
        var held: [UnsafeMutableRawPointer] = []
        for index in 0..<mebibytes {
            guard let block = malloc(step) else {
                say("allocate failed after \(index) MiB")
                break
            }
            memset(block, 0x5a, step)
            held.append(block)
            if (index + 1) % 64 == 0 { say("allocated \(index + 1) MiB") }
        }
        say("allocated \(held.count) MiB, holding")
        while true { pause() }
    }

    private static func spin() {
        var counter: UInt64 = 0
        while true {
            counter &+= 1
            if counter == 0 { say("wrapped") }
        }
    }

    /// A detached pthread: these loops never return, so they must not occupy a Swift concurrency thread.
    private static func thread(_ body: @escaping @Sendable () -> Void) {
        final class Box: @unchecked Sendable {  // handed to exactly one new thread; never shared
            let body: @Sendable () -> Void
            init(_ body: @escaping @Sendable () -> Void) { self.body = body }
        }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        pthread_detach(thread)
    }
}
