import Foundation
import Glibc

/// What a bench run must undo if it is interrupted: the servers it started and the folders it made. A run undoes them
/// itself when it ends; a signal (SIGINT from Ctrl-C or `kill -INT`, SIGTERM from `timeout` or a CI cancelling a job,
/// SIGHUP from a closed terminal) ends the process without that, so `circuito bench` catches them and calls
/// `undoEverything` first.
public enum BenchCleanup {
    struct Registered {
        var processes: [Int32] = []
        var folders: [String] = []
        var interrupted = false
    }

    private static let registered = Locked(Registered())
    /// A run registers one server and a few folders; the bound catches a leak of registrations.
    static let maximumRegistrations = 64

    static func register(process: Int32) { change { $0.processes.append(process) } }

    static func unregister(process: Int32) { change { $0.processes.removeAll { $0 == process } } }

    /// `folder` and everything in it is removed on an interruption.
    static func register(folder: String) { change { $0.folders.append(folder) } }

    static func unregister(folder: String) { change { $0.folders.removeAll { $0 == folder } } }

    private static func change(_ body: (inout Registered) -> Void) {
        registered.withLock {
            body(&$0)
            precondition($0.processes.count + $0.folders.count <= maximumRegistrations, "a bench run registers a few processes and folders, never this many")
        }
    }

    /// Held for the whole of any removal of a registered folder: the run's own cleanup and a signal's must not remove
    /// one tree at once (each finds files gone that the other removed, and folders are left behind).
    private static let removal = Locked(())

    /// The run's own removal of `folder` when it ends (then unregistered): skipped when a signal is undoing the run,
    /// which removes it itself, and waited for by that signal when it arrives meanwhile.
    static func removeUnlessInterrupted(folder: String) {
        removal.withLock { _ in
            guard !interrupted else { return }
            try? FileManager.default.removeItem(atPath: folder)
        }
        unregister(folder: folder)
    }

    /// Whether a signal has started undoing the run (`undoEverything`), which ends the process.
    public static var interrupted: Bool { registered.withLock { $0.interrupted } }

    /// Holds the calling thread while an interruption is being undone: the run's own thread, which may fail at that
    /// moment (its server is stopping), must neither report that failure nor exit before the signal's exit status.
    /// Bounded: undoing takes seconds (`undoEverything`'s waits), far less than this.
    public static func holdIfInterrupted() {
        for _ in 0..<600 where interrupted { sleep(1) }
    }

    /// Stops every registered server (SIGTERM, then SIGKILL after `graceSeconds`) and removes every registered folder;
    /// what it did, one line each. Called on the signal's thread, just before the process exits; nil when another
    /// signal is already undoing the run (a second Ctrl-C must not exit before the first has stopped the server).
    public static func undoEverything(graceSeconds: Int = 10) -> [String]? {
        let taken = registered.withLock { registered -> Registered? in
            guard !registered.interrupted else { return nil }
            defer { registered = Registered(interrupted: true) }
            return registered
        }
        guard let taken else { return nil }
        var done: [String] = []
        for process in taken.processes {
            kill(process, SIGTERM)
            if ServerProcess.reap(process, waitSeconds: graceSeconds) == nil {
                kill(process, SIGKILL)
                _ = ServerProcess.reap(process, waitSeconds: 5)
                done.append("killed the server (pid \(process)), which did not stop within \(graceSeconds) s")
            } else {
                done.append("stopped the server (pid \(process))")
            }
        }
        // The servers are gone first, so that no process writes into a folder while it is removed.
        for folder in taken.folders {
            removal.withLock { _ in
                // The run's own cleanup may have removed it just before.
                guard access(folder, F_OK) == 0 else { return }
                do {
                    try FileManager.default.removeItem(atPath: folder)
                    done.append("removed \(folder)")
                } catch {
                    done.append("could not remove \(folder): \(error.localizedDescription)")
                }
            }
        }
        return done
    }
}
