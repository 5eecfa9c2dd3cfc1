import CircuitoCredentials
import Foundation
import Testing

/// `--contexts DIR` must hold every bundled context file, each readable JSON with a top-level @context
/// (Specs/credentials.md 5, "Contexts"): a file that cannot be read or parsed stops the verifier with an error naming
/// it, under the code of what went wrong, before any check is made.
@Suite("Badge CLI: context files that cannot be read or parsed", OwnTimeLimitTrait(minutes: 5), .timeLimit(.minutes(10)))
struct ContextFilesCLITests {
    /// `shared/contexts` beside the repository, as the credential tests read it.
    static let sharedContexts: String = {
        var directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        while directory.path != "/" {
            if FileManager.default.fileExists(atPath: directory.appendingPathComponent("Tests").path) {
                return directory.deletingLastPathComponent().appendingPathComponent("shared/contexts").path
            }
            directory = directory.deletingLastPathComponent()
        }
        return "/shared-contexts-not-found"
    }()

    /// A copy of the bundled contexts in `workspace`, with `fileName` replaced by what `replace` puts at its path.
    static func contexts(in workspace: Workspace, named name: String, replacing fileName: String, _ replace: (String) throws -> Void) throws -> String {
        let directory = workspace.path(name)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for file in JSONLDContextStore.bundledFileNames.values where file != fileName {
            try FileManager.default.copyItem(atPath: sharedContexts + "/" + file, toPath: directory + "/" + file)
        }
        try replace(directory + "/" + fileName)
        return directory
    }

    @Test("a context file that is not JSON, has no @context, is over 1 MiB or is a folder: an error naming it, exit 1")
    func unreadableContextFiles() async throws {
        let workspace = try Workspace()
        defer { workspace.remove() }
        // Contexts are loaded before the credential is looked at: any JSON file does.
        let credential = try workspace.write("credential.json", lines: ["{}"])
        let fileName = "w3id-multikey-v1.jsonld"
        let cases: [(String, (String) throws -> Void, String)] = [
            ("not-json", { try "{\"@context\": {".write(toFile: $0, atomically: false, encoding: .utf8) },
             "error: invalid_body: bundled JSON-LD context file \(fileName) is not valid JSON: "),
            ("no-context", { try "{\"id\": \"@id\"}".write(toFile: $0, atomically: false, encoding: .utf8) },
             "error: invalid_body: bundled JSON-LD context file \(fileName) has no top-level @context"),
            ("array", { try "[{\"@context\": {}}]".write(toFile: $0, atomically: false, encoding: .utf8) },
             "error: invalid_body: bundled JSON-LD context file \(fileName) has no top-level @context"),
            ("too-large", { try ("{\"@context\": {}, \"padding\": \"" + String(repeating: "x", count: 1 << 20) + "\"}").write(toFile: $0, atomically: false, encoding: .utf8) },
             "error: too_large: JSON-LD context file \(fileName) cannot be read from "),
            ("folder", { try FileManager.default.createDirectory(atPath: $0, withIntermediateDirectories: false) },
             "error: storage_error: JSON-LD context file \(fileName) cannot be read from "),
            ("missing", { _ in }, "error: not_found: JSON-LD context file \(fileName) is missing from "),
        ]
        for (name, replace, expected) in cases {
            let directory = try Self.contexts(in: workspace, named: name, replacing: fileName, replace)
            let result = try await circuito("badge", "verify", credential, "--no-status", "--contexts", directory)
            #expect(result.status == 1, "\(name)")
            #expect(result.stdout.isEmpty, "\(name): \(result.stdout)")
            #expect(result.stderr.hasPrefix(expected), "\(name): \(result.stderr)")
        }
        // The same copy, whole, is read: each refusal above is for the file it changed.
        let whole = try Self.contexts(in: workspace, named: "whole", replacing: fileName) {
            try FileManager.default.copyItem(atPath: Self.sharedContexts + "/" + fileName, toPath: $0)
        }
        let accepted = try await circuito("badge", "verify", credential, "--no-status", "--contexts", whole)
        #expect(accepted.stderr.isEmpty, "\(accepted.stderr)")
        #expect(accepted.stdout.hasPrefix("format: FAILED: format_invalid"), "\(accepted.stdout)")
    }
}
