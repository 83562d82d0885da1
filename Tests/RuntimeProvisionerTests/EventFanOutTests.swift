import RuntimeHostProtocol
import RuntimeProvisioner
import Sandbox
import Testing

@Suite struct EventFanOutTests {
    @Test("every subscriber sees every event emitted after it subscribed, in order")
    func manySubscribers() async throws {
        let fixture = try ProvisionerFixture(backend: .none)
        defer { fixture.remove() }
        let runtime = fixture.runtime()
        let first = runtime.events()
        let second = runtime.events()
        runtime.emit(.configUpdated)
        runtime.emit(.updated(version: Version(major: 2), capabilityTEE: nil))
        let late = runtime.events()
        runtime.emit(.stopped(pid: 7, exit: .exited(0), requested: false))

        func take(_ count: Int, from stream: AsyncStream<RuntimeNotice>) async -> [String] {
            var seen: [String] = []
            for await event in stream {
                seen.append("\(event)")
                if seen.count == count { break }
            }
            return seen
        }
        let all = [
            "configUpdated", "updated(version: Optional(2.0.0), capabilityTEE: nil)",
            "stopped(pid: Optional(7), exit: Optional(exited(0)), requested: false, outOfMemory: false, failure: nil)",
        ]
        #expect(await take(3, from: first) == all)
        #expect(await take(3, from: second) == all)
        #expect(await take(1, from: late) == [all[2]])
    }

    @Test("a subscriber that falls behind gets one dropped record with the count where the gap is")
    func droppedRecord() async throws {
        let fixture = try ProvisionerFixture(backend: .none)
        defer { fixture.remove() }
        let runtime = fixture.runtime()
        let slow = runtime.events()
        for _ in 0..<(1024 + 6) { runtime.emit(.configUpdated) }
        var iterator = slow.makeAsyncIterator()
        for index in 0..<1024 {
            let event = await iterator.next()
            guard case .configUpdated? = event else { Issue.record("event \(index): \(String(describing: event))"); return }
        }
        // Emitted while the gap is still unreported: it comes after the dropped record.
        runtime.emit(.stopped(pid: nil, exit: nil, requested: true))
        let gap = await iterator.next()
        guard case .dropped(let count)? = gap else { Issue.record("expected dropped, got \(String(describing: gap))"); return }
        #expect(count == 6)
        let after = await iterator.next()
        guard case .stopped? = after else { Issue.record("expected stopped, got \(String(describing: after))"); return }
    }
}
