import RuntimeHostProtocol
@testable import RuntimeProvisioner
import Sandbox
import Testing

/// `ProvisionerConfiguration.spawnerPath` (the daemon's `sandbox.spawner_path`) reaches the namespaces backend.
@Suite struct SpawnerPathTests {
    @Test("the namespaces backend runs the configured sandboxd-spawner, else the one next to the executable")
    func configuredSpawner() throws {
        var configuration = ProvisionerConfiguration(hostInfo: HostInfo(consensusChainContext: ProvisionerFixture.chainContext))
        let standard = ProvisionerEnvironment(configuration: configuration, hostInfo: try #require(configuration.hostInfo))
        #expect(try #require(standard.backend(.namespaces) as? NamespaceSandbox).configuration.spawnerExecutable == nil)
        configuration.spawnerPath = "/opt/sandboxd/libexec/sandboxd-spawner"
        let configured = ProvisionerEnvironment(configuration: configuration, hostInfo: try #require(configuration.hostInfo))
        let backend = try #require(configured.backend(.namespaces) as? NamespaceSandbox)
        #expect(backend.configuration.spawnerExecutable == "/opt/sandboxd/libexec/sandboxd-spawner")
    }

    @Test("ProvisionerConfiguration.netnsPool (the daemon's sandbox.netns_pool) reaches the namespaces backend")
    func netnsPool() throws {
        var configuration = ProvisionerConfiguration(hostInfo: HostInfo(consensusChainContext: ProvisionerFixture.chainContext))
        let standard = ProvisionerEnvironment(configuration: configuration, hostInfo: try #require(configuration.hostInfo))
        #expect(try #require(standard.backend(.namespaces) as? NamespaceSandbox).configuration.netnsPool
            == NamespaceSandbox.Configuration.defaultNetnsPool)
        configuration.netnsPool = 0
        let disabled = ProvisionerEnvironment(configuration: configuration, hostInfo: try #require(configuration.hostInfo))
        #expect(try #require(disabled.backend(.namespaces) as? NamespaceSandbox).configuration.netnsPool == 0)
    }
}
