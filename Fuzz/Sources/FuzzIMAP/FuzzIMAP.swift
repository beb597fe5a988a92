import FuzzSupport
import IMAPCore
import NIOCore

/// The IMAP response parser on whatever a server may send: it must never trap, and it must read
/// the same events (body bytes joined) and fail at the same point whether the bytes come whole or
/// in pieces, since TCP gives no other promise.
func parse(_ chunks: [ByteBuffer]) -> (events: [IMAPResponseEvent], failed: Bool) {
    var parser = IMAPResponseParser()
    var buffer = ByteBuffer()
    var events: [IMAPResponseEvent] = []
    for var chunk in chunks {
        buffer.writeBuffer(&chunk)
        do {
            while let e = try parser.next(&buffer) {
                if case var .fetchBodyBytes(more) = e, case var .fetchBodyBytes(b)? = events.last {
                    b.writeBuffer(&more)
                    events[events.count - 1] = .fetchBodyBytes(b)
                } else {
                    events.append(e)
                }
            }
        } catch {
            return (events, true)
        }
    }
    return (events, false)
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = FuzzInput(data, size)
    let whole = parse(input.whole), pieces = parse(input.pieces)
    if whole.failed != pieces.failed || whole.events != pieces.events {
        violated("IMAP: whole \(whole.failed ? "failed" : "read") \(whole.events.count) events, in pieces \(pieces.failed ? "failed" : "read") \(pieces.events.count)")
    }
    return 0
}
