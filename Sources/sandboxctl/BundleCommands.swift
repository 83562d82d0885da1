import ArgumentParser
import Bundle
import Foundation

/// `sandboxctl bundle …`: local tools for Oasis runtime bundles (no daemon needed).
struct BundleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bundle",
        abstract: "Inspect Oasis runtime bundles (.orc).",
        subcommands: [Inspect.self]
    )

    struct Inspect: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a bundle's manifest, components, verdict and manifest hash.",
            discussion: "Reads the bundle with sandboxd's archive limits and upstream's validation. Exit 1 when the bundle is refused."
        )
        @OptionGroup var global: GlobalOptions
        @Argument(help: "The .orc file.") var path: String

        func run() throws {
            let bundle: RuntimeBundle
            do {
                bundle = try RuntimeBundle.open(path: path)
            } catch {
                if global.json {
                    print(Self.json([
                        "path": path, "verdict": "reject", "manifest_hash": NSNull(),
                        "error": ["code": error.code.rawValue, "message": error.message],
                    ]))
                    Foundation.exit(1)
                }
                throw CLIError.protocolError("\(path): refused: \(error.message) (\(error.code.rawValue))")
            }
            let verdict = bundle.verdict
            let manifest = bundle.manifest
            var components: [[String: Any]] = []
            var listed: [Component] = manifest.legacyRONL.map { [$0] } ?? []
            listed += manifest.components
            for component in listed {
                var entry: [String: Any] = [
                    "id": component.id.text, "kind": component.kind, "version": component.version.description,
                    "executable": component.elfExecutable ?? NSNull(), "tee": component.teeKind,
                    "network": component.isNetworkAllowed, "disabled": component.disabled,
                ]
                if manifest.legacyRONL != nil, component.id.isRONL, component.elf?.executable == manifest.executable {
                    entry["legacy"] = true
                }
                components.append(entry)
            }
            if global.json {
                let raw = (try? JSONSerialization.jsonObject(with: Data(bundle.manifestJSON))) ?? NSNull()
                print(Self.json([
                    "path": path, "manifest_hash": bundle.manifestHashHex, "runtime_id": manifest.idHex,
                    "name": manifest.name, "components": components,
                    "verdict": verdict == nil ? "accept" : "reject",
                    "error": verdict.map { ["code": $0.code.rawValue, "message": $0.message] } ?? NSNull(),
                    "manifest": raw,
                ]))
            } else {
                print("bundle:         \(path)")
                print("name:           \(manifest.name.isEmpty ? "-" : manifest.name)")
                print("runtime id:     \(manifest.idHex)")
                print("manifest hash:  \(bundle.manifestHashHex)")
                print("components:")
                for entry in components {
                    let executable = entry["executable"] as? String ?? "(none)"
                    var notes: [String] = []
                    if entry["tee"] as? String != "none" { notes.append("tee \(entry["tee"]!)") }
                    if entry["network"] as? Bool == true { notes.append("network") }
                    if entry["disabled"] as? Bool == true { notes.append("disabled") }
                    print("  \(entry["id"]!)  \(entry["version"]!)  \(executable)\(notes.isEmpty ? "" : "  (" + notes.joined(separator: ", ") + ")")")
                }
                print("files:")
                for (name, digest) in bundle.fileDigests { print("  \(name)  \(Hex.encode(digest))") }
                if let verdict {
                    print("verdict:        reject: \(verdict.message) (\(verdict.code.rawValue))")
                } else {
                    print("verdict:        accept")
                }
            }
            if verdict != nil { Foundation.exit(1) }
        }

        static func json(_ object: [String: Any]) -> String {
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
