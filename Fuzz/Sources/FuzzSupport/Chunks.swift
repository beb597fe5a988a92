import NIOCore

/// An input split in two: its first bytes choose how the rest is cut into chunks, so one input
/// is fed both whole and in pieces, and a parser must say the same either way.
public struct FuzzInput {
    /// The bytes the parser reads.
    public let payload: [UInt8]
    /// Where the payload is cut (ascending offsets inside it).
    public let cuts: [Int]
    /// A few bytes more for the target's own choices (expectations, formats).
    public let choices: [UInt8]

    public init(_ data: UnsafePointer<UInt8>, _ size: Int) {
        let bytes = Array(UnsafeBufferPointer(start: data, count: size))
        let header = min(bytes.count, 8)
        choices = Array(bytes[0..<header])
        payload = Array(bytes[header...])
        var cuts: [Int] = []
        var at = 0
        var i = 0
        while !choices.isEmpty {
            at += 1 + Int(choices[i % choices.count]) % 97 + i
            guard at < payload.count else { break }
            cuts.append(at)
            i += 1
        }
        self.cuts = cuts
    }

    /// The payload whole, then in the pieces `cuts` makes.
    public var whole: [ByteBuffer] { [ByteBuffer(bytes: payload)] }
    public var pieces: [ByteBuffer] {
        var out: [ByteBuffer] = []
        var start = 0
        for c in cuts + [payload.count] where c > start {
            out.append(ByteBuffer(bytes: payload[start..<c]))
            start = c
        }
        return out
    }
}

/// Stops the fuzzer with a finding: the message says which invariant broke.
public func violated(_ message: String) -> Never {
    fatalError("fuzz invariant: \(message)")
}
