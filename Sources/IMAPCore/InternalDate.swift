import Foundation

/// IMAP's INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"`.
///
/// ```
/// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
/// ```
/// - SeeAlso: RFC 3501 §9
public enum InternalDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses the text between the quotes. Byte by byte: the listing parses one date a message,
    /// and Foundation's trimming and case-insensitive comparisons showed in its profile.
    public static func parse(_ text: String) -> Date? {
        var text = text
        return text.withUTF8 { parse(bytes: $0) }
    }

    private static func parse(bytes: UnsafeBufferPointer<UInt8>) -> Date? {
        var i = 0
        var end = bytes.count
        while i < end, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
        while end > i, bytes[end - 1] == 0x20 || bytes[end - 1] == 0x09 { end -= 1 }
        /// 1 to `most` digits.
        func number(most: Int) -> Int? {
            var n = 0, count = 0
            while i < end, count < most, bytes[i] >= 0x30, bytes[i] <= 0x39 {
                n = n * 10 + Int(bytes[i] - 0x30)
                i += 1
                count += 1
            }
            return count > 0 ? n : nil
        }
        func expect(_ byte: UInt8) -> Bool {
            guard i < end, bytes[i] == byte else { return false }
            i += 1
            return true
        }
        guard let day = number(most: 2), expect(UInt8(ascii: "-")), i + 3 <= end else { return nil }
        let word = (UInt32(bytes[i] | 0x20) << 16) | (UInt32(bytes[i + 1] | 0x20) << 8) | UInt32(bytes[i + 2] | 0x20)
        guard let m = monthWords.firstIndex(of: word) else { return nil }
        i += 3
        guard expect(UInt8(ascii: "-")), let year = number(most: 9), expect(0x20),
              let h = number(most: 2), expect(UInt8(ascii: ":")), let mi = number(most: 2), expect(UInt8(ascii: ":")),
              let s = number(most: 2), expect(0x20), i < end, bytes[i] == UInt8(ascii: "+") || bytes[i] == UInt8(ascii: "-")
        else { return nil }
        let sign = bytes[i] == UInt8(ascii: "-") ? -1 : 1
        i += 1
        let zoneStart = i
        guard let z = number(most: 4), i - zoneStart == 4, i == end else { return nil }
        let offset = (z / 100 * 3600 + z % 100 * 60) * sign
        let month = m + 1
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86400 + h * 3600 + mi * 60 + s - offset))
    }

    /// 0001-01-01 00:00:00 and 9999-12-31 23:59:59 UTC, in seconds since 1970.
    private static let firstSecond: Double = -62_135_596_800
    private static let lastSecond: Double = 253_402_300_799

    /// The month names in lower case, three bytes packed into one number each.
    private static let monthWords: [UInt32] = months.map { name in
        name.utf8.reduce(UInt32(0)) { $0 << 8 | UInt32($1 | 0x20) }
    }

    /// Formats a date in UTC (`+0000`), as APPEND takes it. `date-year` is four digits: a date
    /// beyond them (a source's INTERNALDATE may have any year) is written as the nearest one they
    /// hold, and the conversion to seconds can never trap.
    public static func format(_ date: Date) -> String {
        let seconds = date.timeIntervalSince1970
        let total = seconds.isNaN ? 0 : Int(min(max(seconds.rounded(.down), Self.firstSecond), Self.lastSecond))
        var days = total >= 0 ? total / 86400 : (total - 86399) / 86400
        let secs = total - days * 86400
        // Howard Hinnant's civil_from_days.
        days += 719_468
        let era = (days >= 0 ? days : days - 146_096) / 146_097
        let doe = days - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        // Written by hand: String(format:) goes through Foundation and showed in profiles of APPEND.
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        let year = String(y)
        return two(d) + "-" + months[m - 1] + "-" + String(repeating: "0", count: max(0, 4 - year.count)) + year + " "
            + two(secs / 3600) + ":" + two(secs / 60 % 60) + ":" + two(secs % 60) + " +0000"
    }
}
