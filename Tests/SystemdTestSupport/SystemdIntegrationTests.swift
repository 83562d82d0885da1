public import Testing

/// The tests that start real processes (journald, systemd as PID 1, sandboxd, runtimes, listeners).
///
/// Serialized: each is timing-sensitive and busy, and the machine has two cores shared with every other
/// suite of `make test`; one at a time keeps them reliable without starving the rest. Their suites are
/// nested in extensions of this type, one file each, in `SystemdSupportTests` and `SandboxdEndToEndTests`
/// (so the two targets' integration suites still run one at a time).
@Suite(.serialized)
public enum SystemdIntegrationTests {}
