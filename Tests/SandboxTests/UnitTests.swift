#if canImport(Glibc)
import Glibc
#endif
import CSandboxShim
import Foundation
@testable import Sandbox
import SystemPackage
import Testing

@Suite(.timeLimit(.minutes(1)))
struct SeccompFilterTests {
    @Test func sharedFilterBuildsFromTheSeedAllowlist() throws {
        let filter = try SeccompFilter.shared.get()
        #expect(filter.unknownSyscalls == 0)
        #expect(filter.instructionCount > 50)
        #expect(filter.program.count % 8 == 0)
        #expect(SeccompFilter.oasisAllowlist.count == 304)
        #expect(!SeccompFilter.oasisAllowlist.contains("clone"))
        #expect(!SeccompFilter.oasisAllowlist.contains("clone3"))
        for forbidden in ["unshare", "mount", "setns", "ptrace", "bpf", "keyctl", "pivot_root", "init_module"] {
            #expect(!SeccompFilter.oasisAllowlist.contains(forbidden))
        }
    }

    @Test func cloneMaskCoversEveryNamespaceFlag() {
        let flags: [UInt64] = [0x0002_0000, 0x0200_0000, 0x0400_0000, 0x0800_0000, 0x1000_0000, 0x2000_0000, 0x4000_0000, 0x80]
        for flag in flags { #expect(SeccompFilter.cloneNamespaceFlags & flag == flag) }
        // Threads and fork must stay allowed: CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|… and SIGCHLD.
        #expect(SeccompFilter.cloneNamespaceFlags & 0x003D_0F00 == 0)
        #expect(SeccompFilter.cloneNamespaceFlags & UInt64(SIGCHLD) == 0)
    }
}

@Suite struct HostIDAllocatorTests {
    @Test func handsOutDistinctIdsAndReusesReleasedOnes() {
        let allocator = HostIDAllocator(range: HostIDRange(base: 1000, count: 3))
        let ids = (0..<3).compactMap { _ in allocator.acquire() }
        #expect(Set(ids) == [1000, 1001, 1002])
        #expect(allocator.acquire() == nil)
        allocator.release(1001)
        #expect(allocator.acquire() == 1001)
        #expect(allocator.inUseCount == 3)
    }
}

/// Feeds ``SandboxOutputLines`` from a pipe the test writes into.
@Suite(.timeLimit(.minutes(1)))
struct OutputLineTests {
    func lines(of text: [UInt8], maximumLength: Int) async -> [OutputLine] {
        var ends: [Int32] = [-1, -1]
        precondition(pipe(&ends) == 0)
        let writer = ends[1]
        let output = SandboxOutput(takingOwnershipOf: ends[0])
        let writing = Task.detached {
            var offset = 0
            while offset < text.count {  // dribble in small pieces to exercise reassembly
                let size = Swift.min(7, text.count - offset)
                _ = text.withUnsafeBytes { write(writer, $0.baseAddress! + offset, size) }
                offset += size
            }
            close(writer)
        }
        var result: [OutputLine] = []
        for await line in output.lines(maximumLength: maximumLength) { result.append(line) }
        await writing.value
        return result
    }

    @Test func splitsAndCutsLongLines() async {
        let text = Array("short\n\nexactly10!\n0123456789abcdefghijXYZ\ntail".utf8)
        let result = await lines(of: text, maximumLength: 10)
        #expect(result.map(\.text) == ["short", "", "exactly10!", "0123456789", "abcdefghij", "XYZ", "tail"])
        #expect(result.map(\.isPartial) == [false, false, false, true, true, false, false])
    }

    @Test func bytesArriveInOrder() async {
        var ends: [Int32] = [-1, -1]
        #expect(pipe(&ends) == 0)
        let output = SandboxOutput(takingOwnershipOf: ends[0])
        let payload = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let writer = ends[1]
        // The blocking writes run on a thread of their own: on the cooperative pool (2 threads on 2 cores)
        // they could hold the thread the reading task needs.
        let writing = Thread {
            payload.withUnsafeBytes { buffer in
                var offset = 0
                while offset < buffer.count {
                    let n = write(writer, buffer.baseAddress! + offset, buffer.count - offset)
                    if n <= 0 { break }
                    offset += n
                }
            }
            close(writer)
        }
        writing.start()
        var received: [UInt8] = []
        for await chunk in output { received += chunk }
        #expect(received == payload)
    }
}

@Suite(.enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct UnsandboxedBackendTests {
    @Test func runsWithHygieneAndPlacesDataFiles() async throws {
        let probe = try Probe.built.get()
        let dataDirectory = TempDirectory.make(prefix: "sbx-none")
        defer { TempDirectory.remove(dataDirectory) }
        let backend = UnsandboxedBackend(dataDirectory: FilePath(dataDirectory), logger: testLogger)
        let spec = SandboxSpec(
            executable: FilePath(probe.probe),
            arguments: ["safe", "read:\(dataDirectory)/etc/config.txt", "exit:5"],
            environment: ["ONLY": "this"],
            dataFiles: [DataFile(target: "/etc/config.txt", contents: Array("none-data".utf8))]
        )
        let (status, seen, _) = try await runToCompletion(backend, spec)
        #expect(status == .exited(5))
        #expect(seen["read:\(dataDirectory)/etc/config.txt"] == "none-data")
        #expect(backend.hostPath(forDataFile: "/etc/config.txt") == FilePath("\(dataDirectory)/etc/config.txt"))
        var info = stat()
        #expect(stat("\(dataDirectory)/etc/config.txt", &info) == 0)
        #expect(info.st_mode & 0o777 == 0o444)
        #expect(seen.all("env") == ["ONLY=this"])
        #expect(seen["fds"] == "0,1,2")
        #expect(seen["sigpipe"] == "default")
        #expect(seen["blocked"] == "0")
        #expect(seen["sid_is_pgid"] == "1")
        #expect(seen["pid"] != "2")
    }

    @Test func execFailuresAreTyped() async throws {
        let probe = try Probe.built.get()
        let backend = UnsandboxedBackend(logger: testLogger)
        let missing = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: "/nonexistent/x"))
        }
        #expect(missing?.code == .executableNotFound)
        #expect(missing?.stage == "exec")
        let denied = await #expect(throws: SandboxError.self) {
            _ = try await backend.spawn(SandboxSpec(executable: FilePath(probe.notExecutable)))
        }
        #expect(denied?.code == .executableNotExecutable)
        #expect(denied?.errno == .permissionDenied)
    }
}

@Suite(.enabled(if: isRoot, "switching ids needs root"), .enabled(if: Probe.available, Probe.unavailableReason),
       .timeLimit(.minutes(1)))
struct PlainLaunchTests {
    @Test func launchAsDedicatedIDs() async throws {
        let probe = try Probe.built.get()
        let spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["safe"])
        let process = try UnsandboxedBackend.launch(spec, ids: (uid: 395_000, gid: 395_001))
        var bytes: [UInt8] = []
        if let stdout = process.standardOutput { for await chunk in stdout { bytes += chunk } }
        #expect(await process.waitForExit() == .exited(0))
        let seen = Observations(String(decoding: bytes, as: UTF8.self))
        #expect(seen["uid"] == "395000")
        #expect(seen["gid"] == "395001")
        #expect(seen["groups"] == "0")
    }
}

@Suite(.enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct PlainSpawnMoveTests {
    /// Two pipes' write ends swapped into each other's numbers plus one at a fresh number: each lands
    /// where asked (the probe writes through /proc/self/fd on the host), everything else is closed.
    @Test func movesPlaceDescriptorsAtFixedNumbers() async throws {
        let probe = try Probe.built.get()
        var first: [Int32] = [-1, -1], second: [Int32] = [-1, -1], third: [Int32] = [-1, -1]
        #expect(sbx_pipe_cloexec(&first) == 0 && sbx_pipe_cloexec(&second) == 0 && sbx_pipe_cloexec(&third) == 0)
        defer { for fd in first + second + third { close(fd) } }
        let spec = SandboxSpec(executable: FilePath(probe.probe),
                               arguments: ["safe", "write:/proc/self/fd/\(first[1])", "write:/proc/self/fd/60"])
        let moves = [sbx_fd_move(source: first[1], target: second[1]), sbx_fd_move(source: second[1], target: first[1]),
                     sbx_fd_move(source: third[1], target: 60)]
        let child = try PlainChild.start(spec, moves: moves)
        let process = SandboxProcess(pid: child.pid, pidfd: child.pidfd, controlFD: nil, hostID: nil,
                                     standardOutput: child.stdoutReader.map { SandboxOutput(takingOwnershipOf: $0) },
                                     standardError: child.stderrReader.map { SandboxOutput(takingOwnershipOf: $0) },
                                     onExit: nil)
        process.startMonitoring()
        var bytes: [UInt8] = []
        if let stdout = process.standardOutput { for await chunk in stdout { bytes += chunk } }
        #expect(await process.waitForExit() == .exited(0))
        let seen = Observations(String(decoding: bytes, as: UTF8.self))
        #expect(seen["fds"] == "0,1,2,\([first[1], second[1], 60].sorted().map(String.init).joined(separator: ","))")
        // fd `first[1]` in the child is the second pipe, and 60 the third.
        for (reader, expected) in [(second[0], "written"), (third[0], "written")] {
            _ = fcntl(reader, F_SETFL, O_NONBLOCK)
            var buffer = [UInt8](repeating: 0, count: 16)
            let count = read(reader, &buffer, 16)
            #expect(count > 0 && String(decoding: buffer[0..<max(count, 0)], as: UTF8.self) == expected)
        }
        var buffer = [UInt8](repeating: 0, count: 16)
        _ = fcntl(first[0], F_SETFL, O_NONBLOCK)
        #expect(read(first[0], &buffer, 16) < 0, "nothing went to the first pipe")
    }

    @Test func moveOntoAnInheritedDescriptorIsRefused() throws {
        let probe = try Probe.built.get()
        var ends: [Int32] = [-1, -1]
        #expect(sbx_pipe_cloexec(&ends) == 0)
        defer { close(ends[0]); close(ends[1]) }
        var spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["safe"])
        spec.inheritedDescriptors = [FileDescriptor(rawValue: ends[1])]
        #expect(throws: SandboxError.self) {
            _ = try PlainChild.start(spec, moves: [sbx_fd_move(source: ends[0], target: ends[1])])
        }
    }
}
