import Sandbox
import SystemPackage
import Testing

@Suite("Process limits at spawn")
struct LimitsSpawnTests {
    @Test("the none backend refuses a tmpfs size instead of ignoring it")
    func noneRefusesTmpfsSize() async throws {
        let spec = SandboxSpec(executable: "/bin/true", standardOutput: .discard, standardError: .discard,
                               limits: ProcessLimits(tmpfsBytes: 1 << 20))
        let error = await #expect(throws: SandboxError.self) { _ = try await UnsandboxedBackend(logger: testLogger).spawn(spec) }
        #expect(error?.code == .invalidSpec)
    }
}
