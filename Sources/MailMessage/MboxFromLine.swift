import Foundation

/// The `From ` separator line of an mbox file: `From sender@example.org Sat Jan  3 01:05:34 1996`.
///
/// A line is taken as a separator only when it starts with `From `, stands at the start of the file
/// or after an empty line (the caller checks that), and carries an asctime-like date: a time
/// `hh:mm[:ss]` and a four-digit year. That is how mutt tells a separator from an unescaped
/// `From ` line in a body written by a careless mboxo writer.
/// - SeeAlso: RFC 4155 (the application/mbox media type)
public enum MboxFromLine {
    /// Separator lines longer than this are not separators (real ones are well under 200 bytes).
    public static let maxLength = 1000

    /// True when `line` (without its line end) is an mbox separator line.
    public static func isSeparator(_ line: some Collection<UInt8>) -> Bool {
        guard line.count >= 5, line.count <= maxLength else { return false }
        guard line.starts(with: fromPrefix) else { return false }
        return parse(line) != nil
    }

    /// The envelope sender and date of a separator line, or nil when the line is not one.
    public static func parse(_ line: some Collection<UInt8>) -> (sender: String, date: Date?)? {
        guard line.starts(with: fromPrefix), line.count <= maxLength else { return nil }
        let text = String(decoding: line.dropFirst(5), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        let words = text.split(separator: " ", omittingEmptySubsequences: true)
        guard words.count >= 3 else { return nil }
        // A time field hh:mm or hh:mm:ss and a four-digit year, somewhere after the sender.
        guard let timeIndex = words.indices.dropFirst().first(where: { isTime(words[$0]) }) else { return nil }
        guard words.dropFirst().contains(where: { isYear($0) }) else { return nil }
        let sender = String(words[0])
        return (sender, parseDate(Array(words[1...]), timeIndex: timeIndex - 1))
    }

    private static let fromPrefix = Array("From ".utf8)

    private static func isTime(_ word: Substring) -> Bool {
        let parts = word.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return false }
        return parts.allSatisfy { $0.count >= 1 && $0.count <= 2 && $0.allSatisfy(\.isASCIIDigit) }
    }

    private static func isYear(_ word: Substring) -> Bool {
        word.count == 4 && word.allSatisfy(\.isASCIIDigit)
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    /// Parses `Sat Jan  3 01:05:34 1996` (optionally with a zone such as `+0100` or `UTC`) as UTC
    /// unless a numeric zone is given.
    private static func parseDate(_ words: [Substring], timeIndex: Int) -> Date? {
        var month: Int?
        var day: Int?
        var year: Int?
        var zoneSeconds = 0
        for (i, w) in words.enumerated() where i != timeIndex {
            let lower = w.lowercased()
            if month == nil, lower.count >= 3, let m = months.firstIndex(of: String(lower.prefix(3))) {
                month = m + 1
            } else if w.count == 4, let y = Int(w) {
                year = y
            } else if day == nil, w.count <= 2, let d = Int(w) {
                day = d
            } else if (w.first == "+" || w.first == "-"), w.count == 5, let z = Int(w.dropFirst()) {
                zoneSeconds = (z / 100 * 3600 + z % 100 * 60) * (w.first == "-" ? -1 : 1)
            }
        }
        let time = words[timeIndex].split(separator: ":").compactMap { Int($0) }
        guard let month, let day, let year, time.count >= 2 else { return nil }
        var components = DateComponents()
        components.year = year
        components.month = month
        components.day = day
        components.hour = time[0]
        components.minute = time[1]
        components.second = time.count > 2 ? time[2] : 0
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(secondsFromGMT: 0)!
        guard let date = calendar.date(from: components) else { return nil }
        return date.addingTimeInterval(TimeInterval(-zoneSeconds))
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}

/// How `From ` lines inside message bodies were escaped when the mbox was written.
public enum MboxFormat: String, Sendable, CaseIterable {
    /// mboxrd: `From `, `>From `, `>>From `… each got one more `>`; reading removes one.
    case mboxrd
    /// mboxo: only `From ` got a `>`; reading turns `>From ` back into `From ` (lossy by design).
    case mboxo

    /// The number of leading bytes to drop from a body line to undo the escaping (0 or 1).
    public func unescapeCount(_ line: some Collection<UInt8>) -> Int {
        var iterator = line.makeIterator()
        var quotes = 0
        while let b = iterator.next() {
            if b == UInt8(ascii: ">") {
                quotes += 1
                if self == .mboxo && quotes > 1 { return 0 }
                continue
            }
            guard quotes > 0, b == UInt8(ascii: "F") else { return 0 }
            // Expect "rom " next.
            for expected in "rom ".utf8 {
                guard let n = iterator.next(), n == expected else { return 0 }
            }
            return 1
        }
        return 0
    }
}
