import Drivers
import FunnelModel
import MailTransport
import TransferEngine

/// The exit status and message for an error that ended an account or a command: the error's own
/// for MailFunnel's errors, its driver's for a protocol's (`Driver.exitStatus(for:)`).
public func describeFailure(_ error: Error) -> (status: ExitStatus, message: String) {
    switch error {
    case let e as FunnelError: return (e.exitStatus, e.description)
    case let e as TransferStopped:
        return (e.error.message.contains("the server closed") || e.error.message.contains("cannot connect") ? .unavailable : .temporaryFailure, e.description)
    case let e as LoginFailure:
        // Every way in was refused, or the server could not be trusted with one.
        return (.noPermission, e.description)
    case let e as TransportError:
        // Connecting, TLS, a certificate, a downgrade: the server cannot be used as it is.
        return (.unavailable, e.description)
    case let e as DeliveryError:
        return (e.errorClass == .permanent ? .dataError : .temporaryFailure, e.description)
    default:
        if let status = Endpoints.exitStatus(for: error) { return (status, "\(error)") }
        return (.software, "\(error)")
    }
}
