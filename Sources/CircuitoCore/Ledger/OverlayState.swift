/// The net effect of a run of state changes: for each table, the last value of every key the run changed (nil: the
/// run deleted it). Keys are also indexed by their first part (up to and with the first zero byte, see `StateKey`), so
/// that a prefix scan by one part, the one the rules make (a beneficiary's lots), looks at that part's keys only
/// instead of every key the run changed.
public struct StateChangeSet: Sendable {
    /// A key as a dictionary key that hashes its bytes in one call: `[UInt8]`'s own hash combines them one by one,
    /// which showed in a profile of the server's planner (every read and every change of a group goes through here).
    struct Key: Hashable, Sendable {
        let bytes: [UInt8]

        func hash(into hasher: inout Hasher) {
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        }
    }

    struct Table: Sendable {
        var values: [Key: [UInt8]?] = [:]
        /// First part → the keys that start with it.
        var byFirstPart: [Key: [[UInt8]]] = [:]

        static func firstPart(_ key: [UInt8]) -> Key {
            guard let separator = key.firstIndex(of: 0) else { return Key(bytes: key) }
            return Key(bytes: Array(key[...separator]))
        }

        mutating func set(_ key: [UInt8], _ value: [UInt8]?) -> [UInt8]?? {
            let previous = values.updateValue(value, forKey: Key(bytes: key))
            if previous == nil { byFirstPart[Self.firstPart(key), default: []].append(key) }
            return previous
        }

        mutating func remove(_ key: [UInt8]) -> Bool {
            guard values.removeValue(forKey: Key(bytes: key)) != nil else { return false }
            // Only an undo removes, and it removes the keys its request added last: search from the end.
            let part = Self.firstPart(key)
            if let position = byFirstPart[part]?.lastIndex(of: key) { byFirstPart[part]?.remove(at: position) }
            if byFirstPart[part]?.isEmpty == true { byFirstPart[part] = nil }
            return true
        }
    }

    private var tables: [StateTable: Table] = [:]

    public init() {}

    /// Keys changed, over all tables.
    public private(set) var count = 0

    /// `.some(value)` when the run changed `key` (`.some(nil)`: deleted it), nil when it did not touch it.
    public func change(_ table: StateTable, _ key: [UInt8]) -> [UInt8]?? {
        tables[table]?.values[Key(bytes: key)]
    }

    /// The changed keys of `table` that start with `prefix`, in key order, with their values (nil: deleted).
    public func changes(_ table: StateTable, prefix: [UInt8]) -> [(key: [UInt8], value: [UInt8]?)] {
        guard let entries = tables[table], !entries.values.isEmpty else { return [] }
        let candidates: [[UInt8]]
        if let separator = prefix.firstIndex(of: 0), separator == prefix.count - 1 {
            // A whole first part: exactly the keys indexed under it.
            candidates = entries.byFirstPart[Key(bytes: prefix)] ?? []
        } else {
            candidates = entries.values.keys.lazy.map(\.bytes).filter { $0.starts(with: prefix) }
        }
        return candidates.sorted { $0.lexicographicallyPrecedes($1) }.compactMap { key in
            entries.values[Key(bytes: key)].map { (key: key, value: $0) }
        }
    }

    /// Records `value` (nil: a deletion) for `key`; returns what the set held for it before (nil: nothing).
    @discardableResult
    public mutating func set(_ table: StateTable, _ key: [UInt8], _ value: [UInt8]?) -> [UInt8]?? {
        // Mutated in place through the default subscript: a copy of the table would make every change cost its size.
        let previous = tables[table, default: Table()].set(key, value)
        if previous == nil { count += 1 }
        return previous
    }

    /// Forgets `key`, as if the run had never changed it.
    mutating func remove(_ table: StateTable, _ key: [UInt8]) {
        if tables[table]?.remove(key) == true { count -= 1 }
    }
}

/// A state with changes laid over a base state: the writer plans a group of requests over the committed state, each
/// event seeing the changes of the ones before it, and takes back a refused request's changes with `undo`.
public struct OverlayState<Base: LedgerStateReader>: LedgerStateReader {
    /// What the overlay held, before a request, for the keys the request changed; `undo` puts it back.
    public struct UndoLog {
        fileprivate var entries: [(table: StateTable, key: [UInt8], previous: [UInt8]??)] = []
        public init() {}
    }

    public let base: Base
    public private(set) var changes: StateChangeSet

    public init(base: Base) {
        self.base = base
        self.changes = StateChangeSet()
    }

    /// `changes`, made earlier over the same state, laid over `base` again (a planner that keeps them between reads
    /// of a newer snapshot).
    public init(base: Base, changes: StateChangeSet) {
        self.base = base
        self.changes = changes
    }

    public func value(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> [UInt8]? {
        if let changed = changes.change(table, key) { return changed }
        return try base.value(table, key)
    }

    public func json(_ table: StateTable, _ key: [UInt8]) throws(LedgerError) -> JSONValue? {
        if let changed = changes.change(table, key) {
            guard let bytes = changed else { return nil }
            return try StoredJSON.parse(bytes, table: table)
        }
        // Not changed here: the base may answer from values it parsed before.
        return try base.json(table, key)
    }

    public func entries(_ table: StateTable, prefix: [UInt8], limit: Int) throws(LedgerError) -> [(key: [UInt8], value: [UInt8])] {
        let changed = changes.changes(table, prefix: prefix)
        guard !changed.isEmpty else { return try base.entries(table, prefix: prefix, limit: limit) }
        // Read one more per changed key, so that deletions cannot push live entries past the limit.
        let (widened, overflow) = limit.addingReportingOverflow(changed.count)
        var merged: [[UInt8]: [UInt8]] = [:]
        for entry in try base.entries(table, prefix: prefix, limit: overflow ? Int.max : widened) { merged[entry.key] = entry.value }
        for (key, value) in changed { merged[key] = value }
        return merged.sorted { $0.key.lexicographicallyPrecedes($1.key) }.prefix(limit).map { (key: $0.key, value: $0.value) }
    }

    public mutating func apply(_ changes: [StateChange], recordingInto undo: inout UndoLog) {
        for change in changes {
            switch change {
            case .put(let table, let key, let value):
                undo.entries.append((table, key, self.changes.set(table, key, value)))
            case .delete(let table, let key):
                undo.entries.append((table, key, self.changes.set(table, key, nil)))
            }
        }
    }

    public mutating func undo(_ log: UndoLog) {
        for entry in log.entries.reversed() {
            if let previous = entry.previous {
                changes.set(entry.table, entry.key, previous)
            } else {
                changes.remove(entry.table, entry.key)
            }
        }
    }
}
