/// Every refusal the ledger gives: a stable code (returned as-is by the CLI and the socket API) and a message.
public struct LedgerError: Error, Hashable, Sendable, CustomStringConvertible {
    /// A stable, documented error code. `name` is the contract; `number` is its JSON-RPC error code.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public let number: Int

        public init(name: String, number: Int) {
            self.name = name
            self.number = number
        }

        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "\(code.name): \(message)" }
}

extension LedgerError.Code {
    // Input format (1000s).
    public static let invalidJSON = Self(name: "invalid_json", number: 1001)
    public static let nonIntegerNumber = Self(name: "non_integer_number", number: 1002)
    public static let invalidEvent = Self(name: "invalid_event", number: 1003)
    public static let invalidBody = Self(name: "invalid_body", number: 1004)
    public static let invalidTimestamp = Self(name: "invalid_timestamp", number: 1005)
    public static let invalidKey = Self(name: "invalid_key", number: 1006)
    public static let invalidSignature = Self(name: "invalid_signature", number: 1007)
    public static let unsupportedVersion = Self(name: "unsupported_version", number: 1008)
    public static let unknownEventType = Self(name: "unknown_event_type", number: 1009)
    public static let tooLarge = Self(name: "too_large", number: 1010)

    // Authority and permissions (2000s).
    public static let unknownActor = Self(name: "unknown_actor", number: 2001)
    public static let keyNotActive = Self(name: "key_not_active", number: 2002)
    public static let roleNotPermitted = Self(name: "role_not_permitted", number: 2003)
    public static let actorSuspended = Self(name: "actor_suspended", number: 2004)
    public static let actorExists = Self(name: "actor_exists", number: 2005)
    public static let keyInUse = Self(name: "key_in_use", number: 2006)
    public static let lastKey = Self(name: "last_key", number: 2007)
    public static let unknownOrganisation = Self(name: "unknown_organisation", number: 2008)

    // Log state (3000s).
    public static let idConflict = Self(name: "id_conflict", number: 3001)
    public static let genesisRequired = Self(name: "genesis_required", number: 3002)
    public static let genesisAlreadyWritten = Self(name: "genesis_already_written", number: 3003)
    public static let notFound = Self(name: "not_found", number: 3004)
    public static let invalidRange = Self(name: "invalid_range", number: 3005)

    // The circuit's rules (5000s).
    public static let policyMissing = Self(name: "policy_missing", number: 5001)
    public static let insufficientFunds = Self(name: "insufficient_funds", number: 5002)
    public static let capExceeded = Self(name: "cap_exceeded", number: 5003)
    public static let alreadyExists = Self(name: "already_exists", number: 5004)
    public static let unknownReference = Self(name: "unknown_reference", number: 5005)
    public static let invalidState = Self(name: "invalid_state", number: 5006)
    public static let alreadyConverted = Self(name: "already_converted", number: 5007)
    public static let categoryNotAccepted = Self(name: "category_not_accepted", number: 5008)
    public static let merchantNotEnrolled = Self(name: "merchant_not_enrolled", number: 5009)
    public static let authorisationInvalid = Self(name: "authorisation_invalid", number: 5010)
    public static let authorisationExpired = Self(name: "authorisation_expired", number: 5011)
    public static let nonceUsed = Self(name: "nonce_used", number: 5012)
    public static let refundExceedsPayment = Self(name: "refund_exceeds_payment", number: 5013)
    public static let settlementExceedsBalance = Self(name: "settlement_exceeds_balance", number: 5014)
    public static let lotNotExpired = Self(name: "lot_not_expired", number: 5015)
    public static let subjectErased = Self(name: "subject_erased", number: 5016)
    public static let tooManyLots = Self(name: "too_many_lots", number: 5017)
    public static let notCaseHolder = Self(name: "not_case_holder", number: 5018)

    // Operating errors (4000s): the request may be fine, the ledger could not serve it.
    public static let storage = Self(name: "storage_error", number: 4001)
    public static let mapFull = Self(name: "map_full", number: 4002)
    public static let locked = Self(name: "ledger_locked", number: 4003)
    public static let keyFile = Self(name: "key_file", number: 4004)
    public static let integrity = Self(name: "integrity_failure", number: 4005)
    public static let clockOutOfRange = Self(name: "clock_out_of_range", number: 4006)
    public static let ledgerFormatTooNew = Self(name: "ledger_format_too_new", number: 4007)
    public static let threadStartFailed = Self(name: "thread_start_failed", number: 4008)
    public static let clockBehind = Self(name: "clock_behind", number: 4009)
    public static let clockJumped = Self(name: "clock_jumped", number: 4010)
}
