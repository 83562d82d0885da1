import Foundation
@testable import SandboxDaemon
import Testing
import Yams

@Suite("OpenAPI document")
struct OpenAPITests {
    @Test("every route in the route table is documented, and nothing else")
    func routesDocumented() throws {
        let text = try String(contentsOfFile: ConfigTests.repository + "/docs/openapi.yaml", encoding: .utf8)
        let document = try #require(try Yams.load(yaml: text) as? [String: Any])
        #expect((document["openapi"] as? String)?.hasPrefix("3.") == true)
        let paths = try #require(document["paths"] as? [String: Any])
        var documented = Set<String>()
        for (path, item) in paths {
            for method in (item as? [String: Any] ?? [:]).keys where ["get", "post", "put", "delete", "patch"].contains(method) {
                documented.insert("\(method.uppercased()) \(path)")
            }
        }
        let routed = Set(Router.routes.map { "\($0.method.rawValue) \($0.pattern)" })
        #expect(routed == documented)
    }

    @Test("every error code is documented")
    func errorCodes() throws {
        let text = try String(contentsOfFile: ConfigTests.repository + "/docs/openapi.yaml", encoding: .utf8)
        for code in DaemonError.Code.allCases {
            #expect(text.contains(code.rawValue), "\(code.rawValue) missing from openapi.yaml")
        }
    }
}
