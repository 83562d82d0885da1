import Foundation
@testable import Sandbox
import SystemPackage
import Testing

@Suite("Shared-library resolver")
struct SharedLibraryResolverTests {
    let resolver = SharedLibraryResolver()

    // MARK: - Real executables

    @Test("system binaries resolve to exactly what ldd loads", arguments: ["/bin/sh", "/usr/bin/ls", "/usr/bin/env", "/usr/bin/unshare"])
    func systemBinaryMatchesLdd(_ executable: String) throws {
        let resolved = try resolver.resolve(executable: FilePath(executable))
        let interpreter = try #require(resolved.interpreter)
        #expect(interpreter.path == "/lib64/ld-linux-x86-64.so.2")
        #expect(interpreter.hostPath.string == (try LibraryTools.realPath("/lib64/ld-linux-x86-64.so.2")))
        #expect(Set(resolved.libraries.map(\.hostPath.string)) == (try LibraryTools.lddLibraries(executable)))
        #expect(resolved.libraries.contains { $0.name == "libc.so.6" && $0.soname == "libc.so.6" })
        #expect(Set(resolved.libraries.map(\.hostPath)).count == resolved.libraries.count, "each library once")
        #expect(!resolved.libraries.contains { $0.names.contains("ld-linux-x86-64.so.2") }, "the interpreter is ld.so itself, not a library")
    }

    @Test("a remembered result is reused only while the files are unchanged")
    func memoInvalidation() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("memo-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("ls").path
        try FileManager.default.copyItem(atPath: "/usr/bin/ls", toPath: copy)
        let first = try resolver.resolve(executable: FilePath(copy))
        #expect(try resolver.resolve(executable: FilePath(copy)) == first)
        // Replacing the executable (a new inode, as a package upgrade does) must not reuse the old answer.
        try FileManager.default.removeItem(atPath: copy)
        try FileManager.default.copyItem(atPath: "/bin/true", toPath: copy)
        let second = try resolver.resolve(executable: FilePath(copy))
        #expect(Set(second.libraries.map(\.name)) == ["libc.so.6"])
        try FileManager.default.removeItem(atPath: copy)
        #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: FilePath(copy)) }
    }

    @Test("ls: libraries found through ld.so.cache, bound under their soname")
    func lsLayout() throws {
        let resolved = try resolver.resolve(executable: "/usr/bin/ls")
        let names = resolved.libraries.map(\.name)
        #expect(names.first == "libselinux.so.1", "breadth-first: the executable's own DT_NEEDED first")
        #expect(Set(names) == ["libselinux.so.1", "libc.so.6", "libpcre2-8.so.0"])
        let libc = try #require(resolved.libraries.first { $0.name == "libc.so.6" })
        #expect(libc.foundPath == "/lib/x86_64-linux-gnu/libc.so.6", "the ld.so.cache path, symlinks unresolved")
        #expect(libc.neededBy == "/usr/bin/ls")

        let layout = SharedLibraryLayout(resolved)
        #expect(layout.binds.first == BindMount(source: resolved.interpreter!.hostPath, target: "/lib64/ld-linux-x86-64.so.2", mode: .readOnly))
        #expect(layout.binds.contains(BindMount(source: libc.hostPath, target: "/usr/lib/libc.so.6", mode: .readOnly)))
        #expect(layout.binds.count == 4)
        #expect(layout.binds.allSatisfy { $0.mode == .readOnly })
        #expect(layout.symbolicLinks == [SymbolicLink(path: "/usr/lib64", destination: "lib")])
    }

    @Test("Swift executable: runtime libraries through DT_RUNPATH, then each library's $ORIGIN RUNPATH",
          .enabled(if: LibraryTools.hasSwiftc, "SKIPPED LOUDLY: no swiftc at /opt/swift/usr/bin or /usr/bin, cannot build a RUNPATH executable"))
    func swiftExecutable() throws {
        let scratch = try LibraryScratchDirectory("swift")
        let program = try LibraryFixtures.swiftHello(in: scratch)
        let clock = ContinuousClock()
        let fresh = SharedLibraryResolver()
        let started = clock.now
        let resolved = try fresh.resolve(executable: FilePath(program))
        let first = clock.now - started
        var repeated: [Duration] = []
        for _ in 0..<25 {
            let again = clock.now
            _ = try fresh.resolve(executable: FilePath(program))
            repeated.append(clock.now - again)
        }
        print("shared-library resolution of a Swift hello (\(resolved.libraries.count) libraries): first (parses ld.so.cache) \(first), median of 25 more \(repeated.sorted()[12])")

        #expect(Set(resolved.libraries.map(\.hostPath.string)) == (try LibraryTools.lddLibraries(program)))
        let core = try #require(resolved.libraries.first { $0.name == "libswiftCore.so" })
        #expect(core.foundPath.string.hasSuffix("/usr/lib/swift/linux/libswiftCore.so"))
        let dispatch = try #require(resolved.libraries.first { $0.name == "libdispatch.so" })
        #expect(dispatch.neededBy.string.hasSuffix("libswift_Concurrency.so"), "found via libswift_Concurrency's $ORIGIN RUNPATH")
        #expect(SharedLibraryLayout(resolved).binds.contains { $0.target == "/usr/lib/libswiftCore.so" })
    }

    @Test("static executable needs nothing",
          .enabled(if: LibraryTools.hasCC, "SKIPPED LOUDLY: no cc at /usr/bin/cc, cannot build a static executable"))
    func staticExecutable() throws {
        let scratch = try LibraryScratchDirectory("static")
        let source = try scratch.write("static.c", "int main(void) { return 0; }\n")
        try LibraryTools.runChecked(LibraryTools.cc, ["-static", "-o", scratch.file("static"), source])
        let resolved = try resolver.resolve(executable: FilePath(scratch.file("static")))
        #expect(resolved == .none)
        #expect(SharedLibraryLayout(resolved) == SharedLibraryLayout(binds: [], symbolicLinks: []))
    }

    // MARK: - Search order on crafted layouts

    @Test("$ORIGIN in DT_RUNPATH finds a library next to the executable",
          .enabled(if: LibraryTools.hasCC, "SKIPPED LOUDLY: no cc at /usr/bin/cc"))
    func originRunpath() throws {
        let scratch = try LibraryScratchDirectory("origin")
        let app = try LibraryFixtures.chain(in: scratch, executableSearchPath: "$ORIGIN/lib", tag: .runpath, intermediateFindsLeaf: true)
        try LibraryTools.runChecked(app, [])
        let resolved = try resolver.resolve(executable: FilePath(app))
        let names = resolved.libraries.map(\.name)
        #expect(names.prefix(1) == ["libdemo_a.so"])
        let libA = try #require(resolved.libraries.first { $0.name == "libdemo_a.so" })
        #expect(libA.foundPath.string == scratch.file("bin/lib/libdemo_a.so"))
        #expect(libA.hostPath.string == (try LibraryTools.realPath(scratch.file("bin/lib/libdemo_a.so"))))
        #expect(Set(resolved.libraries.map(\.hostPath.string)) == (try LibraryTools.lddLibraries(app)))
    }

    @Test("DT_RPATH is inherited down the loader chain; DT_RUNPATH is not (agreeing with the real ld.so)",
          .enabled(if: LibraryTools.hasCC, "SKIPPED LOUDLY: no cc at /usr/bin/cc"))
    func rpathInheritance() throws {
        let withRpath = try LibraryScratchDirectory("rpath")
        let rpathApp = try LibraryFixtures.chain(in: withRpath, executableSearchPath: "${ORIGIN}/lib", tag: .rpath, intermediateFindsLeaf: false)
        try LibraryTools.runChecked(rpathApp, [])
        let viaRpath = try resolver.resolve(executable: FilePath(rpathApp))
        let leaf = try #require(viaRpath.libraries.first { $0.name == "libdemo_b.so" })
        #expect(leaf.neededBy.string == withRpath.file("bin/lib/libdemo_a.so"))
        #expect(leaf.foundPath.string == withRpath.file("bin/lib/libdemo_b.so"))

        let withRunpath = try LibraryScratchDirectory("runpath")
        let runpathApp = try LibraryFixtures.chain(in: withRunpath, executableSearchPath: "$ORIGIN/lib", tag: .runpath, intermediateFindsLeaf: false)
        let hostRun = try LibraryTools.run(runpathApp, [])
        #expect(hostRun.status == 127 && hostRun.standardError.contains("libdemo_b.so"), "ld.so itself must fail here: \(hostRun.standardError)")
        let error = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: FilePath(runpathApp)) }
        #expect(error?.code == .libraryNotFound)
        #expect(error?.message.contains("libdemo_b.so") == true)

        // LD_LIBRARY_PATH comes before DT_RUNPATH and serves every object.
        let libraryPath = withRunpath.file("bin/lib")
        try LibraryTools.runChecked(runpathApp, [], environment: ["LD_LIBRARY_PATH": libraryPath])
        let viaEnvironment = try resolver.resolve(executable: FilePath(runpathApp), libraryPath: "/nonexistent;" + libraryPath)
        #expect(viaEnvironment.libraries.map(\.name).contains("libdemo_b.so"))
    }

    @Test("a DT_NEEDED path is opened as is and bound at that path",
          .enabled(if: LibraryTools.hasCC, "SKIPPED LOUDLY: no cc at /usr/bin/cc"))
    func neededPath() throws {
        let scratch = try LibraryScratchDirectory("path")
        let app = try LibraryFixtures.pathNeeded(in: scratch)
        let resolved = try resolver.resolve(executable: FilePath(app))
        let library = try #require(resolved.libraries.first)
        #expect(library.name == scratch.file("lib/libnosoname.so"))
        #expect(library.soname == nil)
        #expect(SharedLibraryLayout(resolved).binds.contains { $0.target.string == scratch.file("lib/libnosoname.so") })
        #expect(Set(resolved.libraries.map(\.hostPath.string)) == (try LibraryTools.lddLibraries(app)))
    }

    @Test("DF_1_NODEFLIB keeps ld.so.cache and the default directories out (agreeing with the real ld.so)",
          .enabled(if: LibraryTools.hasCC, "SKIPPED LOUDLY: no cc at /usr/bin/cc"))
    func noDefaultLibraries() throws {
        let scratch = try LibraryScratchDirectory("nodeflib")
        let app = try LibraryFixtures.noDefaultLibraries(in: scratch)
        let hostRun = try LibraryTools.run(app, [])
        #expect(hostRun.status == 127 && hostRun.standardError.contains("libm.so.6"), "ld.so itself must fail here: \(hostRun.standardError)")
        let error = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: FilePath(app)) }
        #expect(error?.code == .libraryNotFound)
        #expect(error?.message.contains("libm.so.6 (needed by \(scratch.file("bin/lib/libnd.so")))") == true, "\(String(describing: error))")
        #expect(error?.message.contains("ld.so.cache") == false)

        let multiarch = "/lib/x86_64-linux-gnu"
        try LibraryTools.runChecked(app, [], environment: ["LD_LIBRARY_PATH": multiarch])
        let resolved = try resolver.resolve(executable: FilePath(app), libraryPath: multiarch)
        #expect(resolved.libraries.contains { $0.name == "libm.so.6" && $0.foundPath.string == multiarch + "/libm.so.6" })
    }

    @Test("an executable with PT_INTERP but no DT_NEEDED still needs its interpreter",
          .enabled(if: LibraryTools.hasCC, "SKIPPED LOUDLY: no cc at /usr/bin/cc"))
    func interpreterOnly() throws {
        let scratch = try LibraryScratchDirectory("interp")
        let program = try LibraryFixtures.interpreterOnly(in: scratch)
        try LibraryTools.runChecked(program, [])
        let resolved = try resolver.resolve(executable: FilePath(program))
        #expect(resolved.interpreter?.path == "/lib64/ld-linux-x86-64.so.2")
        #expect(resolved.libraries.isEmpty)
        #expect(SharedLibraryLayout(resolved).binds.map(\.target) == ["/lib64/ld-linux-x86-64.so.2"])
    }

    @Test("the library limit is enforced")
    func libraryLimit() {
        let small = SharedLibraryResolver(configuration: .init(maximumLibraries: 2))
        let error = #expect(throws: SharedLibraryError.self) { try small.resolve(executable: "/usr/bin/ls") }
        #expect(error?.code == .limitExceeded)
        #expect(throws: Never.self) { try SharedLibraryResolver(configuration: .init(maximumLibraries: 3)).resolve(executable: "/usr/bin/ls") }
    }

    @Test("a candidate for another machine is skipped, a broken one is fatal (agreeing with the real ld.so)")
    func candidateChecks() throws {
        let selinux = try LibraryTools.realPath("/lib/x86_64-linux-gnu/libselinux.so.1")
        let otherMachine = try LibraryScratchDirectory("machine")
        let original = try LibraryFixtures.bytes(of: selinux)
        var aarch64 = original
        aarch64.set(UInt16(183), at: 18)
        try otherMachine.write("libselinux.so.1", bytes: aarch64)
        try LibraryTools.runChecked("/usr/bin/ls", ["/"], environment: ["LD_LIBRARY_PATH": otherMachine.path])
        let skipped = try resolver.resolve(executable: "/usr/bin/ls", libraryPath: otherMachine.path)
        #expect(skipped.libraries.first { $0.name == "libselinux.so.1" }?.hostPath.string == selinux)

        let broken = try LibraryScratchDirectory("broken")
        try broken.write("libselinux.so.1", bytes: Array(original.prefix(100)))
        let hostRun = try LibraryTools.run("/usr/bin/ls", ["/"], environment: ["LD_LIBRARY_PATH": broken.path])
        #expect(hostRun.status == 127, "ld.so itself must fail here: \(hostRun.standardError)")
        let error = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: "/usr/bin/ls", libraryPath: broken.path) }
        #expect(error?.code == .truncatedFile)
        #expect(error?.path == FilePath(broken.file("libselinux.so.1")))
    }

    @Test("a library reached under two names is bound under both; /usr/lib64 targets go through the symlink")
    func aliasesShareOneFile() throws {
        let resolved = ResolvedLibraries(
            interpreter: ProgramInterpreter(path: "/usr/lib64/ld-linux-x86-64.so.2", hostPath: "/host/ld.so"),
            libraries: [SharedLibrary(hostPath: "/host/libx.so.1.2", names: ["libx.so.1", "libx.so", "/opt/x/../y/libx.so"], soname: "libx.so.1", foundPath: "/x/libx.so.1", neededBy: "/bin/app")]
        )
        let layout = SharedLibraryLayout(resolved)
        #expect(layout.binds.map(\.target) == ["/usr/lib/ld-linux-x86-64.so.2", "/usr/lib/libx.so.1", "/usr/lib/libx.so", "/opt/y/libx.so"])
        #expect(Set(layout.binds.map(\.source)) == ["/host/ld.so", "/host/libx.so.1.2"])
    }

    @Test("dynamic string tokens follow glibc 2.36")
    func dynamicStringTokens() {
        func expand(_ text: String) -> String? {
            LoaderSearchPath.substitutingTokens(in: text, origin: "/opt/app", machine: .x86_64)
        }
        #expect(expand("$ORIGIN/lib") == "/opt/app/lib")
        #expect(expand("${ORIGIN}/../lib") == "/opt/app/../lib")
        #expect(expand("$ORIGIN.x") == "/opt/app.x")
        #expect(expand("$ORIGINx") == "$ORIGINx")
        #expect(expand("/p/$LIB/$PLATFORM") == "/p/lib/x86_64-linux-gnu/x86_64")
        #expect(expand("/p/$LIBx") == "/p/$LIBx")
        #expect(expand("$FOO/a") == "$FOO/a")
        #expect(LoaderSearchPath.substitutingTokens(in: "$ORIGIN/lib", origin: nil, machine: .x86_64) == nil)
        #expect(LoaderSearchPath.directories("$ORIGIN/lib::rel/dir:/usr/lib/:/", separatedBy: LoaderSearchPath.pathListSeparators, origin: "/a", machine: .aarch64)
            == ["/a/lib", "/usr/lib", "/"])
        #expect(LoaderSearchPath.directories("/x;/y:/z", separatedBy: LoaderSearchPath.environmentSeparators, origin: nil, machine: .x86_64) == ["/x", "/y", "/z"])
    }

    // MARK: - ld.so.cache

    @Test("this machine's /etc/ld.so.cache maps libc.so.6 to the file ld.so loads")
    func realLoaderCache() throws {
        let cache = try LoaderCache.load(path: "/etc/ld.so.cache")
        let libc = try #require(cache.path(for: "libc.so.6", machine: .x86_64))
        #expect(libc == "/lib/x86_64-linux-gnu/libc.so.6")
        #expect(try LibraryTools.realPath(libc) == (try LibraryTools.lddLibraries("/bin/sh")).first { $0.hasSuffix("/libc.so.6") })
        #expect(cache.path(for: "libc.so.6", machine: .aarch64) == nil, "x86_64 entries must not serve aarch64")
        #expect(cache.path(for: "libdoes-not-exist.so.9", machine: .x86_64) == nil)
        #expect(cache.entriesByName.count > 50)
    }

    @Test("a missing cache is empty; a cache-less resolver still finds system libraries in the default directories")
    func missingLoaderCache() throws {
        #expect(try LoaderCache.load(path: "/nonexistent/ld.so.cache").entriesByName.isEmpty)
        let cacheless = SharedLibraryResolver(configuration: .init(loaderCachePath: nil))
        let resolved = try cacheless.resolve(executable: "/usr/bin/ls")
        #expect(Set(resolved.libraries.map(\.hostPath.string)) == (try LibraryTools.lddLibraries("/usr/bin/ls")))
        #expect(resolved.libraries.allSatisfy { $0.foundPath.string.hasPrefix("/lib/x86_64-linux-gnu/") })
    }

    @Test("combined legacy + new cache: the new header is found after the legacy table")
    func combinedLoaderCache() throws {
        let new = LibraryFixtures.newFormatCache(entries: [
            (name: "libalpha.so.1", path: "/opt/alpha/libalpha.so.1", flags: 0x0303, hwcap: 0),
            (name: "libbeta.so.2", path: "/opt/beta/v3/libbeta.so.2", flags: 0x0303, hwcap: 1 << 62),
            (name: "libbeta.so.2", path: "/opt/beta/libbeta.so.2", flags: 0x0303, hwcap: 0),
            (name: "libgamma.so", path: "/opt/arm/libgamma.so", flags: 0x0A03, hwcap: 0),
        ])
        for legacyCount in [0, 1, 3] {
            var legacy = Array("ld.so-1.7.0".utf8) + [0]
            legacy += LibraryFixtures.littleEndian(UInt32(legacyCount))
            legacy += [UInt8](repeating: 0, count: 12 * legacyCount)
            while legacy.count % 8 != 0 { legacy.append(0) }
            let cache = try LoaderCache(bytes: legacy + new, path: "combined")
            #expect(cache.path(for: "libalpha.so.1", machine: .x86_64) == "/opt/alpha/libalpha.so.1")
            #expect(cache.path(for: "libbeta.so.2", machine: .x86_64) == "/opt/beta/libbeta.so.2", "hwcaps subdirectory entries are skipped")
            #expect(cache.path(for: "libgamma.so", machine: .x86_64) == nil)
            #expect(cache.path(for: "libgamma.so", machine: .aarch64) == "/opt/arm/libgamma.so")
        }
        #expect(try LoaderCache(bytes: new, path: "new").path(for: "libalpha.so.1", machine: .x86_64) != nil)
    }

    @Test("malformed caches are typed errors", arguments: LibraryFixtures.malformedCaches())
    func malformedLoaderCache(_ sample: LibraryFixtures.Sample) {
        let error = #expect(throws: SharedLibraryError.self, "\(sample.label)") { try LoaderCache(bytes: sample.bytes, path: sample.label) }
        #expect(error?.code == .malformedLoaderCache, "\(sample.label): \(String(describing: error))")
    }

    // MARK: - Malformed ELF

    @Test("malformed executables give typed errors with a location", arguments: try LibraryFixtures.malformedExecutables())
    func malformedExecutable(_ sample: LibraryFixtures.Sample) throws {
        let scratch = try LibraryScratchDirectory("malformed")
        let path = try scratch.write("input", bytes: sample.bytes)
        let error = #expect(throws: SharedLibraryError.self, "\(sample.label)") { try resolver.resolve(executable: FilePath(path)) }
        #expect(error?.code == sample.expected, "\(sample.label): \(String(describing: error))")
        #expect(error?.path == FilePath(path))
        if sample.expected != .malformedELF || sample.label != "relative PT_INTERP" {
            #expect(error?.offset != nil, "\(sample.label): errors inside a file say where")
        }
    }

    @Test("missing files, directories and FIFOs are typed errors, not hangs")
    func unreadableInputs() throws {
        let missing = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: "/nonexistent/runtime") }
        #expect(missing?.code == .unreadableFile)
        #expect(missing?.errno == .noSuchFileOrDirectory)
        let directory = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: "/usr") }
        #expect(directory?.code == .notRegularFile)
        let scratch = try LibraryScratchDirectory("fifo")
        #expect(mkfifo(scratch.file("fifo"), 0o600) == 0)
        let fifo = #expect(throws: SharedLibraryError.self) { try resolver.resolve(executable: FilePath(scratch.file("fifo"))) }
        #expect(fifo?.code == .notRegularFile)
    }

    @Test("random corruption of a real executable never crashes the resolver")
    func corruptionNeverCrashes() throws {
        let original = try LibraryFixtures.bytes(of: "/usr/bin/ls")
        let scratch = try LibraryScratchDirectory("fuzz")
        var generator = SplitMix64(seed: 0x5EED_11B5)
        var outcomes: [String: Int] = [:]
        for iteration in 0..<400 {
            var bytes = original
            let region = iteration % 2 == 0 ? 0x400 : bytes.count
            for _ in 0..<(1 + Int(generator.next() % 8)) {
                bytes[Int(generator.next() % UInt64(region))] = UInt8(truncatingIfNeeded: generator.next())
            }
            if iteration % 5 == 0 { bytes.removeLast(Int(generator.next() % UInt64(bytes.count))) }
            let path = try scratch.write("fuzz-\(iteration)", bytes: bytes)
            do {
                _ = try resolver.resolve(executable: FilePath(path))
                outcomes["resolved", default: 0] += 1
            } catch {
                outcomes[error.code.rawValue, default: 0] += 1
            }
        }
        print("corrupted /usr/bin/ls outcomes: \(outcomes.sorted { $0.key < $1.key })")
        #expect(outcomes.values.reduce(0, +) == 400)
    }

    // MARK: - It really loads

    @Test("binaries run in a root holding only the computed layout (no ld.so.cache)",
          .enabled(if: LibraryTools.isRoot, "SKIPPED LOUDLY: needs root for unshare --mount, tmpfs and bind mounts"),
          arguments: ["/usr/bin/ls", "/bin/sh", "/usr/bin/env", "swift", "origin", "path", "interpreter-only"])
    func reallyLoads(_ which: String) throws {
        let scratch = try LibraryScratchDirectory("loads")
        let executable: String
        let arguments: [String]
        let expected: String
        switch which {
        case "swift":
            guard LibraryTools.hasSwiftc else {
                Issue.record("SKIPPED LOUDLY: no swiftc, the Swift executable cannot be checked in a minimal root")
                return
            }
            executable = try LibraryFixtures.swiftHello(in: scratch)
            (arguments, expected) = ([], "hello from a sandbox\n")
        case "origin":
            guard LibraryTools.hasCC else {
                Issue.record("SKIPPED LOUDLY: no cc, the $ORIGIN executable cannot be checked in a minimal root")
                return
            }
            executable = try LibraryFixtures.chain(in: scratch, executableSearchPath: "$ORIGIN/lib", tag: .runpath, intermediateFindsLeaf: true)
            (arguments, expected) = ([], "demo 42\n")
        case "path", "interpreter-only":
            guard LibraryTools.hasCC else {
                Issue.record("SKIPPED LOUDLY: no cc, the \(which) executable cannot be checked in a minimal root")
                return
            }
            if which == "path" {
                executable = try LibraryFixtures.pathNeeded(in: scratch)
                (arguments, expected) = ([], "path 42\n")
            } else {
                executable = try LibraryFixtures.interpreterOnly(in: scratch)
                (arguments, expected) = ([], "")
            }
        case "/usr/bin/ls":
            (executable, arguments, expected) = (which, ["/"], "entrypoint\nlib64\nusr\n")
        case "/bin/sh":
            (executable, arguments, expected) = (which, ["-c", "echo sandboxed shell"], "sandboxed shell\n")
        default:
            (executable, arguments, expected) = (which, [], "MARKER=1\n")
        }
        let layout = SharedLibraryLayout(try resolver.resolve(executable: FilePath(executable)))
        let result = try LibraryMinimalRoot.run(executable, arguments: arguments, layout: layout, environment: which == "/usr/bin/env" ? ["MARKER": "1"] : [:])
        #expect(result.status == 0, "\(which): \(result.standardError)")
        #expect(result.standardOutput == expected, "\(which): \(result.standardError)")
    }

    @Test("in the minimal root ld.so has no cache and finds the libraries in /usr/lib through its built-in path",
          .enabled(if: LibraryTools.isRoot, "SKIPPED LOUDLY: needs root for unshare --mount, tmpfs and bind mounts"))
    func loaderSearchesUsrLibWithoutCache() throws {
        let layout = SharedLibraryLayout(try resolver.resolve(executable: "/usr/bin/ls"))
        let result = try LibraryMinimalRoot.run("/usr/bin/ls", arguments: ["/"], layout: layout, environment: ["LD_DEBUG": "libs"])
        #expect(result.status == 0, "\(result.standardError)")
        let trace = result.standardError
        #expect(trace.contains("(system search path)"), "\(trace)")
        for directory in ["/lib/x86_64-linux-gnu:", "/usr/lib/x86_64-linux-gnu:", "/lib:", "/usr/lib\t"] {
            #expect(trace.contains(directory), "ld.so's built-in path should include \(directory): \(trace)")
        }
        #expect(trace.contains("trying file=/usr/lib/libc.so.6"))
        #expect(!trace.contains("/usr/lib64"), "Debian's ld.so never searches lib64 directories")
    }

    @Test("a spec's LD_LIBRARY_PATH and bindSharedLibraries are honoured")
    func layoutForSpec() throws {
        var spec = SandboxSpec(executable: "/usr/bin/ls", environment: ["LD_LIBRARY_PATH": "/nonexistent"])
        #expect(try resolver.layout(for: spec) == SharedLibraryLayout(try resolver.resolve(executable: "/usr/bin/ls")))
        spec.bindSharedLibraries = false
        #expect(try resolver.layout(for: spec).binds.isEmpty)

        let scratch = try LibraryScratchDirectory("llp")
        try FileManager.default.copyItem(atPath: LibraryTools.realPath("/lib/x86_64-linux-gnu/libpcre2-8.so.0"), toPath: scratch.file("libpcre2-8.so.0"))
        spec = SandboxSpec(executable: "/usr/bin/ls", environment: ["LD_LIBRARY_PATH": scratch.path])
        let layout = try resolver.layout(for: spec)
        #expect(layout.binds.contains(BindMount(source: FilePath(scratch.file("libpcre2-8.so.0")), target: "/usr/lib/libpcre2-8.so.0")),
                "LD_LIBRARY_PATH wins over ld.so.cache: \(layout.binds)")
    }

    @Test("control: without the library binds the same root does not load",
          .enabled(if: LibraryTools.isRoot, "SKIPPED LOUDLY: needs root for unshare --mount, tmpfs and bind mounts"))
    func withoutLibrariesItFails() throws {
        var layout = SharedLibraryLayout(try resolver.resolve(executable: "/usr/bin/ls"))
        layout.binds.removeAll { $0.target.string.hasPrefix("/usr/lib/") }
        let result = try LibraryMinimalRoot.run("/usr/bin/ls", arguments: ["/"], layout: layout)
        #expect(result.status == 127)
        #expect(result.standardError.contains("error while loading shared libraries"))
    }
}

/// A small deterministic generator so corruption runs are reproducible.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
