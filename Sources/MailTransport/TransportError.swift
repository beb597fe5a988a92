/// Why a connection failed. Each says which server, and what a person can do about it.
public enum TransportError: Error, Equatable, CustomStringConvertible {
    /// Could not connect at all (refused, unreachable, name unknown, timed out).
    case connectFailed(endpoint: String, reason: String)
    /// The server's certificate was not accepted: no trusted CA signed it.
    case certificateRejected(endpoint: String, reason: String)
    /// The server's certificate is trusted but names another server (`ServerIdentity`).
    case certificateForAnotherName(endpoint: String, reason: String)
    /// What answered is not speaking TLS, or hung up on the handshake (implicit TLS asked of a
    /// plain-text port; Dovecot hangs up, others send their greeting).
    case notTLS(endpoint: String, hungUp: Bool)
    /// TLS failed for another reason.
    case tlsFailed(endpoint: String, reason: String)
    /// The server did not answer in time.
    case timedOut(endpoint: String, waited: String)
    /// The server closed the connection.
    case closedByPeer(endpoint: String)
    /// The server sent bytes after its STARTTLS answer, before TLS started: a known injection
    /// attack (CVE-2011-0411); the connection is dropped.
    case plaintextAfterStartTLS(endpoint: String)
    /// A message being sent ended before the length announced for it (its spool was cut short);
    /// the connection was closed, since the stream could not be mended.
    case messageCutShort(endpoint: String, size: Int, sent: Int)

    public var description: String {
        switch self {
        case let .connectFailed(e, r): return "cannot connect to \(e): \(r)"
        case let .certificateRejected(e, r):
            return "\(e): the server's certificate is not trusted (\(r)); if it is signed by a private CA, give that CA with --ca-file (ca_file in the config)"
        case let .certificateForAnotherName(e, r):
            return "\(e): the server's certificate does not name this server (\(r)); give the server by a name its certificate holds"
        case let .notTLS(e, hungUp):
            return "\(e): " + (hungUp ? "the server closed the connection during the TLS handshake" : "the server did not answer in TLS")
                + "; this port may be for plain text or STARTTLS (imap://, pop3://, smtp:// start TLS after connecting)"
        case let .tlsFailed(e, r): return "\(e): TLS failed: \(r)"
        case let .timedOut(e, w): return "\(e): no answer within \(w)"
        case let .closedByPeer(e): return "\(e): the server closed the connection"
        case let .messageCutShort(e, size, sent): return "\(e): a message ended after \(sent) of its \(size) bytes while being sent; connection closed"
        case let .plaintextAfterStartTLS(e): return "\(e): the server sent data between its STARTTLS answer and the TLS handshake; refusing the connection (possible injection attack)"
        }
    }
}
