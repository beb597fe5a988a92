/// Hands a value that is not Sendable to a task and back. Unchecked: the one who hands it over uses
/// it only after the task's result is in, so the two never touch it at once.
package struct Handoff<Value>: @unchecked Sendable {
    package let value: Value
    package init(_ value: Value) { self.value = value }
}
