import Foundation
import Testing
@testable import SystemdSupport

@Suite("Lifecycle entries and the catalog")
struct LifecycleTests {
    @Test func messageIDsAreDistinct128BitIDs() {
        let ids = LifecycleEvent.allCases.map(\.messageID) + [RuntimeOutputForwarder.droppedMessageID]
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.count == 32 && id.allSatisfy { $0.isHexDigit && !$0.isUppercase }, "\(id)")
        }
    }

    @Test func catalogExplainsEveryMessageID() throws {
        let catalog = try String(
            contentsOf: Host.packageRoot.appendingPathComponent("systemd/sandboxd.catalog"), encoding: .utf8
        )
        for id in LifecycleEvent.allCases.map(\.messageID) + [RuntimeOutputForwarder.droppedMessageID] {
            #expect(catalog.contains("-- \(id)\nSubject: "), "catalog has no entry for \(id)")
        }
    }

    @Test func stoppedEntryCarriesRuntimeAndExitFields() throws {
        let journal = RecordingJournal()
        let lifecycle = JournalLifecycle(sink: journal)
        lifecycle.record(.stopped, runtime: RuntimeIdentity(id: "r1", name: "alpha", pid: 42), details: .init(signal: 9, restartCount: 2))
        let entry = try #require(journal.entries.first)
        #expect(entry["MESSAGE"] == "Runtime alpha stopped, killed by signal SIGKILL.")
        #expect(entry["MESSAGE_ID"] == LifecycleEvent.stopped.messageID)
        #expect(entry["PRIORITY"] == "5")
        #expect(entry["SANDBOX_EVENT"] == "stopped")
        #expect(entry["SANDBOX_RUNTIME_ID"] == "r1")
        #expect(entry["SANDBOX_RUNTIME_NAME"] == "alpha")
        #expect(entry["SANDBOX_RUNTIME_PID"] == "42")
        #expect(entry["SANDBOX_EXIT_SIGNAL"] == "9")
        #expect(entry["SANDBOX_EXIT_SIGNAL_NAME"] == "SIGKILL")
        #expect(entry["SANDBOX_RESTART_COUNT"] == "2")
        #expect(entry["CODE_FILE"]?.hasSuffix("LifecycleTests.swift") == true)
    }

    @Test func restartScheduledCarriesBackoff() throws {
        let journal = RecordingJournal()
        JournalLifecycle(sink: journal).record(
            .restartScheduled, runtime: RuntimeIdentity(id: "r1", name: "alpha"),
            details: .init(restartCount: 1, backoff: .seconds(2))
        )
        let entry = try #require(journal.entries.first)
        #expect(entry["SANDBOX_BACKOFF_USEC"] == "2000000")
        #expect(entry["MESSAGE"] == "Runtime alpha restart scheduled in 2s (restart 1).")
        #expect(entry["SANDBOX_RUNTIME_PID"] == nil)
    }
}

@Suite("Exit descriptions")
struct ExitDescriptionTests {
    @Test func provisionerExitStatusText() {
        #expect(LifecycleDetails(exit: "exited(3)") == LifecycleDetails(exitStatus: 3))
        #expect(LifecycleDetails(exit: "signaled(9)", restartCount: 2) == LifecycleDetails(signal: 9, restartCount: 2))
        #expect(LifecycleDetails(exit: nil) == LifecycleDetails())
        #expect(LifecycleDetails(exit: "vanished") == LifecycleDetails())
        #expect(LifecycleDetails(exit: "exited(x)") == LifecycleDetails())
    }
}
