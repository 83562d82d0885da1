import Logging
import SandboxDaemon
import RuntimeJournal
import SystemdSupport

/// Builds the runtime backend the daemon drives: the sandbox provisioner, reporting to `journal`.
func makeBackend(
    configuration: DaemonConfiguration, logger: Logger, journal: ProvisionerJournal?, metrics: DaemonMetrics
) throws -> any RuntimeBackend {
    try ProvisionerBackend(configuration: configuration, logger: logger, journal: journal, metrics: metrics)
}
