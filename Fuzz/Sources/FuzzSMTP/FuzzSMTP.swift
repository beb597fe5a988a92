import FuzzSupport
import NIOCore
import SMTPCore

/// The SMTP reply parser: never a trap, the same replies whole or in pieces, and every reply's
/// code a three-digit one.
func parse(_ chunks: [ByteBuffer]) -> (replies: [SMTPReply], failed: Bool) {
    let parser = SMTPReplyParser()
    var buffer = ByteBuffer()
    var replies: [SMTPReply] = []
    for var chunk in chunks {
        buffer.writeBuffer(&chunk)
        do {
            while let r = try parser.next(&buffer) { replies.append(r) }
        } catch {
            return (replies, true)
        }
    }
    return (replies, false)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = parse(input.whole), pieces = parse(input.pieces)
    if whole.failed != pieces.failed || whole.replies != pieces.replies {
        violated("SMTP: whole and pieces differ: \(whole) vs \(pieces)")
    }
    for r in whole.replies where !(100...599).contains(r.code) {
        violated("SMTP: reply code \(r.code) read")
    }
    return 0
}
