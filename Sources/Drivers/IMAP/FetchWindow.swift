import FunnelModel
import Foundation
import IMAPCore
import Logging
import MailMessage
import MailTransport
import NIOCore

/// One UID FETCH for several batches (`IMAPSource.fetch` with a horizon), read a batch at a time.
final class FetchWindow {
    let command: OpenFetch
    /// The mailbox's name on the wire.
    let mailbox: String
    let asked: Set<UInt32>
    /// Asked for and not arrived yet.
    var outstanding: Set<UInt32>
    /// Messages of batches not yet read that arrived while an earlier one was read.
    var early: [UInt32: SpooledMessage] = [:]
    var earlyFailures: [UInt32: DeliveryError] = [:]
    /// The tagged response was read.
    var ended = false
    /// Why the messages still outstanding when it ended will not come: the server's NO.
    var refusal: DeliveryError?

    init(command: OpenFetch, mailbox: String, asked: [UInt32]) {
        self.command = command
        self.mailbox = mailbox
        self.asked = Set(asked)
        self.outstanding = self.asked
    }
}
