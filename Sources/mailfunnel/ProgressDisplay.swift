import Drivers
import Funnel
import FunnelModel
import LedgerSQLite
import TransferEngine
import Foundation

/// A one-line progress bar on stderr (messages, bytes, rate, ETA), redrawn at most ten times a second.
final class ProgressDisplay {
    private let enabled: Bool
    private var totalMessages = 0
    private var totalBytes = 0
    private var doneMessages = 0
    private var doneBytes = 0
    private var deliveredMessages = 0
    /// What the sources announced before listing (an mbox's file size), for the bar while listing goes on.
    private var expectedMessages = 0
    private var expectedBytes = 0
    private var started = Date()
    private var lastDraw = Date.distantPast
    private var drawn = false

    init(enabled: Bool) { self.enabled = enabled }

    func handle(_ event: TransferEvent) {
        switch event {
        case let .listed(messages, bytes):
            totalMessages += messages
            totalBytes += bytes
        case let .alreadyDone(messages, bytes):
            doneMessages += messages
            doneBytes += bytes
        case let .delivered(bytes):
            doneMessages += 1
            doneBytes += bytes
            deliveredMessages += 1
        case .skipped, .failed:
            doneMessages += 1
        case let .expecting(messages, bytes):
            expectedMessages += messages ?? 0
            expectedBytes += bytes ?? 0
        }
        draw()
    }

    private func draw(force: Bool = false) {
        guard enabled else { return }
        let now = Date()
        guard force || now.timeIntervalSince(lastDraw) >= 0.1 else { return }
        lastDraw = now
        let elapsed = max(now.timeIntervalSince(started), 0.001)
        // Listing goes on while delivering: until it is done, the announced size is the better total.
        let byBytes = expectedBytes > totalBytes
        let fraction = byBytes ? Double(doneBytes) / Double(expectedBytes)
            : totalMessages == 0 ? 0 : Double(doneMessages) / Double(max(totalMessages, expectedMessages))
        let width = 24
        let filled = Int(fraction * Double(width))
        let bar = String(repeating: "=", count: filled) + (filled < width ? ">" : "") + String(repeating: " ", count: max(0, width - filled - 1))
        let rate = Double(deliveredMessages) / elapsed
        let remainingSeconds = fraction > 0.001 ? elapsed * (1 - fraction) / fraction : -1
        let eta = remainingSeconds >= 0 ? formatDuration(remainingSeconds) : "--:--"
        let messages = byBytes ? "\(doneMessages) msgs" : "\(doneMessages)/\(max(totalMessages, expectedMessages)) msgs"
        let line = String(format: "\r[%@] %@  %@/%@  %.0f msg/s  ETA %@ ", bar, messages,
                          formatBytes(doneBytes), formatBytes(max(totalBytes, expectedBytes)), rate, eta)
        FileHandle.standardError.write(Data(line.utf8))
        drawn = true
    }

    /// Draws the final state and ends the line.
    func finish() {
        guard enabled, drawn || totalMessages > 0 else { return }
        draw(force: true)
        FileHandle.standardError.write(Data("\n".utf8))
        drawn = false
        totalMessages = 0; totalBytes = 0; doneMessages = 0; doneBytes = 0; deliveredMessages = 0
        expectedMessages = 0; expectedBytes = 0
        started = Date()
    }
}

func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if n >= 1 << 30 { return String(format: "%.1f GB", d / 1_073_741_824) }
    if n >= 1 << 20 { return String(format: "%.1f MB", d / 1_048_576) }
    if n >= 1 << 10 { return String(format: "%.1f KB", d / 1024) }
    return "\(n) B"
}

func formatDuration(_ seconds: Double) -> String {
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}
