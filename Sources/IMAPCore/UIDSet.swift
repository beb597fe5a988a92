/// A set of UIDs as IMAP writes it: `1:4,7,9:*`. Ranges are kept, not expanded, so `1:4294967295`
/// costs nothing.
///
/// ```
/// sequence-set = (seq-number / seq-range) ["," sequence-set]
/// seq-range    = seq-number ":" seq-number
/// seq-number   = nz-number / "*"
/// ```
/// - SeeAlso: RFC 3501 §9, RFC 4315 §4 (uid-set)
public struct UIDSet: Sendable, Equatable, CustomStringConvertible {
    /// Ranges in the order written; `UInt32.max` stands for `*`.
    public private(set) var ranges: [ClosedRange<UInt32>]

    public init(_ ranges: [ClosedRange<UInt32>]) {
        self.ranges = ranges
    }

    /// Compresses UIDs into ranges (sorted, duplicates removed).
    public init(uids: some Sequence<UInt32>) {
        var out: [ClosedRange<UInt32>] = []
        for uid in Set(uids).sorted() {
            if let last = out.last, last.upperBound &+ 1 == uid {
                out[out.count - 1] = last.lowerBound...uid
            } else {
                out.append(uid...uid)
            }
        }
        ranges = out
    }

    /// Parses `1:4,7,9:*`; nil when malformed.
    public init?(_ text: some StringProtocol) {
        var out: [ClosedRange<UInt32>] = []
        for part in String(text).split(separator: ",", omittingEmptySubsequences: false) {
            let ends = part.split(separator: ":", omittingEmptySubsequences: false).map { Substring($0) }
            func value(_ s: Substring) -> UInt32? { s == "*" ? .max : UInt32(s).flatMap { $0 == 0 ? nil : $0 } }
            guard ends.count == 1 || ends.count == 2, let a = value(ends[0]) else { return nil }
            let b = ends.count == 2 ? value(ends[1]) : a
            guard let b else { return nil }
            out.append(min(a, b)...max(a, b))
        }
        guard !out.isEmpty else { return nil }
        ranges = out
    }

    public var description: String {
        ranges.map { r in
            func s(_ v: UInt32) -> String { v == .max ? "*" : String(v) }
            return r.lowerBound == r.upperBound ? s(r.lowerBound) : "\(s(r.lowerBound)):\(s(r.upperBound))"
        }.joined(separator: ",")
    }

    /// How many UIDs the set names, counted without expanding it (a range to `*` counts up to
    /// the largest UID).
    public var count: UInt64 {
        ranges.reduce(0) { $0 + UInt64($1.upperBound - $1.lowerBound) + 1 }
    }

    /// The UIDs, in order written (only for finite sets; `*` is not expanded).
    public var uids: [UInt32] {
        ranges.flatMap { r in r.upperBound == .max ? [r.lowerBound] : Array(r) }
    }

    public func contains(_ uid: UInt32) -> Bool { ranges.contains { $0.contains(uid) } }
}
