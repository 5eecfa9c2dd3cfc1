import CircuitoCore

/// Refusals of the credential code (7000s), in the ledger's code space so that the CLI and the socket API report
/// them like every other error.
extension LedgerError.Code {
    /// A credential (or status list credential) did not verify; the message says which check failed.
    public static let credentialInvalid = Self(name: "credential_invalid", number: 7001)
    /// GZIP, zlib or DEFLATE data is malformed, fails its checksum, or expands beyond the allowed size. Where the data
    /// sits inside something else, that thing's code is given instead, with this message after it: a status list's
    /// `encodedList` is `statusListInvalid`, a PNG credential chunk's compressed text `imageInvalid`.
    public static let compressedDataInvalid = Self(name: "compressed_data_invalid", number: 7002)
    /// A status list is malformed: not multibase base64url, too short, or its index is out of range.
    public static let statusListInvalid = Self(name: "status_list_invalid", number: 7003)
    /// An image given for baking (or extracting) is not a well-formed PNG or SVG, or holds no credential; also a
    /// credential chunk whose text cannot be read (not UTF-8, or compressed text that does not decompress).
    public static let imageInvalid = Self(name: "image_invalid", number: 7004)
    /// A ledger record a credential is built from is missing or has an unexpected form.
    public static let badgeSourceInvalid = Self(name: "badge_source_invalid", number: 7005)
}
