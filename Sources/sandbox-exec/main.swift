#if canImport(Glibc)
import Glibc
#endif
import Sandbox

// Before any thread exists: SIGINT/SIGTERM wait for the forwarder.
SignalForwarder.blockForwardedSignals()

/// Writes `text` and a newline to stderr.
func report(_ text: String) {
    let line = "sandbox-exec: \(text)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
}

let command: SandboxExecCommand
do {
    command = try SandboxExecCommand.parse(PairedOptions.join(Array(CommandLine.arguments.dropFirst())))
} catch {
    // --help and friends exit 0 on stdout; a usage error is sandbox-exec's own failure: 125.
    if SandboxExecCommand.exitCode(for: error) == .success { SandboxExecCommand.exit(withError: error) }
    report(SandboxExecCommand.fullMessage(for: error))
    exit(125)
}

/// Runs the sandbox to its end; the exit status for sandbox-exec.
func run(_ command: SandboxExecCommand) async -> Int32 {
    let process: SandboxProcess
    do throws(SandboxError) {
        process = try command.start(try command.spec())
    } catch {
        report("\(error)")
        return error.shellCode
    }
    SignalForwarder.start(forwardingTo: process)
    return await process.waitForExit().shellCode
}

exit(await run(command))
