import RuntimeProvisioner
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
        runtime.emit(.updated)
        let late = runtime.events()
        runtime.emit(.stopped(exit: "exited(0)"))

        func take(_ count: Int, from stream: AsyncStream<RuntimeEvent>) async -> [String] {
            var seen: [String] = []
            for await event in stream {
                seen.append("\(event)")
                if seen.count == count { break }
            }
            return seen
        }
        let all = ["configUpdated", "updated", #"stopped(exit: Optional("exited(0)"))"#]
        #expect(await take(3, from: first) == all)
        #expect(await take(3, from: second) == all)
        #expect(await take(1, from: late) == [all[2]])
    }
}
