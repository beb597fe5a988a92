import ArgumentParser
import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// `mailfunnel`: gathers mail from old mailboxes into one, each message exactly once.
@main
struct Mailfunnel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mailfunnel",
        abstract: "Gather mail from old POP3/IMAP accounts, mbox files and Maildirs into one mailbox, each message exactly once.",
        discussion: """
            Every message handled is recorded in a SQLite ledger, so nothing is delivered twice, even \
            across crashes and re-runs, and nothing is deleted at the source before its delivery is on disk.

            Exit status: 0 done, 64 usage, 65 bad message data, 66 source missing, 69 server \
            unavailable, 75 temporary failure (run again), 76 protocol error, 77 authentication \
            refused, 78 configuration error.
            """,
        version: "0.1.0",
        subcommands: [Import.self, Run.self, Check.self, Status.self]
    )

    static func main() async {
        limitMallocArenas()
        await main(nil)
    }
}

/// One malloc arena and a fixed mmap threshold: glibc gives each thread that allocates an arena of
/// its own, and messages are spooled on one thread and freed on another, so each arena would grow
/// to its own high-water mark; and glibc raises the mmap threshold after each large free, keeping
/// big buffers in the heap. Set before any thread starts; MALLOC_ARENA_MAX and
/// MALLOC_MMAP_THRESHOLD_ still win.
private func limitMallocArenas() {
    #if canImport(Glibc)
    // mallopt is declared in <malloc.h>, which Swift's Glibc module leaves out.
    typealias Mallopt = @convention(c) (Int32, Int32) -> Int32
    guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "mallopt") else { return }
    let mallopt = unsafeBitCast(symbol, to: Mallopt.self)
    // glibc's own MALLOC_ARENA_MAX / MALLOC_MMAP_THRESHOLD_ settings, when given, win.
    let env = ProcessInfo.processInfo.environment
    if env["MALLOC_ARENA_MAX"] == nil { _ = mallopt(-8 /* M_ARENA_MAX */, 1) }
    if env["MALLOC_MMAP_THRESHOLD_"] == nil { _ = mallopt(-3 /* M_MMAP_THRESHOLD */, 256 << 10) }
    #endif
}

/// Options every command shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The ledger database (default: $XDG_DATA_HOME/mailfunnel/ledger.sqlite).", valueName: "path"), completion: .file())
    var ledger: String?

    @Flag(name: .shortAndLong, help: "More detail on stderr (-vv for a trace).")
    var verbose: Int

    @Flag(name: .long, help: "Print nothing but errors.")
    var quiet = false

    @Option(name: .long, help: ArgumentHelp("How log lines look on stderr: text, logfmt or json.", valueName: "format"),
            completion: .list(["text", "logfmt", "json"]))
    var logFormat: String = "text"

    func validate() throws {
        if let name = Self.repeatedOption(in: CommandLine.arguments) {
            throw ValidationError("\(name) is given more than once; give it once (only --account and -v repeat)")
        }
        guard logFormat == "text" || LineLogHandler.Format(rawValue: logFormat) != nil else {
            throw ValidationError("--log-format must be text, logfmt or json, not '\(logFormat)'")
        }
    }

    /// An option given twice would silently take its last value (a second --target-password-file,
    /// say), so it is refused. Only --account and --verbose add up.
    static func repeatedOption(in arguments: [String]) -> String? {
        var seen: Set<String> = []
        for argument in arguments.dropFirst() {
            if argument == "--" { break }
            guard argument.hasPrefix("--") else { continue }
            let name = String(argument.split(separator: "=", maxSplits: 1)[0])
            if name == "--account" || name == "--verbose" { continue }
            if !seen.insert(name).inserted { return name }
        }
        return nil
    }

    /// - Parameter daemon: the daemon reports each account's passes at `info` by default.
    func bootstrapLogging(daemon: Bool = false) {
        let level: Logger.Level = quiet ? .error : verbose >= 2 ? .trace : verbose == 1 ? .debug : daemon ? .info : .notice
        let format = LineLogHandler.Format(rawValue: logFormat)
        LineLogHandler.chosen.withLock { $0 = format }
        LoggingSystem.bootstrap { label in
            if let format { return LineLogHandler(label: label, format: format, logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Prints `error` the way a person needs it and returns the exit status it maps to.
func report(_ error: Error) -> ExitStatus {
    let (status, text) = describeFailure(error)
    LineLogHandler.say(.error, text, plain: "mailfunnel: error: \(text)")
    return status
}
