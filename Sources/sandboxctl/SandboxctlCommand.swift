import ArgumentParser
import Foundation

/// `sandboxctl`: talk to sandboxd over its control socket.
///
/// Exit codes: 0 success, 1 the API refused (its message on stderr), 2 usage error, 3 cannot reach the
/// daemon, 4 a local program it needs (journalctl) cannot run. `--socket PATH` and `--json` work before or
/// after the subcommand.
@main
struct Sandboxctl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandboxctl",
        abstract: "Control sandboxd: provision, start, stop and watch runtimes.",
        discussion: "Exit codes: 0 ok, 1 the API refused, 2 usage error, 3 cannot reach the daemon, "
            + "4 a local program it needs (journalctl) cannot run.",
        subcommands: [List.self, Status.self, Provision.self, Start.self, Stop.self, Abort.self, Remove.self,
                      Ping.self, Call.self, Info.self, Events.self, Logs.self, Health.self, BundleCommand.self]
    )

    static func main() {
        let arguments = hoistGlobalOptions(Array(CommandLine.arguments.dropFirst()))
        let command: any ParsableCommand
        do {
            command = try parseAsRoot(arguments)
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
        do {
            var command = command
            try command.run()
            Foundation.exit(0)
        } catch let error as CLIError {
            FileHandle.standardError.write(Data("sandboxctl: \(error.message)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch {
            // `--help`, `-h` and `help` parse as ArgumentParser's help command, whose run() "fails" with
            // the help request: print it (stdout, exit 0) instead of swallowing it.
            if exitCode(for: error) == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("sandboxctl: \(fullMessage(for: error))\n".utf8))
            Foundation.exit(2)
        }
    }

    /// Moves `--socket X`, `--socket=X` and `--json` given before the subcommand to after it, where the
    /// subcommand's `GlobalOptions` parse them.
    static func hoistGlobalOptions(_ arguments: [String]) -> [String] {
        var hoisted: [String] = []
        var rest: [String] = []
        var index = 0
        while index < arguments.count {
            let argument = arguments[index]
            if argument == "--json" || argument.hasPrefix("--socket=") {
                hoisted.append(argument)
            } else if argument == "--socket", index + 1 < arguments.count {
                hoisted += [argument, arguments[index + 1]]
                index += 1
            } else {
                rest = Array(arguments[index...])
                break
            }
            index += 1
        }
        guard let subcommand = rest.first else { return hoisted }
        // `call` takes `--json BODY`; the global flag is its `--print-json` there.
        if subcommand == "call" { hoisted = hoisted.map { $0 == "--json" ? "--print-json" : $0 } }
        return [subcommand] + hoisted + rest.dropFirst()
    }
}
