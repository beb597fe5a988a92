/// What the TOML parser (toml++, inside TOMLKit) must not be given: it asserts, ending the
/// process, on some malformed table headers (`[` alone, `[ # note`, `[[[x]]`, `[\r d]`) instead
/// of reporting them, and a half-typed config must get its line named, not crash the daemon. So
/// every header is checked here first.
enum TOMLPrecheck {
    /// The first line (from 1) that holds such a header, outside multi-line strings. A line in a
    /// multi-line array that opens a nested one (`[ [1] ]`) is refused too: no config key takes one.
    static func malformedHeaderLine(_ text: String) -> Int? {
        var inBasic = false, inLiteral = false
        var number = 0
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let bytes = Array(line.utf8)
            if !inBasic && !inLiteral {
                var i = 0
                while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
                if i < bytes.count, bytes[i] == UInt8(ascii: "["), !isHeader(bytes[i...]) { return number }
            }
            // A triple quote opens or closes a multi-line string (an odd count flips it).
            if !inLiteral, count(#"""""#, in: line) % 2 == 1 { inBasic.toggle() }
            if !inBasic, count("'''", in: line) % 2 == 1 { inLiteral.toggle() }
        }
        return nil
    }

    /// `[` or `[[`, then keys (bare or quoted, on the line) joined by dots, blanks around each, then
    /// `]`: a header toml++ can take; it reports what follows the brackets itself.
    private static func isHeader(_ line: ArraySlice<UInt8>) -> Bool {
        var i = line.startIndex + 1
        if i < line.endIndex, line[i] == UInt8(ascii: "[") { i += 1 }
        func blanks() { while i < line.endIndex, line[i] == 0x20 || line[i] == 0x09 { i += 1 } }
        while true {
            blanks()
            guard i < line.endIndex else { return false }
            let b = line[i]
            if b == UInt8(ascii: "\"") || b == UInt8(ascii: "'") {
                i += 1
                while i < line.endIndex, line[i] != b {
                    if b == UInt8(ascii: "\""), line[i] == UInt8(ascii: "\\") { i += 1 }
                    i += 1
                }
                guard i < line.endIndex else { return false }
                i += 1
            } else if isBare(b) {
                while i < line.endIndex, isBare(line[i]) { i += 1 }
            } else {
                return false
            }
            blanks()
            guard i < line.endIndex else { return false }
            if line[i] == UInt8(ascii: "]") { return true }
            guard line[i] == UInt8(ascii: ".") else { return false }
            i += 1
        }
    }

    /// A bare key's characters: A-Z a-z 0-9 _ -.
    private static func isBare(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"): return true
        default: return false
        }
    }

    private static func count(_ needle: String, in line: Substring) -> Int {
        line.split(separator: needle, omittingEmptySubsequences: false).count - 1
    }
}
