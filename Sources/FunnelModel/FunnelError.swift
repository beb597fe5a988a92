import Foundation

/// Exit statuses from sysexits.h, the contract of `mailfunnel`'s command line.
public enum ExitStatus: Int32, Sendable {
    case ok = 0
    case usage = 64
    case dataError = 65
    case noInput = 66
    case unavailable = 69
    case software = 70
    case ioError = 74
    case temporaryFailure = 75
    case protocolError = 76
    case noPermission = 77
    case config = 78
}

/// Errors that end a command, each with the exit status it maps to and a message for a person.
public enum FunnelError: Error, CustomStringConvertible, Sendable {
    /// A malformed or unsupported source/target URL.
    case badURL(String, reason: String)
    /// A config file problem, with file, line (when known), key and what was expected.
    case config(file: String, line: Int?, key: String?, message: String)
    /// A local file or directory could not be read or written.
    case io(path: String, operation: String, errno: Int32)
    /// A source could not be read as what it claims to be.
    case badSource(String, reason: String)
    /// The source file or directory does not exist or cannot be opened.
    case noInput(String, reason: String)
    /// The ledger could not be opened or written.
    case ledger(path: String, message: String)
    /// A usage problem on the command line.
    case usage(String)
    /// Another process is working on the account (`AccountLocks`); the holder as its lock names it.
    case busy(account: String, holder: String)

    public var exitStatus: ExitStatus {
        switch self {
        case .badURL, .usage: return .usage
        case .config: return .config
        case .io: return .ioError
        case .badSource: return .dataError
        case .noInput: return .noInput
        case .ledger: return .software
        case .busy: return .temporaryFailure
        }
    }

    public var description: String {
        switch self {
        case let .badURL(url, reason):
            return "bad URL '\(url)': \(reason)"
        case let .config(file, line, key, message):
            var place = file
            if let line { place += ":\(line)" }
            if let key { place += ": key '\(key)'" }
            return "\(place): \(message)"
        case let .io(path, operation, code):
            return "\(operation) \(path): \(String(cString: strerror(code)))"
        case let .badSource(source, reason), let .noInput(source, reason):
            return "\(source): \(reason)"
        case let .ledger(path, message):
            return "ledger \(path): \(message)"
        case let .busy(account, holder):
            return "\(account): another run is working on this account: \(holder); wait for it, or give --wait"
        case let .usage(message):
            return message
        }
    }
}

/// Why one message could not be delivered. The class decides what the run does next.
public struct DeliveryError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Class: String, Sendable {
        /// The message itself is refused (too large, rejected with 5xx): record `failed`, go on.
        case permanent
        /// Try again on the next run (4xx, a full mailbox): record `failed` as deferred, go on.
        case temporary
        /// Over a limit of the target (IMAP `[TOOBIG]`, `[LIMIT]`): record `skipped` with the reason,
        /// as sending it again would get the same answer.
        case overLimit = "over-limit"
        /// The sink is gone (connection lost, disk full): stop this account; what is in flight stays
        /// `pending` and recovery decides it on the next run.
        case sinkFailed = "sink-failed"
    }

    public var errorClass: Class
    public var message: String

    public init(_ errorClass: Class, _ message: String) {
        self.errorClass = errorClass
        self.message = message
    }

    public var description: String { "\(errorClass.rawValue): \(message)" }
}

/// Wraps `errno` after a failed system call on `path`.
package func posixError(_ operation: String, _ path: String) -> FunnelError {
    .io(path: path, operation: operation, errno: errno)
}
