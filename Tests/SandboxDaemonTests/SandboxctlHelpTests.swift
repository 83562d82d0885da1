import Foundation
import Testing

/// Help prints to stdout with exit 0 for the root and every subcommand, however it is asked for.
@Suite("sandboxctl help", .enabled(if: SandboxctlTests.binary != nil, "sandboxctl is not built"))
struct SandboxctlHelpTests {
    static let subcommands = ["list", "status", "provision", "start", "stop", "abort", "remove", "ping", "call", "info", "events", "logs", "health"]

    @Test("root help: --help, -h, help", arguments: [["--help"], ["-h"], ["help"]])
    func rootHelp(arguments: [String]) async {
        let result = await SandboxctlTests.run(arguments)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("USAGE: sandboxctl"), "\(arguments): \(result.stdout)")
        for subcommand in Self.subcommands { #expect(result.stdout.contains(subcommand)) }
    }

    @Test("subcommand help: NAME --help, NAME -h, help NAME", arguments: subcommands)
    func subcommandHelp(subcommand: String) async {
        for arguments in [[subcommand, "--help"], [subcommand, "-h"], ["help", subcommand]] {
            let result = await SandboxctlTests.run(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            #expect(result.stdout.contains("USAGE: sandboxctl \(subcommand)"), "\(arguments): \(result.stdout)")
        }
    }
}
