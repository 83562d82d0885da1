import ArgumentParser
import Foundation

struct Call: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Send one RHP request to a runtime and print its answer (waits until the runtime is ready).",
        discussion: """
            VARIANT is the RHP body variant (e.g. RuntimeQueryRequest). With --json the payload is a JSON \
            object with the field names of the RHP spec, byte strings in base64; the answer is printed as \
            JSON. With --cbor-file the payload is the file's canonical CBOR; the answer's canonical CBOR \
            body goes to standard output. A runtime's Error answer exits 1 with its module, code and message.
            """
    )
    // Not `GlobalOptions`: here `--json` takes the payload, so printing the API's JSON is `--print-json`
    // (a global `--json` given before `call` is read as that).
    @Option(name: .long, help: "Control socket of sandboxd.")
    var socket: String = ProcessInfo.processInfo.environment["SANDBOXD_SOCKET"] ?? "/run/sandboxd.sock"
    @Flag(name: .customLong("print-json"), help: "Print the API's JSON answer as it is.") var printJSON = false
    @Argument(help: "Runtime name.") var name: String
    @Argument(help: "RHP body variant, e.g. RuntimeQueryRequest.") var variant: String
    @Option(name: .customLong("json"), help: "The payload as a JSON object (default {}).") var jsonPayload: String?
    @Option(name: .customLong("cbor-file"), help: "A file holding the payload as canonical CBOR.") var cborFile: String?
    @Option(name: .customLong("timeout-ms"), help: "Give up after this many milliseconds (default 10000).")
    var timeoutMilliseconds: Int = 10_000

    func validate() throws {
        if jsonPayload != nil, cborFile != nil { throw ValidationError("--json and --cbor-file exclude each other") }
        if !(1...86_400_000).contains(timeoutMilliseconds) { throw ValidationError("--timeout-ms must be from 1 to 86400000") }
        guard !variant.isEmpty, variant.utf8.count < 256, variant.allSatisfy({ $0.isLetter || $0.isNumber }) else {
            throw ValidationError("VARIANT must be an RHP body variant name such as RuntimeQueryRequest")
        }
    }

    var client: UnixHTTPClient { UnixHTTPClient(socketPath: socket) }

    func run() throws {
        let path = API.path(name, "/call")
        if let cborFile {
            guard let payload = FileManager.default.contents(atPath: cborFile) else {
                throw CLIError.usage("cannot read \(cborFile)")
            }
            // {variant: payload}: a one-entry map with a text key, then the payload as it is.
            let key = Array(variant.utf8)
            var body: [UInt8] = [0xa1]
            if key.count < 24 { body.append(0x60 | UInt8(key.count)) } else { body += [0x78, UInt8(key.count)] }
            body += key + [UInt8](payload)
            let result = try client.send("POST", path + "?timeout_ms=\(timeoutMilliseconds)", body: body, contentType: "application/cbor")
            try API.check(result)
            FileHandle.standardOutput.write(Data(result.body))
            return
        }
        let payload = jsonPayload ?? "{}"
        guard let object = try? JSONSerialization.jsonObject(with: Data(payload.utf8)), object is [String: Any] else {
            throw CLIError.usage("--json must be a JSON object")
        }
        let variantJSON = String(decoding: try JSONSerialization.data(withJSONObject: variant, options: .fragmentsAllowed), as: UTF8.self)
        let request = #"{"body":{\#(variantJSON):\#(payload)},"timeout_ms":\#(timeoutMilliseconds)}"#
        let result = try client.send("POST", path, body: Array(request.utf8))
        if !(200..<300).contains(result.status),
           let object = try? JSONSerialization.jsonObject(with: Data(result.body)) as? [String: Any],
           let error = object["error"] as? [String: Any], let runtime = error["runtime"] as? [String: Any] {
            throw CLIError.refused(
                status: result.status, code: "runtime_error",
                message: "runtime error: module \(API.text(runtime["module"])), code \(API.text(runtime["code"])): \(API.text(runtime["message"]))")
        }
        try API.check(result)
        if printJSON { return API.printJSON(result.body) }
        let body = try API.object(result.body)["body"] ?? [:]
        let pretty = try JSONSerialization.data(withJSONObject: body, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        print(String(decoding: pretty, as: UTF8.self))
    }
}

struct Info: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show what a running runtime answered in its RHP handshake.")
    @OptionGroup var global: GlobalOptions
    @Argument(help: "Runtime name.") var name: String

    func run() throws {
        let body = try API.call(global, "GET", API.path(name, "/info"))
        if global.json { return API.printJSON(body) }
        let info = try API.object(body)
        print("\(name): runtime \(API.text(info["runtime_version"])) (active \(API.text(info["active_version"]))), RHP \(API.text(info["protocol_version"]))")
        if let features = info["features"] as? [String: Any] {
            for key in features.keys.sorted() { print("  \(key): \(API.text(features[key]))") }
        }
    }
}
