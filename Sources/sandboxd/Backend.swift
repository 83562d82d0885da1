import Logging
import SandboxDaemon

/// Builds the runtime backend the daemon drives (the provisioner).
func makeBackend(configuration: DaemonConfiguration, logger: Logger) throws -> any RuntimeBackend {
    UnavailableBackend()
}

/// Stand-in until the provisioner is linked: every runtime creation fails with a clear message.
struct UnavailableBackend: RuntimeBackend {
    func makeRuntime(_ spec: RuntimeSpecification) throws -> any ManagedRuntime {
        throw DaemonError(.runtimeFailure, "this build has no runtime provisioner")
    }
}
