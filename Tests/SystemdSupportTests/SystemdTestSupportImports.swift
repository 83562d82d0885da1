@_exported import SystemdTestSupport

/// This suite's `Host` (the shared test support's), not Foundation's `Host` class.
typealias Host = SystemdTestSupport.Host
