import FunnelModel
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Where to find a secret. At most one of these is set.
public struct Secret: Sendable, Equatable, CustomStringConvertible {
    public var file: String?
    public var command: String?
    /// An inline password (only accepted from a file that is private to its owner).
    public var inline: String?

    public init(file: String? = nil, command: String? = nil, inline: String? = nil) {
        self.file = file
        self.command = command
        self.inline = inline
    }

    public var isEmpty: Bool { file == nil && command == nil && inline == nil }
    public var description: String {
        if let file { return "password_file \(file)" }
        if let command { return "password_command \(command)" }
        return inline == nil ? "none" : "password <redacted>"
    }
}

extension Secret {
    /// Reads the secret: the first line of a file, the first line a command prints, the inline
    /// value, or else the environment variable named. Never logs or echoes it.
    /// - Parameter who: names the account or target in errors.
    public func resolve(environment variable: String, who: String) throws -> String {
        if let file {
            let path = (file as NSString).expandingTildeInPath
            guard let data = FileManager.default.contents(atPath: path) else {
                throw FunnelError.usage("\(who): cannot read the password file \(path): \(String(cString: strerror(errno)))")
            }
            return Self.firstLine(data)
        }
        if let command {
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", command]
            let out = Pipe()
            p.standardOutput = out
            p.standardInput = FileHandle.nullDevice
            do { try p.run() } catch {
                throw FunnelError.usage("\(who): cannot run the password command: \(error)")
            }
            let data = out.fileHandleForReading.readDataToEndOfFile()
            p.waitUntilExit()
            guard p.terminationStatus == 0 else {
                throw FunnelError.usage("\(who): the password command exited with status \(p.terminationStatus)")
            }
            let secret = Self.firstLine(data)
            guard !secret.isEmpty else { throw FunnelError.usage("\(who): the password command printed nothing") }
            return secret
        }
        if let inline { return inline }
        if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
        throw FunnelError.usage("\(who) needs a password: give a password file or command (password_file / password_command in the config, --source-password-file and the like on the command line) or set \(variable)")
    }

    static func firstLine(_ data: Data) -> String {
        let text = String(decoding: data, as: UTF8.self)
        return String(text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first ?? "")
            .trimmingCharacters(in: CharacterSet(charactersIn: "\r"))
    }
}
