import CircuitoCore
import CircuitoStorage
import Foundation
import Glibc
import Testing

// Failing writes and syncs of real processes: a small library preloaded into `circuito` (LD_PRELOAD) makes one
// chosen call on one chosen file fail, as a failing disk or a full one does, where no real disk can be made to fail
// on cue in a test.

/// The preloaded library, compiled from `source` with the toolchain's C compiler (clang ships with Swift).
enum FaultInjection {
    static let source = """
        #define _GNU_SOURCE
        #include <dlfcn.h>
        #include <errno.h>
        #include <fcntl.h>
        #include <link.h>
        #include <pthread.h>
        #include <signal.h>
        #include <stdarg.h>
        #include <stdint.h>
        #include <stdio.h>
        #include <stdlib.h>
        #include <string.h>
        #include <sys/types.h>
        #include <sys/uio.h>
        #include <unistd.h>

        /* One call fails: the CIRCUITO_FAULT_SKIP-th (from 0) of those named in CIRCUITO_FAULT_CALLS (a comma list of
           write, writev, pwrite, pwritev, fallocate, fsync, fdatasync, open) on the file whose path is CIRCUITO_FAULT_PATH (as
           /proc/self/fd names it; for open, the path as given; a path ending in / names every file in that folder, an
           unnamed one included), writing at most CIRCUITO_FAULT_MAXIMUM_BYTES bytes when that is set; with errno
           CIRCUITO_FAULT_ERRNO (EIO when unset). With CIRCUITO_FAULT_SIGNAL set, that call does not fail: the process
           sends itself that signal first (an interruption at a known point), and the call goes through if it lives on;
           with CIRCUITO_FAULT_HOLD set, the call never returns (below). Every other call goes through. */
        static int seen = 0;

        static int failsOnPath(const char *call, const char *target, size_t bytes) {
            const char *calls = getenv("CIRCUITO_FAULT_CALLS"), *path = getenv("CIRCUITO_FAULT_PATH");
            if (calls == NULL || path == NULL) return 0;
            size_t length = strlen(call);
            const char *found = calls;
            while ((found = strstr(found, call)) != NULL) {
                if ((found == calls || found[-1] == ',') && (found[length] == ',' || found[length] == 0)) break;
                found += length;
            }
            if (found == NULL) return 0;
            const char *maximum = getenv("CIRCUITO_FAULT_MAXIMUM_BYTES");
            if (maximum != NULL && bytes > strtoull(maximum, NULL, 10)) return 0;
            size_t pathLength = strlen(path);
            int inFolder = pathLength > 0 && path[pathLength - 1] == '/';
            if ((inFolder ? strncmp(target, path, pathLength) : strcmp(target, path)) != 0) return 0;
            const char *skip = getenv("CIRCUITO_FAULT_SKIP"), *number = getenv("CIRCUITO_FAULT_ERRNO");
            if (__atomic_fetch_add(&seen, 1, __ATOMIC_SEQ_CST) != (skip ? atoi(skip) : 0)) return 0;
            const char *raised = getenv("CIRCUITO_FAULT_SIGNAL");
            const char *hold = getenv("CIRCUITO_FAULT_HOLD");
            if (hold != NULL) {
                /* Held for good at this call, as by a disk that never answers: the file named by CIRCUITO_FAULT_HOLD is
                   made to say so, and the thread waits (signals are handled, and it waits again). */
                int marker = open(hold, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
                if (marker >= 0) close(marker);
                for (;;) pause();
            }
            if (raised != NULL) {
                /* Unblocked first: a child of a test inherits the blocked signals of the test's thread, a user's
                   command has none blocked. */
                sigset_t one; sigemptyset(&one); sigaddset(&one, atoi(raised)); pthread_sigmask(SIG_UNBLOCK, &one, NULL);
                raise(atoi(raised)); return 0;
            }
            errno = number ? atoi(number) : EIO;
            return 1;
        }

        static int failsNow(const char *call, int descriptor, size_t bytes) {
            char link[64], target[4096];
            snprintf(link, sizeof link, "/proc/self/fd/%d", descriptor);
            ssize_t count = readlink(link, target, sizeof target - 1);
            if (count < 0) return 0;
            target[count] = 0;
            return failsOnPath(call, target, bytes);
        }

        #define NEXT(name) static __typeof__(name) *next; if (next == NULL) next = dlsym(RTLD_NEXT, #name)
        ssize_t write(int descriptor, const void *bytes, size_t count) {
            NEXT(write); if (failsNow("write", descriptor, count)) return -1; return next(descriptor, bytes, count);
        }
        ssize_t pwrite(int descriptor, const void *bytes, size_t count, off_t offset) {
            NEXT(pwrite); if (failsNow("pwrite", descriptor, count)) return -1; return next(descriptor, bytes, count, offset);
        }
        ssize_t pwrite64(int descriptor, const void *bytes, size_t count, off_t offset) {
            NEXT(pwrite64); if (failsNow("pwrite", descriptor, count)) return -1; return next(descriptor, bytes, count, offset);
        }
        ssize_t writev(int descriptor, const struct iovec *vectors, int count) {
            NEXT(writev); size_t bytes = 0; for (int i = 0; i < count; i++) bytes += vectors[i].iov_len;
            if (failsNow("writev", descriptor, bytes)) return -1; return next(descriptor, vectors, count);
        }
        ssize_t pwritev(int descriptor, const struct iovec *vectors, int count, off_t offset) {
            NEXT(pwritev); size_t bytes = 0; for (int i = 0; i < count; i++) bytes += vectors[i].iov_len;
            if (failsNow("pwritev", descriptor, bytes)) return -1; return next(descriptor, vectors, count, offset);
        }
        int fsync(int descriptor) {
            NEXT(fsync); if (failsNow("fsync", descriptor, 0)) return -1; return next(descriptor);
        }
        int fallocate(int descriptor, int mode, off_t offset, off_t length) {
            NEXT(fallocate); if (failsNow("fallocate", descriptor, 0)) return -1; return next(descriptor, mode, offset, length);
        }
        int fallocate64(int descriptor, int mode, off_t offset, off_t length) {
            NEXT(fallocate64); if (failsNow("fallocate", descriptor, 0)) return -1; return next(descriptor, mode, offset, length);
        }
        int open(const char *path, int flags, ...) {
            NEXT(open); mode_t mode = 0;
            if (flags & (O_CREAT | O_TMPFILE)) { va_list rest; va_start(rest, flags); mode = va_arg(rest, mode_t); va_end(rest); }
            if (failsOnPath("open", path, 0)) return -1; return next(path, flags, mode);
        }
        int open64(const char *path, int flags, ...) {
            NEXT(open64); mode_t mode = 0;
            if (flags & (O_CREAT | O_TMPFILE)) { va_list rest; va_start(rest, flags); mode = va_arg(rest, mode_t); va_end(rest); }
            if (failsOnPath("open", path, 0)) return -1; return next(path, flags, mode);
        }
        int fdatasync(int descriptor) {
            NEXT(fdatasync); if (failsNow("fdatasync", descriptor, 0)) return -1; return next(descriptor);
        }

        /* One thread is not made, as at a limit of threads (a cgroup's pids.max): the CIRCUITO_FAULT_THREAD-th (from 1)
           pthread_create whose start routine lies in the executable itself (circuito's own threads, then SwiftNIO's;
           not those of the shared libraries, Dispatch's or Foundation's) returns EAGAIN. */
        static int threadsSeen = 0;
        struct Place { uintptr_t address; int inExecutable; };
        static int findInExecutable(struct dl_phdr_info *object, size_t size, void *context) {
            struct Place *place = context;
            for (int index = 0; index < object->dlpi_phnum; index++) {
                const ElfW(Phdr) *segment = &object->dlpi_phdr[index];
                uintptr_t start = object->dlpi_addr + segment->p_vaddr;
                if (segment->p_type == PT_LOAD && place->address >= start && place->address < start + segment->p_memsz) place->inExecutable = 1;
            }
            return 1; /* the first object is the executable */
        }
        int pthread_create(pthread_t *thread, const pthread_attr_t *attributes, void *(*routine)(void *), void *argument) {
            NEXT(pthread_create);
            const char *failing = getenv("CIRCUITO_FAULT_THREAD");
            if (failing != NULL) {
                struct Place place = { (uintptr_t)routine, 0 };
                dl_iterate_phdr(findInExecutable, &place);
                if (place.inExecutable && __atomic_add_fetch(&threadsSeen, 1, __ATOMIC_SEQ_CST) == atoi(failing)) return EAGAIN;
            }
            return next(thread, attributes, routine, argument);
        }
        """

    /// Compiles the library into `workspace` and returns its path.
    static func compile(in workspace: Workspace) async throws -> String {
        let sourcePath = workspace.path("fault.c")
        try source.write(toFile: sourcePath, atomically: false, encoding: .utf8)
        let library = workspace.path("fault.so")
        let compiler = try #require(
            ["clang", "cc", "gcc"].lazy.compactMap(executableOnPath).first,
            "no C compiler on PATH (clang comes with the Swift toolchain) to build the fault-injection library")
        let built = try await runToCompletion(["-shared", "-fPIC", "-O1", "-o", library, sourcePath, "-ldl"], executable: compiler, timeout: 120)
        try #require(built.succeeded, "the fault-injection library did not compile: \(built.stderr)")
        return library
    }

    private static func executableOnPath(_ name: String) -> String? {
        let folders = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":")
        return folders.map { "\($0)/\(name)" }.first { access($0, X_OK) == 0 }
    }

    /// The environment that makes call number `skip` (from 0) of `calls` on `path` fail with `errno`.
    static func environment(
        library: String, calls: [String], path: String, skip: Int = 0, maximumBytes: Int? = nil, errno number: Int32 = EIO
    ) -> [String: String] {
        var environment = [
            "LD_PRELOAD": library, "CIRCUITO_FAULT_CALLS": calls.joined(separator: ","), "CIRCUITO_FAULT_PATH": path,
            "CIRCUITO_FAULT_SKIP": String(skip), "CIRCUITO_FAULT_ERRNO": String(number),
        ]
        if let maximumBytes { environment["CIRCUITO_FAULT_MAXIMUM_BYTES"] = String(maximumBytes) }
        return environment
    }

    /// Starts `arguments` (`circuito`'s, or `executable`'s) with call number `skip` of `calls` on `path` holding it
    /// for good (it makes the file `held` and waits there), and returns once it is held, has ended, or
    /// `timeoutSeconds` passed: the test then acts on it at a known point (a signal), and checks `held` to tell which.
    static func startHeld(
        _ arguments: [String], executable: String? = nil, library: String, calls: [String], path: String, skip: Int = 0,
        held: String, environment extra: [String: String] = [:], timeoutSeconds: Double = 60
    ) async throws -> ChildProcess {
        var environment = environment(library: library, calls: calls, path: path, skip: skip).merging(extra) { _, given in given }
        environment["CIRCUITO_FAULT_HOLD"] = held
        let child = try ChildProcess(arguments, executable: executable, environment: environment, unblockedSignals: true)
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while !FileManager.default.fileExists(atPath: held) && child.process.isRunning && Date() < deadline {
            try await Task.sleep(for: .milliseconds(5))
        }
        return child
    }
}

@Suite("Failing writes and syncs")
struct FaultInjectionTests {
    /// A backup of `ledger` into `copy`, held at `calls` on `path` (checked by `whileHeld`), then sent `signal`: it
    /// must say it removed its copy, print nothing else, exit 128 + the signal and leave no folder.
    static func interruptHeldBackup(
        of ledger: TestLedger, into copy: String, library: String, calls: [String], path: String, held: String,
        signal: (number: Int32, name: String), heldWhere: String, whileHeld: () throws -> Void
    ) async throws {
        let backup = try await FaultInjection.startHeld(
            ["backup", "--data", ledger.directory, "--out", copy], library: library, calls: calls, path: path, held: held)
        try whileHeld()
        kill(backup.pid, signal.number)
        let result = await backup.wait(timeout: 60)
        try #require(FileManager.default.fileExists(atPath: held), "\(signal.name): backup did not reach \(heldWhere): \(result.stderr)")
        #expect(result.exitedNormally && result.status == 128 + signal.number, "\(signal.name): status \(result.status), signalled \(result.signaled): \(result.stderr)")
        #expect(result.stderr == "backup: interrupted by \(signal.name): removed \(copy)\n", "\(result.stderr)")
        #expect(result.stdout.isEmpty, "\(result.stdout)")
        #expect(!FileManager.default.fileExists(atPath: copy), "\(signal.name) left \((try? FileManager.default.contentsOfDirectory(atPath: copy)) ?? [])")
    }

    @Test("backup interrupted (SIGINT, SIGTERM, SIGHUP) while it writes its copy removes the copy's folder and exits 128 + the signal, so the same backup runs again")
    func interruptedBackupLeavesNoFolder() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        let source = try SourceLedger(ledger.directory)
        for (signalNumber, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")] {
            defer { source.expectUnchanged(name) }
            let copy = URL(fileURLWithPath: ledger.workspace.path("backup-\(name)")).resolvingSymlinksInPath().path
            // Held for good at its first write into the new folder (the copy's data.mdb.partial), where it is sent the
            // signal: the backup cannot end by itself meanwhile.
            // Before the fix: ended by the signal, the folder left with data.mdb.partial, and the same backup refused
            // ("is there already").
            try await Self.interruptHeldBackup(
                of: ledger, into: copy, library: library, calls: ["write"], path: copy + "/", held: ledger.workspace.path("held-\(name)"),
                signal: (signalNumber, name), heldWhere: "its copy's first write"
            ) {
                #expect(FileManager.default.fileExists(atPath: copy + "/data.mdb.partial"), "\(name): not held while writing its copy")
            }
            let again = try await circuito("backup", "--data", ledger.directory, "--out", copy)
            #expect(again.succeeded, "\(again.stderr)")
            #expect(try await circuito("verify", "--data", copy).succeeded)
        }
        // Started with SIGHUP ignored, as `nohup` starts it, it leaves it so: it was asked to outlive its terminal.
        // Before, it took SIGHUP anyway (a dispatch source replaces the ignoring) and removed its copy on a hangup.
        let copy = URL(fileURLWithPath: ledger.workspace.path("backup-nohup")).resolvingSymlinksInPath().path
        let held = ledger.workspace.path("held-nohup")
        let binary = try #require(CLI.binary)
        let backup = try await FaultInjection.startHeld(
            ["-c", "trap '' HUP; exec \"$0\" backup --data \"$1\" --out \"$2\"", binary, ledger.directory, copy], executable: "/bin/sh",
            library: library, calls: ["write"], path: copy + "/", held: held)
        // Held at its copy's first write, its signal sources set up: SIGHUP ignored and not caught, so the kernel
        // drops a hangup when it is sent; SIGTERM caught.
        let dispositions = try SignalDispositions(of: backup.pid)
        #expect(dispositions.ignores(SIGHUP) && !dispositions.catches(SIGHUP), "\(dispositions)")
        #expect(dispositions.catches(SIGTERM), "\(dispositions)")
        kill(backup.pid, SIGHUP)
        kill(backup.pid, SIGTERM)
        let result = await backup.wait(timeout: 60)
        try #require(FileManager.default.fileExists(atPath: held), "backup did not reach its copy's first write: \(result.stderr)")
        #expect(result.exitedNormally && result.status == 128 + SIGTERM, "status \(result.status): \(result.stderr)")
        #expect(result.stderr.contains("backup: interrupted by SIGTERM: removed \(copy)"), "\(result.stderr)")
    }

    @Test("backup interrupted (SIGINT, SIGTERM, SIGHUP) while it checks its whole copy (opening it again, its data.mdb renamed whole) removes it and exits 128 + the signal; a signal once the copy is checked, at the write of the ok line, is ignored: it prints ok, exits 0 and keeps its copy; the source is unchanged")
    func backupInterruptedAroundItsCheck() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        let source = try SourceLedger(ledger.directory)
        for (signalNumber, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM"), (SIGHUP, "SIGHUP")] {
            defer { source.expectUnchanged(name) }
            let copy = URL(fileURLWithPath: ledger.workspace.path("checked-\(name)")).resolvingSymlinksInPath().path
            // Held for good where the check opens the copy (LMDB's lock file, made by no other step of the backup).
            try await Self.interruptHeldBackup(
                of: ledger, into: copy, library: library, calls: ["open"], path: copy + "/lock.mdb",
                held: ledger.workspace.path("held-check-\(name)"), signal: (signalNumber, name), heldWhere: "its check"
            ) { () throws in
                #expect(try FileManager.default.contentsOfDirectory(atPath: copy) == ["data.mdb"], "\(name): not held checking a whole copy")
            }

            // Once checked: the signal comes as the ok line is written (the first write to the file standard output
            // goes to), and the write goes on.
            let whole = URL(fileURLWithPath: ledger.workspace.path("whole-\(name)")).resolvingSymlinksInPath().path
            let output = URL(fileURLWithPath: ledger.workspace.path("output-\(name)")).resolvingSymlinksInPath().path
            var signalling = FaultInjection.environment(library: library, calls: ["write"], path: output)
            signalling["CIRCUITO_FAULT_SIGNAL"] = String(signalNumber)
            let binary = try #require(CLI.binary)
            let late = try await runToCompletion(
                ["-c", "exec \"$0\" backup --data \"$1\" --out \"$2\" > \"$3\"", binary, ledger.directory, whole, output], executable: "/bin/sh",
                environment: signalling, timeout: 60)
            #expect(late.succeeded, "\(name): status \(late.status), signalled \(late.signaled): \(late.stderr)")
            let printed = String(decoding: FileManager.default.contents(atPath: output) ?? Data(), as: UTF8.self)
            #expect(printed.hasPrefix("ok: ") && printed.hasSuffix(" bytes in \(whole)\n"), "\(name): \(printed)")
            #expect(late.stderr.isEmpty, "\(late.stderr)")
            #expect(try await circuito("verify", "--data", whole).succeeded, "\(name): the copy reported is not whole")
        }
    }

    @Test("a backup interrupted before it made its copy's folder leaves the folder another backup made meanwhile, that backup's whole copy")
    func interruptedBackupLeavesAnotherBackupsCopy() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        let source = URL(fileURLWithPath: ledger.directory).resolvingSymlinksInPath().path
        let copy = URL(fileURLWithPath: ledger.workspace.path("backup")).resolvingSymlinksInPath().path
        // The first backup is held where it reads the source into the page cache (its third open of data.mdb, after
        // LMDB's two): it began before the folder was there, and has not made it yet.
        let held = ledger.workspace.path("held")
        let first = try await FaultInjection.startHeld(
            ["backup", "--data", source, "--out", copy], library: library, calls: ["open"], path: source + "/data.mdb", skip: 2, held: held)
        #expect(!FileManager.default.fileExists(atPath: copy), "the first backup made its folder before it was held")
        // Meanwhile a second backup into the same path makes the folder and its whole copy.
        let second = try await circuito("backup", "--data", source, "--out", copy)
        #expect(second.succeeded, "\(second.stderr)")
        kill(first.pid, SIGINT)
        let result = await first.wait(timeout: 60)
        try #require(FileManager.default.fileExists(atPath: held), "the first backup was never held: \(result.stderr)")
        #expect(result.exitedNormally && result.status == 128 + SIGINT, "status \(result.status): \(result.stderr)")
        // Before the fix: "removed" it, the second backup's reported copy gone.
        #expect(result.stderr.contains("backup: interrupted by SIGINT") && !result.stderr.contains("removed"), "\(result.stderr)")
        #expect(try await circuito("verify", "--data", copy).succeeded, "the second backup's copy is gone")
    }

    @Test("keygen interrupted (SIGINT, SIGTERM, SIGHUP) between creating its key file and writing the key leaves no file under the name, so keygen to that path succeeds next time")
    func interruptedKeygenLeavesNoKeyFile() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let library = try await FaultInjection.compile(in: workspace)
        // As /proc/self/fd names the files in it (the library compares with that).
        let folder = URL(fileURLWithPath: workspace.path("keys")).resolvingSymlinksInPath().path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        let path = folder + "/alice.key"
        for signalNumber in [SIGINT, SIGTERM, SIGHUP] {
            // The first write to a file in the folder: the key's, once its file is made.
            var environment = FaultInjection.environment(library: library, calls: ["write"], path: folder + "/")
            environment["CIRCUITO_FAULT_SIGNAL"] = String(signalNumber)
            let interrupted = try await runToCompletion(["keygen", "--out", path], environment: environment, timeout: 60)
            #expect(interrupted.signaled && interrupted.status == signalNumber, "signal \(signalNumber): status \(interrupted.status): \(interrupted.stderr)")
            // Before the fix, an empty alice.key (0600) stayed: every reader refused it (not JSON) and the next keygen
            // to the path said the file exists.
            let left = try FileManager.default.contentsOfDirectory(atPath: folder)
            #expect(left.isEmpty, "signal \(signalNumber) left \(left)")
            let again = try await circuito("keygen", "--out", path)
            #expect(again.succeeded, "\(again.stderr)")
            #expect(try KeyFile.read(path).publicKey.multikey + "\n" == again.stdout)
            try FileManager.default.removeItem(atPath: path)
        }
    }

    @Test("serve whose committer or request thread cannot be started (EAGAIN, as at a pids limit) exits 1 with thread_start_failed naming it, and writes nothing")
    func serveWithoutAThread() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        // circuito's own threads start in this order: the writer's committer and planner, then the request threads.
        for (number, thread) in [(1, "circuito-commit"), (2, "circuito-plan"), (3, "circuito-srv-0")] {
            let served = try await runToCompletion(
                ["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0", "--unix", ledger.workspace.path("s.sock")],
                environment: ["LD_PRELOAD": library, "CIRCUITO_FAULT_THREAD": String(number)], timeout: 60)
            #expect(served.exitedNormally && served.status == 1, "\(thread): status \(served.status), signalled \(served.signaled), timed out \(served.timedOut): \(served.stderr)")
            #expect(
                served.stderr.contains("error: thread_start_failed: cannot start the thread \(thread): pthread_create failed with errno \(EAGAIN) (EAGAIN, "),
                "\(served.stderr)")
            #expect(!served.stdout.contains("listening"), "\(served.stdout)")
            #expect(!FileManager.default.fileExists(atPath: ledger.workspace.path("s.sock")))
        }
        #expect(try await ledger.root().size == 1, "nothing was written")
        let verified = try await ledger.verify()
        #expect(verified.succeeded, "\(verified.stderr)")
    }

    @Test("a server whose commit leaves LMDB's environment failed (a meta page write failed) answers that commit storage_error, stops with exit status 1 and names the cause; restarted, it has every commit before it and takes writes again")
    func serverStopsWhenItsStorageFails() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        // The first write of at most 1 KiB to data.mdb after the server opened it: the meta page of its first commit
        // (the pages of a commit are written whole, 4 KiB each).
        let server = try ChildProcess(
            ["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"],
            environment: FaultInjection.environment(library: library, calls: ["pwrite"], path: ledger.directory + "/data.mdb", maximumBytes: 1024))
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let events = try ledger.workspace.write("events.jsonl", lines: [try ledger.authority.register(TestActor("merchant-1"), role: "merchant", name: "One")])
        let refused = try await circuito("client", "submit", "--server", endpoint, events)
        #expect(!refused.succeeded)
        #expect(refused.stdout.contains("storage_error") || refused.stderr.contains("storage_error"), "\(refused.stdout) \(refused.stderr)")
        let stopped = await server.wait(timeout: 60)
        #expect(!stopped.timedOut, "the server went on after its storage failed")
        #expect(stopped.status == 1)
        #expect(stopped.stderr.contains("error: storage_error: the server stopped:"), "\(stopped.stderr)")
        #expect(stopped.stderr.contains("committing: Input/output error") && stopped.stderr.contains("MDB_PANIC"), "\(stopped.stderr)")
        #expect(!FileManager.default.fileExists(atPath: ledger.directory + "/server.sock"))

        let verified = try await ledger.verify()
        #expect(verified.succeeded, "\(verified.stderr)")
        #expect(try await ledger.root().size == 1, "the failed commit wrote nothing")
        // A new process opens it again and writes.
        let restarted = try ChildProcess(["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"])
        defer { kill(restarted.pid, SIGTERM) }
        let again = try #require(await listeningEndpoint(of: restarted), "serve did not restart: \(String(decoding: restarted.stderr.bytes, as: UTF8.self))")
        let accepted = try await circuito("client", "submit", "--server", again, events)
        #expect(accepted.succeeded, "\(accepted.stdout) \(accepted.stderr)")
        kill(restarted.pid, SIGTERM)
        #expect(await restarted.wait(timeout: 60).status == 0)
        #expect(try await ledger.root().size == 2)
    }

    @Test("a server whose commit fails for a full disk answers it storage_error and goes on, and says so on its standard error: once when commits start failing, once when one succeeds again")
    func serverSaysWhenItsCommitsFailAndRecover() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        // The first page write of the server's first commit (LMDB writes a commit's pages with pwrite and writev,
        // then its meta page with pwrite), refused as a full disk refuses it: the commit fails, and LMDB's environment
        // stays usable, as after a meta page write that failed it would not.
        let server = try ChildProcess(
            ["serve", "--data", ledger.directory, "--listen", "127.0.0.1:0"],
            environment: FaultInjection.environment(
                library: library, calls: ["pwrite", "writev"], path: ledger.directory + "/data.mdb", errno: ENOSPC))
        defer { kill(server.pid, SIGKILL) }
        let endpoint = try #require(await listeningEndpoint(of: server), "serve did not start: \(String(decoding: server.stderr.bytes, as: UTF8.self))")
        let first = try ledger.workspace.write("first.jsonl", lines: [try ledger.authority.register(TestActor("merchant-1"), role: "merchant", name: "One")])
        let refused = try await circuito("client", "submit", "--server", endpoint, first)
        #expect(refused.status == 1)
        #expect(refused.stdout.contains("\"code\":\"storage_error\"") && refused.stdout.contains("No space left on device"), "\(refused.stdout)")
        let second = try ledger.workspace.write("second.jsonl", lines: [try ledger.authority.register(TestActor("merchant-2"), role: "merchant", name: "Two")])
        let accepted = try await circuito("client", "submit", "--server", endpoint, second)
        #expect(accepted.succeeded, "\(accepted.stdout) \(accepted.stderr)")
        kill(server.pid, SIGTERM)
        let stopped = await server.wait(timeout: 60)
        #expect(stopped.status == 0, "\(stopped.stderr)")
        let lines = stopped.stderr.split(separator: "\n").map(String.init)
        let failed = lines.filter { $0.hasPrefix("serve: commits fail: ") }
        #expect(failed.count == 1, "\(stopped.stderr)")
        #expect(failed.first?.contains("storage_error: committing: No space left on device") == true, "\(stopped.stderr)")
        #expect(failed.first?.contains("free space on the file system of \(ledger.directory)") == true, "\(stopped.stderr)")
        #expect(lines.contains("serve: commits succeed again"), "\(stopped.stderr)")
        #expect(try await ledger.root().size == 2)
    }

    @Test("init whose folder sync after genesis fails removes what it made, so the same command runs again")
    func initWhoseFolderSyncFailsLeavesNothing() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let library = try await FaultInjection.compile(in: workspace)
        let authority = TestActor("authority")
        let keyPath = workspace.path("authority.key")
        try KeyFile.write(authority.key, to: keyPath)
        let directory = workspace.path("ledger")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false)
        let arguments = ["init", "--data", directory, "--authority-key", keyPath, "--origin", "cli.test/ledger"]
        // The folder is synced after the marker is written (0), after the checkpoint key is written (1), and after
        // genesis is committed: before the marker is removed (2) and after (3).
        for skip in [2, 3] {
            let failed = try await runToCompletion(
                arguments, environment: FaultInjection.environment(library: library, calls: ["fsync"], path: directory, skip: skip))
            #expect(failed.status == 1, "sync \(skip): \(failed.stderr)")
            #expect(failed.stderr.contains("storage_error") && failed.stderr.contains("cannot sync \(directory)"), "sync \(skip): \(failed.stderr)")
            let left = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0 != LedgerFiles.writerLock }
            #expect(left.isEmpty, "sync \(skip) left \(left)")
        }
        let created = try await circuito(arguments)
        #expect(created.succeeded, "\(created.stderr)")
        #expect(try await circuito("verify", "--data", directory).succeeded)
    }

    @Test("a key file or vault key whose write fails is key_file and leaves no file; an erasure whose sync failed is finished by the next one")
    func keyFilesWhoseWritesFail() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        let library = try await FaultInjection.compile(in: workspace)
        let keyPath = workspace.path("a.key")
        let keygen = try await runToCompletion(
            ["keygen", "--out", keyPath],
            environment: FaultInjection.environment(library: library, calls: ["write"], path: workspace.root + "/", errno: ENOSPC))
        #expect(keygen.status == 1)
        #expect(keygen.stderr.contains("key_file: cannot write \(keyPath): No space left on device"), "\(keygen.stderr)")
        #expect(!FileManager.default.fileExists(atPath: keyPath))
        #expect(try await circuito("keygen", "--out", keyPath).succeeded, "the same command runs again")

        // The demo stores its beneficiaries' vault keys; the first one's write fails (in the vault: the key is
        // written unnamed, then named).
        let data = workspace.path("demo")
        // The first vault key the demo stores (ben-0005: its first beneficiary to reach intake).
        let vaultKey = data + "/vault/ben-0005.key"
        let demo = try await runToCompletion(
            ["demo", "--data", data, "--beneficiaries", "10"],
            environment: FaultInjection.environment(library: library, calls: ["write"], path: data + "/vault/", errno: ENOSPC), timeout: 300)
        #expect(demo.status == 1)
        #expect(demo.stderr.contains("key_file: cannot write \(vaultKey): No space left on device"), "\(demo.stderr)")
        #expect(!FileManager.default.fileExists(atPath: vaultKey), "no empty vault key is left")
        let rebuilt = try await circuito(["demo", "--data", data, "--beneficiaries", "10"], timeout: 300)
        try #require(rebuilt.succeeded, "\(rebuilt.stderr)")

        // An erasure (of a beneficiary the demo did not erase): the overwrite's sync fails; the key is zeros, not yet
        // removed, and the next erasure finishes it.
        let keyName = try #require(try FileManager.default.contentsOfDirectory(atPath: data + "/vault").sorted().first)
        let keptKey = data + "/vault/" + keyName
        let erase = ["vault", "erase", "--vault", data + "/vault", "--beneficiary", String(keyName.dropLast(".key".count))]
        let interrupted = try await runToCompletion(erase, environment: FaultInjection.environment(library: library, calls: ["fsync"], path: keptKey))
        #expect(interrupted.status == 1)
        #expect(interrupted.stderr.contains("cannot sync the overwritten vault key"), "\(interrupted.stderr)")
        let left = try FileIO.readFile(keptKey, maximumBytes: 4096)
        #expect(!left.isEmpty && left.allSatisfy { $0 == 0 })
        let finished = try await circuito(erase)
        #expect(finished.succeeded, "\(finished.stderr)")
        #expect(!FileManager.default.fileExists(atPath: keptKey))
    }

    /// A file system out of blocks makes a new file and refuses its blocks (`fallocate`); one with blocks to spare but
    /// no inode left refuses the new file itself (`open`). Both are ENOSPC.
    @Test(
        "where LMDB's lock file cannot be given its blocks (a full disk) or created at all (no inode left), a writer is refused storage_error naming it with nothing left, and a reader of a backup reads it without the lock file",
        arguments: [("fallocate", "cannot reserve 20 KiB for LMDB's lock file"), ("open", "cannot create LMDB's lock file")])
    func lockFileThatCannotBeMade(call: String, refusal: String) async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        let backup = ledger.workspace.path("backup")
        try #require(try await circuito("backup", "--data", ledger.directory, "--out", backup).succeeded)
        #expect(!FileManager.default.fileExists(atPath: backup + "/lock.mdb"))
        func full(_ arguments: [String], folder: String) async throws -> CLIResult {
            try await runToCompletion(
                arguments, environment: FaultInjection.environment(library: library, calls: [call], path: folder + "/lock.mdb", errno: ENOSPC))
        }
        let read = try await full(["checkpoint", "--data", backup], folder: backup)
        #expect(read.succeeded, "\(read.stderr)")
        #expect(read.stdout.hasPrefix("cli.test/ledger\n1\n"), "\(read.stdout)")
        #expect(!FileManager.default.fileExists(atPath: backup + "/lock.mdb"), "the reader left the backup as it was")

        let authorityKey = ledger.workspace.path("authority.key")
        let fresh = ledger.workspace.path("fresh")
        let created = try await full(["init", "--data", fresh, "--authority-key", authorityKey, "--origin", "cli.test/fresh"], folder: fresh)
        #expect(created.status == 1)
        #expect(created.stderr.contains("storage_error: \(refusal) \(fresh)/lock.mdb: No space left on device"), "\(created.stderr)")
        // The folder was the init's own: it goes too (Specs/ledger.md 10.1).
        #expect(!FileManager.default.fileExists(atPath: fresh), "init left \((try? FileManager.default.contentsOfDirectory(atPath: fresh)) ?? [])")
    }

    @Test("a backup whose copy fits on its file system but whose lock file does not (the copy opened again to read its root) is whole: it succeeds and verifies, rather than failing on the lock file it never made and removing the copy")
    func backupWhoseCopyFillsTheDisk() async throws {
        let ledger = try await TestLedger()
        defer { ledger.remove() }
        let library = try await FaultInjection.compile(in: ledger.workspace)
        let backup = ledger.workspace.path("backup")
        // The copy is written whole; the lock file of its opening again cannot have its blocks (seen on a tmpfs
        // 0 to 16 KiB larger than the copy).
        let copied = try await runToCompletion(
            ["backup", "--data", ledger.directory, "--out", backup],
            environment: FaultInjection.environment(library: library, calls: ["fallocate"], path: backup + "/lock.mdb", errno: ENOSPC))
        #expect(copied.succeeded, "\(copied.stderr)")
        #expect(copied.stdout.hasPrefix("ok: 1 records, root "), "\(copied.stdout)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: backup) == ["data.mdb"])
        let verified = try await circuito("verify", "--data", backup)
        #expect(verified.succeeded, "\(verified.stderr)")
    }
}

/// A source ledger's `data.mdb` bytes and the names in its folder, taken before backups of it: a backup only reads it.
struct SourceLedger {
    let directory: String
    let bytes: Data
    let names: [String]

    init(_ directory: String) throws {
        self.directory = directory
        bytes = try #require(FileManager.default.contents(atPath: directory + "/data.mdb"))
        names = try FileManager.default.contentsOfDirectory(atPath: directory).sorted()
    }

    func expectUnchanged(_ context: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(FileManager.default.contents(atPath: directory + "/data.mdb") == bytes, "\(context): the source's data.mdb changed", sourceLocation: sourceLocation)
        #expect((try? FileManager.default.contentsOfDirectory(atPath: directory).sorted()) == names, "\(context): the source's folder changed", sourceLocation: sourceLocation)
    }
}
