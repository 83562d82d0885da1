import Foundation
@testable import SandboxDaemon
import Testing

/// The event history is bounded in bytes as well as in count (issue #11, attack 1).
@Suite struct EventHistoryTests {
    @Test("events carrying long runtime text evict older ones once the byte bound is reached")
    func historyIsBoundedInBytes() {
        let hub = EventHub(historyLimit: 1000, historyByteLimit: 64 * 1024)
        let error = String(repeating: "e", count: 4096)
        for index in 0..<100 {
            hub.publish(EventDocument(time: Date(), runtime: "r\(index)", kind: .failedToStart(error: error, attempt: 1)))
        }
        let recent = hub.recent()
        let bytes = recent.reduce(0) { $0 + EventHub.estimatedSize($1) }
        #expect(bytes <= 64 * 1024, "\(bytes) bytes kept")
        #expect(recent.count >= 10 && recent.count < 100)
        #expect(recent.last?.runtime == "r99", "the newest event is kept")
        // With the default bounds, ordinary events fill the history up to its count bound.
        let defaults = EventHub()
        for index in 0..<2000 { defaults.publish(EventDocument(time: Date(), runtime: "s\(index)", kind: .updated(version: nil, capabilityTEE: nil))) }
        #expect(defaults.recent().count == 1000)
    }

    @Test("one event larger than the byte bound is still kept, alone")
    func oversizedEventIsKeptAlone() {
        let hub = EventHub(historyLimit: 10, historyByteLimit: 1024)
        hub.publish(EventDocument(time: Date(), runtime: "a", kind: .updated(version: nil, capabilityTEE: nil)))
        hub.publish(EventDocument(time: Date(), runtime: "b", kind: .failedToStart(error: String(repeating: "x", count: 5000), attempt: 1)))
        #expect(hub.recent().map(\.runtime) == ["b"])
    }
}
