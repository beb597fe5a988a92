/// Whether a certificate names the server a client asked for by name (RFC 6125).
///
/// A server reached by name must hold a certificate for that name: only the DNS names of its
/// subjectAltName count, not its IP addresses (NIOSSL accepts an IP entry that matches the
/// address connected to, so a spoofed DNS answer and a certificate for the attacker's own
/// address would pass). A certificate without subjectAltName falls back to its common name,
/// which NIOSSL's own check has already compared.
public enum ServerIdentity {
    /// Whether `host` (a name, not an address) is one of `dnsNames`. A wildcard counts only as
    /// the whole leftmost label and stands for exactly one label: `*.example.net` names
    /// `imap.example.net`, not `example.net` nor `a.b.example.net`.
    public static func names(_ host: String, in dnsNames: [String]) -> Bool {
        let wanted = labels(host)
        guard !wanted.isEmpty, !wanted.contains("") else { return false }
        return dnsNames.contains { name in
            let pattern = labels(name)
            guard pattern.count == wanted.count, !pattern.contains("") else { return false }
            if pattern[0] == "*" {
                // A wildcard over a public suffix alone (`*.com`) names nobody's server.
                return pattern.count >= 3 && pattern.dropFirst() == wanted.dropFirst()
            }
            return pattern == wanted
        }
    }

    /// Lowercased ASCII labels, without a final root dot.
    static func labels(_ name: String) -> [String] {
        var n = Substring(name)
        if n.hasSuffix(".") { n = n.dropLast() }
        return n.split(separator: ".", omittingEmptySubsequences: false).map { String($0).lowercased() }
    }

    /// Why a certificate was refused for `host`, for the error a user reads.
    public static func mismatch(_ host: String, dnsNames: [String], addresses: [String]) -> String {
        let named = (dnsNames + addresses).joined(separator: ", ")
        return "it is for \(named.isEmpty ? "no name" : named), not \(host)"
    }
}
