/// Modified UTF-7, IMAP's encoding of international mailbox names: printable ASCII stands for
/// itself (`&` as `&-`), anything else is UTF-16 in a modified base64 (`,` for `/`) between `&`
/// and `-`. `Entwürfe` is `Entw&APw-rfe`.
/// - SeeAlso: RFC 3501 §5.1.3
public enum ModifiedUTF7 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,".utf8)

    public static func encode(_ name: String) -> String {
        var out: [UInt8] = []
        var pending: [UInt16] = []
        func flush() {
            guard !pending.isEmpty else { return }
            out.append(UInt8(ascii: "&"))
            var bytes: [UInt8] = []
            for unit in pending { bytes.append(UInt8(unit >> 8)); bytes.append(UInt8(unit & 0xFF)) }
            var i = 0
            while i < bytes.count {
                let b0 = bytes[i], b1 = i + 1 < bytes.count ? bytes[i + 1] : 0, b2 = i + 2 < bytes.count ? bytes[i + 2] : 0
                let n = min(3, bytes.count - i)
                out.append(alphabet[Int(b0 >> 2)])
                out.append(alphabet[Int((b0 & 0x03) << 4 | b1 >> 4)])
                if n > 1 { out.append(alphabet[Int((b1 & 0x0F) << 2 | b2 >> 6)]) }
                if n > 2 { out.append(alphabet[Int(b2 & 0x3F)]) }
                i += 3
            }
            out.append(UInt8(ascii: "-"))
            pending.removeAll()
        }
        for scalar in name.unicodeScalars {
            if scalar.value >= 0x20 && scalar.value <= 0x7E {
                flush()
                out.append(UInt8(scalar.value))
                if scalar == "&" { out.append(UInt8(ascii: "-")) }
            } else {
                pending.append(contentsOf: String(scalar).utf16)
            }
        }
        flush()
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes a name; nil when it is not valid modified UTF-7.
    public static func decode(_ name: String) -> String? {
        var out = ""
        var bytes = Array(name.utf8)[...]
        while let b = bytes.first {
            bytes.removeFirst()
            if b != UInt8(ascii: "&") {
                guard b >= 0x20 && b <= 0x7E else { return nil }
                out.unicodeScalars.append(Unicode.Scalar(b))
                continue
            }
            guard let end = bytes.firstIndex(of: UInt8(ascii: "-")) else { return nil }
            let chunk = bytes[bytes.startIndex..<end]
            bytes = bytes[(end + 1)...]
            if chunk.isEmpty { out.append("&"); continue }
            var bits: UInt32 = 0, count = 0
            var units: [UInt16] = []
            var data: [UInt8] = []
            for c in chunk {
                guard let v = alphabet.firstIndex(of: c) else { return nil }
                bits = bits << 6 | UInt32(v)
                count += 6
                if count >= 8 { count -= 8; data.append(UInt8((bits >> UInt32(count)) & 0xFF)) }
            }
            guard data.count % 2 == 0 else { return nil }
            for i in stride(from: 0, to: data.count, by: 2) { units.append(UInt16(data[i]) << 8 | UInt16(data[i + 1])) }
            guard !units.isEmpty else { return nil }
            out += String(decoding: units, as: UTF16.self)
        }
        return out
    }
}
