import ArgumentParser
import CircuitoCore
import CircuitoCrypto
import CircuitoStorage

struct AuthoriseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "authorise",
        abstract: "Sign a payment authorisation with a beneficiary's wallet key.",
        discussion: """
            Prints the body of a payment.redeemed event, {"authorisation":{…},"signature":…}; the merchant makes \
            the event {"id":<its payment id>,"type":"payment.redeemed","body":<this line>}, signs it once (circuito \
            sign --key MERCHANT.key --actor MERCHANT), keeps the signed line and submits it (sent again as it is, \
            it gets its first receipt, never a second payment). The authorisation is valid \
            once (its nonce), only on the ledger whose origin it names (the first line of its checkpoints, or \
            "origin" in server.info) and only until it expires.
            """)

    @Option(name: .long, help: "The beneficiary's wallet key file.")
    var key: String
    @Option(name: .long, help: "The origin of the ledger the payment is for (the first line of its checkpoints).")
    var origin: String
    @Option(name: .long, help: "The beneficiary's id.")
    var beneficiary: String
    @Option(name: .long, help: "The merchant's id.")
    var merchant: String
    @Option(name: .long, help: "The amount in cents of TOC.")
    var amount: Int64
    @Option(name: .long, help: "Seconds the authorisation stays valid (1 to 86400).")
    var expiresInSeconds: Int64 = 300
    @Option(name: .long, help: "A nonce used once (default: random).")
    var nonce: String?

    func validate() throws {
        guard amount > 0, amount <= Amounts.maximum else { throw ValidationError("--amount must be from 1 to \(Amounts.maximum) cents") }
        guard (1...86_400).contains(expiresInSeconds) else { throw ValidationError("--expires-in-seconds must be from 1 to 86400") }
    }

    func run() throws {
        try reportingErrors { () throws(LedgerError) in
            let wallet = try readSigningKey(key)
            let expiresAt = Timestamp.format(millisecondsSince1970: Ledger.systemClockMilliseconds() + expiresInSeconds * 1000)
            let authorisation = PaymentAuthorisation(
                origin: origin, beneficiary: beneficiary, merchant: merchant, amount: amount, expiresAt: expiresAt,
                nonce: nonce ?? "n-" + SecureRandom.bytes(count: 12).hexString, key: wallet.publicKey.multikey)
            // Checks the fields exactly as the ledger will.
            _ = try PaymentAuthorisation(json: authorisation.json.objectValue ?? [:])
            let signature = PaymentAuthorisation.sign(authorisation, with: wallet)
            printJSONLine(.object(["authorisation": authorisation.json, "signature": .string(Base64.encode(signature))]))
        }
    }
}
