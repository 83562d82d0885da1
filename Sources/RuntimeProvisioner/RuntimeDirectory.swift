#if canImport(Glibc)
import Glibc
#endif
import SystemCalls
import SystemPackage

/// The private directory of one start attempt: `<root>/<name>.XXXXXX`, mode 0700, owned by the sandbox's uid.
enum RuntimeDirectory {
    static func create(under root: FilePath, name: String, owner: UInt32?) throws -> FilePath {
        do {
            try ensureRoot(root)
            var template = Array((root.appending("\(name).XXXXXX").string).utf8CString)
            let path: String = try template.withUnsafeMutableBufferPointer { buffer in
                guard mkdtemp(buffer.baseAddress!) != nil else {
                    throw SystemCallError("mkdtemp(\(root)/\(name).XXXXXX)", errno: Errno(rawValue: errno))
                }
                return String(cString: buffer.baseAddress!)
            }
            if let owner {
                try secureOwnership(of: path, expecting: .directory, owner: (owner, owner))
            }
            return FilePath(path)
        } catch let error as SystemCallError {
            throw ProvisionerError(.runtimeDirectory, "cannot create runtime directory: \(error.operation)", errno: error.errno)
        }
    }

    /// Creates the parent directory (root-only, but traversable so a sandbox uid can reach its own dir).
    private static func ensureRoot(_ root: FilePath) throws(SystemCallError) {
        var partial = FilePath("/")
        for component in root.components {
            partial.append(component)
            if mkdir(partial.string, 0o711) != 0 && errno != EEXIST {
                throw SystemCallError("mkdir(\(partial))", errno: Errno(rawValue: errno))
            }
        }
    }
}
