#if canImport(Glibc)
import Glibc
#endif
@testable import Sandbox
import SystemPackage
import Testing

/// The seccomp filter restricts `socket()`/`socketpair()` to AF_UNIX, AF_INET, AF_INET6 and
/// AF_NETLINK (NETLINK_ROUTE only), with and without a network namespace, in both backends: every
/// other family fails with EAFNOSUPPORT (issue #11, attack 9).
@Suite(.enabled(if: isRoot, "sandboxes need root"),
       .enabled(if: Probe.available, Probe.unavailableReason), .timeLimit(.minutes(1)))
struct SocketFamilyTests {
    static let cases: [(SandboxBackendKind, Bool)] = [
        (.namespaces, false), (.namespaces, true), (.bubblewrap, false), (.bubblewrap, true),
    ]

    @Test(arguments: 0..<4)
    func onlyTheFourFamiliesWork(_ index: Int) async throws {
        let (kind, network) = Self.cases[index]
        if kind == .bubblewrap, !bwrapAvailable {
            print("SKIP socket families under bubblewrap: no /usr/bin/bwrap (apt-get install bubblewrap)")
            return
        }
        let probe = try Probe.built.get()
        let base = UInt32(376_500 + index * 10)
        let range = HostIDRange(base: base, count: 4)
        let backend: any SandboxBackend = kind == .namespaces
            ? NamespaceSandbox(configuration: .init(hostIDs: range), logger: testLogger)
            : BubblewrapBackend(hostIDs: HostIDAllocator(range: range), logger: testLogger)
        let spec = SandboxSpec(executable: FilePath(probe.probe), arguments: ["safe"], allowNetwork: network,
                               bindSharedLibraries: false)
        let (status, seen, stderr) = try await runToCompletion(backend, spec)
        #expect(status == .exited(0), "\(kind) network \(network): \(stderr)")
        let context = "\(kind) network \(network)"
        for name in ["unix", "inet", "netlink_route"] {
            #expect(seen["socket.\(name)"] == "ok", "\(context): socket(\(name)) = \(seen["socket.\(name)"] ?? "-")")
        }
        #expect(seen["socketpair.unix"] == "ok", "\(context)")
        for name in ["netlink_audit", "vsock", "packet", "alg", "bluetooth", "family200"] {
            #expect(seen["socket.\(name)"] == "\(EAFNOSUPPORT)",
                    "\(context): socket(\(name)) = \(seen["socket.\(name)"] ?? "-"), want EAFNOSUPPORT")
        }
        #expect(seen["socketpair.vsock"] == "\(EAFNOSUPPORT)", "\(context)")
    }
}
