extension LifecycleDetails {
    /// Reads an exit description as the provisioner renders `ExitStatus` (`exited(1)`, `signaled(9)`) into
    /// ``exitStatus`` / ``signal``; anything else (or nil) leaves both unset.
    public init(exit description: String?, restartCount: Int? = nil) {
        self.init(restartCount: restartCount)
        guard let description, description.hasSuffix(")"), let open = description.firstIndex(of: "(") else { return }
        guard let value = Int32(description[description.index(after: open)..<description.index(before: description.endIndex)])
        else { return }
        switch description[..<open] {
        case "exited": exitStatus = value
        case "signaled": signal = value
        default: break
        }
    }
}
