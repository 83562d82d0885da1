import Foundation
import SystemdSupport

/// Scripted notifier use; the test's NOTIFY_SOCKET listener checks what arrives and when.
enum NotifySequence {
    static func run() {
        let notifier = SystemdNotifier(onError: { fail("notify: \($0)") })
        notifier.status(RuntimeCounts(up: 1))  // before READY: not reported
        notifier.ready()
        notifier.status(RuntimeCounts(up: 1, starting: 1))  // sent at once
        notifier.status(RuntimeCounts(up: 2))  // coalesced away
        notifier.status(RuntimeCounts(up: 2, backoff: 1, failed: 1))  // sent when the window opens
        sleep(seconds: 1.5)
        notifier.reloading()
        notifier.ready()
        notifier.stopping(left: 4)
        notifier.status(RuntimeCounts(up: 1, failed: 1, stopped: 2))  // rate-limited: stopping: 1 left
        sleep(seconds: 2)
        notifier.fatal("cannot bind /run/sandboxd.sock", errno: .addressInUse)
        print("done")
    }

    static func watchdog(healthyPasses: Int, stuckSeconds: Double) {
        let notifier = SystemdNotifier(onError: { fail("notify: \($0)") })
        guard let interval = notifier.watchdogInterval else { fail("watchdog not enabled") }
        print("interval_usec=\(interval.components.seconds * 1_000_000 + interval.components.attoseconds / 1_000_000_000_000)")
        fflush(nil)
        notifier.ready()
        for _ in 0..<healthyPasses {
            notifier.watchdogPass()
            notifier.watchdogPass()  // a second pass right away is coalesced
            sleep(seconds: Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18)
        }
        print("stuck")
        fflush(nil)
        sleep(seconds: stuckSeconds)  // the loop is "stuck": no passes, so no pings
    }
}
