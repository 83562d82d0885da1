import Logging
import Testing
@testable import SystemdSupport

@Suite("Journal fields and the log handler")
struct JournalFieldsTests {
    @Test("metadata keys become journald field names", arguments: [
        ("runtime_id", "RUNTIME_ID"), ("runtime-id", "RUNTIME_ID"), ("_pid", "PID"), ("__x", "X"),
        ("1st", "X1ST"), ("", "X"), ("ünïcode key", "N_CODE_KEY"), ("a.b/c", "A_B_C"),
    ])
    func sanitizedNames(key: String, expected: String) {
        #expect(JournalFields.sanitizedName(key) == expected)
    }

    @Test func namesAreCappedAt64Characters() {
        #expect(JournalFields.sanitizedName(String(repeating: "a", count: 100)).count == 64)
    }

    @Test func assignmentsKeepBinaryValues() {
        var fields = JournalFields()
        fields.append("MESSAGE", bytes: [0x61, 0x0A, 0x00, 0x62])
        #expect(fields.assignments == [Array("MESSAGE=".utf8) + [0x61, 0x0A, 0x00, 0x62]])
    }

    @Test("log levels map to syslog priorities", arguments: [
        (Logger.Level.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
    ])
    func priorities(level: Logger.Level, priority: Int) {
        #expect(JournalLogHandler.priority(level).rawValue == priority)
    }

    @Test func handlerWritesMessagePriorityCodeLocationAndUppercaseMetadata() throws {
        let journal = RecordingJournal()
        var logger = Logger(label: "test.label") { JournalLogHandler(label: $0, sink: journal) }
        logger[metadataKey: "runtime-name"] = "alpha"
        logger.error("it broke", metadata: ["attempt": .stringConvertible(3), "priority": "shadowed", "_HOSTNAME": "spoof"])
        let entry = try #require(journal.entries.first)
        #expect(entry["MESSAGE"] == "it broke")
        #expect(entry["PRIORITY"] == "3")
        #expect(entry["SYSLOG_IDENTIFIER"] == "sandboxd")
        #expect(entry["CODE_FILE"]?.hasSuffix("JournalFieldsTests.swift") == true)
        #expect(Int(entry["CODE_LINE"] ?? "") != nil)
        #expect(entry["CODE_FUNC"]?.hasPrefix("handlerWritesMessagePriorityCodeLocationAndUppercaseMetadata") == true)
        #expect(entry["SANDBOX_LOGGER"] == "test.label")
        #expect(entry["RUNTIME_NAME"] == "alpha")
        #expect(entry["ATTEMPT"] == "3")
        #expect(entry["META_PRIORITY"] == "shadowed")
        #expect(entry["HOSTNAME"] == "spoof")
        #expect(entry.fields.filter { $0.name == "PRIORITY" }.count == 1)
        #expect(entry.fields.allSatisfy { !$0.name.hasPrefix("_") })
    }

    @Test func consoleSinkTurnsFieldsIntoALogCall() throws {
        let journal = RecordingJournal()
        let logger = Logger(label: "console") { JournalLogHandler(label: $0, identifier: "relay", sink: journal) }
        var fields = JournalFields()
        fields.append("MESSAGE", "hello")
        fields.append("PRIORITY", "4")
        fields.append("SANDBOX_RUNTIME_NAME", "alpha")
        fields.append("CODE_LINE", "12")
        try LoggerJournalSink(logger: logger).send(fields)
        let entry = try #require(journal.entries.first)
        #expect(entry["MESSAGE"] == "hello")
        #expect(entry["PRIORITY"] == "4")
        #expect(entry["SANDBOX_RUNTIME_NAME"] == "alpha")
    }
}
