import CProcess
import CircuitoCore
import CircuitoCrypto
import CircuitoStorage
import Glibc

/// A process that holds a secret keeps it out of core dumps, before it reads or makes it: a dump kept on disk or sent
/// to a crash collector holds the whole memory, and would outlive a person's erasure (a vault key, the data it
/// opens) or hand a signing key to whoever may read dumps (a checkpoint key signs what the ledger is; an actor's key
/// moves its money and issues its badges). Also keeps debuggers of the same user out (PR_SET_DUMPABLE 0).
func excludeFromCoreDumps() throws(LedgerError) {
    guard circuito_process_exclude_from_core_dumps() == 0 else {
        throw LedgerError(.storage, "cannot keep this process out of core dumps, where the secrets it holds would outlive it: \(String(cString: strerror(errno)))")
    }
}

/// Reads a signing key file (into guarded memory, `KeyFile.read`), this process kept out of core dumps first.
func readSigningKey(_ path: String) throws(LedgerError) -> Ed25519PrivateKey {
    try excludeFromCoreDumps()
    return try KeyFile.read(path)
}
