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
        guard line.count >= 5, line.count <= maxLength, line.starts(with: fromPrefix) else { return false }
        return fields(Array(line.dropFirst(5))) != nil
    }

    /// The envelope sender and date of a separator line, or nil when the line is not one.
    public static func parse(_ line: some Collection<UInt8>) -> (sender: String, date: Date?)? {
        guard line.count <= maxLength, line.starts(with: fromPrefix) else { return nil }
        let rest = Array(line.dropFirst(5))
        guard let f = fields(rest) else { return nil }
        return (String(decoding: rest[f.words[0]], as: UTF8.self), date(rest, f))
    }

    private static let fromPrefix = Array("From ".utf8)

    /// The words of the line after `From ` and the index of the time word, when the line has the
    /// shape of a separator: a sender, then a time `hh:mm[:ss]` and a four-digit year.
    private static func fields(_ bytes: [UInt8]) -> (words: [Range<Int>], time: Int)? {
        var words: [Range<Int>] = []
        var i = 0
        while i < bytes.count {
            while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 || bytes[i] == 0x0D { i += 1 }
            let start = i
            while i < bytes.count, bytes[i] != 0x20, bytes[i] != 0x09, bytes[i] != 0x0D { i += 1 }
            if i > start { words.append(start..<i) }
        }
        guard words.count >= 3 else { return nil }
        guard let time = words.indices.dropFirst().first(where: { isTime(bytes[words[$0]]) }) else { return nil }
        guard words.dropFirst().contains(where: { isYear(bytes[$0]) }) else { return nil }
        return (words, time)
    }

    private static func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    private static func isTime(_ word: ArraySlice<UInt8>) -> Bool {
        let parts = word.split(separator: 0x3A, omittingEmptySubsequences: false)
        guard parts.count == 2 || parts.count == 3 else { return false }
        return parts.allSatisfy { $0.count >= 1 && $0.count <= 2 && $0.allSatisfy(isDigit) }
    }

    private static func isYear(_ word: ArraySlice<UInt8>) -> Bool {
        word.count == 4 && word.allSatisfy(isDigit)
    }

    private static func number(_ word: ArraySlice<UInt8>) -> Int? {
        guard !word.isEmpty, word.count <= 9, word.allSatisfy(isDigit) else { return nil }
        return word.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
        .map { Array($0.utf8) }

    /// `Sat Jan  3 01:05:34 1996`, optionally with a zone such as `+0100`; UTC unless a numeric zone
    /// is given. Computed directly (days from the civil date), not through Calendar: it runs for
    /// every message of an mbox.
    private static func date(_ bytes: [UInt8], _ f: (words: [Range<Int>], time: Int)) -> Date? {
        var month: Int?
        var day: Int?
        var year: Int?
        var zoneSeconds = 0
        for (i, range) in f.words.enumerated().dropFirst() where i != f.time {
            let w = bytes[range]
            if month == nil, w.count >= 3 {
                let lower = w.prefix(3).map { $0 | 0x20 }
                if let m = months.firstIndex(of: lower) { month = m + 1; continue }
            }
            if w.count == 4, let y = number(w) {
                year = y
            } else if day == nil, w.count <= 2, let d = number(w) {
                day = d
            } else if w.count == 5, w.first == 0x2B || w.first == 0x2D, let z = number(w.dropFirst()) {
                zoneSeconds = (z / 100 * 3600 + z % 100 * 60) * (w.first == 0x2D ? -1 : 1)
            }
        }
        let time = bytes[f.words[f.time]].split(separator: 0x3A).compactMap(number)
        guard let month, let day, let year, (1...31).contains(day), time.count >= 2 else { return nil }
        // Howard Hinnant's days_from_civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = days * 86400 + time[0] * 3600 + time[1] * 60 + (time.count > 2 ? time[2] : 0) - zoneSeconds
        return Date(timeIntervalSince1970: TimeInterval(seconds))
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
