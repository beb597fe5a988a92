import Foundation
import Logging
import Synchronization

/// One log line per event on stderr, as logfmt (`time=… level=info account=orange msg="…"`) or
/// JSON, for log collectors. Metadata (the account name and the like) becomes fields.
struct LineLogHandler: LogHandler {
    enum Format: String, CaseIterable, Sendable { case logfmt, json }

    /// The format `--log-format` chose, once logging is set up; nil for text.
    static let chosen = Mutex<Format?>(nil)

    /// A line the command itself prints on stderr (its final error, its summary): in the chosen
    /// format, so a log collector reads every line of a run; as `text` when there is none.
    static func say(_ level: Logger.Level, _ text: String, plain: String) {
        guard let format = chosen.withLock({ $0 }) else {
            FileHandle.standardError.write(Data((plain + "\n").utf8))
            return
        }
        LineLogHandler(label: "mailfunnel", format: format, logLevel: level)
            .log(level: level, message: "\(text)", metadata: nil, source: "mailfunnel", file: #fileID, function: #function, line: #line)
    }

    let label: String
    let format: Format
    var logLevel: Logger.Level
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata explicit: Logger.Metadata?, source: String,
             file: String, function: String, line: UInt) {
        var fields: [(String, String)] = [("time", ISO8601DateFormatter().string(from: Date())), ("level", level.rawValue)]
        for (k, v) in metadata.merging(explicit ?? [:], uniquingKeysWith: { $1 }).sorted(by: { $0.key < $1.key }) {
            fields.append((k, "\(v)"))
        }
        fields.append(("msg", message.description))
        let text: String
        switch format {
        case .logfmt:
            text = fields.map { k, v in
                let needsQuotes = v.isEmpty || v.contains { $0 == " " || $0 == "\"" || $0 == "=" }
                return needsQuotes ? "\(k)=\"\(v.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\""))\"" : "\(k)=\(v)"
            }.joined(separator: " ")
        case .json:
            let object = Dictionary(fields, uniquingKeysWith: { $1 })
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
            text = String(decoding: data, as: UTF8.self)
        }
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}
