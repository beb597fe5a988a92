import NIOCore

/// Gathers what a pipelined command stream writes (command lines, message heads, small messages)
/// into writes of about 256 KiB: full TLS records and one event-loop hop a write rather than
/// several a message. A large chunk of a message goes on its own, after what was gathered.
struct Outbox {
    private let connection: MailConnection
    private var buffer: ByteBuffer

    init(_ connection: MailConnection) {
        self.connection = connection
        self.buffer = connection.allocator.buffer(capacity: 256 << 10)
    }

    mutating func write(_ bytes: some Collection<UInt8>) {
        buffer.writeBytes(bytes)
    }

    mutating func write(_ string: String) {
        buffer.writeString(string)
    }

    /// Writes `body` whole; returns how many bytes it gave (less than its size if it ended early).
    mutating func write(_ body: AppendBody) async throws -> Int {
        var offset = 0
        while offset < body.size {
            var chunk = try body.readChunk(at: offset, maxLength: 256 << 10)
            guard chunk.readableBytes > 0 else { break }
            offset += chunk.readableBytes
            if chunk.readableBytes >= 128 << 10 {
                try await drain()
                try await connection.write(chunk)
            } else {
                buffer.writeBuffer(&chunk)
                if buffer.readableBytes >= 256 << 10 { try await drain() }
            }
        }
        return offset
    }

    /// Sends what is gathered.
    mutating func drain() async throws {
        guard buffer.readableBytes > 0 else { return }
        try await connection.write(buffer)
        buffer.clear()
    }
}
