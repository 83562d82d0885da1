import RuntimeArguments
import Testing

@Suite struct RuntimeArgumentsTests {
    @Test("the constructor captured this test process's argv before main")
    func capturedBeforeMain() throws {
        let captured = try #require(RuntimeArguments.captured, "the .init_array constructor did not run")
        // The test runner sees /proc here, so Swift's own view must agree with the captured one.
        #expect(captured == CommandLine.arguments)
        #expect(RuntimeArguments.commandLine() == captured)
    }

    @Test("without a captured argv and without /proc the command line is unavailable, never empty")
    func failsLoudly() {
        #expect(RuntimeArguments.resolve(captured: nil, fallback: []) == .failure(RuntimeArguments.Unavailable()))
        #expect(RuntimeArguments.resolve(captured: nil, fallback: ["x", "-v"]) == .success(["x", "-v"]))
        #expect(RuntimeArguments.resolve(captured: ["x"], fallback: []) == .success(["x"]))
    }
}
