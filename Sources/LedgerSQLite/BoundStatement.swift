import FunnelModel
import GRDB
import GRDBSQLite

/// A cached statement whose values are bound, in order, through SQLite's C API, and run once: for
/// the ledger's hot writes (a batch's intents and deliveries), where GRDB's `execute(arguments:)`
/// (an existential per value, a closure per binding) cost as much as SQLite's own work.
/// Strings are copied by SQLite (`SQLITE_TRANSIENT`), so nothing bound must outlive the call.
struct BoundStatement {
    private let handle: OpaquePointer
    private var next: Int32 = 1
    private let sql: String

    init(_ db: Database, sql: String) throws {
        handle = try db.cachedStatement(sql: sql).sqliteStatement
        self.sql = sql
        // A statement GRDB ran last is left stepped: reset it (every value is bound again).
        sqlite3_reset(handle)
    }

    private static let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

    mutating func bind(_ value: String) {
        // The length given, not found by the terminating NUL: a NUL inside is kept, as GRDB does.
        sqlite3_bind_text(handle, next, value, Int32(value.utf8.count), Self.transient)
        next += 1
    }

    mutating func bind(_ value: String?) {
        if let value { bind(value) } else { bindNull() }
    }

    mutating func bind(_ value: Int64) {
        sqlite3_bind_int64(handle, next, value)
        next += 1
    }

    mutating func bind(_ value: Int64?) {
        if let value { bind(value) } else { bindNull() }
    }

    mutating func bind(_ value: Double) {
        sqlite3_bind_double(handle, next, value)
        next += 1
    }

    private mutating func bindNull() {
        sqlite3_bind_null(handle, next)
        next += 1
    }

    /// Runs the statement to its end; a failure is thrown as GRDB's `DatabaseError`, so the
    /// transaction it is in rolls back as for any other statement.
    func run() throws {
        precondition(next - 1 == sqlite3_bind_parameter_count(handle), "\(next - 1) values bound for \(sql)")
        let code = sqlite3_step(handle)
        defer { sqlite3_reset(handle) }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code),
                                message: String(cString: sqlite3_errmsg(sqlite3_db_handle(handle))), sql: sql)
        }
    }
}
