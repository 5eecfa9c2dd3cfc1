import CircuitoCrypto

/// The programme's rules in force, set by `policy.updated` (the authority); each update replaces the whole policy.
public struct Policy: Sendable, Hashable {
    /// ToCoin cents one credit converts to.
    public let conversionRateCentsPerCredit: Int64
    /// ToCoin cents one beneficiary may receive from conversions in one calendar month (UTC, by `recorded_at`).
    public let monthlyConversionCapCents: Int64
    /// How long a lot (converted or granted ToCoin) may be spent.
    public let lotValidityDays: Int64
    /// Spending categories a dote may be earmarked for and merchants may accept.
    public let categories: [String]
    /// The seq of the `policy.updated` that set it.
    public let since: UInt64

    public static let maximumCategories = 32

    public init(conversionRateCentsPerCredit: Int64, monthlyConversionCapCents: Int64, lotValidityDays: Int64, categories: [String], since: UInt64) {
        self.conversionRateCentsPerCredit = conversionRateCentsPerCredit
        self.monthlyConversionCapCents = monthlyConversionCapCents
        self.lotValidityDays = lotValidityDays
        self.categories = categories
        self.since = since
    }

    public var json: JSONValue {
        .object([
            "conversion_rate_cents_per_credit": .integer(conversionRateCentsPerCredit),
            "monthly_conversion_cap_cents": .integer(monthlyConversionCapCents),
            "lot_validity_days": .integer(lotValidityDays), "categories": .array(categories.map { .string($0) }),
            "since": .integer(Int64(since)),
        ])
    }

    public init(json: JSONValue) throws(LedgerError) {
        guard case .integer(let rate)? = json["conversion_rate_cents_per_credit"],
            case .integer(let cap)? = json["monthly_conversion_cap_cents"], case .integer(let days)? = json["lot_validity_days"],
            case .array(let categories)? = json["categories"], case .integer(let since)? = json["since"],
            // policy.updated's bounds: lot_validity_days past them would overflow as milliseconds when a lot is granted.
            (1...Amounts.maximum).contains(rate), (1...Amounts.maximum).contains(cap), (1...3660).contains(days)
        else { throw LedgerError(.integrity, "stored policy is damaged") }
        self.init(conversionRateCentsPerCredit: rate, monthlyConversionCapCents: cap, lotValidityDays: days,
                  categories: categories.compactMap(\.stringValue), since: UInt64(max(0, since)))
    }
}

/// A beneficiary wallet's consent to one payment on one ledger: the ledger's origin, amount, merchant, expiry and a
/// nonce, signed by one of the beneficiary's active keys over `circuito.payment_authorisation.v2` ‖ 0x0A ‖
/// JCS(authorisation). `payment.redeemed` carries it as `{"authorisation":{…},"signature":<base64>}`; it is valid
/// once, only on the ledger it names (a wallet key registered on two ledgers, with a merchant on both, cannot have
/// one payment taken twice) and only before `expires_at` (compared with the record's `recorded_at`).
public struct PaymentAuthorisation: Sendable, Hashable {
    /// v2: v1 authorisations named no ledger.
    public static let signingDomain: [UInt8] = Array("circuito.payment_authorisation.v2\n".utf8)
    public static let maximumNonceBytes = 64

    /// The origin of the ledger it is for (its genesis `origin`, the first line of its checkpoints).
    public let origin: String
    public let beneficiary: String
    public let merchant: String
    public let amount: Int64
    public let expiresAt: String
    public let nonce: String
    public let key: String

    public init(origin: String, beneficiary: String, merchant: String, amount: Int64, expiresAt: String, nonce: String, key: String) {
        self.origin = origin
        self.beneficiary = beneficiary
        self.merchant = merchant
        self.amount = amount
        self.expiresAt = expiresAt
        self.nonce = nonce
        self.key = key
    }

    public var json: JSONValue {
        .object([
            "origin": .string(origin), "beneficiary": .string(beneficiary), "merchant": .string(merchant),
            "amount": .integer(amount), "expires_at": .string(expiresAt), "nonce": .string(nonce), "key": .string(key),
        ])
    }

    public var signingBytes: [UInt8] { Self.signingDomain + CanonicalJSON.encode(json) }

    public init(json members: JSONObject) throws(LedgerError) {
        let body = BodyReader(members, type: "payment authorisation")
        try body.allowOnly(["origin", "beneficiary", "merchant", "amount", "expires_at", "nonce", "key"])
        guard members["origin"] != nil else {
            throw LedgerError(
                .invalidBody,
                "payment authorisation names no \"origin\": a version 1 authorisation (signed over circuito.payment_authorisation.v1 by wallets and circuito before 9e22cf6) names no ledger and is refused; the wallet signs one naming this ledger's origin (circuito authorise --origin)")
        }
        let origin = try body.string("origin")
        guard Origin.isValid(origin) else {
            throw LedgerError(.invalidBody, "payment authorisation origin must be a ledger origin: 1 to 128 printable ASCII characters without spaces or '+'")
        }
        let nonce = try body.string("nonce")
        guard !nonce.isEmpty, nonce.utf8.count <= Self.maximumNonceBytes, Identifier.isValid(nonce) else {
            throw LedgerError(.invalidBody, "payment authorisation nonce must be 1 to \(Self.maximumNonceBytes) letters, digits or . _ : -")
        }
        self.init(
            origin: origin, beneficiary: try body.identifier("beneficiary"), merchant: try body.identifier("merchant"),
            amount: try body.positiveAmount("amount"), expiresAt: try body.timestamp("expires_at"), nonce: nonce,
            key: try body.multikey("key"))
    }

    /// The authorisation in a `payment.redeemed` body, its signature not checked.
    static func read(paymentBody body: BodyReader) throws(LedgerError) -> PaymentAuthorisation {
        try PaymentAuthorisation(json: try body.object("authorisation"))
    }

    /// Reads the authorisation of a `payment.redeemed` body and checks its signature (not yet whose key it is:
    /// that needs the state, and the rulebook does it).
    public static func verified(paymentBody body: JSONObject) throws(LedgerError) -> PaymentAuthorisation {
        let reader = BodyReader(body, type: "payment.redeemed")
        let authorisation = try read(paymentBody: reader)
        guard let signature = Base64.decode(try reader.string("signature")),
            let key = Multikey.decodePublicKey(authorisation.key),
            key.isValidSignature(signature, for: authorisation.signingBytes)
        else {
            throw LedgerError(.authorisationInvalid, "the payment authorisation's signature does not verify with its key")
        }
        return authorisation
    }

    /// Signs an authorisation (the beneficiary's wallet does this).
    public static func sign(_ authorisation: PaymentAuthorisation, with privateKey: Ed25519PrivateKey) -> [UInt8] {
        privateKey.signature(for: authorisation.signingBytes)
    }
}

/// Personal data sealed with XChaCha20-Poly1305 under the subject's key (kept outside the log):
/// `{"alg":"xchacha20poly1305","nonce":<base64, 24 bytes>,"ciphertext":<base64>}`, additional data
/// `circuito.sealed.v1` ‖ 0x0A ‖ subject id. The ledger checks only the form; it never holds the key.
public enum SealedData {
    public static let algorithm = "xchacha20poly1305"
    public static let maximumCiphertextBytes = 16 * 1024

    public static func additionalData(subject: String) -> [UInt8] { Array("circuito.sealed.v1\n\(subject)".utf8) }

    public static func validate(_ members: JSONObject, field: String) throws(LedgerError) {
        let body = BodyReader(members, type: field)
        try body.allowOnly(["alg", "nonce", "ciphertext"])
        guard try body.string("alg") == algorithm else {
            throw LedgerError(.invalidBody, "\(field) alg must be \"\(algorithm)\"")
        }
        guard let nonce = Base64.decode(try body.string("nonce")), nonce.count == SecretBox.nonceByteCount else {
            throw LedgerError(.invalidBody, "\(field) nonce must be \(SecretBox.nonceByteCount) bytes in base64")
        }
        guard let ciphertext = Base64.decode(try body.string("ciphertext")), ciphertext.count >= SecretBox.tagByteCount,
            ciphertext.count <= maximumCiphertextBytes
        else {
            throw LedgerError(.invalidBody, "\(field) ciphertext must be base64 of \(SecretBox.tagByteCount) to \(maximumCiphertextBytes) bytes")
        }
    }

    /// Seals a JSON object for `subject` (client side: staff tools, the demo).
    public static func seal(_ value: JSONValue, subject: String, key: [UInt8]) -> JSONValue {
        let nonce = SecureRandom.bytes(count: SecretBox.nonceByteCount)
        // The value's bytes in clear are wiped once sealed (its JSON strings cannot be).
        var plaintext = CanonicalJSON.encode(value)
        defer { SecretBytes.wipe(&plaintext) }
        let ciphertext = SecretBox.seal(plaintext, nonce: nonce, additionalData: additionalData(subject: subject), key: key)
        return .object(["alg": .string(algorithm), "nonce": .string(Base64.encode(nonce)), "ciphertext": .string(Base64.encode(ciphertext))])
    }

    /// Opens a sealed value; nil when the key is wrong or the data was changed.
    public static func open(_ sealed: JSONValue, subject: String, key: [UInt8]) -> JSONValue? {
        guard case .string(let nonceText)? = sealed["nonce"], case .string(let ciphertextText)? = sealed["ciphertext"],
            let nonce = Base64.decode(nonceText), let ciphertext = Base64.decode(ciphertextText),
            var plaintext = SecretBox.open(ciphertext, nonce: nonce, additionalData: additionalData(subject: subject), key: key)
        else { return nil }
        // The opened bytes are wiped once parsed; the value's strings are the caller's and cannot be.
        defer { SecretBytes.wipe(&plaintext) }
        return try? JSONParser.parse(plaintext)
    }
}
