import Foundation
import Testing

extension SystemdIntegrationTests {
    /// The notifier through real `sd_notify` in a child process, received on a `SO_PASSCRED` datagram socket.
    @Suite(
        "sd_notify to a NOTIFY_SOCKET listener",
        .enabled(if: Host.probe != nil, "the systemd-probe helper is not built"),
        .timeLimit(.minutes(1))
    )
    struct NotifySocketTests {
        @Test(.timeLimit(.minutes(1)))
        func readyStatusReloadStoppingFatal() async throws {
            let directory = try Host.temporaryDirectory("notify")
            defer { try? FileManager.default.removeItem(at: directory) }
            let listener = try NotifyListener(directory: directory)
            async let collected = listener.collect(until: .now + .seconds(15)) { $0.last?.value("STATUS")?.hasPrefix("fatal") == true }
            let result = try await runCommand(Host.probe!, ["notify-sequence"], environment: childEnvironment(["NOTIFY_SOCKET": listener.path]))
            #expect(result.status == 0, "\(result.stderr)")
            let messages = try await collected
            try #require(messages.count == 7, "\(messages.map(\.text))")
            #expect(messages.allSatisfy { $0.pid > 0 && $0.pid == messages[0].pid }, "SCM_CREDENTIALS name the probe")
            #expect(messages[0].text == "READY=1\nSTATUS=running: 1 runtimes (1 up, 0 starting, 0 backoff, 0 failed)")
            // Two updates inside the window were coalesced: only the last one went out, a second later.
            #expect(messages[1].text == "STATUS=running: 4 runtimes (2 up, 0 starting, 1 backoff, 1 failed)")
            #expect(messages[1].receivedAt - messages[0].receivedAt >= .milliseconds(900))
            #expect(messages[2].lines.first == "RELOADING=1")
            #expect(messages[2].value("MONOTONIC_USEC").flatMap(UInt64.init) != nil)
            #expect(messages[3].text == "READY=1\nSTATUS=running: 4 runtimes (2 up, 0 starting, 1 backoff, 1 failed)")
            #expect(messages[4].text == "STOPPING=1\nSTATUS=stopping: 4 left")
            #expect(messages[5].text == "STATUS=stopping: 1 left")
            #expect(messages[5].receivedAt - messages[4].receivedAt >= .milliseconds(900))
            #expect(messages[6].text == "STATUS=fatal: cannot bind /run/sandboxd.sock\nERRNO=98")
        }

        @Test(.timeLimit(.minutes(1)))
        func watchdogFollowsTheLoopAndStopsWhenItIsStuck() async throws {
            let directory = try Host.temporaryDirectory("watchdog")
            defer { try? FileManager.default.removeItem(at: directory) }
            let listener = try NotifyListener(directory: directory)
            async let collected = listener.collect(until: .now + .seconds(8))
            let environment = childEnvironment(["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000"])
            let result = try await runCommand(Host.probe!, ["notify-watchdog", "8", "1.5"], environment: environment)
            let exited = ContinuousClock.now
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("interval_usec=200000"))
            let messages = try await collected
            #expect(messages.first?.text == "READY=1")
            let pings = messages.filter { $0.text == "WATCHDOG=1" }
            // One ping per healthy pass (a second pass right after is coalesced; allow a few extra when the
            // machine is so busy that the two calls end up more than 100 ms apart).
            #expect(pings.count >= 8 && pings.count <= 12, "\(messages.map(\.text))")
            // None while stuck (the last 1.5 s before the probe exited).
            #expect(pings.allSatisfy { exited - $0.receivedAt > .milliseconds(1400) }, "a ping while the loop was stuck")
            // Eight passes with 200 ms sleeps between them span at least 1.4 s.
            if let first = pings.first, let last = pings.last {
                #expect(last.receivedAt - first.receivedAt >= .milliseconds(1350))
            }
        }

        @Test func watchdogForAnotherPidIsOff() async throws {
            let directory = try Host.temporaryDirectory("watchdog-pid")
            defer { try? FileManager.default.removeItem(at: directory) }
            let listener = try NotifyListener(directory: directory)
            let environment = childEnvironment(["NOTIFY_SOCKET": listener.path, "WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"])
            let result = try await runCommand(Host.probe!, ["notify-watchdog", "1", "0"], environment: environment)
            #expect(result.status == 2)
            #expect(result.stderr.contains("watchdog not enabled"))
        }

        @Test func withoutNotifySocketNothingIsSentAndNothingFails() async throws {
            let result = try await runCommand(Host.probe!, ["notify-sequence"], environment: childEnvironment([:]))
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.contains("done"))
        }
    }
}
