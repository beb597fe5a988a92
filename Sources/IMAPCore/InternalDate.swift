import Foundation

/// IMAP's INTERNALDATE: `"17-Jul-1996 02:44:25 -0700"`.
///
/// ```
/// date-time = DQUOTE date-day-fixed "-" date-month "-" date-year SP time SP zone DQUOTE
/// ```
/// - SeeAlso: RFC 3501 §9
public enum InternalDate {
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// Parses the text between the quotes.
    public static func parse(_ text: String) -> Date? {
        let t = text.trimmingCharacters(in: .whitespaces)
        let parts = t.split(separator: " ")
        guard parts.count == 3 else { return nil }
        let dmy = parts[0].split(separator: "-")
        let hms = parts[1].split(separator: ":")
        guard dmy.count == 3, hms.count == 3, let day = Int(dmy[0]), let year = Int(dmy[2]),
              let m = months.firstIndex(where: { $0.caseInsensitiveCompare(dmy[1]) == .orderedSame }),
              let h = Int(hms[0]), let mi = Int(hms[1]), let s = Int(hms[2]) else { return nil }
        let zone = parts[2]
        guard zone.count == 5, let z = Int(zone.dropFirst()), zone.first == "+" || zone.first == "-" else { return nil }
        let offset = (z / 100 * 3600 + z % 100 * 60) * (zone.first == "-" ? -1 : 1)
        let month = m + 1
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * ((month + 9) % 12) + 2) / 5 + day - 1
        let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468
        return Date(timeIntervalSince1970: TimeInterval(days * 86400 + h * 3600 + mi * 60 + s - offset))
    }

    /// Formats a date in UTC (`+0000`), as APPEND takes it.
    public static func format(_ date: Date) -> String {
        let total = Int(date.timeIntervalSince1970.rounded(.down))
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
