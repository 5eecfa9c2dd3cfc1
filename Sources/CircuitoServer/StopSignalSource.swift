import Dispatch

/// A dispatch source that runs `handler` on a global queue each time signal `number` comes, returned once it is
/// registered. On Linux, libdispatch takes the signal by installing its own handler when it registers the source (on
/// its manager thread, a moment after `resume`), so the signal is not set to be ignored first, as on Darwin: ignored,
/// one that came before the registration was dropped (a SIGTERM early in a `backup` was lost and the backup ran to its
/// end, seen under load by helper 56). Until the registration the signal keeps its disposition, which for a stop
/// signal ends the process at once, before the command has made anything to undo.
public func makeStopSignalSource(_ number: Int32, handler: @escaping @Sendable () -> Void) -> any DispatchSourceSignal {
    let registered = DispatchSemaphore(value: 0)
    let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
    source.setEventHandler(handler: handler)
    source.setRegistrationHandler { registered.signal() }
    source.resume()
    // Bounded: a registration that never comes leaves the signal at its default, which ends the process.
    _ = registered.wait(timeout: .now() + .seconds(10))
    return source
}
