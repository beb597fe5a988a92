/// The bracketed code of a status response.
///
/// ```
/// resp-text-code = "ALERT" / "BADCHARSET" [SP "(" charset *(SP charset) ")" ] /
///                  capability-data / "PARSE" / "PERMANENTFLAGS" SP "(" [flag-perm *(SP flag-perm)] ")" /
///                  "READ-ONLY" / "READ-WRITE" / "TRYCREATE" / "UIDNEXT" SP nz-number /
///                  "UIDVALIDITY" SP nz-number / "UNSEEN" SP nz-number /
///                  atom [SP 1*<any TEXT-CHAR except "]">]
/// resp-code-apnd = "APPENDUID" SP nz-number SP append-uid       ; RFC 4315
/// resp-code-copy = "COPYUID" SP nz-number SP uid-set SP uid-set ; RFC 4315
/// ```
/// - SeeAlso: RFC 3501 §7.1, RFC 4315 §3, RFC 5530 (THROTTLED, OVERQUOTA, TOOBIG…), RFC 7162 (HIGHESTMODSEQ)
public enum ResponseCode: Sendable, Equatable {
    case alert
    case parse
    case readOnly
    case readWrite
    case tryCreate
    case uidNext(UInt32)
    case uidValidity(UInt32)
    case unseen(UInt32)
    case highestModSeq(UInt64)
    case permanentFlags([String])
    case capability([String])
    case appendUID(uidValidity: UInt32, uids: UIDSet)
    case copyUID(uidValidity: UInt32, source: UIDSet, destination: UIDSet)
    case throttled
    case overQuota
    case tooBig
    /// Any other code, name upper-cased, with its argument text if any (AUTHENTICATIONFAILED, LIMIT…).
    case other(name: String, text: String?)

    /// Builds a code from its atom name and argument text (what follows the name, up to `]`).
    static func make(name rawName: String, arguments: String?) -> ResponseCode {
        let name = rawName.uppercased()
        let args = arguments?.split(separator: " ").map(String.init) ?? []
        func number<T: FixedWidthInteger>(_ i: Int) -> T? { i < args.count ? T(args[i]) : nil }
        func list() -> [String] {
            (arguments ?? "").trimmingCharacters(in: "()").split(separator: " ").map(String.init)
        }
        switch name {
        case "ALERT": return .alert
        case "PARSE": return .parse
        case "READ-ONLY": return .readOnly
        case "READ-WRITE": return .readWrite
        case "TRYCREATE": return .tryCreate
        case "THROTTLED": return .throttled
        case "OVERQUOTA": return .overQuota
        case "TOOBIG": return .tooBig
        case "UIDNEXT": if let n: UInt32 = number(0) { return .uidNext(n) }
        case "UIDVALIDITY": if let n: UInt32 = number(0) { return .uidValidity(n) }
        case "UNSEEN": if let n: UInt32 = number(0) { return .unseen(n) }
        case "HIGHESTMODSEQ": if let n: UInt64 = number(0) { return .highestModSeq(n) }
        case "PERMANENTFLAGS": return .permanentFlags(list())
        case "CAPABILITY": return .capability(args)
        case "APPENDUID":
            if let v: UInt32 = number(0), args.count == 2, let set = UIDSet(args[1]) { return .appendUID(uidValidity: v, uids: set) }
        case "COPYUID":
            if let v: UInt32 = number(0), args.count == 3, let s = UIDSet(args[1]), let d = UIDSet(args[2]) {
                return .copyUID(uidValidity: v, source: s, destination: d)
            }
        default: break
        }
        return .other(name: name, text: arguments)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
