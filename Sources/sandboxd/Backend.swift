import Logging
import SandboxDaemon

/// Builds the runtime backend the daemon drives: the sandbox provisioner.
func makeBackend(configuration: DaemonConfiguration, logger: Logger) throws -> any RuntimeBackend {
    try ProvisionerBackend(configuration: configuration, logger: logger)
}
