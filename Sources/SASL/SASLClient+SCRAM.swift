import Crypto
import Foundation

/// SCRAM-SHA-256's proofs: the client's, and the check of the server's.
/// - SeeAlso: RFC 5802 §3, RFC 7677
extension SASLClient {
    /// SCRAM: the server's final message (`v=…`) proves it knows the password. Called with the data
    /// of the success response, when the server sends it there.
    public func verifyServerFinal(_ message: [UInt8]) throws(SASLError) {
        guard mechanism == .scramSHA256, let scram else { return }
        let text = String(decoding: message, as: UTF8.self)
        guard text.hasPrefix("v="), let signature = Data(base64Encoded: String(text.dropFirst(2))) else {
            if text.hasPrefix("e=") { throw SASLError.badServerMessage(text) }
            throw SASLError.badServerMessage("expected v=…, got \(text)")
        }
        guard Array(signature) == scram.serverSignature else { throw SASLError.serverSignatureMismatch }
    }

    mutating func scramClientFinal(serverFirst: String) throws(SASLError) -> [UInt8] {
        var fields: [Character: String] = [:]
        for part in serverFirst.split(separator: ",") {
            guard part.count >= 2, part.dropFirst().first == "=" else { continue }
            fields[part.first!] = String(part.dropFirst(2))
        }
        guard let nonce = fields["r"], nonce.hasPrefix(clientNonce), nonce.count > clientNonce.count,
              let saltText = fields["s"], let salt = Data(base64Encoded: saltText),
              let iterationText = fields["i"], let iterations = Int(iterationText), iterations >= 1, iterations <= 1_000_000 else {
            throw SASLError.badServerMessage(serverFirst)
        }
        let salted = Self.pbkdf2SHA256(password: Array(credentials.secret.utf8), salt: Array(salt), iterations: iterations)
        let clientKey = Self.hmac(salted, Array("Client Key".utf8))
        let storedKey = Array(SHA256.hash(data: clientKey))
        let withoutProof = "c=biws,r=\(nonce)"
        let authMessage = "\(clientFirstBare),\(serverFirst),\(withoutProof)"
        let clientSignature = Self.hmac(storedKey, Array(authMessage.utf8))
        let proof = zip(clientKey, clientSignature).map { $0 ^ $1 }
        let serverKey = Self.hmac(salted, Array("Server Key".utf8))
        scram = (authMessage, Self.hmac(serverKey, Array(authMessage.utf8)))
        return Array("\(withoutProof),p=\(Data(proof).base64EncodedString())".utf8)
    }

    static func hmac(_ key: [UInt8], _ data: [UInt8]) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: data, using: SymmetricKey(data: key)))
    }

    /// PBKDF2-HMAC-SHA-256 for one 32-byte block (what SCRAM-SHA-256 needs), written out because
    /// swift-crypto's PBKDF2 refuses SCRAM's usual 4,096 rounds. The key's padded blocks are hashed
    /// once and each round starts from a copy of that state (RFC 2104 §4 allows it), so a round
    /// costs two SHA-256 blocks instead of four.
    static func pbkdf2SHA256(password: [UInt8], salt: [UInt8], iterations: Int) -> [UInt8] {
        let keyed = HMAC<SHA256>(key: SymmetricKey(data: password))
        func round(_ data: UnsafeRawBufferPointer) -> HashedAuthenticationCode<SHA256> {
            var mac = keyed
            mac.update(data: data)
            return mac.finalize()
        }
        var u = (salt + [0, 0, 0, 1]).withUnsafeBytes(round)
        var result = Array(u)
        for _ in 1..<iterations {
            u = u.withUnsafeBytes(round)
            u.withUnsafeBytes { bytes in
                for i in 0..<result.count { result[i] ^= bytes[i] }
            }
        }
        return result
    }
}
