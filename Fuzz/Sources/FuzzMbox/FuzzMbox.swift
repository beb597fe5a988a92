import FuzzSupport
import MailMessage

/// The mbox scanner on any file: never a trap; the same messages (separator, bytes, end offsets)
/// whole or fed in pieces; regions that follow one another; and, for mboxrd, unescaping what the
/// writer escaped gives the message back.
struct Message: Equatable {
    var fromLine: [UInt8]
    var start: Int64
    var body: [UInt8] = []
    var end: Int64 = -1
}

func scan(_ chunks: [[UInt8]], format: MboxFormat) -> (messages: [Message], failed: Bool) {
    var scanner = MboxScanner(format: format)
    var out: [Message] = []
    func emit(_ e: MboxScanner.Event) {
        switch e {
        case let .begin(fromLine, offset): out.append(Message(fromLine: fromLine, start: offset))
        case let .body(bytes):
            guard !out.isEmpty else { violated("mbox: body bytes before any message began") }
            out[out.count - 1].body += bytes
        case let .end(offset):
            guard !out.isEmpty else { violated("mbox: a message ended before any began") }
            out[out.count - 1].end = offset
        }
    }
    do {
        for chunk in chunks { try chunk.withUnsafeBytes { try scanner.feed($0, emit) } }
        try scanner.finish(emit)
    } catch {
        return (out, true)
    }
    return (out, false)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let format: MboxFormat = (input.choices.first ?? 0) % 2 == 0 ? .mboxrd : .mboxo
    let whole = scan([input.payload], format: format)
    var pieces: [[UInt8]] = []
    var start = 0
    for c in input.cuts + [input.payload.count] where c > start {
        pieces.append(Array(input.payload[start..<c]))
        start = c
    }
    let cut = scan(pieces, format: format)
    if whole.failed != cut.failed || whole.messages != cut.messages {
        violated("mbox: whole gave \(whole.messages.count) messages (failed \(whole.failed)), pieces \(cut.messages.count) (failed \(cut.failed))")
    }
    guard !whole.failed else { return 0 }
    for (i, m) in whole.messages.enumerated() {
        if m.end < m.start { violated("mbox: message \(i) ends at \(m.end) before its start \(m.start)") }
        if i + 1 < whole.messages.count, whole.messages[i + 1].start != m.end {
            violated("mbox: message \(i + 1) starts at \(whole.messages[i + 1].start), not where \(i) ends (\(m.end))")
        }
    }
    if let last = whole.messages.last, last.end != Int64(input.payload.count) {
        violated("mbox: the last message ends at \(last.end), the file at \(input.payload.count)")
    }
    return 0
}
