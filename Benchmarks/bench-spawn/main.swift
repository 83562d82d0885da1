// bench-spawn: spawn → "started" latency of one tiny static payload under every way we start a runtime.
// The "netns-pool" rows compare the spawner with and without its pool of ready network namespaces.
//
// The payload writes one byte to the fd named in argv[1]; one sample is the time from the start of a
// spawn call to that byte. Same spec everywhere: no binds, no libraries, stdout/stderr to /dev/null,
// the started pipe's write end inherited at its own number. Each backend is called through its fastest
// entry point (`backendSample`). Run by `make bench-spawn`.
#if canImport(Glibc)
import Glibc
#endif
import Logging
import Sandbox
import Synchronization
import SystemPackage
import SystemCalls

/// Times of removing a runtime cgroup after its process exited, and of creating one (µs).
let removals = Mutex<[Double]>([])
let creations = Mutex<[Double]>([])
/// The sandbox's PID 1 from clone to the payload's first write, from `/proc/PID/schedstat` (µs): time on
/// a CPU and time waiting for one. On a busy machine the wall time is mostly the wait; the CPU time is
/// the work, which is what a change to the spawn path moves.
let lastSchedstat = Mutex<(run: Double, wait: Double)?>(nil)

func schedstat(_ pid: Int32) -> (run: Double, wait: Double)? {
    guard let file = fopen("/proc/\(pid)/schedstat", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 128)
    guard fgets(&line, CInt(line.count), file) != nil else { return nil }
    let fields = text(line).split(separator: " ").compactMap { Double($0.filter(\.isNumber)) }
    guard fields.count >= 2 else { return nil }
    return (fields[0] / 1000, fields[1] / 1000)
}

struct Options {
    var iterations = 200
    var payload = ".build/bench/spawn-payload"
    var baseline = ".build/bench/spawn-baseline"

    init(_ arguments: [String]) {
        var index = 0
        func value() -> String {
            index += 1
            guard index < arguments.count else { fail("\(arguments[index - 1]) needs a value") }
            return arguments[index]
        }
        while index < arguments.count {
            switch arguments[index] {
            case "--iterations": iterations = Int(value()) ?? 0
            case "--payload": payload = value()
            case "--baseline": baseline = value()
            default: fail("usage: bench-spawn [--iterations N] [--payload PATH] [--baseline PATH]")
            }
            index += 1
        }
        guard iterations >= 10 else { fail("--iterations must be at least 10") }
    }
}

func fail(_ message: String) -> Never {
    _ = "bench-spawn: \(message)\n".withCString { write(2, $0, strlen($0)) }
    exit(1)
}

struct Figures {
    var median: Double
    var p99: Double

    init(median: Double, p99: Double) {
        self.median = median
        self.p99 = p99
    }

    /// From samples in microseconds.
    init(_ samples: [Double]) {
        let sorted = samples.sorted()
        median = sorted[sorted.count / 2]
        p99 = sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))]
    }
}

func microseconds(_ duration: Duration) -> Double {
    let (seconds, attoseconds) = duration.components
    return Double(seconds) * 1e6 + Double(attoseconds) / 1e12
}

/// A CLOEXEC pipe: (read end, write end).
func startedPipe() -> (CInt, CInt) {
    var ends: [CInt] = [-1, -1]
    guard pipe(&ends) == 0 else { fail("pipe: errno \(errno)") }
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    return (ends[0], ends[1])
}

func awaitStarted(_ fd: CInt) {
    var byte: UInt8 = 0
    while true {
        let count = retryingEINTR { read(fd, &byte, 1) }
        if count == 1 { return }
        fail("the payload did not signal started (read returned \(count), errno \(errno))")
    }
}

/// posix_spawn of the payload, started fd at 3: no sandbox, no hygiene.
func posixSpawnSample(_ payload: String) -> Double {
    let (reader, writer) = startedPipe()
    defer { close(reader) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_adddup2(&actions, writer, 3)
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
    var pid: pid_t = 0
    let argv: [UnsafeMutablePointer<CChar>?] = [strdup(payload), strdup("3"), nil]
    let envp: [UnsafeMutablePointer<CChar>?] = [nil]
    defer { argv.forEach { free($0) } }
    let clock = ContinuousClock()
    let start = clock.now
    let rc = posix_spawn(&pid, payload, &actions, nil, argv, envp)
    guard rc == 0 else { fail("posix_spawn: \(rc)") }
    close(writer)
    awaitStarted(reader)
    let elapsed = clock.now - start
    var status: CInt = 0
    waitpid(pid, &status, 0)
    return microseconds(elapsed)
}

/// One spawn through a backend's fastest entry point: `namespaces` through `spawn` as sandboxd calls it (its
/// `spawnBlocking` adds a task and a semaphore around that), `none` and `bubblewrap` through `spawnBlocking`
/// (their `spawn` adds a thread hop).
func backendSample(
    _ payload: String, cgroup: CgroupHost? = nil, tmpfs: Bool = true,
    spawn: (SandboxSpec) async throws(SandboxError) -> SandboxProcess
) async -> (Double, SandboxProcess) {
    let (reader, writer) = startedPipe()
    defer { close(reader) }
    var spec = SandboxSpec(executable: FilePath(payload), arguments: ["\(writer)"], standardOutput: .discard,
                           standardError: .discard, inheritedDescriptors: [FileDescriptor(rawValue: writer)],
                           bindSharedLibraries: false)
    let clock = ContinuousClock()
    let start = clock.now
    // "with limits": the cgroup work a runtime start pays (create + limits, then placement in the spawn),
    // plus the rlimits and tmpfs sizes; the cgroup's removal after exit is timed separately.
    var runtimeCgroup: RuntimeCgroup?
    if let cgroup {
        do throws(CgroupError) {
            runtimeCgroup = try await cgroup.create(prefix: "bench", limits: benchLimits)
        } catch {
            fail("cgroup: \(error)")
        }
        creations.withLock { $0.append(microseconds(clock.now - start)) }
        spec.cgroupDirectories = runtimeCgroup!.directories
        spec.cgroupPlacement = runtimeCgroup!.placement
        spec.limits = benchLimits.process
        if !tmpfs { spec.limits.tmpfsBytes = nil }  // `none` has no tmpfs of its own (and refuses a size)
    }
    let process: SandboxProcess
    do throws(SandboxError) {
        process = try await spawn(spec)
    } catch {
        fail("spawn failed: \(error)")
    }
    close(writer)
    awaitStarted(reader)
    let elapsed = clock.now - start
    runtimeCgroup?.closePlacement()
    lastSchedstat.withLock { $0 = schedstat(process.pid) }
    // As the provisioner does after a spawn: the next start's pooled cgroup is made now, off the spawn path.
    if let cgroup { await cgroup.replenish() }
    let status = await process.waitForExit()
    guard status == .exited(0) else { fail("the payload exited with \(status)") }
    if let runtimeCgroup {
        let removal = clock.now
        do throws(CgroupError) { try await runtimeCgroup.remove() } catch { fail("cgroup removal: \(error)") }
        removals.withLock { $0.append(microseconds(clock.now - removal)) }
    }
    return (microseconds(elapsed), process)
}

/// `spawn-baseline PAYLOAD N BPF [full]` prints `median_us p99_us`: `full` does the sandbox work of
/// sandboxd-spawner's child for this spec step for step (the `c-baseline` row, which the goal is judged
/// on), the default only the bare minimum (`c-minimal`).
///
/// The baseline loads the very seccomp program the sandbox loads (written to a file once), so both sides
/// pay the same filter load (kernel conversion and JIT) per spawn.
func baselineFigures(_ baseline: String, payload: String, iterations: Int, full: Bool) -> Figures {
    guard let pipe = popen("'\(baseline)' '\(payload)' \(iterations) '\(bpfPath)'\(full ? " full" : "")", "r") else {
        fail("cannot run \(baseline)")
    }
    var line = [CChar](repeating: 0, count: 256)
    let got = fgets(&line, CInt(line.count), pipe) != nil
    let status = pclose(pipe)
    let fields = got ? text(line).split(separator: " ").compactMap { Double($0.filter { !$0.isWhitespace }) } : []
    guard status == 0, fields.count == 2 else { fail("\(baseline) failed (status \(status))") }
    return Figures(median: fields[0], p99: fields[1])
}

/// The seccomp program the sandbox loads, as the baseline reads it.
let bpfPath: String = {
    let path = "/tmp/bench-spawn-filter-\(getpid()).bpf"
    guard case .success(let filter) = SeccompFilter.shared,
          let file = fopen(path, "w"),
          filter.program.withUnsafeBytes({ fwrite($0.baseAddress, 1, $0.count, file) }) == filter.program.count,
          fclose(file) == 0
    else { fail("cannot write the seccomp program for the baseline") }
    atexit { unlink(bpfPath) }
    return path
}()

/// A NUL-terminated C buffer as a String.
func text(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}

func residentKilobytes(_ process: String = "self") -> String {
    guard let file = fopen("/proc/\(process)/status", "r") else { return "?" }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, CInt(line.count), file) != nil {
        let entry = text(line)
        if entry.hasPrefix("VmRSS:") { return entry.dropFirst(6).filter { !$0.isWhitespace } }
    }
    return "?"
}

func pad(_ text: String, _ width: Int) -> String { text + String(repeating: " ", count: max(0, width - text.count)) }
/// A ratio to two decimals (a goal near the threshold is not hidden by rounding).
func twoDecimals(_ value: Double) -> String {
    let hundredths = Int((value * 100).rounded())
    return "\(hundredths / 100)." + (hundredths % 100 < 10 ? "0" : "") + "\(hundredths % 100)"
}
func format(_ value: Double) -> String {
    let tenths = Int((value * 10).rounded())
    return (tenths < 0 ? "-" : "") + "\(abs(tenths) / 10).\(abs(tenths) % 10)"
}

let options = Options(Array(CommandLine.arguments.dropFirst()))
for path in [options.payload, options.baseline] where access(path, X_OK) != 0 {
    fail("\(path) is missing (make bench-spawn builds it)")
}
var logger = Logger(label: "bench-spawn")
logger.logLevel = .error
_ = try? SeccompFilter.shared.get()

let ids = HostIDAllocator(range: HostIDRange(base: 450_000, count: 1024))
let none = UnsandboxedBackend(logger: logger)
let namespaces = NamespaceSandbox(configuration: .init(hostIDs: ids.range), hostIDs: ids, logger: logger)
let bubblewrap = BubblewrapBackend(hostIDs: ids, logger: logger)
let warmup = 10
/// The "with limits" rows: one cgroup per spawn below this process's own, in every hierarchy it has, taken
/// from a pool as sandboxd does (pool size as sandboxd's); "ns+limits-nopool" creates each on the spawn path.
let cgroups = CgroupHost.detect(groupName: "sandboxd-bench-\(getpid())", logger: logger, poolSize: 2)
let unpooled = CgroupHost.detect(groupName: "sandboxd-bench-\(getpid())-nopool", logger: logger)
let benchLimits: ResourceLimits = {
    var limits = ResourceLimits(tmpfsBytes: 16 << 20, openFiles: 1024)
    if cgroups.supports(.memory) { limits.memoryBytes = 256 << 20 }
    if cgroups.supports(.pids) { limits.pids = 64 }
    if cgroups.supports(.cpu) {
        limits.cpuPercent = 100
        limits.cpuWeight = 100
    }
    return limits
}()

var rows: [(String, Figures)] = []
var samples: [Double] = []
for index in 0..<(warmup + options.iterations) {
    let sample = posixSpawnSample(options.payload)
    if index >= warmup { samples.append(sample) }
}
rows.append(("posix_spawn", Figures(samples)))

/// Median/p99 of one backend, and its spawn phases when it reports them.
func measure(
    limited: Bool = false, pooled: Bool = true, tmpfs: Bool = true, _ spawn: (SandboxSpec) async throws(SandboxError) -> SandboxProcess
) async -> (Figures, [SpawnTimings]) {
    var samples: [Double] = []
    var phases: [SpawnTimings] = []
    for index in 0..<(warmup + options.iterations) {
        let (sample, process) = await backendSample(options.payload, cgroup: limited ? (pooled ? cgroups : unpooled) : nil, tmpfs: tmpfs, spawn: spawn)
        if index >= warmup {
            samples.append(sample)
            if let timings = process.spawnTimings { phases.append(timings) }
        }
    }
    return (Figures(samples), phases)
}
rows.append(("none", await measure { (spec) throws(SandboxError) in try none.spawnBlocking(spec) }.0))
let (namespaceFigures, phases) = await measure { (spec) throws(SandboxError) in try await namespaces.spawn(spec) }
rows.append(("namespaces", namespaceFigures))
rows.append(("bubblewrap", await measure { (spec) throws(SandboxError) in try bubblewrap.spawnBlocking(spec) }.0))
rows.append(("none+limits", await measure(limited: true, tmpfs: false) { (spec) throws(SandboxError) in try none.spawnBlocking(spec) }.0))
let (limitedFigures, limitedPhases) = await measure(limited: true) { (spec) throws(SandboxError) in
    try await namespaces.spawn(spec)
}
rows.append(("ns+limits", limitedFigures))
let creationsPooled = creations.withLock { list in defer { list = [] }; return list }
rows.append(("ns+lim-nopool", await measure(limited: true, pooled: false) { (spec) throws(SandboxError) in
    try await namespaces.spawn(spec)
}.0))
let creationsUnpooled = creations.withLock { $0 }.sorted()
// The same three, interleaved sample by sample, so load that changes during the run (a shared machine)
// hits all of them alike: the with-limits goal is judged on these.
var pairedSamples: [[Double]] = [[], [], []]
var pairedCPU: [[Double]] = [[], [], []], pairedWait: [[Double]] = [[], [], []]
for index in 0..<(warmup + options.iterations) {
    for (slot, (limited, pooled)) in [(false, true), (true, true), (true, false)].enumerated() {
        let (sample, _) = await backendSample(
            options.payload, cgroup: limited ? (pooled ? cgroups : unpooled) : nil, tmpfs: true
        ) { (spec) throws(SandboxError) in try await namespaces.spawn(spec) }
        if index >= warmup {
            pairedSamples[slot].append(sample)
            if let stat = lastSchedstat.withLock({ $0 }) {
                pairedCPU[slot].append(stat.run)
                pairedWait[slot].append(stat.wait)
            }
        }
    }
}
rows.append(("ns|paired", Figures(pairedSamples[0])))
rows.append(("ns+limits|p", Figures(pairedSamples[1])))
rows.append(("nopool|p", Figures(pairedSamples[2])))
// Starts as a daemon sees them, far apart: 20 ms of quiet before each sample, interleaved likewise. A
// tight loop keeps kernel state warm that a sparse start pays for (on cgroup v1 a `cgroup.procs` write
// waits for an RCU grace period when no migration happened in the last few milliseconds).
let sparseCount = max(10, options.iterations / 8)
var sparseSamples: [[Double]] = [[], []]
for _ in 0..<sparseCount {
    for (slot, limited) in [false, true].enumerated() {
        usleep(20_000)
        let (sample, _) = await backendSample(options.payload, cgroup: limited ? cgroups : nil, tmpfs: true) {
            (spec) throws(SandboxError) in try await namespaces.spawn(spec)
        }
        sparseSamples[slot].append(sample)
    }
}
rows.append(("ns|sparse", Figures(sparseSamples[0])))
rows.append(("ns+lim|sparse", Figures(sparseSamples[1])))
// The spawner's network namespace pool: the same spawns from the default helper (netns_pool 4) and from
// one without a pool (0: CLONE_NEWNET and `lo` up on the spawn path), interleaved sample by sample, in a
// tight loop (the helper refills while the bench waits for each payload) and 20 ms apart.
let namespacesWithoutNetnsPool = NamespaceSandbox(configuration: .init(hostIDs: ids.range, netnsPool: 0), hostIDs: ids,
                                                  logger: logger)
let netnsBackends = [namespaces, namespacesWithoutNetnsPool]
var netnsSamples: [[Double]] = [[], []], netnsSparse: [[Double]] = [[], []]
var netnsPhases: [[SpawnTimings]] = [[], []]
for index in 0..<(warmup + options.iterations) {
    for (slot, backend) in netnsBackends.enumerated() {
        let (sample, process) = await backendSample(options.payload) { (spec) throws(SandboxError) in
            try await backend.spawn(spec)
        }
        guard index >= warmup else { continue }
        netnsSamples[slot].append(sample)
        if let timings = process.spawnTimings { netnsPhases[slot].append(timings) }
    }
}
for _ in 0..<sparseCount {
    for (slot, backend) in netnsBackends.enumerated() {
        usleep(20_000)
        let (sample, _) = await backendSample(options.payload) { (spec) throws(SandboxError) in try await backend.spawn(spec) }
        netnsSparse[slot].append(sample)
    }
}
rows.append(("netns-pool|p", Figures(netnsSamples[0])))
rows.append(("no-netns-pool|p", Figures(netnsSamples[1])))
rows.append(("netns-pool|sp", Figures(netnsSparse[0])))
rows.append(("no-netns|sp", Figures(netnsSparse[1])))
// Cost flat in daemon size: the same namespaces spawns with 1 GiB touched in this process, in rounds that
// alternate without and with it (the ballast mapped and touched anew each round), judged on the median of
// the per-round ratios; and the RSS of each sandbox's PID 1 (a copy of sandboxd-spawner, never of this
// process) right after the spawn.
let pid1RSS = Mutex<[Int]>([])
let ballastBytes = 1 << 30
var ballastRSS = ""
var ballastSamples: [Double] = [], ballastRoundRatios: [Double] = []
let ballastRounds = 8, ballastPerRound = max(10, options.iterations / ballastRounds)
for _ in 0..<ballastRounds {
    var plain: [Double] = [], loaded: [Double] = []
    for _ in 0..<ballastPerRound {
        plain.append(await backendSample(options.payload) { (spec) throws(SandboxError) in try await namespaces.spawn(spec) }.0)
    }
    let ballast = mmap(nil, ballastBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)!
    memset(ballast, 1, ballastBytes)
    ballastRSS = residentKilobytes()
    for _ in 0..<ballastPerRound {
        loaded.append(await backendSample(options.payload) { (spec) throws(SandboxError) in try await namespaces.spawn(spec) }.0)
    }
    munmap(ballast, ballastBytes)
    ballastSamples += loaded
    ballastRoundRatios.append(Figures(loaded).median / Figures(plain).median)
}
let ballastFigures = Figures(ballastSamples)
for _ in 0..<20 {
    guard let process = try? await namespaces.spawn(SandboxSpec(executable: FilePath(options.payload), bindSharedLibraries: false))
    else { continue }
    if let kib = Int(residentKilobytes("\(process.pid)").filter(\.isNumber)) { pid1RSS.withLock { $0.append(kib) } }
    process.kill()
    _ = await process.waitForExit()
}
rows.append(("ns+1GiB", ballastFigures))
rows.append(("c-baseline", baselineFigures(options.baseline, payload: options.payload, iterations: options.iterations, full: true)))
rows.append(("c-minimal", baselineFigures(options.baseline, payload: options.payload, iterations: options.iterations, full: false)))
// The goal ratios, from rounds that interleave namespaces, bubblewrap, namespaces without the netns pool
// and the full C baseline (a slice of each per round), so a change of load during the run hits them alike:
// per round the ratio of the medians, then the median over the rounds. The baseline creates its network
// namespace on the spawn path, as namespaces does without the pool.
let rounds = 10, perRound = max(10, options.iterations / rounds)
var roundRatios: (bubblewrap: [Double], baseline: [Double], withoutPool: [Double]) = ([], [], [])
var interleavedSamples: (namespaces: [Double], bubblewrap: [Double], baseline: [Double]) = ([], [], [])
for _ in 0..<rounds {
    var namespacesRound: [Double] = [], bubblewrapRound: [Double] = [], withoutPoolRound: [Double] = []
    for _ in 0..<perRound {
        namespacesRound.append(await backendSample(options.payload) { (spec) throws(SandboxError) in try await namespaces.spawn(spec) }.0)
        bubblewrapRound.append(await backendSample(options.payload) { (spec) throws(SandboxError) in try bubblewrap.spawnBlocking(spec) }.0)
        withoutPoolRound.append(await backendSample(options.payload) { (spec) throws(SandboxError) in
            try await namespacesWithoutNetnsPool.spawn(spec)
        }.0)
    }
    let baselineRound = baselineFigures(options.baseline, payload: options.payload, iterations: perRound, full: true).median
    let namespacesMedian = Figures(namespacesRound).median
    roundRatios.bubblewrap.append(Figures(bubblewrapRound).median / namespacesMedian)
    roundRatios.baseline.append(namespacesMedian / baselineRound)
    roundRatios.withoutPool.append(Figures(withoutPoolRound).median / baselineRound)
    interleavedSamples.namespaces += namespacesRound
    interleavedSamples.bubblewrap += bubblewrapRound
    interleavedSamples.baseline.append(baselineRound)
}
unlink(bpfPath)

print("bench-spawn: \(options.iterations) spawns each (after \(warmup) warm-up), spawn → payload's first write; bench RSS \(residentKilobytes())")
print(pad("mode", 16) + pad("median_us", 12) + "p99_us")
for (name, figures) in rows { print(pad(name, 16) + pad(format(figures.median), 12) + format(figures.p99)) }
func median(_ values: [Duration]) -> String { format(microseconds(values.sorted()[values.count / 2])) }
if !phases.isEmpty {
    print("namespaces phases (median us): clone \(median(phases.map(\.clone))) id-maps \(median(phases.map(\.idMaps))) setup \(median(phases.map(\.setup)))")
}
if !limitedPhases.isEmpty {
    print("ns+limits phases (median us): clone \(median(limitedPhases.map(\.clone))) id-maps+cgroup+rlimits \(median(limitedPhases.map(\.idMaps))) setup \(median(limitedPhases.map(\.setup)))")
}
let removalTimes = removals.withLock { $0 }.sorted()
let available = cgroups.status.available.map(\.rawValue).sorted().joined(separator: ",")
print("limits: cgroup \(cgroups.status.version?.rawValue ?? "none") [\(available)], \(benchLimits); cgroup removal after exit median \(format(removalTimes[removalTimes.count / 2])) us")
func spread(_ times: [Double]) -> String {
    let sorted = times.sorted()
    return "median \(format(sorted[sorted.count / 2])) us, p99 \(format(sorted[min(sorted.count - 1, sorted.count * 99 / 100)])) us"
}
print("limits: cgroup on the spawn path, pooled (take + differing limit files): \(spread(creationsPooled)); unpooled (mkdir + limit files): \(spread(creationsUnpooled))")
cgroups.removeGroupDirectories()
unpooled.removeGroupDirectories()
let figures = Dictionary(uniqueKeysWithValues: rows)
let added = figures["ns+limits"]!.median - figures["namespaces"]!.median
print("ns+limits - namespaces = \(format(added)) us, ratio \(format(figures["ns+limits"]!.median / figures["namespaces"]!.median))x (goal <= 150 us added: \(added <= 150 ? "met" : "missed"))")
let pairedAdded = figures["ns+limits|p"]!.median - figures["ns|paired"]!.median
let pairedDeltas = zip(pairedSamples[1], pairedSamples[0]).map { $0 - $1 }.sorted()
print("interleaved: ns+limits - namespaces = \(format(pairedAdded)) us (median of per-pair differences \(format(pairedDeltas[pairedDeltas.count / 2])) us), ratio \(format(figures["ns+limits|p"]!.median / figures["ns|paired"]!.median))x (goal <= 150 us added: \(pairedAdded <= 150 ? "met" : "missed")); without the pool \(format(figures["nopool|p"]!.median - figures["ns|paired"]!.median)) us")
if pairedCPU.allSatisfy({ !$0.isEmpty }) {
    func mid(_ values: [Double]) -> String { format(values.sorted()[values.count / 2]) }
    print("interleaved, sandbox PID 1 until started (median us): on CPU ns \(mid(pairedCPU[0])) / ns+limits \(mid(pairedCPU[1])) / nopool \(mid(pairedCPU[2])); waiting for a CPU \(mid(pairedWait[0])) / \(mid(pairedWait[1])) / \(mid(pairedWait[2]))")
}
let sparseAdded = figures["ns+lim|sparse"]!.median - figures["ns|sparse"]!.median
print("sparse (\(sparseCount) pairs, 20 ms apart): ns+limits - namespaces = \(format(sparseAdded)) us, ratio \(format(figures["ns+lim|sparse"]!.median / figures["ns|sparse"]!.median))x")
let addedUnpooled = figures["ns+lim-nopool"]!.median - figures["namespaces"]!.median
print("ns+lim-nopool - namespaces = \(format(addedUnpooled)) us, ratio \(format(figures["ns+lim-nopool"]!.median / figures["namespaces"]!.median))x (without the pool, for comparison)")
let netnsDeltas = zip(netnsSamples[0], netnsSamples[1]).map { $0 - $1 }.sorted()
print("netns pool (interleaved): with/without = \(format(figures["netns-pool|p"]!.median / figures["no-netns-pool|p"]!.median))x, median of per-pair differences \(format(netnsDeltas[netnsDeltas.count / 2])) us; 20 ms apart: \(format(figures["netns-pool|sp"]!.median / figures["no-netns|sp"]!.median))x")
if netnsPhases.allSatisfy({ !$0.isEmpty }) {
    print("netns pool phases (median us, with / without): clone \(median(netnsPhases[0].map(\.clone))) / \(median(netnsPhases[1].map(\.clone))), setup \(median(netnsPhases[0].map(\.setup))) / \(median(netnsPhases[1].map(\.setup)))")
}
let bwrapRatio = Figures(roundRatios.bubblewrap).median
let baselineRatio = Figures(roundRatios.baseline).median
print("interleaved (\(rounds) rounds of \(perRound) spawns each): namespaces median \(format(Figures(interleavedSamples.namespaces).median)) us, bubblewrap \(format(Figures(interleavedSamples.bubblewrap).median)) us, c-baseline (median of round medians) \(format(Figures(interleavedSamples.baseline).median)) us")
let withoutPoolRatio = Figures(roundRatios.withoutPool).median
print("bubblewrap/namespaces = \(twoDecimals(bwrapRatio))x, rounds \(twoDecimals(roundRatios.bubblewrap.min()!))-\(twoDecimals(roundRatios.bubblewrap.max()!))x (goal >= 2.5x: \(bwrapRatio >= 2.5 ? "met" : "missed")); sequential rows \(twoDecimals(figures["bubblewrap"]!.median / figures["namespaces"]!.median))x")
print("namespaces/c-baseline = \(twoDecimals(baselineRatio))x, rounds \(twoDecimals(roundRatios.baseline.min()!))-\(twoDecimals(roundRatios.baseline.max()!))x (goal <= 1.3x: \(baselineRatio <= 1.3 ? "met" : "missed")); without the netns pool \(twoDecimals(withoutPoolRatio))x; sequential rows \(twoDecimals(figures["namespaces"]!.median / figures["c-baseline"]!.median))x; against the minimal C sequence (c-minimal) \(twoDecimals(figures["namespaces"]!.median / figures["c-minimal"]!.median))x")
let ballastRatio = Figures(ballastRoundRatios).median
print("ns+1GiB/namespaces = \(twoDecimals(ballastRatio))x, \(ballastRounds) alternating rounds of \(ballastPerRound), rounds \(twoDecimals(ballastRoundRatios.min()!))-\(twoDecimals(ballastRoundRatios.max()!))x, with bench RSS \(ballastRSS) (goal <= 1.10x: \(ballastRatio <= 1.10 ? "met" : "missed"))")
let pid1 = pid1RSS.withLock { $0 }.sorted()
if !pid1.isEmpty {
    print("PID 1 RSS (kB): median \(pid1[pid1.count / 2]), max \(pid1.last!) (goal <= 1024: \(pid1.last! <= 1024 ? "met" : "missed"))")
}
