#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import CSandboxShim
import SystemPackage

/// A process started by `sbx_plain_spawn` that is not yet a ``SandboxProcess``: what the `none`
/// backend hands on at once and the bubblewrap backend holds while it confirms bwrap's setup.
struct PlainChild {
    var pid: Int32
    var pidfd: CInt
    /// Read ends for ``OutputDisposition/pipe`` outputs (CLOEXEC, blocking), owned by the holder.
    var stdoutReader: CInt?
    var stderrReader: CInt?

    /// Starts `spec.executable` directly with the spec's arguments, environment, stdio and inherited
    /// descriptors, optionally as `ids` (supplementary groups cleared first), with `moves` placing
    /// extra descriptors at fixed numbers. Returns once `execve` succeeded; binds and data files are
    /// the caller's business. With `parentDeathSignal` the child gets that signal when the calling
    /// *thread* exits (`PR_SET_PDEATHSIG`): call it from ``SpawnThread`` only.
    static func start(
        _ spec: SandboxSpec, ids: (uid: UInt32, gid: UInt32)? = nil, moves: [sbx_fd_move] = [],
        parentDeathSignal: Int32? = nil
    ) throws(SandboxError) -> PlainChild {
        let environment = try SpawnSupport.environment(spec.environment)
        try SpawnSupport.checkArguments(spec.arguments)
        let keep = try SpawnSupport.inheritedDescriptors(spec.inheritedDescriptors)
        if keep.count + moves.count > Int(SBX_MAX_KEEP_FDS) {
            throw SandboxError(.invalidSpec, "too many descriptors for the child (max \(SBX_MAX_KEEP_FDS))")
        }
        var bag = DescriptorBag()
        let (stdinFD, stdoutFD, stderrFD, stdoutReader, stderrReader) = try SpawnSupport.stdio(spec, bag: &bag)
        let cgroupFDs = try SpawnSupport.cgroupJoin(spec, bag: &bag).fds
        let arena = CStringArena()
        var config = sbx_plain_config()
        config.nofile_limit = spec.limits.openFiles ?? 0
        config.exec_path = UnsafePointer(arena.string(spec.executable.string))
        config.argv = UnsafePointer(arena.array([spec.executable.string] + spec.arguments))
        config.envp = UnsafePointer(arena.array(environment))
        config.stdin_fd = stdinFD
        config.stdout_fd = stdoutFD
        config.stderr_fd = stderrFD
        if let parentDeathSignal {
            config.parent_death_signal = parentDeathSignal
            config.expected_parent = getpid()
        }
        if let ids {
            config.set_ids = 1
            config.uid = ids.uid
            config.gid = ids.gid
        }
        var result = sbx_spawn_result()
        let rc = keep.withUnsafeBufferPointer { keepBuffer in
            moves.withUnsafeBufferPointer { moveBuffer in
              cgroupFDs.withUnsafeBufferPointer { cgroupBuffer in
                config.cgroup_fds = cgroupBuffer.baseAddress
                config.cgroup_count = cgroupBuffer.count
                config.keep_fds = keepBuffer.baseAddress
                config.keep_count = keepBuffer.count
                config.moves = moveBuffer.baseAddress
                config.move_count = moveBuffer.count
                return sbx_plain_spawn(&config, &result)
              }
            }
        }
        withExtendedLifetime(arena) {}
        if let stdoutReader { bag.forget(stdoutReader) }
        if let stderrReader { bag.forget(stderrReader) }
        guard rc == 0 else {
            if let stdoutReader { close(stdoutReader) }
            if let stderrReader { close(stderrReader) }
            if result.stage == Int32(SBX_STAGE_MOVE_FDS.rawValue) || result.stage == Int32(SBX_STAGE_PREPARE.rawValue) {
                let stage = String(cString: sbx_stage_name(result.stage))
                throw SandboxError(.invalidSpec, "cannot place the child's descriptors", stage: stage,
                                   errno: Errno(rawValue: result.error))
            }
            throw SandboxError.fromShim(result, path: spec.executable.string) { "op \($0)" }
        }
        return PlainChild(pid: result.pid, pidfd: result.pidfd, stdoutReader: stdoutReader, stderrReader: stderrReader)
    }
}
