import Foundation
import Logging

/// One log line per event on stderr, as logfmt (`time=… level=info account=orange msg="…"`) or
/// JSON, for log collectors. Metadata (the account name and the like) becomes fields.
struct LineLogHandler: LogHandler {
    enum Format: String, CaseIterable { case logfmt, json }

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
