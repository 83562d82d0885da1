import Foundation
import Logging
import RuntimeProvisioner
import Sandbox
import TestSupport
import Testing
import RuntimeJournal
@testable import SystemdSupport

@Suite("Out-of-memory journal entry")
struct OutOfMemoryEntryTests {
    @Test func outOfMemoryEntryHasItsOwnMessageIDAndFacts() throws {
        let journal = RecordingJournal()
        var details = LifecycleDetails()
        details.memoryLimit = 100_663_296
        details.oomKills = 1
        JournalLifecycle(sink: journal).record(
            .outOfMemory, runtime: RuntimeIdentity(id: "r1", name: "hog", pid: 7), details: details)
        let entry = try #require(journal.entries.first)
        #expect(entry["MESSAGE_ID"] == "2d3087b7435e4933a4fd70f81eb9936b")
        #expect(entry["SANDBOX_EVENT"] == "out_of_memory")
        #expect(entry["PRIORITY"] == "4")
        #expect(entry["SANDBOX_MEMORY_LIMIT"] == "100663296")
        #expect(entry["SANDBOX_OOM_KILLS"] == "1")
        #expect(entry["MESSAGE"] == "Runtime hog ran out of memory (limit of 100663296 bytes); killed the whole sandbox.")
    }
}

extension SystemdIntegrationTests.ProvisionerJournalTests {
    static func makeCgroups() -> CgroupHost {
        var logger = Logging.Logger(label: "test.cgroups")
        logger.logLevel = .critical
        return CgroupHost.detect(groupName: "sandboxd-test-\(UUID().uuidString.prefix(8).lowercased())", logger: logger)
    }

    static let hasMemoryCgroup: Bool = {
        let host = makeCgroups()
        host.removeGroupDirectories()
        return host.supports(.memory)
    }()

    /// A real OOM kill, end to end into the journal: the out-of-memory entry, then `stopped`, then a restart.
    @Test(.enabled(if: hasMemoryCgroup, "SKIPPED: no usable memory cgroup controller"))
    func outOfMemoryIsJournalled() async throws {
        let host = Self.makeCgroups()
        defer { host.removeGroupDirectories() }
        let fixture = try Fixture(cgroups: host)
        defer { fixture.remove() }
        let runtime = fixture.provisioner.newRuntime(RuntimeSpec(
            id: Self.runtimeID, name: "hog", executable: .init(ProductBinaries.exampleRuntime!),
            arguments: ["--allocate-mib", "1024"], mountProc: true, limits: ResourceLimits(memoryBytes: 96 << 20)))
        runtime.start()
        let entry = try await fixture.waitFor("out of memory", Self.isEvent(.outOfMemory))
        #expect(entry["SANDBOX_RUNTIME_NAME"] == "hog")
        #expect(entry["SANDBOX_MEMORY_LIMIT"] == String(96 << 20))
        #expect(Int(entry["SANDBOX_OOM_KILLS"] ?? "") ?? 0 >= 1)
        try await fixture.waitFor("stopped after the OOM kill", Self.isEvent(.stopped))
        try await fixture.waitFor("restart scheduled", Self.isEvent(.restartScheduled))
        await runtime.stop()
    }
}
