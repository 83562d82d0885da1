#if canImport(Glibc)
import Glibc
#endif
import Sandbox
import SystemCalls

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

// No top-level `await`: an async main parks the main thread in libdispatch's sigsuspend with every
// signal unblocked, where SIGTERM would kill sandbox-exec instead of reaching the forwarder. The main
// thread waits on a pipe instead, its mask intact.
var done: [CInt] = [-1, -1]
guard pipe(&done) == 0 else {
    report("cannot create a pipe (errno \(errno))")
    exit(125)
}
let writer = done[1]
Task.detached {
    var code = await run(command)
    _ = write(writer, &code, MemoryLayout<Int32>.size)
}
var code: Int32 = 125
retryingEINTR { read(done[0], &code, MemoryLayout<Int32>.size) }
exit(code)
