import Foundation
import Sandbox
import SystemPackage

/// Runs an executable in a root that holds only a library layout: the "does it really load" check.
///
/// As root: a private mount namespace (`unshare --mount`), a tmpfs root, each bind read-only at its
/// target, the layout's symlinks, the executable at `/entrypoint`, then `chroot` and exec with an empty
/// environment. There is no `/etc/ld.so.cache` in that root, exactly as in a sandbox.
enum LibraryMinimalRoot {
    static func run(
        _ executable: String,
        arguments: [String] = [],
        layout: SharedLibraryLayout,
        environment: [String: String] = [:]
    ) throws -> LibraryProcessResult {
        let scratch = try LibraryScratchDirectory("root")
        var script = """
            set -eu
            export PATH=/usr/sbin:/usr/bin:/sbin:/bin
            root=\(quote(scratch.file("root")))
            mkdir -p "$root"
            mount -t tmpfs -o mode=0755 sandbox-libs "$root"
            place() {
              mkdir -p "$(dirname "$root$2")"
              : > "$root$2"
              mount --bind "$1" "$root$2"
              mount -o remount,bind,ro "$root$2"
            }
            place \(quote(executable)) /entrypoint

            """
        for bind in layout.binds {
            script += "place \(quote(bind.source.string)) \(quote(bind.target.string))\n"
        }
        for link in layout.symbolicLinks {
            script += "mkdir -p \"$(dirname \"$root\"\(quote(link.path.string)))\"\n"
            script += "ln -s \(quote(link.destination.string)) \"$root\"\(quote(link.path.string))\n"
        }
        let environmentArguments = environment.sorted { $0.key < $1.key }.map { quote("\($0.key)=\($0.value)") }
        script += "exec env -i \(environmentArguments.joined(separator: " ")) /usr/sbin/chroot \"$root\" /entrypoint \(arguments.map(quote).joined(separator: " "))\n"
        let scriptPath = try scratch.write("run.sh", script)
        return try LibraryTools.run("/usr/bin/unshare", ["--mount", "--propagation", "private", "/bin/sh", scriptPath])
    }

    private static func quote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
