import LedgerSQLite
import TransferEngine
import Drivers
import FunnelModel
import Foundation
import Logging
import Metrics
import MailTransport
import ServiceLifecycle

/// Raised to stop one account's loop (a reload removed or changed it); also ends a waiting IDLE.
public final class StopFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    private var abort: (@Sendable () -> Void)?

    public init() {}

    public var isRaised: Bool { lock.withLock { raised } }

    public func raise() {
        let a: (@Sendable () -> Void)? = lock.withLock {
            raised = true
            return abort
        }
        a?()
    }

    /// What to call when raised while waiting (closing an IDLE connection).
    func onRaise(_ action: (@Sendable () -> Void)?) {
        lock.withLock { abort = action }
    }
}

/// Limits how many accounts transfer at once (`max_concurrent_accounts`).
public actor AccountLimiter {
    private var available: Int
    private var waiting: [CheckedContinuation<Void, Never>] = []

    public init(_ limit: Int) { available = max(1, limit) }

    func acquire() async {
        if available > 0 {
            available -= 1
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { available += 1 } else { waiting.removeFirst().resume() }
    }
}

/// One configured account in the daemon: a pass, then a wait (the poll interval with jitter, a
/// growing backoff after a failure, or IMAP IDLE until new mail arrives), until shutdown. A
/// failing account logs and backs off; it never stops the others.
public struct AccountService: Service {
    public let job: ImportJob
    let ledger: any Ledger
    let logger: Logger
    let limiter: AccountLimiter
    let pollInterval: Duration
    let idle: Bool
    /// The ledger's account locks: each pass holds its account's, so an import of the same account
    /// waits for the pass or the pass for it. Nil for a ledger no other process can open.
    let locks: AccountLocks?

    public init(job: ImportJob, ledger: any Ledger, locks: AccountLocks?, logger: Logger, limiter: AccountLimiter,
                pollInterval: Duration, idle: Bool) {
        self.job = job
        self.ledger = ledger
        self.locks = locks
        var logger = logger
        logger[metadataKey: "account"] = "\(job.name)"
        self.logger = logger
        self.limiter = limiter
        self.pollInterval = pollInterval
        self.idle = idle
    }

    /// IDLE is re-issued well before servers drop an idle client (30 minutes, RFC 2177).
    static let idleRefresh = Duration.seconds(25 * 60)

    public func run() async throws {
        try await run(until: StopFlag())
    }

    /// Runs until graceful shutdown or until `stop` is raised (the account was removed or changed
    /// by a reload).
    public func run(until stop: StopFlag) async throws {
        var failures = 0
        while !Task.isShuttingDownGracefully && !Task.isCancelled && !stop.isRaised {
            let (ok, hint) = await pass()
            failures = ok ? 0 : failures + 1
            var wait = ok ? Self.jittered(pollInterval) : Self.backoff(failures: failures, cap: max(pollInterval, .seconds(3600)))
            if let hint, hint > wait { wait = hint }
            if !ok { logger.notice("next attempt in \(wait)") }
            if stop.isRaised { break }
            let pushing = ok && idle && [.imap, .imaps].contains(job.source.scheme)
            try? await ledger.setSchedule(account: ledgerAccount, name: job.name,
                                    next: pushing ? nil : Date().addingTimeInterval(Double(wait.components.seconds)),
                                    mode: pushing ? "idle" : ok ? "poll" : "backoff")
            if pushing {
                do {
                    try await waitForNewMail(upTo: idleLimit, stop: stop)
                    continue
                } catch {
                    if stop.isRaised { break }
                    logger.warning("IDLE failed (\(describeFailure(error).message)); polling instead")
                }
            }
            // Sleep in short steps, so a reload that removes this account takes effect quickly.
            let until = ContinuousClock.now + wait
            while ContinuousClock.now < until && !stop.isRaised && !Task.isShuttingDownGracefully {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: min(.seconds(1), until - ContinuousClock.now)) }
            }
        }
        logger.info("stopped")
    }

    /// The ledger's account of the job (`LedgerAccount`), as its transfers write it.
    var ledgerAccount: String { job.ledgerAccount }

    /// One import pass, under the concurrency limit. Returns whether it went through, and how long
    /// the server asked to be left alone, if it did.
    func pass() async -> (ok: Bool, hint: Duration?) {
        let job = self.job, ledger = self.ledger, logger = self.logger
        // The lock before a place under the limit: an account waiting for an import holds no place.
        var held: AccountLock?
        if let locks {
            do {
                held = try await cancelWhenGracefulShutdown {
                    try await job.lock(in: locks, command: "mailfunnel run", wait: true, logger: logger)
                }
            } catch {
                if error is CancellationError || Task.isShuttingDownGracefully { return (true, nil) }
                logger.error("\(describeFailure(error).message)")
                return (false, nil)
            }
        }
        defer { held?.release() }
        await limiter.acquire()
        let dimensions = [("account", job.name)]
        let inFlight = Meter(label: "mailfunnel_accounts_in_flight")
        inFlight.increment()
        let started = ContinuousClock.now
        let result: Result<RunSummary, Error>
        var done = RunSummary()
        defer {
            inFlight.decrement()
            Metrics.Timer(label: "mailfunnel_poll_duration_seconds", dimensions: dimensions)
                .recordNanoseconds(Int64((ContinuousClock.now - started).components.attoseconds / 1_000_000_000
                                         + (ContinuousClock.now - started).components.seconds * 1_000_000_000))
        }
        do {
            let transfer = try job.makeTransfer(ledger: ledger, logger: logger, onEvent: { _ in })
            do {
                // Only the closure uses the transfer until it returns; its summary is read after.
                let running = Handoff(transfer)
                done = try await cancelWhenGracefulShutdown { try await running.value.run() }
                result = .success(done)
            } catch {
                done = transfer.summary
                result = .failure(error)
            }
        } catch {
            result = .failure(error)
        }
        await limiter.release()
        count(done, dimensions: dimensions)
        switch result {
        case let .success(s):
            Gauge(label: "mailfunnel_last_success_timestamp_seconds", dimensions: dimensions).record(Date().timeIntervalSince1970)
            if s.delivered > 0 || s.failed > 0 {
                logger.info("delivered \(s.delivered), skipped \(s.skipped), failed \(s.failed) of \(s.listed) listed")
            }
            // The pass ran: messages that failed are recorded and retried on the next poll; only an
            // account-level failure (below) calls for a backoff.
            return (true, nil)
        case let .failure(error):
            if error is CancellationError || Task.isShuttingDownGracefully { return (true, nil) }
            let (status, message) = describeFailure(error)
            Counter(label: "mailfunnel_failures_total", dimensions: dimensions + [("class", Self.failureClass(status))]).increment()
            if done.delivered > 0 || done.failed > 0 {
                logger.error("\(message) (before it: delivered \(done.delivered), skipped \(done.skipped), failed \(done.failed) of \(done.listed) listed)")
            } else {
                logger.error("\(message)")
            }
            return (false, Self.serverHint(error))
        }
    }

    /// The pass's messages in the metrics, whether it finished or stopped: what it committed.
    private func count(_ s: RunSummary, dimensions: [(String, String)]) {
        Counter(label: "mailfunnel_messages_delivered_total", dimensions: dimensions).increment(by: s.delivered)
        Counter(label: "mailfunnel_bytes_delivered_total", dimensions: dimensions).increment(by: s.bytes)
        Counter(label: "mailfunnel_messages_skipped_total", dimensions: dimensions).increment(by: s.skipped)
        if s.deferred > 0 {
            Counter(label: "mailfunnel_failures_total", dimensions: dimensions + [("class", "temporary")]).increment(by: s.deferred)
        }
        if s.failed > s.deferred {
            Counter(label: "mailfunnel_failures_total", dimensions: dimensions + [("class", "permanent")]).increment(by: s.failed - s.deferred)
        }
    }

    /// How long IDLE waits before a pass: IDLE tells of one folder only, so when the account serves
    /// others too, they are looked at every poll interval meanwhile.
    var idleLimit: Duration {
        let one = job.options.mailboxes.map { $0.count == 1 && $0[0].uppercased() == "INBOX" } ?? false
        return !job.source.path.isEmpty || one ? Self.idleRefresh : min(Self.idleRefresh, pollInterval)
    }

    /// IDLE on the source's folder (its URL folder, else INBOX) until new mail arrives or
    /// `limit` passes. Shutdown closes the connection, which ends the wait at once.
    func waitForNewMail(upTo limit: Duration, stop: StopFlag) async throws {
        let folder = job.source.path.isEmpty ? "INBOX" : job.source.path
        let endpoint = try job.sourceSettings.endpoint(for: job.source, who: job.name)
        let login = try job.sourceSettings.login(for: job.source, who: job.name)
        let logger = self.logger
        try await cancelWhenGracefulShutdown {
            let client = try await IMAPClient.open(endpoint, login: login, logger: logger)
            guard client.has("IDLE") else {
                await client.logout()
                throw IMAPError.commandFailed(server: endpoint.description, command: "IDLE", status: .no, code: nil,
                                              text: "the server does not offer IDLE", mailbox: folder)
            }
            _ = try await client.select(folder, readOnly: true)
            stop.onRaise(client.abort)
            defer { stop.onRaise(nil) }
            guard !stop.isRaised else { await client.logout(); return }
            let woke = try await withTaskCancellationHandler {
                try await client.idle(timeout: limit)
            } onCancel: { [abort = client.abort] in
                abort()
            }
            if woke { logger.info("new mail in \(folder)") }
            await client.logout()
        }
    }

    /// How long the server asked to be left alone, from its error: Microsoft's "Suggested Backoff
    /// Time: N milliseconds", IMAP [THROTTLED], POP3 [LOGIN-DELAY] (RFC 2449) and [IN-USE] (RFC 3206).
    static func serverHint(_ error: Error) -> Duration? {
        let text = "\(error)"
        if let r = text.range(of: "Suggested Backoff Time: ") {
            let digits = text[r.upperBound...].prefix { $0.isNumber }
            if let ms = Int64(digits) { return .milliseconds(ms) }
        }
        if let e = error as? IMAPError, e.code == .throttled { return .seconds(60) }
        if let e = error as? POP3Error, let code = e.responseCode {
            switch code {
            case .loginDelay: return .seconds(15 * 60)
            case .inUse: return .seconds(60)
            default: break
            }
        }
        if let stopped = error as? TransferStopped, stopped.error.message.contains("[THROTTLED]") { return .seconds(60) }
        return nil
    }

    /// How an account-level failure is counted in `mailfunnel_failures_total`.
    static func failureClass(_ status: ExitStatus) -> String {
        switch status {
        case .noPermission: return "authentication"
        case .unavailable: return "unavailable"
        case .protocolError: return "protocol"
        case .config, .usage: return "configuration"
        default: return "temporary"
        }
    }

    /// ±10% so many accounts do not poll in step.
    static func jittered(_ d: Duration) -> Duration {
        let s = Double(d.components.seconds)
        return .milliseconds(Int64((s * Double.random(in: 0.9...1.1)) * 1000))
    }

    /// 30 s, 1 min, 2 min… up to `cap`.
    static func backoff(failures: Int, cap: Duration) -> Duration {
        let seconds = min(Double(cap.components.seconds), 30 * pow(2, Double(max(0, failures - 1))))
        return .seconds(Int64(seconds))
    }
}

extension Config {
    /// The daemon's services, one per account, sharing the ledger and the concurrency limit.
    public func services(ledger: any Ledger, locks: AccountLocks?, logger: Logger, limiter: AccountLimiter? = nil) throws -> [AccountService] {
        let limiter = limiter ?? AccountLimiter(daemon.maxConcurrentAccounts)
        return try importJobs(accounts: [], base: TransferOptions()).map { job in
            let account = accounts.first { $0.name == job.name }!
            return AccountService(job: job, ledger: ledger, locks: locks, logger: logger, limiter: limiter,
                                  pollInterval: account.pollInterval ?? daemon.pollInterval, idle: account.idle)
        }
    }
}
