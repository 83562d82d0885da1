#if canImport(Glibc)
import Glibc
#endif
import Foundation
import SystemdSupport

/// Adopts the socket-activated `control` fd, answers one connection with "ok", and reports what it found.
enum ListenScenario {
    static func run() {
        do {
            guard let fd = try SocketActivation.listeningSocket() else {
                print("result=none")
                return
            }
            print("result=fd:\(fd)")
            fflush(nil)
            let connection = accept(fd, nil, nil)
            guard connection >= 0 else { fail("accept: errno \(errno)") }
            _ = "ok\n".withCString { write(connection, $0, 3) }
            close(connection)
        } catch {
            print("result=error:\(error.code.rawValue)")
        }
    }
}
