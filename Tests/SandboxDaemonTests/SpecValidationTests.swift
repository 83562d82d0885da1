import Foundation
import RuntimeHostProtocol
import Sandbox
@testable import SandboxDaemon
import Testing

@Suite("Spec validation")
struct SpecValidationTests {
    let validator = SpecValidator(defaultBackend: .namespaces)
    // Flags word (bytes 0-7): only 0x80/0x40 of byte 0 may be set (a namespace with reserved bits is refused).
    static let id = "c0" + String(repeating: "0", count: 14) + String(repeating: "ab", count: 24)

    func validate(_ json: String) throws(DaemonError) -> RuntimeSpecification {
        try validator.validate(try ControlAPI.decodeBody(Array(json.utf8)))
    }

    @Test("a minimal spec gets the documented defaults")
    func defaults() throws {
        let spec = try validate(#"{"name":"km-1","id":"\#(Self.id)","executable":"/bin/true"}"#)
        #expect(spec.sandbox == .namespaces)
        #expect(spec.autostart)
        #expect(!spec.network)
        #expect(spec.arguments.isEmpty && spec.binds.isEmpty && spec.dataFiles.isEmpty)
        #expect(spec.localConfig == nil && spec.expectedVersion == nil)
    }

    @Test("every field is understood")
    func fullSpec() throws {
        let spec = try validate("""
        {"name":"a.b_c-d","id":"\(Self.id.uppercased())","executable":"/bin/sh","args":["-c","true"],
         "env":{"A":"1"},"binds":[{"source":"/etc","target":"/host-etc"},{"source":"/tmp","target":"/scratch","mode":"rw"}],
         "data":[{"target":"/config/x","content_base64":"aGVsbG8="}],"network":true,"local_config":{"k":[1,2.5,"x",null]},
         "expected_version":"1.2.3","sandbox":"bubblewrap","autostart":false}
        """)
        #expect(spec.id == Self.id)
        #expect(spec.binds == [.init(source: "/etc", target: "/host-etc", mode: .readOnly), .init(source: "/tmp", target: "/scratch", mode: .readWrite)])
        #expect(spec.dataFiles.first?.contents == Array("hello".utf8))
        #expect(spec.expectedVersion == Version(major: 1, minor: 2, patch: 3))
        #expect(spec.sandbox == .bubblewrap && !spec.autostart && spec.network)
        #expect(spec.localConfig?["k"] == .array([.integer(1), .double(2.5), .string("x"), .null]))
        // The canonical document validates back to the same spec.
        #expect(try validator.validate(spec.document) == spec)
    }

    static let badInputs: [(String, String, DaemonError.Code, String?)] = [
        ("malformed JSON", #"{"name":"#, .invalidJSON, nil),
        ("empty body", "", .invalidJSON, nil),
        ("not an object", "[1]", .invalidSpec, nil),
        ("unknown field", #"{"name":"a","id":"\#(id)","executable":"/bin/true","colour":"red"}"#, .unknownField, "colour"),
        ("unknown nested field", #"{"name":"a","id":"\#(id)","executable":"/bin/true","binds":[{"source":"/","target":"/x","ro":true}]}"#, .unknownField, "binds[0].ro"),
        ("missing name", #"{"id":"\#(id)","executable":"/bin/true"}"#, .invalidSpec, "name"),
        ("bad name", #"{"name":"Bad Name","id":"\#(id)","executable":"/bin/true"}"#, .invalidSpec, "name"),
        ("name starting with a dot", #"{"name":".x","id":"\#(id)","executable":"/bin/true"}"#, .invalidSpec, "name"),
        ("name too long", #"{"name":"\#(String(repeating: "a", count: 64))","id":"\#(id)","executable":"/bin/true"}"#, .invalidSpec, "name"),
        ("short id", #"{"name":"a","id":"abcd","executable":"/bin/true"}"#, .invalidSpec, "id"),
        ("non-hex id", #"{"name":"a","id":"\#(String(repeating: "zz", count: 32))","executable":"/bin/true"}"#, .invalidSpec, "id"),
        ("missing id", #"{"name":"a","executable":"/bin/true"}"#, .invalidSpec, "id"),
        ("relative executable", #"{"name":"a","id":"\#(id)","executable":"bin/true"}"#, .invalidSpec, "executable"),
        ("missing executable", #"{"name":"a","id":"\#(id)","executable":"/nonexistent/runtime"}"#, .invalidSpec, "executable"),
        ("executable is a directory", #"{"name":"a","id":"\#(id)","executable":"/tmp"}"#, .invalidSpec, "executable"),
        ("args not strings", #"{"name":"a","id":"\#(id)","executable":"/bin/true","args":[1]}"#, .invalidSpec, "args[0]"),
        ("env not strings", #"{"name":"a","id":"\#(id)","executable":"/bin/true","env":{"A":1}}"#, .invalidSpec, "env.A"),
        ("env key with =", #"{"name":"a","id":"\#(id)","executable":"/bin/true","env":{"A=B":"1"}}"#, .invalidSpec, "env.A=B"),
        ("bad bind mode", #"{"name":"a","id":"\#(id)","executable":"/bin/true","binds":[{"source":"/tmp","target":"/x","mode":"rwx"}]}"#, .invalidSpec, "binds[0].mode"),
        ("relative bind target", #"{"name":"a","id":"\#(id)","executable":"/bin/true","binds":[{"source":"/tmp","target":"x"}]}"#, .invalidSpec, "binds[0].target"),
        ("missing bind source", #"{"name":"a","id":"\#(id)","executable":"/bin/true","binds":[{"source":"/no/such/dir","target":"/x"}]}"#, .invalidSpec, "binds[0].source"),
        ("dot-dot target", #"{"name":"a","id":"\#(id)","executable":"/bin/true","data":[{"target":"/a/../b","content_base64":""}]}"#, .invalidSpec, "data[0].target"),
        ("bad base64", #"{"name":"a","id":"\#(id)","executable":"/bin/true","data":[{"target":"/a","content_base64":"!!"}]}"#, .invalidSpec, "data[0].content_base64"),
        ("network not bool", #"{"name":"a","id":"\#(id)","executable":"/bin/true","network":"yes"}"#, .invalidSpec, "network"),
        ("bad version", #"{"name":"a","id":"\#(id)","executable":"/bin/true","expected_version":"1.2"}"#, .invalidSpec, "expected_version"),
        ("bad sandbox", #"{"name":"a","id":"\#(id)","executable":"/bin/true","sandbox":"docker"}"#, .invalidSpec, "sandbox"),
        ("local_config not an object", #"{"name":"a","id":"\#(id)","executable":"/bin/true","local_config":[1]}"#, .invalidSpec, "local_config"),
    ]

    @Test("bad inputs are refused with the documented code and field", arguments: badInputs.indices)
    func badInput(_ index: Int) {
        let (label, json, code, field) = Self.badInputs[index]
        do {
            _ = try validate(json)
            Issue.record("\(label): accepted")
        } catch {
            #expect(error.code == code, "\(label): \(error)")
            #expect(error.field == field, "\(label): \(error)")
        }
    }

    @Test("names follow [a-z0-9][a-z0-9._-]{0,62}")
    func names() {
        #expect(SpecValidator.isValidName("a"))
        #expect(SpecValidator.isValidName("0.keymanager_v2-x"))
        #expect(SpecValidator.isValidName(String(repeating: "a", count: 63)))
        #expect(!SpecValidator.isValidName(""))
        #expect(!SpecValidator.isValidName("-a"))
        #expect(!SpecValidator.isValidName("A"))
        #expect(!SpecValidator.isValidName("a/b"))
        #expect(!SpecValidator.isValidName("ä"))
    }
}
