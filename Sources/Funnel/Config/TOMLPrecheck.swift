/// What the TOML parser (toml++, inside TOMLKit) must not be given: it asserts, ending the
/// process, on some malformed table headers (`[` alone, `[ # note`, `[[[x]]`, `[\r d]`) and on an
/// array whose next value would begin with `}` (`[}`, `[1, }`) instead of reporting them, and a
/// half-typed config must get its line named, not crash the daemon. So these are checked first.
enum TOMLPrecheck {
    /// The first line (from 1) that holds such a header, outside multi-line strings. A line in a
    /// multi-line array that opens a nested one (`[ [1] ]`) is refused too: no config key takes one.
    static func malformedHeaderLine(_ text: String) -> Int? {
        let text = withoutBOM(text)
        var open = Open.none
        var number = 0
        for line in lines(text) {
            number += 1
            let bytes = Array(line.utf8)
            if open == .none {
                var i = 0
                while i < bytes.count, bytes[i] == 0x20 || bytes[i] == 0x09 { i += 1 }
                if i < bytes.count, bytes[i] == UInt8(ascii: "["), !isHeader(bytes[i...]) { return number }
            }
            open = multiLineString(after: bytes, from: open)
        }
        return nil
    }

    /// A multi-line string a line leaves open.
    enum Open { case none, basic, literal }

    /// Which multi-line string is open after `line`, begun with `open`: quotes inside comments and
    /// inside one-line strings open nothing (`# """` is a comment).
    static func multiLineString(after line: [UInt8], from open: Open) -> Open {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        func triple(_ c: UInt8, at j: Int) -> Bool { j + 2 < line.count && line[j] == c && line[j + 1] == c && line[j + 2] == c }
        var open = open, i = 0
        while i < line.count {
            switch open {
            case .basic:
                if line[i] == backslash { i += 2; continue }
                if triple(quote, at: i) { open = .none; i += 3; continue }
            case .literal:
                if triple(apostrophe, at: i) { open = .none; i += 3; continue }
            case .none:
                let c = line[i]
                if c == UInt8(ascii: "#") { return .none }
                if triple(quote, at: i) { open = .basic; i += 3; continue }
                if triple(apostrophe, at: i) { open = .literal; i += 3; continue }
                if c == quote || c == apostrophe {
                    // A one-line string: to its closing quote (an escaped one in a basic string).
                    i += 1
                    while i < line.count, line[i] != c { i += c == quote && line[i] == backslash ? 2 : 1 }
                }
            }
            i += 1
        }
        return open
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

    /// The lines as toml++ numbers them: ended by LF or CRLF. (Swift reads CRLF as one Character,
    /// which a split on "\n" never finds: a config saved with CRLF would be one long line.)
    static func lines(_ text: String) -> [Substring] {
        text.split(omittingEmptySubsequences: false) { $0 == "\n" || $0 == "\r\n" }
    }

    /// The text as toml++ reads it: a byte order mark at the start is not part of the first line.
    private static func withoutBOM(_ text: String) -> String {
        text.unicodeScalars.first == "\u{FEFF}" ? String(text.unicodeScalars.dropFirst()) : text
    }

    /// A bare key's characters: A-Z a-z 0-9 _ -.
    private static func isBare(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "_"), UInt8(ascii: "-"): return true
        default: return false
        }
    }

    /// What toml++ asserts on in a value, rather than reporting it.
    enum ValueProblem: Equatable {
        /// An array's next value would begin with `}`.
        case braceInArray
        /// A date (`1999-06-01 0` made it assert). No config key takes one.
        case date
        /// A character TOML allows only in strings and comments: anything not ASCII (U+0085 and
        /// U+2028, which toml++ takes for line ends, made it assert in an array), or a control
        /// character other than tab.
        case outsideQuotes
    }

    /// The first line (from 1) where a value is one toml++ cannot be given, outside strings and
    /// comments, and what is wrong with it.
    static func valueProblem(_ text: String) -> (line: Int, problem: ValueProblem)? {
        let b = Array(withoutBOM(text).utf8)
        var line = 1, i = 0
        var open: [UInt8] = []  // the brackets and braces of the values being read
        var expectValue = false  // just after an array's `[` or one of its commas
        var valueStart = false  // just after `=`, or where an array's value begins
        var lineStart = true
        func has(_ s: String, at j: Int) -> Bool {
            let n = Array(s.utf8)
            return j + n.count <= b.count && Array(b[j..<j + n.count]) == n
        }
        while i < b.count {
            let c = b[i]
            if c == 0x0A { line += 1; lineStart = true; i += 1; continue }
            if c == 0x20 || c == 0x09 || c == 0x0D { i += 1; continue }
            if c == UInt8(ascii: "#") {
                while i < b.count, b[i] != 0x0A { i += 1 }
                continue
            }
            if lineStart && open.isEmpty && c == UInt8(ascii: "[") {
                // A table header: `malformedHeaderLine` has checked it.
                while i < b.count, b[i] != 0x0A { i += 1 }
                continue
            }
            lineStart = false
            if c >= 0x80 || (c < 0x20 && c != 0x09) || c == 0x7F { return (line, .outsideQuotes) }
            if expectValue && c == UInt8(ascii: "}") { return (line, .braceInArray) }
            if valueStart, i + 4 < b.count, b[i..<i + 4].allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), b[i + 4] == UInt8(ascii: "-") {
                return (line, .date)
            }
            expectValue = false
            valueStart = false
            switch c {
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                let multi = has(c == UInt8(ascii: "'") ? "'''" : "\"\"\"", at: i)
                i += multi ? 3 : 1
                while i < b.count {
                    if b[i] == 0x0A {
                        if !multi { break }  // an unclosed string: toml++ reports it
                        line += 1
                    }
                    if c == UInt8(ascii: "\""), b[i] == UInt8(ascii: "\\") {
                        if i + 1 < b.count, b[i + 1] == 0x0A { line += 1 }
                        i += 2
                        continue
                    }
                    if b[i] == c, !multi || has(c == UInt8(ascii: "'") ? "'''" : "\"\"\"", at: i) {
                        i += multi ? 3 : 1
                        break
                    }
                    i += 1
                }
                continue
            case UInt8(ascii: "["): open.append(c); expectValue = true; valueStart = true
            case UInt8(ascii: "{"): open.append(c)
            case UInt8(ascii: "]"), UInt8(ascii: "}"): _ = open.popLast()
            case UInt8(ascii: ","): expectValue = open.last == UInt8(ascii: "["); valueStart = expectValue
            case UInt8(ascii: "="): valueStart = true
            default: break
            }
            i += 1
        }
        return nil
    }
}
